"""What the node runs on a complete series: a processor.

A processor is any callable ``(series_folder, output_folder) -> list of DICOM files``: it
reads the received instances of one series from ``series_folder``, writes its results
(derived series, DICOM-SEG, ...) under ``output_folder`` and returns the files to send to
the destination. It raises to fail the job (the message is recorded and logged).

A processor that also takes a keyword argument ``reception`` gets the
:class:`~ctpipe.pacs.reception.Reception` of the series: whether it is incomplete or revises
results sent earlier. Whatever the processor does with it, the node marks the
SeriesDescription of every DICOM result it sends (:func:`~ctpipe.pacs.reception.mark_results`).

* :class:`WorkflowProcessor` (a serve config's ``workflow: PATH``) runs a ctpipe workflow
  with :func:`ctpipe.workflow.run_study` and returns its DICOM outputs; the reception goes
  into the run record (``run.json``, key ``reception``) and its warnings head the report.
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
import inspect
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ctpipe.errors import CTPipeError, InputError
from ctpipe.pacs.reception import Reception

__all__ = [
    "ProcessingError",
    "Processor",
    "WorkflowProcessor",
    "load_processor",
    "takes_reception",
]


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

    def __call__(
        self, series_folder: Path, output_folder: Path, *, reception: Reception | None = None
    ) -> list[Path]:
        """Run the workflow on one series; return its DICOM outputs.

        Args:
            series_folder: The received instances.
            output_folder: The study folder the workflow writes.
            reception: How the node received the series; recorded in ``run.json``
                (``reception``, and ``warnings`` when incomplete or revised).

        Raises:
            ProcessingError: When the workflow run failed (with the runner's reason).
        """
        from ctpipe.workflow import run_study
        from ctpipe.workflow.runner import FINISHED

        notes: dict[str, Any] = {}
        if reception is not None:
            notes = {"reception": reception.to_record(), "warnings": reception.warnings()}
        result = run_study(self.workflow, series_folder, output_folder, notes=notes)
        if result.status not in FINISHED:  # a study the guard skipped sends nothing
            raise ProcessingError(series_folder, f"workflow {self.path} failed: {result.error}")
        return [Path(p) for p in result.dicom_outputs]


def takes_reception(processor: Any) -> bool:
    """Whether a processor accepts the keyword argument ``reception``.

    Example:
        >>> def marked(series, output, *, reception=None):
        ...     return []
        >>> takes_reception(lambda series, output: []), takes_reception(marked)
        (False, True)
    """
    try:
        parameters = inspect.signature(processor).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return "reception" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


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
