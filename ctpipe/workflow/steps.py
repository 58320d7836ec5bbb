"""The models a workflow's steps use (loaded once per batch), and running one step.

The steps themselves are in :mod:`ctpipe.steps` (one file per step, found through
:data:`ctpipe.steps.STEPS`); each takes the :class:`~ctpipe.steps.base.StudyState` (the
input volume, the current image, the labels) and its model, and returns its record
(settings, timings, metrics).

:class:`Models` loads every model a workflow needs once, so a batch of many series does
not reload weights per series; each model's file and sha256 go into the run records.

Example:
    >>> import numpy as np, torch
    >>> from ctpipe.io.dicom_volume import CTVolume
    >>> from ctpipe.workflow.config import Workflow
    >>> volume = CTVolume(np.zeros((16, 16, 2), np.float32), np.eye(4))
    >>> state = StudyState(volume)
    >>> models = Models({"denoise": LoadedModel(torch.nn.Identity(), "identity", "0" * 64)})
    >>> record = run_step("denoise", state, Workflow(name="x", steps=("denoise",)), models)
    >>> record["model"]["name"], state.image.shape
    ('identity', (16, 16, 2))
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from os import PathLike
from typing import Any

from ctpipe.steps.base import LoadedModel, StudyState, file_sha256
from ctpipe.workflow.config import Workflow, weights_file

__all__ = ["LoadedModel", "Models", "StudyState", "file_sha256", "run_step"]


class Models:
    """The models of a workflow's steps, by step name.

    Example:
        >>> Models({})["segment"]
        Traceback (most recent call last):
        ...
        KeyError: 'no model loaded for step segment'
    """

    def __init__(self, models: Mapping[str, LoadedModel | None]) -> None:
        self._models = dict(models)

    def __getitem__(self, step: str) -> LoadedModel:
        if step not in self._models:
            raise KeyError(f"no model loaded for step {step}")
        return self._models[step]

    def get(self, step: str) -> LoadedModel | None:
        """The model of ``step``, or ``None`` when it has none."""
        return self._models.get(step)

    def describe(self) -> dict[str, dict[str, Any]]:
        """Each step's model name, file and sha256."""
        return {step: model.describe() for step, model in self._models.items() if model}

    @classmethod
    def load(cls, workflow: Workflow, *, source: str | PathLike[str] = "<workflow>") -> Models:
        """Load the model of every step of ``workflow`` (weights found as in the file)."""
        return cls(
            {
                step: workflow.step(step).load(weights_file(workflow, step, source=source))
                for step in workflow.steps
            }
        )


def run_step(step: str, state: StudyState, workflow: Workflow, models: Models) -> dict[str, Any]:
    """Run one step on ``state``; return its record (model, settings, seconds, metrics)."""
    start = time.perf_counter()
    record = workflow.step(step).run(state, models.get(step))
    record["seconds"] = round(time.perf_counter() - start, 3)
    return record
