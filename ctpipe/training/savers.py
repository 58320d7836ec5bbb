"""Saving checkpoints during training: the record computed at save time, atomic files.

* :class:`CheckpointRecord`: the ``"ctpipe"`` entry of a checkpoint saved by MONAI's
  ``CheckpointSaver``, built from the trainer's progress when the file is written.
* :class:`GanCheckpointRecord`: the same for a DCGAN (both networks' digests).
* :class:`AtomicCheckpointSaver`: MONAI's ``CheckpointSaver`` writing each file through a
  temporary name and a rename, never deleting the previous good checkpoint.

The file format itself (and reading it for inference) is :mod:`ctpipe.checkpoints.file`.

Example:
    >>> import tempfile, torch
    >>> net = torch.nn.Linear(1, 1)
    >>> record = CheckpointRecord(net, model_name="linear", config={})
    >>> record.state_dict()["epoch"], record.state_dict()["format"]
    (0, 'ctpipe.denoiser')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from os import PathLike
from typing import TYPE_CHECKING, Any

from monai.handlers import CheckpointSaver

from ctpipe.checkpoints.file import CHECKPOINT_FORMAT, checkpoint_record
from ctpipe.checkpoints.gan import DISCRIMINATOR_KEY, GAN_FORMAT, MODEL_NAME, discriminator_entry
from ctpipe.io.atomic import atomic_path

if TYPE_CHECKING:
    import torch
    from ignite.engine import Engine

__all__ = ["AtomicCheckpointSaver", "CheckpointRecord", "GanCheckpointRecord"]


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


class GanCheckpointRecord(CheckpointRecord):
    """The ``"ctpipe"`` record of DCGAN checkpoints saved by MONAI's ``CheckpointSaver``.

    Args:
        generator: The generator being trained.
        discriminator: The discriminator being trained.
        window: HU window of the training images.
        config: The training configuration (plain data).
        trainer: The trainer whose progress is recorded.
    """

    def __init__(
        self,
        generator: torch.nn.Module,
        discriminator: torch.nn.Module,
        *,
        window: tuple[float, float],
        config: Mapping[str, Any],
        trainer: Engine | None = None,
    ) -> None:
        super().__init__(
            generator,
            model_name=MODEL_NAME,
            config=config,
            trainer=trainer,
            extra={"window": [float(w) for w in window]},
            checkpoint_format=GAN_FORMAT,
        )
        self.discriminator = discriminator

    def state_dict(self) -> dict[str, Any]:
        """The record, computed now (with the discriminator's digest)."""
        record = super().state_dict()
        record[DISCRIMINATOR_KEY] = discriminator_entry(self.discriminator)
        return record
