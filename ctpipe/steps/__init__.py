"""The steps a workflow runs on a study: one file per step role, found through a registry.

Every step is a :class:`~ctpipe.steps.base.Step`: a frozen dataclass of its settings with
``load(weights)`` and ``run(study, model) -> record``. :data:`STEPS` maps each step's name
to its class, in the order workflow files list their sections; the workflow
(:mod:`ctpipe.workflow`) parses, loads and runs steps only through it.

* :mod:`ctpipe.steps.guard`: :class:`GuardStep` (is the input like the training data?).
* :mod:`ctpipe.steps.denoise`: :class:`DenoiseStep` (RED-CNN, slice by slice).
* :mod:`ctpipe.steps.segment`: :class:`SegmentStep` (sliding-window segmenter).
* :mod:`ctpipe.steps.anomaly`: :class:`AnomalyStep` (VAE reconstruction error).
* :mod:`ctpipe.steps.inpaint`: :class:`InpaintStep` (DCGAN latent search).

A new step is a file here holding its class and one :func:`register_step` line (below,
for steps that ship with ctpipe).

Example:
    >>> list(STEPS)
    ['guard', 'denoise', 'segment', 'anomaly', 'inpaint']
    >>> get_step("segmnet")
    Traceback (most recent call last):
    ...
    KeyError: "no step 'segmnet'; the steps are guard, denoise, segment, anomaly, inpaint; \
did you mean 'segment'?"
"""

from __future__ import annotations

from ctpipe.schema import did_you_mean
from ctpipe.steps.anomaly import AnomalyStep
from ctpipe.steps.base import LoadedModel, Step, StudyState
from ctpipe.steps.denoise import DenoiseStep
from ctpipe.steps.guard import GuardStep
from ctpipe.steps.inpaint import InpaintStep
from ctpipe.steps.segment import SegmentStep

__all__ = [
    "STEPS",
    "AnomalyStep",
    "DenoiseStep",
    "GuardStep",
    "InpaintStep",
    "LoadedModel",
    "SegmentStep",
    "Step",
    "StudyState",
    "get_step",
    "register_step",
    "unregister_step",
]

#: Step name -> step class, in the order of a workflow file's sections.
STEPS: dict[str, type[Step]] = {}


def register_step(cls: type[Step]) -> type[Step]:
    """Add a step class to :data:`STEPS` under its ``name`` (usable as a decorator).

    Raises:
        ValueError: Another class is registered under that name.
    """
    name = cls.name
    if STEPS.get(name, cls) is not cls:
        raise ValueError(f"step {name!r} is already registered as {STEPS[name].__qualname__}")
    STEPS[name] = cls
    return cls


def unregister_step(name: str) -> None:
    """Remove a step from :data:`STEPS` (a step a test or a plugin added)."""
    STEPS.pop(name, None)


def get_step(name: str) -> type[Step]:
    """The step class registered as ``name``.

    Raises:
        KeyError: No such step (the message lists the steps and the closest name).
    """
    if name not in STEPS:
        names = list(STEPS)
        raise KeyError(
            f"no step {name!r}; the steps are {', '.join(names)}{did_you_mean(name, names)}"
        )
    return STEPS[name]


for _step in (GuardStep, DenoiseStep, SegmentStep, AnomalyStep, InpaintStep):
    register_step(_step)
