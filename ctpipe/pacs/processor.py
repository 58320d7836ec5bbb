"""What the node runs on a complete series: a processor.

A processor is any callable ``(series_folder, output_folder) -> list of DICOM files``: it
reads the received instances of one series from ``series_folder``, writes its results
(derived series, DICOM-SEG, ...) under ``output_folder`` and returns the files to send to
the destination. It raises to fail the job (the message is recorded and logged).

* :class:`WorkflowProcessor` (a serve config's ``workflow: PATH``) runs a ctpipe workflow
  with :func:`ctpipe.workflow.run_study` and returns its DICOM outputs.
* :func:`load_processor` (a serve config's ``processor: module:callable``) imports any
  other callable, e.g. a research group's own analysis.

Example:
    >>> from pathlib import Path
    >>> def copy_nothing(series: Path, output: Path) -> list[Path]:
    ...     return []
    >>> isinstance(copy_nothing, Processor)
    True
    >>> load_processor("os.path:join").__name__
    'join'
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Protocol, runtime_checkable

from ctpipe.errors import CTPipeError, InputError

__all__ = ["ProcessingError", "Processor", "WorkflowProcessor", "load_processor"]


class ProcessingError(InputError):
    """A processor could not produce results for a series (names the series folder)."""


@runtime_checkable
class Processor(Protocol):
    """The job a node runs on a complete series."""

    def __call__(self, series_folder: Path, output_folder: Path) -> Sequence[Path]:
        """Process the series in ``series_folder``; return the DICOM files to send."""
        ...  # pragma: no cover


class WorkflowProcessor:
    """Run a workflow file on each series (:func:`ctpipe.workflow.run_study`).

    The workflow is loaded and checked once, when the processor is built, so a bad file
    stops ``ctpipe serve`` before it accepts any data.

    Args:
        workflow_path: The workflow YAML file.

    Raises:
        InputError: When the workflow file is bad (raised by ``load_workflow``).
        CTPipeError: When the workflow runner is not installed.

    Example:
        >>> processor = WorkflowProcessor("workflows/denoise_segment.yaml")  # doctest: +SKIP
        >>> processor(Path("jobs/1/input"), Path("jobs/1/output"))  # doctest: +SKIP
        [PosixPath('jobs/1/output/...')]
    """

    def __init__(self, workflow_path: str | PathLike[str]) -> None:
        try:
            from ctpipe.workflow import load_workflow
        except ImportError as err:  # pragma: no cover - the runner ships with ctpipe
            raise CTPipeError(f"the workflow runner (ctpipe.workflow) is missing: {err}") from err
        self.path = Path(workflow_path)
        self.workflow = load_workflow(self.path)

    def __call__(self, series_folder: Path, output_folder: Path) -> list[Path]:
        """Run the workflow on one series; return its DICOM outputs.

        Raises:
            ProcessingError: When the workflow run failed (with the runner's reason).
        """
        from ctpipe.workflow import run_study

        result = run_study(self.workflow, series_folder, output_folder)
        if result.status != "done":
            raise ProcessingError(series_folder, f"workflow {self.path} failed: {result.error}")
        return [Path(p) for p in result.dicom_outputs]


def load_processor(spec: str, *, source: str | PathLike[str] = "<config>") -> Processor:
    """Import a processor named ``package.module:callable``.

    Args:
        spec: The module path and the callable's name, separated by a colon.
        source: The configuration file naming it, for the error message.

    Returns:
        The callable.

    Raises:
        InputError: When the module cannot be imported or has no such callable.

    Example:
        >>> load_processor("ctpipe.nowhere:run", source="node.yaml")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ctpipe.errors.InputError: node.yaml: processor 'ctpipe.nowhere:run': cannot import ...
    """
    module_name, _, name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise InputError(
            source, f"processor {spec!r}: cannot import {module_name}: {err}"
        ) from None
    processor = getattr(module, name, None)
    if not callable(processor):
        raise InputError(source, f"processor {spec!r}: {module_name} has no callable {name!r}")
    return processor
