"""Combine trained denoisers into one kernel-matched checkpoint (a network per family).

Each member is a ctpipe denoiser checkpoint (training's ``checkpoint_*.pt`` or exported
weights). The result is an ordinary denoiser checkpoint of the ``kernel_matched`` model
(:class:`ctpipe.nets.kernel_matched.KernelMatchedDenoiser`) that
:func:`ctpipe.checkpoints.denoiser.load_denoiser` reads; its record keeps each member's
file name, network hash, iterations and metrics under ``members``.

Example:
    >>> from pathlib import Path
    >>> from tempfile import mkdtemp
    >>> from ctpipe import checkpoints, nets
    >>> folder = Path(mkdtemp())
    >>> paths = {f: checkpoints.file.save_checkpoint(folder / f"{f}.pt",
    ...     nets.build_denoiser("redcnn", filters=2), model_name="redcnn")
    ...     for f in ("sharp", "smooth")}
    >>> out = combine_kernel_matched(paths, fallback="sharp", path=folder / "both.pt")
    >>> model = checkpoints.denoiser.load_denoiser(out)
    >>> model.select("B30f")[0], sorted(model.checkpoint_record["members"])
    ('smooth', ['sharp', 'smooth'])
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

from ctpipe.checkpoints.file import save_checkpoint

__all__ = ["combine_kernel_matched"]


def combine_kernel_matched(
    members: Mapping[str, str | PathLike[str]],
    *,
    fallback: str,
    path: str | PathLike[str],
    note: str = "",
) -> Path:
    """Write a kernel-matched denoiser made of ``members`` (family -> checkpoint).

    Args:
        members: Kernel family (``sharp``, ``smooth``) -> a denoiser checkpoint.
        fallback: The family whose network runs on images of unknown kernel.
        path: The ``.pt`` file to write (atomically).
        note: Free text stored in the record under ``"note"``.

    Returns:
        The path written.

    Raises:
        InputError: A member is not a ctpipe denoiser checkpoint (the file is named).
        ValueError: An unknown family or a fallback that is not a member.
    """
    from ctpipe.checkpoints.denoiser import load_denoiser
    from ctpipe.nets.kernel_matched import KernelMatchedDenoiser

    loaded = {family: load_denoiser(file) for family, file in members.items()}
    specs = {family: net.checkpoint_record["model"] for family, net in loaded.items()}
    combined = KernelMatchedDenoiser(specs, fallback=fallback)
    for family, net in loaded.items():
        combined.networks[family].load_state_dict(net.state_dict())
    extra: dict[str, Any] = {
        "members": {
            family: _member_facts(members[family], net.checkpoint_record)
            for family, net in loaded.items()
        }
    }
    if note:
        extra["note"] = note
    return save_checkpoint(path, combined, model_name="kernel_matched", extra=extra)


def _member_facts(file: str | PathLike[str], record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "file": Path(file).name,
        "network_sha256": record.get("network_sha256", ""),
        "epoch": record.get("epoch", 0),
        "iteration": record.get("iteration", 0),
        "metrics": dict(record.get("metrics", {})),
    }
