"""Learning-rate schedules, stepped once per training iteration.

Each schedule is a factor of the optimizer's base learning rate as a function of the
iteration, wrapped in a ``torch.optim.lr_scheduler.LambdaLR``. The factor is a plain
function of the configuration, so a checkpoint stores only the scheduler's iteration count
and a resumed run with more epochs stretches the schedule to the new length instead of
repeating it.

Example:
    >>> from ctpipe.training.config import ScheduleConfig
    >>> factor = lr_factor(ScheduleConfig("cosine", min_lr=1e-5), base_lr=1e-4, total=100)
    >>> [round(factor(i) * 1e-4, 7) for i in (0, 50, 100, 200)]
    [0.0001, 5.5e-05, 1e-05, 1e-05]
    >>> step = lr_factor(ScheduleConfig("step", step_size=10, gamma=0.5), base_lr=1.0, total=100)
    >>> [step(i) for i in (0, 9, 10, 25)]
    [1.0, 1.0, 0.5, 0.25]
    >>> wsd = lr_factor(ScheduleConfig("stable_decay", min_lr=0.0, decay_fraction=0.5),
    ...                 base_lr=1.0, total=100)
    >>> [round(wsd(i), 3) for i in (0, 50, 75, 100)]
    [1.0, 1.0, 0.5, 0.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from ctpipe.training.config import ScheduleConfig

__all__ = ["build_scheduler", "lr_factor"]


def lr_factor(schedule: ScheduleConfig, *, base_lr: float, total: int) -> Callable[[int], float]:
    """Return ``iteration -> learning-rate factor`` for a schedule.

    Args:
        schedule: The schedule settings.
        base_lr: The optimizer's learning rate (the factor is relative to it).
        total: Iterations of the whole run (the length of ``cosine``).

    Returns:
        The factor; ``constant`` gives 1, ``cosine`` falls from 1 to ``min_lr / base_lr``
        over ``total`` iterations and stays there, ``step`` multiplies by ``gamma`` every
        ``step_size`` iterations, ``stable_decay`` gives 1 until the last
        ``decay_fraction`` of ``total``, then falls as ``cosine`` does.

    Raises:
        ValueError: If ``base_lr`` is not positive or ``total`` is below 1.
    """
    if not base_lr > 0:
        raise ValueError(f"base_lr must be > 0, got {base_lr}")
    if total < 1:
        raise ValueError(f"total must be >= 1 iteration, got {total}")
    if schedule.name == "cosine":
        floor = schedule.min_lr / base_lr

        def cosine(iteration: int) -> float:
            progress = min(iteration, total) / total
            return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

        return cosine
    if schedule.name == "stable_decay":
        floor = schedule.min_lr / base_lr
        decay_start = total * (1.0 - schedule.decay_fraction)
        decay_length = total - decay_start

        def stable_decay(iteration: int) -> float:
            progress = min(max(iteration - decay_start, 0.0) / decay_length, 1.0)
            return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

        return stable_decay
    if schedule.name == "step":
        step_size, gamma = schedule.step_size, schedule.gamma

        def step(iteration: int) -> float:
            return gamma ** (iteration // step_size)

        return step

    def constant(iteration: int) -> float:
        return 1.0

    return constant


def build_scheduler(
    optimizer: torch.optim.Optimizer, schedule: ScheduleConfig, total: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` applying :func:`lr_factor` to every parameter group of ``optimizer``.

    Example:
        >>> import torch
        >>> from ctpipe.training.config import ScheduleConfig
        >>> opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1e-4)
        >>> sched = build_scheduler(opt, ScheduleConfig("step", step_size=1, gamma=0.5), 10)
        >>> opt.step(); sched.step(); opt.param_groups[0]["lr"]
        5e-05
    """
    import torch

    base_lr = optimizer.param_groups[0]["lr"]
    factor = lr_factor(schedule, base_lr=base_lr, total=total)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
