"""Self-describing denoiser checkpoints: save during training, load for inference.

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
:func:`save_checkpoint` and by :class:`AtomicCheckpointSaver`, MONAI's ``CheckpointSaver``
with its in-place writes replaced. :func:`load_denoiser` rebuilds the network, checks the
sha256 and returns it in eval mode. Every tensor is plain data, so files are read with
``torch.load(weights_only=True)``: loading a checkpoint runs no code from it.

Example:
    >>> import tempfile, torch
    >>> from ctpipe.nets import build_denoiser
    >>> model = build_denoiser("redcnn", filters=4)
    >>> path = save_checkpoint(tempfile.mkdtemp() + "/tiny.pt", model, model_name="redcnn")
    >>> loaded = load_denoiser(path)
    >>> x = torch.rand(1, 1, 32, 32)
    >>> bool(torch.equal(loaded(x), model.eval()(x))), loaded.training
    (True, False)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monai.handlers import CheckpointSaver

from ctpipe.errors import InputError
from ctpipe.io.atomic import atomic_path

if TYPE_CHECKING:
    import torch
    from ignite.engine import Engine

    from ctpipe.nets.base import Denoiser

__all__ = [
    "CHECKPOINT_FORMAT",
    "FORMAT_VERSION",
    "AtomicCheckpointSaver",
    "CheckpointRecord",
    "checkpoint_record",
    "load_denoiser",
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


class CheckpointRecord:
    """The ``"ctpipe"`` entry of checkpoints saved by MONAI's ``CheckpointSaver``.

    Ignite saves each object of the save dict through its ``state_dict()``; this one builds
    :func:`checkpoint_record` at that moment, from the trainer's epoch and iteration and the
    latest metrics.

    Args:
        network: The model being trained.
        model_name: Its denoiser name.
        config: The training configuration (plain data).
        trainer: The trainer whose progress is recorded.
        metrics: Returns the metrics to record (e.g. the evaluator's latest).
        extra: More facts to record.
        checkpoint_format: The record's ``format`` (:func:`checkpoint_record`).
    """

    def __init__(
        self,
        network: torch.nn.Module,
        *,
        model_name: str,
        config: Mapping[str, Any],
        trainer: Engine | None = None,
        metrics: Callable[[], Mapping[str, Any]] | None = None,
        extra: Mapping[str, Any] | None = None,
        checkpoint_format: str = CHECKPOINT_FORMAT,
    ) -> None:
        self.checkpoint_format = checkpoint_format
        self.network = network
        self.model_name = model_name
        self.config = dict(config)
        self.trainer = trainer
        self.metrics = metrics
        self.extra = dict(extra or {})

    def state_dict(self) -> dict[str, Any]:
        """The record, computed now."""
        state = self.trainer.state if self.trainer is not None else None
        return checkpoint_record(
            self.network,
            model_name=self.model_name,
            config=self.config,
            epoch=state.epoch if state is not None else 0,
            iteration=state.iteration if state is not None else 0,
            metrics=self.metrics() if self.metrics is not None else None,
            extra=self.extra,
            checkpoint_format=self.checkpoint_format,
        )

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Records are descriptive: loading one restores nothing."""


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
            f"({type(err).__name__}: {_first_line(err)})",
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


def load_denoiser(
    path: str | PathLike[str], map_location: str | torch.device | None = "cpu"
) -> Denoiser:
    """Rebuild the denoiser stored in a ctpipe checkpoint, in eval mode.

    Args:
        path: A checkpoint written by training (``checkpoint_best.pt``,
            ``checkpoint_latest.pt``) or by :func:`save_checkpoint`.
        map_location: Device of the returned model's weights.

    Returns:
        The model with the checkpoint's weights, in eval mode. Its ``checkpoint_record``
        attribute holds the checkpoint's record (model, config, metrics, versions).

    Raises:
        InputError: The file is not a ctpipe checkpoint, or its model cannot be rebuilt
            (unknown name, weights of another shape); the message names the file.

    Example:
        >>> model = load_denoiser("runs/denoise_redcnn_cpu/checkpoint_best.pt")  # doctest: +SKIP
        >>> model.checkpoint_record["metrics"]  # doctest: +SKIP
        {'psnr': 41.2, 'ssim': 0.95}
    """
    from ctpipe.nets import build_denoiser

    checkpoint = read_checkpoint(path, map_location)
    record = checkpoint[RECORD_KEY]
    model_info = record.get("model", {})
    name, kwargs = model_info.get("name"), model_info.get("kwargs", {})
    try:
        model = build_denoiser(name, **kwargs)
    except (TypeError, ValueError) as err:
        raise InputError(path, f"cannot rebuild model {name!r} with {kwargs}: {err}") from None
    try:
        model.load_state_dict(checkpoint[NETWORK_KEY])
    except RuntimeError as err:
        raise InputError(
            path, f"weights do not fit model {name!r} {kwargs}: {_first_line(err)}"
        ) from None
    if map_location is not None:
        model.to(map_location)
    model.checkpoint_record = record  # type: ignore[attr-defined]
    return model.eval()


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


class AtomicCheckpointSaver(CheckpointSaver):
    """MONAI's ``CheckpointSaver``, writing each file atomically.

    MONAI's saver writes in place (a crash mid-write leaves a truncated checkpoint) and, with
    a fixed file name, deletes the previous file before writing the next. This one writes to
    a temporary file and renames it over the previous one, and never deletes a fixed-name
    file, so ``checkpoint_latest.pt`` always holds a whole checkpoint. Saving on an exception
    is switched off: the state after an error (a NaN loss) must not replace the last good
    checkpoint.

    Args:
        *args: Those of ``monai.handlers.CheckpointSaver``.
        interval_filename: A fixed file name for the checkpoints saved every
            ``save_interval`` epochs or iterations (MONAI numbers them instead), e.g. the
            same name as ``final_filename`` to keep one "latest" checkpoint.
        **kwargs: Those of ``monai.handlers.CheckpointSaver``.

    Example:
        >>> import tempfile, torch
        >>> net = torch.nn.Linear(1, 1)
        >>> saver = AtomicCheckpointSaver(
        ...     tempfile.mkdtemp(), {"network": net}, save_interval=1, interval_filename="last.pt"
        ... )
    """

    def __init__(self, *args: Any, interval_filename: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # MONAI keeps one ignite Checkpoint per trigger; give each an atomic disk saver.
        triggers = (
            (self._final_checkpoint, None),
            (self._key_metric_checkpoint, None),
            (self._interval_checkpoint, interval_filename),
        )
        for checkpoint, fixed in triggers:
            if checkpoint is not None:
                fixed = fixed or getattr(checkpoint.save_handler, "filename", None)
                checkpoint.save_handler = _atomic_disk_saver(self.save_dir, fixed)

    def exception_raised(self, engine: Engine, e: Exception) -> None:
        """Re-raise without saving (MONAI's saver would overwrite the final checkpoint)."""
        raise e


def _atomic_disk_saver_class() -> type:
    """``ignite.handlers.DiskSaver`` subclass writing through :func:`atomic_path`."""
    import torch
    from ignite.handlers import DiskSaver

    class _Saver(DiskSaver):
        def __init__(self, dirname: str | PathLike[str], filename: str | None = None) -> None:
            super().__init__(dirname=dirname, atomic=False, require_empty=False)
            self.filename = filename

        def __call__(
            self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None
        ) -> None:
            with atomic_path(self.dirname / (self.filename or filename)) as tmp:
                torch.save(checkpoint, tmp)

        def remove(self, filename: str) -> None:
            if self.filename is None:  # a fixed name is replaced by the next save instead
                (self.dirname / filename).unlink(missing_ok=True)

    return _Saver


def _atomic_disk_saver(dirname: str | PathLike[str], filename: str | None = None) -> Any:
    """An atomic disk saver for ``dirname``, always writing ``filename`` when given."""
    return _atomic_disk_saver_class()(dirname, filename)


def _unwrap(network: torch.nn.Module) -> torch.nn.Module:
    """The module inside a ``DataParallel``/``DistributedDataParallel`` wrapper."""
    return getattr(network, "module", network)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _first_line(err: BaseException) -> str:
    """The informative line of an error (torch's unpickling errors put it last)."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(err).splitlines()]
    lines = [line for line in lines if line]
    for line in lines:
        if "Unsupported global" in line or "WeightsUnpickler error" in line:
            return line
    return lines[0] if lines else ""
