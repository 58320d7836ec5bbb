"""The training history: losses and metrics, written as a JSON log and a loss-curve PNG.

:class:`TrainingHistory` is an ignite handler. Attached to a trainer it records the loss and
learning rate of every iteration; attached to the evaluator (:meth:`~TrainingHistory.
attach_evaluator`) it picks up the validation metrics. At the end of every epoch it writes
``training_log.json`` and ``loss_curve.png`` to its folder, each atomically (temporary file,
then rename), so a reader never sees half a file. Its :meth:`~TrainingHistory.state_dict` is
stored in checkpoints, so a resumed run continues the same log and curve.

The recorded loss is that of the process that records it (rank 0 under ``torchrun``): each
process sees its own share of the batch.

Example:
    >>> import tempfile
    >>> history = TrainingHistory(tempfile.mkdtemp())
    >>> for it in (1, 2, 3, 4):
    ...     history.record_iteration(it, epoch=(it + 1) // 2, loss=1.0 / it, lr=1e-4)
    >>> history.record_epoch(2, seconds=1.0, validation={"psnr": 30.0, "ssim": 0.8})
    >>> history.write().name, round(history.epochs[-1]["loss"], 4)  # mean of 1/3 and 1/4
    ('training_log.json', 0.2917)
    >>> history.curve_path.exists()
    True
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctpipe.io.atomic import atomic_path

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = ["CURVE_NAME", "LOG_NAME", "TrainingHistory"]

#: File name of the JSON log in the output folder.
LOG_NAME = "training_log.json"
#: File name of the loss-curve PNG in the output folder.
CURVE_NAME = "loss_curve.png"
LOG_FORMAT = "ctpipe.training_log"
LOG_VERSION = 1


class TrainingHistory:
    """Loss per iteration and metrics per epoch, written as JSON and PNG after each epoch.

    Args:
        output_dir: Folder of the log and the curve; ``None`` records without writing
            (processes other than rank 0).
        meta: Facts about the run stored at the top of the log (model, data, devices).
        extra: Names of more per-iteration values to record from the trainer's output
            dict besides the loss (e.g. a VAE's ``kl``); each epoch entry gets their mean.
        curve_metrics: The two validation metrics drawn in the curve's second panel (left
            and right axis), each as ``(key, axis label)``.
        key_metric: The validation metric whose highest value is the log's ``best`` epoch.

    Example:
        >>> history = TrainingHistory(None)
        >>> history.record_iteration(1, epoch=1, loss=0.5, lr=1e-4)
        >>> history.state_dict()["iterations"]["loss"]
        [0.5]
    """

    def __init__(
        self,
        output_dir: str | PathLike[str] | None,
        *,
        meta: Mapping[str, Any] | None = None,
        extra: tuple[str, ...] = (),
        curve_metrics: tuple[tuple[str, str], ...] = (("psnr", "PSNR (dB)"), ("ssim", "SSIM")),
        key_metric: str = "psnr",
    ) -> None:
        self.output_dir = None if output_dir is None else Path(output_dir)
        self.key_metric = key_metric
        self.curve_metrics = tuple(curve_metrics)
        self.meta = dict(meta or {})
        self.extra = tuple(extra)
        self.iterations: dict[str, list[Any]] = {"iteration": [], "epoch": [], "loss": [], "lr": []}
        self.iterations.update({key: [] for key in self.extra})
        self.epochs: list[dict[str, Any]] = []
        self._validation: dict[str, float] | None = None
        self._epoch_start = time.perf_counter()

    @property
    def log_path(self) -> Path:
        """The JSON log (``<output_dir>/training_log.json``)."""
        return self._folder() / LOG_NAME

    @property
    def curve_path(self) -> Path:
        """The loss curve (``<output_dir>/loss_curve.png``)."""
        return self._folder() / CURVE_NAME

    def _folder(self) -> Path:
        if self.output_dir is None:
            raise ValueError("this TrainingHistory has no output_dir, so it writes no files")
        return self.output_dir

    # --- recording ----------------------------------------------------------------------

    def record_iteration(
        self, iteration: int, *, epoch: int, loss: float, lr: float, **values: float
    ) -> None:
        """Record one iteration's loss, learning rate and ``extra`` values."""
        for key, value in (("iteration", iteration), ("epoch", epoch), ("loss", loss), ("lr", lr)):
            self.iterations[key].append(value)
        for key in self.extra:
            self.iterations[key].append(values.get(key, math.nan))

    def record_validation(self, metrics: Mapping[str, Any]) -> None:
        """Keep validation metrics for the summary of the current epoch."""
        self._validation = {k: float(v) for k, v in metrics.items() if _is_number(v)}

    def record_epoch(
        self,
        epoch: int,
        *,
        seconds: float,
        validation: Mapping[str, float] | None = None,
    ) -> None:
        """Summarise an epoch: mean loss, last learning rate, time and validation metrics."""
        if validation is not None:
            self.record_validation(validation)
        losses = [
            loss
            for loss, e in zip(self.iterations["loss"], self.iterations["epoch"], strict=True)
            if e == epoch
        ]
        entry: dict[str, Any] = {
            "epoch": epoch,
            "iteration": self.iterations["iteration"][-1] if self.iterations["iteration"] else 0,
            "loss": sum(losses) / len(losses) if losses else math.nan,
            "lr": self.iterations["lr"][-1] if self.iterations["lr"] else math.nan,
            "seconds": round(seconds, 3),
        }
        for key in self.extra:
            kept = [
                v
                for v, e in zip(self.iterations[key], self.iterations["epoch"], strict=True)
                if e == epoch
            ]
            entry[key] = sum(kept) / len(kept) if kept else math.nan
        if self._validation is not None:
            entry["validation"] = self._validation
            self._validation = None
        self.epochs.append(entry)

    def best(self, metric: str | None = None) -> dict[str, Any] | None:
        """The epoch entry with the highest validation ``metric`` (default: the key metric).

        Example:
            >>> h = TrainingHistory(None)
            >>> h.record_epoch(1, seconds=1, validation={"psnr": 30.0})
            >>> h.record_epoch(2, seconds=1, validation={"psnr": 29.0})
            >>> h.best()["epoch"]
            1
        """
        metric = metric or self.key_metric
        scored = [e for e in self.epochs if metric in e.get("validation", {})]
        return max(scored, key=lambda e: e["validation"][metric]) if scored else None

    # --- ignite -------------------------------------------------------------------------

    def attach(self, engine: Engine) -> None:
        """Record every iteration of a MONAI trainer and write the files after each epoch.

        The trainer's output must hold the loss under ``"loss"`` (``decollate=False``).
        Attach after the ``ValidationHandler`` so that an epoch's metrics are known when it
        is summarised.
        """
        from ignite.engine import Events

        engine.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._iteration_completed)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)

    def attach_evaluator(self, evaluator: Engine) -> None:
        """Pick up the evaluator's metrics each time it completes a validation run."""
        from ignite.engine import Events

        evaluator.add_event_handler(
            Events.EPOCH_COMPLETED, lambda e: self.record_validation(e.state.metrics)
        )

    def _epoch_started(self, engine: Engine) -> None:
        self._epoch_start = time.perf_counter()

    def _iteration_completed(self, engine: Engine) -> None:
        output = engine.state.output
        loss = output["loss"]  # type: ignore[index]
        self.record_iteration(
            engine.state.iteration,
            epoch=engine.state.epoch,
            loss=float(loss.item() if hasattr(loss, "item") else loss),
            lr=float(engine.optimizer.param_groups[0]["lr"]),  # type: ignore[attr-defined]
            **{k: float(output[k]) for k in self.extra if k in output},  # type: ignore[index,operator]
        )

    def _epoch_completed(self, engine: Engine) -> None:
        self.record_epoch(engine.state.epoch, seconds=time.perf_counter() - self._epoch_start)
        if self.output_dir is not None:
            self.write()

    # --- checkpoints --------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The recorded history, for checkpoints (plain lists and dicts)."""
        return {
            "iterations": {k: list(v) for k, v in self.iterations.items()},
            "epochs": [dict(e) for e in self.epochs],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a checkpoint's history."""
        self.iterations = {k: list(state["iterations"][k]) for k in self.iterations}
        self.epochs = [dict(e) for e in state["epochs"]]

    # --- files --------------------------------------------------------------------------

    def write(self) -> Path:
        """Write the JSON log and the loss curve atomically; return the log's path."""
        document = {
            "format": LOG_FORMAT,
            "version": LOG_VERSION,
            "meta": self.meta,
            "best": self.best(),
            "epochs": self.epochs,
            "iterations": self.iterations,
        }
        with atomic_path(self.log_path) as tmp:
            tmp.write_text(json.dumps(_finite(document), indent=1) + "\n", encoding="utf-8")
        self.write_curve()
        return self.log_path

    def write_curve(self) -> Path:
        """Draw the loss per iteration, its epoch means and the validation PSNR/SSIM."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        validated = [e for e in self.epochs if "validation" in e]
        figure = Figure(figsize=(11 if validated else 6, 4), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots(1, 2 if validated else 1, squeeze=False)[0]
        ax = axes[0]
        its, losses = self.iterations["iteration"], self.iterations["loss"]
        ax.plot(its, losses, lw=0.6, alpha=0.5, color="tab:blue", label="iteration")
        ax.plot(
            [e["iteration"] for e in self.epochs],
            [e["loss"] for e in self.epochs],
            "o-",
            ms=3,
            color="tab:red",
            label="epoch mean",
        )
        if losses and min(losses) > 0:
            ax.set_yscale("log")
        ax.set(xlabel="iteration", ylabel="training loss", title="Training loss")
        ax.grid(alpha=0.3)
        ax.legend()
        if validated:
            _plot_validation(
                axes[1], validated, self.meta.get("input_validation"), self.curve_metrics
            )
        with atomic_path(self.curve_path) as tmp:
            figure.savefig(tmp, dpi=100)
        return self.curve_path


def _plot_validation(
    ax: Any,
    validated: list[dict[str, Any]],
    baseline: Mapping[str, float] | None,
    metrics: tuple[tuple[str, str], ...] = (("psnr", "PSNR (dB)"), ("ssim", "SSIM")),
) -> None:
    """Two validation metrics per validated epoch: PSNR (left axis) and SSIM (right) by default.

    ``baseline`` (the low-dose input's own metrics, from ``meta["input_validation"]``) is
    drawn as horizontal lines: the level a model has to beat.
    """
    baseline = baseline or {}
    x = [e["iteration"] for e in validated]
    ax.set(xlabel="iteration", title="Validation (whole slices)")
    ax.grid(alpha=0.3)
    styles = ((ax, "o-", "tab:green"), (ax.twinx(), "s--", "tab:purple"))
    for (key, label), (axis, style, colour) in zip(metrics[:2], styles, strict=False):
        if any(key in e["validation"] for e in validated):
            values = [e["validation"].get(key, math.nan) for e in validated]
            axis.plot(x, values, style, ms=3, color=colour, label=f"model {key}")
            axis.set_ylabel(label, color=colour)
            if key in baseline:
                axis.axhline(
                    baseline[key], ls=":", lw=1, color=colour, label=f"low-dose input {key}"
                )
                axis.legend(loc="lower right" if axis is ax else "center right")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite(value: Any) -> Any:
    """Replace NaN and infinities by ``None`` so that the log is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
