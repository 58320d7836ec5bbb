"""The ctpipe checkpoint file: weights and a self-describing record, written atomically.

A ctpipe checkpoint is a ``torch.save`` dict that needs nothing else to be used:

* ``"network"``: the model's ``state_dict`` (never wrapped in ``DistributedDataParallel``);
* ``"ctpipe"``: the record, :func:`checkpoint_record`: ``format`` (``ctpipe.denoiser``),
  ``format_version``, the model's ``name`` and ``kwargs`` (rebuilt by
  :func:`ctpipe.nets.build_denoiser`), the training ``config``, ``epoch``, ``iteration``,
  ``metrics``, the versions of ctpipe, torch and MONAI, and ``network_sha256``, the sha256
  of the network state (names, dtypes, shapes and bytes of every tensor);
* for resuming: ``"optimizer"``, ``"lr_scheduler"``, ``"trainer"`` (epoch and iteration) and
  ``"history"`` (the loss log), when saved by the trainer.

Files are written atomically (:func:`ctpipe.io.atomic.atomic_path`) by
:func:`save_checkpoint` (and during training by
:class:`ctpipe.training.savers.AtomicCheckpointSaver`); :func:`read_checkpoint` checks the
format and the sha256. Every tensor is plain data, so files are read with
``torch.load(weights_only=True)``: loading a checkpoint runs no code from it. The models
are rebuilt by the loaders beside this module (:mod:`ctpipe.checkpoints.denoiser`,
``segmenter``, ``vae``, ``gan``); nothing here imports training code.

Example:
    >>> import tempfile
    >>> from ctpipe.nets import build_denoiser
    >>> model = build_denoiser("redcnn", filters=4)
    >>> path = save_checkpoint(tempfile.mkdtemp() + "/tiny.pt", model, model_name="redcnn")
    >>> record = read_checkpoint(path)["ctpipe"]
    >>> record["model"]["name"], record["network_sha256"] == state_sha256(model.state_dict())
    ('redcnn', True)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctpipe.errors import InputError
from ctpipe.io.atomic import atomic_path

if TYPE_CHECKING:
    import torch

__all__ = [
    "CHECKPOINT_FORMAT",
    "FORMAT_VERSION",
    "checkpoint_record",
    "export_weights",
    "first_line",
    "read_checkpoint",
    "save_checkpoint",
    "state_sha256",
]

#: Value of ``record["format"]`` in every ctpipe denoiser checkpoint (other kinds of model
#: pass their own, e.g. ``ctpipe.vae``, as ``checkpoint_format``).
CHECKPOINT_FORMAT = "ctpipe.denoiser"
#: Version of the checkpoint layout this module writes and reads.
FORMAT_VERSION = 1
#: Key of the record in the checkpoint dict.
RECORD_KEY = "ctpipe"
#: Key of the network state in the checkpoint dict.
NETWORK_KEY = "network"


def state_sha256(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Sha256 of a ``state_dict``: every entry's name, dtype, shape and raw bytes, in order.

    The same weights give the same digest on any device; a changed value, name or shape
    gives another.

    Example:
        >>> import torch
        >>> a = state_sha256({"w": torch.zeros(2)})
        >>> a == state_sha256({"w": torch.zeros(2)}), a == state_sha256({"w": torch.ones(2)})
        (True, False)
    """
    import torch

    digest = hashlib.sha256()
    for name, tensor in state_dict.items():
        digest.update(name.encode("utf-8"))
        if not isinstance(tensor, torch.Tensor):
            digest.update(repr(tensor).encode("utf-8"))
            continue
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{flat.dtype}{tuple(tensor.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def checkpoint_record(
    network: torch.nn.Module,
    *,
    model_name: str,
    model_kwargs: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    epoch: int = 0,
    iteration: int = 0,
    metrics: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    checkpoint_format: str = CHECKPOINT_FORMAT,
) -> dict[str, Any]:
    """The ``"ctpipe"`` record describing a network's checkpoint.

    Args:
        network: The model (a ``DistributedDataParallel`` wrapper is looked through).
        model_name: Its name in :data:`ctpipe.nets.DENOISERS`.
        model_kwargs: Keyword arguments that rebuild it; by default the model's ``config``.
        config: The training configuration (plain data).
        epoch: Epochs completed.
        iteration: Iterations completed.
        metrics: Latest metrics, e.g. validation PSNR/SSIM.
        extra: More facts to record (world size, device, ...).
        checkpoint_format: The record's ``format``: :data:`CHECKPOINT_FORMAT` for
            denoisers, another name (e.g. ``ctpipe.vae``) for other kinds of model.

    Returns:
        Plain data: strings, numbers, lists and dicts.
    """
    from ctpipe.provenance import versions

    module = _unwrap(network)
    if model_kwargs is None:
        model_kwargs = getattr(module, "config", {})
    return {
        "format": checkpoint_format,
        "format_version": FORMAT_VERSION,
        "model": {"name": model_name, "kwargs": dict(model_kwargs)},
        "config": dict(config or {}),
        "epoch": int(epoch),
        "iteration": int(iteration),
        "metrics": {k: float(v) for k, v in (metrics or {}).items() if _is_number(v)},
        "network_sha256": state_sha256(module.state_dict()),
        "versions": versions(),
        **dict(extra or {}),
    }


def save_checkpoint(
    path: str | PathLike[str],
    network: torch.nn.Module,
    *,
    model_name: str,
    config: Mapping[str, Any] | None = None,
    epoch: int = 0,
    iteration: int = 0,
    metrics: Mapping[str, Any] | None = None,
    extra_states: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    checkpoint_format: str = CHECKPOINT_FORMAT,
) -> Path:
    """Write a self-describing checkpoint of ``network`` atomically.

    Args:
        path: The ``.pt`` file to write; its folder is created when missing.
        network: The model (unwrapped from ``DistributedDataParallel`` when wrapped).
        model_name: Its name in :data:`ctpipe.nets.DENOISERS`.
        config: The training configuration (plain data).
        epoch: Epochs completed.
        iteration: Iterations completed.
        metrics: Metrics to record.
        extra_states: More entries of the checkpoint dict, e.g. ``{"optimizer":
            optimizer.state_dict()}``.
        extra: More facts for the record (:func:`checkpoint_record`).
        checkpoint_format: The record's ``format`` (:func:`checkpoint_record`).

    Returns:
        The path written.
    """
    import torch

    module = _unwrap(network)
    checkpoint = {
        NETWORK_KEY: module.state_dict(),
        **dict(extra_states or {}),
        RECORD_KEY: checkpoint_record(
            module,
            model_name=model_name,
            config=config,
            epoch=epoch,
            iteration=iteration,
            metrics=metrics,
            extra=extra,
            checkpoint_format=checkpoint_format,
        ),
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)
    return path


def read_checkpoint(
    path: str | PathLike[str],
    map_location: str | torch.device | None = "cpu",
    *,
    checkpoint_format: str = CHECKPOINT_FORMAT,
) -> dict[str, Any]:
    """Read a ctpipe checkpoint and check that it is one (its record and its network).

    Args:
        path: The checkpoint file.
        map_location: Where to put the tensors (``torch.load``'s ``map_location``).
        checkpoint_format: The ``format`` the record must have (denoisers by default).

    Returns:
        The checkpoint dict, with at least ``"network"`` and ``"ctpipe"``.

    Raises:
        InputError: The file is missing, unreadable, not a ctpipe checkpoint, of a newer
            format, or its network state does not match the recorded sha256 (the message
            names the file).
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint file does not exist")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for foreign or damaged files
        raise InputError(
            path,
            f"not a ctpipe checkpoint: torch.load cannot read it "
            f"({type(err).__name__}: {first_line(err)})",
        ) from None
    if not isinstance(checkpoint, dict) or RECORD_KEY not in checkpoint:
        keys = sorted(map(str, checkpoint))[:8] if isinstance(checkpoint, dict) else []
        raise InputError(
            path,
            f"not a ctpipe checkpoint: no {RECORD_KEY!r} record (a {type(checkpoint).__name__}"
            + (f" with keys {keys}" if keys else "")
            + "); ctpipe checkpoints are written by `ctpipe train`",
        )
    record = checkpoint[RECORD_KEY]
    if not isinstance(record, dict) or record.get("format") != checkpoint_format:
        got = record.get("format") if isinstance(record, dict) else type(record).__name__
        kind = checkpoint_format.removeprefix("ctpipe.")
        raise InputError(
            path, f"not a ctpipe {kind} checkpoint: format is {got!r}, not {checkpoint_format!r}"
        )
    version = record.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InputError(
            path,
            f"checkpoint format_version {version!r} is newer than this ctpipe reads "
            f"({FORMAT_VERSION}); upgrade ctpipe",
        )
    if NETWORK_KEY not in checkpoint:
        raise InputError(path, f"ctpipe checkpoint has no {NETWORK_KEY!r} state")
    digest = state_sha256(checkpoint[NETWORK_KEY])
    if digest != record.get("network_sha256"):
        raise InputError(
            path,
            f"network state does not match the sha256 recorded in the checkpoint "
            f"({digest[:12]}... != {str(record.get('network_sha256'))[:12]}...): the file "
            "was changed or damaged",
        )
    return checkpoint


def export_weights(
    checkpoint: str | PathLike[str],
    path: str | PathLike[str],
    *,
    note: str = "",
    checkpoint_format: str = CHECKPOINT_FORMAT,
) -> Path:
    """Write only the network and its record: the small file to ship or share.

    Training checkpoints also hold the optimizer, schedule and history (about three times
    the size of the weights); :func:`load_denoiser` needs none of them.

    Args:
        checkpoint: A training checkpoint.
        path: The ``.pt`` file to write (atomically).
        note: Free text stored in the record under ``"note"`` (e.g. the model card's name).
        checkpoint_format: The ``format`` of the checkpoint (denoisers by default).

    Returns:
        The path written.

    Raises:
        InputError: ``checkpoint`` is not a ctpipe checkpoint.
    """
    import torch

    source = read_checkpoint(checkpoint, checkpoint_format=checkpoint_format)
    record = dict(source[RECORD_KEY])
    if note:
        record["note"] = note
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({NETWORK_KEY: source[NETWORK_KEY], RECORD_KEY: record}, tmp)
    return path


def _unwrap(network: torch.nn.Module) -> torch.nn.Module:
    """The module inside a ``DataParallel``/``DistributedDataParallel`` wrapper."""
    return getattr(network, "module", network)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def first_line(err: BaseException) -> str:
    r"""The informative line of an error (torch's unpickling errors put it last).

    Example:
        >>> first_line(ValueError("\nshape mismatch\nmore"))
        'shape mismatch'
    """
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(err).splitlines()]
    lines = [line for line in lines if line]
    for line in lines:
        if "Unsupported global" in line or "WeightsUnpickler error" in line:
            return line
    return lines[0] if lines else ""
