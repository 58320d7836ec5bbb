"""The history of adversarial training: both losses and the discriminator's verdicts.

:class:`GanHistory` is the shared :class:`~ctpipe.training.history.TrainingHistory` for
MONAI's ``GanTrainer``: ``"loss"`` holds the generator loss of each iteration (so epoch
means, the JSON log and resume work as for every trainer), and it adds the
discriminator's loss (summed over its ``k`` steps, as ``GanTrainer`` reports it),
``d_real`` (mean ``D(x)`` on the real batch) and ``d_fake`` (mean ``D(G(z))`` on the
fakes), taken from the discriminator loss object after its last step. The curve shows
the two losses and the two probabilities; at the equilibrium of the minimax game both
probabilities approach 1/2.

Example:
    >>> import tempfile
    >>> history = GanHistory(tempfile.mkdtemp())
    >>> history.record_gan_iteration(1, epoch=1, g_loss=0.7, d_loss=1.4, lr=2e-4,
    ...                              d_real=0.6, d_fake=0.4)
    >>> history.record_epoch(1, seconds=1.0)
    >>> history.epochs[-1]["d_loss"], history.write().name
    (1.4, 'training_log.json')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from os import PathLike
from typing import TYPE_CHECKING, Any

from ctpipe.io.atomic import atomic_path
from ctpipe.training.history import TrainingHistory

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = ["GanHistory"]

_EXTRA = ("d_loss", "d_real", "d_fake")


class GanHistory(TrainingHistory):
    """Generator and discriminator losses per iteration, epoch means, JSON log and curve.

    Args:
        output_dir: Folder of the log and the curve; ``None`` records without writing.
        meta: Facts about the run stored at the top of the log.
        verdicts: Returns ``{"d_real": ..., "d_fake": ...}`` of the latest discriminator
            step (the discriminator loss object's ``last``); ``None`` records NaN.
    """

    def __init__(
        self,
        output_dir: str | PathLike[str] | None,
        *,
        meta: Mapping[str, Any] | None = None,
        verdicts: Callable[[], Mapping[str, float]] | None = None,
    ) -> None:
        super().__init__(output_dir, meta=meta)
        self.iterations.update({key: [] for key in _EXTRA})
        self.verdicts = verdicts

    def record_gan_iteration(
        self,
        iteration: int,
        *,
        epoch: int,
        g_loss: float,
        d_loss: float,
        lr: float,
        d_real: float = math.nan,
        d_fake: float = math.nan,
    ) -> None:
        """Record one iteration: both losses, the generator's lr and the verdicts."""
        self.record_iteration(iteration, epoch=epoch, loss=g_loss, lr=lr)
        for key, value in (("d_loss", d_loss), ("d_real", d_real), ("d_fake", d_fake)):
            self.iterations[key].append(float(value))

    def record_epoch(
        self, epoch: int, *, seconds: float, validation: Mapping[str, float] | None = None
    ) -> None:
        """Summarise an epoch; adds the means of the discriminator's values."""
        super().record_epoch(epoch, seconds=seconds, validation=validation)
        in_epoch = [e == epoch for e in self.iterations["epoch"]]
        for key in _EXTRA:
            values = [v for v, keep in zip(self.iterations[key], in_epoch, strict=True) if keep]
            self.epochs[-1][key] = sum(values) / len(values) if values else math.nan

    def _iteration_completed(self, engine: Engine) -> None:
        output = engine.state.output
        verdicts = dict(self.verdicts()) if self.verdicts is not None else {}
        self.record_gan_iteration(
            engine.state.iteration,
            epoch=engine.state.epoch,
            g_loss=float(output["g_loss"]),  # type: ignore[index]
            d_loss=float(output["d_loss"]),  # type: ignore[index]
            lr=float(engine.g_optimizer.param_groups[0]["lr"]),  # type: ignore[attr-defined]
            d_real=verdicts.get("d_real", math.nan),
            d_fake=verdicts.get("d_fake", math.nan),
        )

    def _plot(self, axes: Any, *series: tuple[str, str, str]) -> None:
        """Draw each ``(key, colour, label)`` per iteration, faint, and as epoch means."""
        its = self.iterations["iteration"]
        ends = [e["iteration"] for e in self.epochs]
        for key, colour, label in series:
            axes.plot(its, self.iterations[key], lw=0.5, alpha=0.4, color=colour)
            axes.plot(
                ends, [e.get(key) for e in self.epochs], "o-", ms=3, color=colour, label=label
            )

    def write_curve(self):
        """Draw both losses per iteration (with epoch means) and ``D(x)``, ``D(G(z))``."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(11, 4), layout="constrained")
        FigureCanvasAgg(figure)
        losses, verdicts = figure.subplots(1, 2)
        self._plot(
            losses, ("loss", "tab:blue", "generator"), ("d_loss", "tab:red", "discriminator")
        )
        losses.set(xlabel="iteration", ylabel="loss", title="Adversarial losses")
        losses.grid(alpha=0.3)
        losses.legend()
        self._plot(verdicts, ("d_real", "tab:green", "D(x)"), ("d_fake", "tab:purple", "D(G(z))"))
        verdicts.axhline(0.5, ls=":", lw=1, color="grey")
        verdicts.set(xlabel="iteration", ylabel="probability", ylim=(0, 1), title="Discriminator")
        verdicts.grid(alpha=0.3)
        verdicts.legend()
        with atomic_path(self.curve_path) as tmp:
            figure.savefig(tmp, dpi=100)
        return self.curve_path
