"""Pieces every ctpipe training engine shares (denoiser, segmenter, VAE, GAN).

* :func:`seed_everything`: Python, NumPy and torch seeds in one call.
* :func:`check_finite_loss`: an ``ITERATION_COMPLETED`` handler that stops training with
  a clear message when the loss becomes NaN or infinite.
* :func:`attach_stats`: MONAI's ``StatsHandler`` writing to the ``ctpipe.train.stats``
  logger (so lines go where the application sends ``ctpipe`` logs).
* :func:`time_engine`: add an engine's run times to a dict (validation time, to report
  training seconds per iteration without it).
* :func:`every`: an iteration filter for ``StatsHandler``.

Example:
    >>> import torch
    >>> seed_everything(3)
    >>> a = torch.rand(1).item()
    >>> seed_everything(3)
    >>> a == torch.rand(1).item()
    True
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "STATS_LOGGER",
    "attach_stats",
    "check_finite_loss",
    "every",
    "seed_everything",
    "time_engine",
]

#: Logger of MONAI's StatsHandler lines (loss per iteration, metrics per epoch).
STATS_LOGGER = "ctpipe.train.stats"


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def check_finite_loss(engine: Any, key: str = "loss") -> None:
    """Raise ``FloatingPointError`` when ``engine.state.output[key]`` is not finite.

    Attach with ``engine.add_event_handler(Events.ITERATION_COMPLETED, check_finite_loss)``.

    Example:
        >>> import torch
        >>> from types import SimpleNamespace
        >>> engine = SimpleNamespace(state=SimpleNamespace(
        ...     output={"loss": torch.tensor(float("nan"))}, iteration=7))
        >>> check_finite_loss(engine)
        Traceback (most recent call last):
        ...
        FloatingPointError: training loss is nan at iteration 7; lower optimizer.lr, or \
turn train.amp off; the last good checkpoint is kept
    """
    output = engine.state.output
    value = output[key] if isinstance(output, dict) else output
    loss = float(value.item() if hasattr(value, "item") else value)
    if not math.isfinite(loss):
        raise FloatingPointError(
            f"training {key} is {loss} at iteration {engine.state.iteration}; lower "
            "optimizer.lr, or turn train.amp off; the last good checkpoint is kept"
        )


def time_engine(engine: Any, timing: dict[str, float], key: str = "validation") -> None:
    """Add the engine's run times (STARTED to COMPLETED) to ``timing[key]``."""
    from ignite.engine import Events

    started: dict[str, float] = {}
    engine.add_event_handler(Events.STARTED, lambda _: started.update(t=time.perf_counter()))
    engine.add_event_handler(
        Events.COMPLETED,
        lambda _: timing.update({key: timing.get(key, 0.0) + time.perf_counter() - started["t"]}),
    )


def attach_stats(
    engine: Any,
    *,
    iteration_log: Any,
    output_transform: Callable[[Any], Any] | None = None,
    tag_name: str = "loss",
) -> None:
    """Attach MONAI's StatsHandler, writing to the ``ctpipe.train.stats`` logger.

    MONAI's ``get_logger`` makes a named logger stop propagating, sets it to INFO and
    gives it its own stdout handler. The logger is created first (so MONAI adds no
    handler) and, once the handler is attached, given back to the ``ctpipe`` hierarchy:
    its lines go wherever the application sends ``ctpipe`` logs (``ctpipe train`` sends
    them to stderr), and nowhere when logging is not configured.

    Args:
        engine: The ignite/MONAI engine.
        iteration_log: ``False``, ``True`` or a filter such as :func:`every`.
        output_transform: Maps the engine output to the logged value; ``None`` logs
            nothing per iteration (evaluators log their metrics per epoch).
        tag_name: Name of the logged value.
    """
    from monai.handlers import StatsHandler

    logging.getLogger(STATS_LOGGER)
    handler = StatsHandler(
        iteration_log=iteration_log,
        epoch_log=True,
        name=STATS_LOGGER,
        tag_name=tag_name,
        output_transform=output_transform or (lambda _: None),
    )
    handler.attach(engine)
    handler.logger.propagate = True
    handler.logger.setLevel(logging.NOTSET)


def every(interval: int) -> Any:
    """An iteration filter true every ``interval`` iterations (``False`` for 0).

    Example:
        >>> f = every(10)
        >>> f(None, 20), f(None, 21), every(0)
        (True, False, False)
    """
    if interval <= 0:
        return False
    return lambda engine, iteration: iteration % interval == 0
