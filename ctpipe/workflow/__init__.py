"""Workflows: load -> denoise -> segment -> export, for one study or a folder of them.

* :mod:`ctpipe.workflow.config`: the typed workflow file (:func:`load_workflow`).
* :mod:`ctpipe.workflow.steps`: the steps and the models they use.
* :mod:`ctpipe.workflow.outputs`: what a study folder holds.
* :mod:`ctpipe.workflow.runner`: :func:`run_study`, one study, all or nothing.
* :mod:`ctpipe.workflow.batch`: :func:`run_batch`, every series under a folder tree,
  resumable, one failure never stops the rest.

Example:
    >>> from ctpipe.workflow import load_workflow, run_study
    >>> wf = load_workflow("workflows/denoise_segment.yaml")  # doctest: +SKIP
    >>> run_study(wf, "/data/CT/series1", "out/series1").status  # doctest: +SKIP
    'done'
"""

from ctpipe.workflow.batch import BatchResult, run_batch
from ctpipe.workflow.config import Workflow, WorkflowError, load_workflow
from ctpipe.workflow.runner import StudyResult, run_study

__all__ = [
    "BatchResult",
    "StudyResult",
    "Workflow",
    "WorkflowError",
    "load_workflow",
    "run_batch",
    "run_study",
]
