"""A kernel-matched denoiser: one network per reconstruction-kernel family.

Noise texture and edge profiles differ between sharp and smooth kernels (DICOM
ConvolutionKernel; :mod:`ctpipe.kernels`), and a network trained on one family does best
on it. :class:`KernelMatchedDenoiser` holds a network per family and a fallback for
images whose kernel is unknown (NIfTI, a missing tag) or has no network of its own.
:func:`ctpipe.inference.denoise_volume` picks the member from the volume's
``ConvolutionKernel`` (or its ``kernel`` argument) and records which one ran.

It is saved and loaded as any ctpipe denoiser checkpoint (its ``config`` rebuilds it
with :func:`ctpipe.nets.build_denoiser`); :func:`ctpipe.checkpoints.kernel_matched.
combine_kernel_matched` builds one from trained members.

Example:
    >>> import torch
    >>> spec = {"name": "redcnn", "kwargs": {"filters": 4}}
    >>> model = KernelMatchedDenoiser({"sharp": spec, "smooth": spec}, fallback="sharp")
    >>> model.select("B30f")[0], model.select("D45f")[0], model.select(None)[0]
    ('smooth', 'sharp', 'sharp')
    >>> model(torch.zeros(1, 1, 32, 32)).shape  # the fallback network
    torch.Size([1, 1, 32, 32])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ctpipe.kernels import FAMILIES, kernel_family
from ctpipe.nets.base import Denoiser

__all__ = ["KernelMatchedDenoiser"]


class KernelMatchedDenoiser(Denoiser):
    """One denoiser per kernel family (``sharp``, ``smooth``) and a fallback.

    Args:
        networks: Family -> ``{"name": ..., "kwargs": {...}}`` of a denoiser of
            :data:`ctpipe.nets.DENOISERS` (not itself kernel-matched).
        fallback: The family whose network runs when the kernel is unknown or its family
            has no network; also what :meth:`forward` runs.

    Raises:
        ValueError: An unknown family, no networks, a nested kernel-matched network, or a
            fallback that is not one of ``networks``.
    """

    def __init__(self, networks: Mapping[str, Mapping[str, Any]], fallback: str) -> None:
        from ctpipe.nets import build_denoiser

        super().__init__()
        _check_networks(networks, fallback)
        specs = {
            family: {"name": str(spec["name"]), "kwargs": dict(spec.get("kwargs", {}))}
            for family, spec in networks.items()
        }
        self.networks = nn.ModuleDict(
            {family: build_denoiser(s["name"], **s["kwargs"]) for family, s in specs.items()}
        )
        self.fallback = fallback
        self.config = {"networks": specs, "fallback": fallback}

    def select(self, kernel: str | None) -> tuple[str, nn.Module]:
        """The family and network that denoise an image of this ConvolutionKernel.

        Example:
            >>> spec = {"name": "redcnn", "kwargs": {"filters": 2}}
            >>> KernelMatchedDenoiser({"sharp": spec}, "sharp").select("B30f")[0]
            'sharp'
        """
        family = kernel_family(kernel)
        chosen = family if family in self.networks else self.fallback
        return chosen, self.networks[chosen]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise with the fallback network (:meth:`select` picks by kernel)."""
        return self.networks[self.fallback](x)

    @property
    def receptive_radius(self) -> int:
        """The largest receptive radius of the members (pixels on each side)."""
        return max(getattr(net, "receptive_radius", 0) for net in self.networks.values())

    @property
    def min_size(self) -> int:
        """The largest smallest input size of the members."""
        return max(getattr(net, "min_size", 1) for net in self.networks.values())


def _check_networks(networks: Mapping[str, Mapping[str, Any]], fallback: str) -> None:
    if not networks:
        raise ValueError("networks must name at least one kernel family")
    unknown = sorted(set(networks) - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown kernel families {unknown}; known: {', '.join(FAMILIES)}")
    for family, spec in networks.items():
        if not isinstance(spec, Mapping) or "name" not in spec:
            raise ValueError(f"networks[{family!r}] must give a denoiser 'name', got {spec!r}")
        if str(spec["name"]).lower() == "kernel_matched":
            raise ValueError(f"networks[{family!r}] cannot itself be kernel-matched")
    if fallback not in networks:
        raise ValueError(f"fallback must be one of {sorted(networks)}, got {fallback!r}")
