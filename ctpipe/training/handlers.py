"""The checkpoint and resume handlers every ctpipe trainer attaches, in one place.

* :func:`attach_best_saver`: keep the checkpoint with the best validation metric.
* :func:`attach_latest_saver`: ``checkpoint_latest.pt`` every N epochs and at the end.
* :func:`attach_resume`: load a run's state into the trainer before it starts, and tell
  the best saver the best score so far (:func:`restore_best`).
* :func:`attach_loop_handlers`: stop on a non-finite loss, validate every N epochs,
  record the history, step the learning rate every iteration (in that order).
* :func:`attach_progress`: loss lines in the log and a progress bar (rank 0).
* :func:`check_resume_progress`: refuse a checkpoint beyond the configured epochs or one
  without training state (exported weights), naming the file.

Only rank 0 attaches savers; every rank resumes.

Example:
    >>> from types import SimpleNamespace
    >>> history = SimpleNamespace(epochs=[{"validation": {"psnr": 30.0}},
    ...                                   {"validation": {"psnr": 31.0}}])
    >>> best_score(history, "psnr"), best_score(history, "psnr", lower_is_better=True)
    (31.0, 30.0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ctpipe.errors import InputError

__all__ = [
    "STATE_KEYS",
    "WEIGHTS_ONLY_HINT",
    "attach_best_saver",
    "attach_latest_saver",
    "attach_loop_handlers",
    "attach_progress",
    "attach_resume",
    "best_score",
    "check_resume_progress",
    "restore_best",
]

#: The training state a resumable checkpoint holds besides the network.
STATE_KEYS = ("optimizer", "lr_scheduler", "trainer", "history")
#: Why a checkpoint without that state cannot resume.
WEIGHTS_ONLY_HINT = (
    "it holds weights only; resume needs checkpoint_latest.pt or checkpoint_best.pt of a run"
)


def attach_best_saver(
    evaluator: Any,
    save_dict: Mapping[str, Any],
    output_dir: Path,
    *,
    key_metric: str,
    filename: str,
    lower_is_better: bool = False,
) -> Any:
    """Save ``save_dict`` as ``filename`` whenever ``key_metric`` reaches a new best."""
    saver = _saver(
        save_dict,
        output_dir,
        save_key_metric=True,
        key_metric_name=key_metric,
        key_metric_filename=filename,
        key_metric_negative_sign=lower_is_better,
    )
    saver.attach(evaluator)
    return saver


def attach_latest_saver(
    trainer: Any, save_dict: Mapping[str, Any], output_dir: Path, *, interval: int, filename: str
) -> None:
    """Save ``save_dict`` as ``filename`` every ``interval`` epochs and when training ends."""
    _saver(
        save_dict,
        output_dir,
        save_final=True,
        final_filename=filename,
        save_interval=interval,
        interval_filename=filename,
        n_saved=1,
    ).attach(trainer)


def _saver(save_dict: Mapping[str, Any], output_dir: Path, **options: Any) -> Any:
    """An atomic ``CheckpointSaver`` of ``save_dict`` into ``output_dir``."""
    from ctpipe.training.savers import AtomicCheckpointSaver

    return AtomicCheckpointSaver(
        save_dir=str(output_dir), save_dict=dict(save_dict), name="ctpipe.train", **options
    )


def attach_resume(
    trainer: Any,
    resume: str | Path,
    save_dict: Mapping[str, Any],
    device: Any,
    *,
    output_dir: Path | None = None,
    best_saver: Any = None,
    history: Any = None,
    key_metric: str = "",
    best_filename: str = "",
    lower_is_better: bool = False,
) -> None:
    """Load the run's state (all of ``save_dict`` but the record) when the trainer starts.

    With a ``best_saver``, it is then told the best score so far, so a resumed run keeps
    the best checkpoint of the whole run rather than of its own epochs.
    """
    from ignite.engine import Events
    from monai.handlers import CheckpointLoader

    CheckpointLoader(
        load_path=str(resume),
        load_dict={k: v for k, v in save_dict.items() if k != "ctpipe"},
        name="ctpipe.train",
        map_location=device,
    ).attach(trainer)
    if best_saver is not None:
        trainer.add_event_handler(
            Events.STARTED,
            lambda _: restore_best(
                best_saver,
                history,
                output_dir,
                key_metric,
                best_filename,
                lower_is_better=lower_is_better,
            ),
        )


def attach_loop_handlers(
    trainer: Any, *, evaluator: Any, history: Any, scheduler: Any, validation_interval: int
) -> None:
    """Attach the loop's handlers: loss check, validation, history, LR schedule.

    In this order: the non-finite-loss check, validation every ``validation_interval``
    epochs (when there is an ``evaluator``), the history, and the per-iteration LR schedule.
    The history comes after validation so an epoch's metrics are known when it is summarised.
    """
    from ignite.engine import Events
    from monai.handlers import LrScheduleHandler, ValidationHandler

    from ctpipe.training.common import check_finite_loss

    trainer.add_event_handler(Events.ITERATION_COMPLETED, check_finite_loss)
    if evaluator is not None:
        ValidationHandler(
            interval=validation_interval, validator=evaluator, epoch_level=True
        ).attach(trainer)
    history.attach(trainer)
    LrScheduleHandler(scheduler, print_lr=False, epoch_level=False, name="ctpipe.train").attach(
        trainer
    )


def attach_progress(
    trainer: Any,
    *,
    log_interval: int,
    progress: bool,
    bar_values: Callable[[Any], dict[str, float]] | None = None,
    log_values: Callable[[Any], Any] | None = None,
) -> None:
    """Log the loss every ``log_interval`` iterations and, with ``progress``, show a bar.

    Args:
        trainer: The trainer (its output holds the loss under ``"loss"``).
        log_interval: Iterations between two loss lines (0: none).
        progress: Show a progress bar.
        bar_values: Output -> values shown on the bar; by default the loss.
        log_values: Output -> the value (or dict of values) logged; by default the loss.
    """
    from ctpipe.training.common import attach_stats, every

    attach_stats(
        trainer,
        iteration_log=every(log_interval),
        output_transform=log_values or (lambda output: output["loss"].item()),
    )
    if progress:
        from ignite.handlers import ProgressBar

        ProgressBar(persist=False).attach(
            trainer,
            output_transform=bar_values or (lambda output: {"loss": output["loss"].item()}),
        )


def best_score(history: Any, metric: str, *, lower_is_better: bool = False) -> float | None:
    """The best validation ``metric`` of the epochs a history recorded, or ``None``."""
    scores = [e["validation"][metric] for e in history.epochs if metric in e.get("validation", {})]
    if not scores:
        return None
    return min(scores) if lower_is_better else max(scores)


def restore_best(
    saver: Any,
    history: Any,
    output_dir: Path,
    metric: str,
    filename: str,
    *,
    lower_is_better: bool = False,
) -> None:
    """After a resume, let the best-checkpoint saver know the best score so far.

    The score is the one recorded in the best checkpoint itself when it holds one: the
    history of a run resumed from another run's checkpoint (a second training stage with
    another loss) also holds that run's epochs, whose scores are on another scale and must
    not stand for this run's best. Without a readable score there, the history's best is
    used.
    """
    path = output_dir / filename
    if not path.exists():
        return
    best = _recorded_score(path, metric)
    if best is None:
        best = best_score(history, metric, lower_is_better=lower_is_better)
    if best is not None:
        saver.load_state_dict({"_saved": [(-best if lower_is_better else best, filename)]})


def _recorded_score(path: Path, metric: str) -> float | None:
    """``metric`` in the record of a ctpipe checkpoint, or ``None`` when it has none."""
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        return float(checkpoint["ctpipe"]["metrics"][metric])
    except Exception:  # not a ctpipe checkpoint, or no such metric: use the history
        return None


def check_resume_progress(
    path: Path,
    checkpoint: Mapping[str, Any],
    epochs: int,
    *,
    state_keys: Sequence[str] = STATE_KEYS,
    hint: str = WEIGHTS_ONLY_HINT,
) -> None:
    """Refuse a checkpoint beyond ``epochs`` or missing any of ``state_keys``.

    Raises:
        InputError: Names the file, the problem and what to do.
    """
    record = checkpoint["ctpipe"]
    if int(record.get("epoch", 0)) > epochs:
        raise InputError(
            path,
            f"cannot resume: the checkpoint is at epoch {record.get('epoch')}, beyond "
            f"train.epochs {epochs}; raise train.epochs to train further",
        )
    missing = sorted(set(state_keys) - set(checkpoint))
    if missing:
        raise InputError(
            path, f"cannot resume: the checkpoint has no {', '.join(missing)} state ({hint})"
        )
