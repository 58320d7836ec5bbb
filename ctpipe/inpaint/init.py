r"""Nearest-neighbour initialisation of the latent search (Lahiri et al., ICIP 2019).

Instead of starting the search of :mod:`ctpipe.inpaint.search` from a random latent, draw
a pool of samples ``p_i = G(z_i)`` once (:class:`LatentPool`), and start each image from
the ``z_i`` whose sample best matches its known pixels (:func:`nearest_latents`):

.. math::

    i^* = \arg\min_i \; \| M \odot (y - p_i) \|
        + \beta \left( \| M_x \odot (\partial_x y - \partial_x p_i) \|
                     + \| M_y \odot (\partial_y y - \partial_y p_i) \| \right),

the *data loss* on known pixels plus ``beta`` times the *structure loss* on the
horizontal and vertical finite differences, counted only where both pixels of a
difference are known (``M_x``, ``M_y``). The norm is the sum of squares (``l2``, the
default: matrix products, 0.18 s for 69 tiles against 2048 samples on one CPU thread)
or of absolute values (``l1``, pairwise distances: 5.3 s); on the benchmark's held-out
CT tiles both pick starts of the same quality.

Example:
    >>> import torch
    >>> from ctpipe.nets.dcgan import DCGANGenerator
    >>> g = DCGANGenerator(latent_size=8, features=4, image_size=16).eval()
    >>> pool = LatentPool.from_generator(g, 64, seed=0)
    >>> target = pool.images[[5, 9]]
    >>> known = torch.ones_like(target)
    >>> known[..., 4:12, 4:12] = 0
    >>> nearest_latents(pool, target, known).index.tolist()
    [5, 9]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

__all__ = ["LatentPool", "PoolMatch", "nearest_latents"]


@dataclass(frozen=True)
class LatentPool:
    """Latents and their generated images, drawn once per generator.

    Args:
        z: ``(N, latent_size)`` latents.
        images: ``(N, 1, S, S)`` their images ``G(z)`` (generator in eval mode).
        seed: The seed the latents were drawn with (``None`` when given).
        seconds: Time taken to draw the pool.
    """

    z: torch.Tensor
    images: torch.Tensor
    seed: int | None = None
    seconds: float = 0.0

    @classmethod
    def from_generator(
        cls, generator: torch.nn.Module, size: int, *, seed: int = 0, batch_size: int = 256
    ) -> LatentPool:
        """Draw ``size`` standard normal latents (seeded) and generate their images.

        Raises:
            ValueError: If ``size`` is below 1.
        """
        import time

        from ctpipe.inpaint.search import frozen_eval

        if size < 1:
            raise ValueError(f"size must be >= 1, got {size!r}")
        start = time.perf_counter()
        device = next(generator.parameters()).device
        latent_size = int(generator.config["latent_size"])  # type: ignore[index]
        z = torch.randn(size, latent_size, generator=torch.Generator().manual_seed(seed))
        with frozen_eval(generator), torch.no_grad():
            images = torch.cat(
                [
                    generator(z[i : i + batch_size].to(device)).cpu()
                    for i in range(0, size, batch_size)
                ]
            )
        return cls(z, images, seed, time.perf_counter() - start)

    def __len__(self) -> int:
        return int(self.z.shape[0])


@dataclass(frozen=True)
class PoolMatch:
    """The pool sample chosen for each image.

    Args:
        z: ``(B, latent_size)`` the chosen latents (copies).
        index: ``(B,)`` their indices in the pool.
        data_loss: ``(B,)`` data loss of the chosen samples.
        structure_loss: ``(B,)`` structure loss of the chosen samples.
    """

    z: torch.Tensor
    index: torch.Tensor
    data_loss: torch.Tensor
    structure_loss: torch.Tensor


def nearest_latents(
    pool: LatentPool,
    images: torch.Tensor,
    known: torch.Tensor,
    *,
    structure_weight: float = 1.0,
    norm: Literal["l1", "l2"] = "l2",
) -> PoolMatch:
    """For each image, the pool latent with the lowest data + structure loss.

    Each image's losses against the whole pool compare its known pixels (and its known
    finite differences) with the pool's at the same places: summed absolute differences
    (``l1``, with ``torch.cdist(p=1)`` on those entries only) or summed squared
    differences (``l2``, expanded into matrix products: about 30x faster on a CPU).

    Args:
        pool: The samples to choose from.
        images: ``(B, 1, S, S)`` corrupted images in [-1, 1].
        known: ``(B, 1, S, S)``, 1 on known pixels.
        structure_weight: ``beta``, the weight of the gradient (structure) loss.
        norm: ``l1`` or ``l2`` (squared) differences.

    Returns:
        The chosen latents, their indices and both loss terms.

    Raises:
        ValueError: On shape mismatch, a negative ``structure_weight`` or an unknown norm.
    """
    if images.shape != known.shape or images.shape[1:] != pool.images.shape[1:]:
        raise ValueError(
            f"images and known must be (B, {', '.join(map(str, pool.images.shape[1:]))}), got "
            f"{tuple(images.shape)} and {tuple(known.shape)}"
        )
    if structure_weight < 0:
        raise ValueError(f"structure_weight must be >= 0, got {structure_weight!r}")
    if norm not in ("l1", "l2"):
        raise ValueError(f"norm must be 'l1' or 'l2', got {norm!r}")
    samples = pool.images[:, 0].float()
    y = images.detach().cpu().float()[:, 0]
    m = known.detach().cpu()[:, 0] > 0.5
    terms = {
        "data": (samples, y, m),
        "dx": (samples.diff(dim=-2), y.diff(dim=-2), m[:, 1:, :] & m[:, :-1, :]),
        "dy": (samples.diff(dim=-1), y.diff(dim=-1), m[:, :, 1:] & m[:, :, :-1]),
    }
    distance = _l1 if norm == "l1" else _l2
    loss = {
        key: distance(p.flatten(1), v.flatten(1), w.flatten(1)) for key, (p, v, w) in terms.items()
    }
    data, structure = loss["data"], loss["dx"] + loss["dy"]
    index = (data + structure_weight * structure).argmin(dim=1)
    rows = torch.arange(len(index))
    return PoolMatch(
        z=pool.z[index].clone(),
        index=index,
        data_loss=data[rows, index],
        structure_loss=structure[rows, index],
    )


def _l1(pool: torch.Tensor, values: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """``(B, N)``: sum over ``where[b]`` of ``|values[b] - pool[n]|``."""
    return torch.stack(
        [torch.cdist(v[w][None], pool[:, w], p=1)[0] for v, w in zip(values, where, strict=True)]
    )


def _l2(pool: torch.Tensor, values: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """``(B, N)``: sum over ``where[b]`` of ``(values[b] - pool[n])**2``, by matrix products."""
    w = where.float()
    wv = w * values
    own = (wv * values).sum(dim=1, keepdim=True)  # sum of values**2 where known
    cross = wv @ pool.T  # sum of values * pool
    theirs = w @ pool.square().T  # sum of pool**2 where known
    return (own - 2.0 * cross + theirs).clamp_min(0.0)
