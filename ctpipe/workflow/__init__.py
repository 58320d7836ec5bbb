"""Workflows: load -> denoise -> segment -> export, for one study or a folder of them.

* :mod:`ctpipe.workflow.config`: the typed workflow file (:func:`load_workflow`).
* :mod:`ctpipe.workflow.steps`: the steps and the models they use.
* :mod:`ctpipe.workflow.outputs`: what a study folder holds.
* :mod:`ctpipe.workflow.runner`: :func:`run_study`, one study, all or nothing.
* :mod:`ctpipe.workflow.batch`: :func:`run_batch`, every series under a folder tree,
  resumable, one failure never stops the rest.
* :mod:`ctpipe.workflow.shipped`: the workflow files shipped with ctpipe, by name.

Names are imported lazily, so ``import ctpipe.workflow.shipped`` (the CLI) loads nothing
heavy.

Example:
    >>> from ctpipe.workflow import load_workflow, run_study
    >>> wf = load_workflow("workflows/denoise_segment.yaml")  # doctest: +SKIP
    >>> run_study(wf, "/data/CT/series1", "out/series1").status  # doctest: +SKIP
    'done'
"""

from __future__ import annotations

from ctpipe.lazy import lazy_exports

_EXPORTS = {
    "ctpipe.workflow.batch": ("BatchResult", "run_batch"),
    "ctpipe.workflow.config": ("Workflow", "WorkflowError", "load_workflow"),
    "ctpipe.workflow.runner": ("StudyResult", "run_study"),
}

__all__ = sorted(name for names in _EXPORTS.values() for name in names)

__getattr__ = lazy_exports(__name__, _EXPORTS)
