"""Run a workflow on one study: read, run the steps, export, record; all or nothing.

:func:`run_study` reads the input (a DICOM folder or file, a scanned series, or a NIfTI
volume), runs the workflow's steps in order, writes the outputs and the HTML report into
a hidden staging folder beside the destination and, once everything is written, renames
it into place. A study folder therefore either holds a complete result with
``run.json`` saying ``"status": "done"``, or (after a failure) only ``run.json`` with
``"status": "failed"``, the error and its traceback; never half of a result.

The run record (``run.json``) holds the input (path, series identity, shape, spacing),
the workflow and its hash, each step's model (file, sha256), settings, timings and
metrics, the outputs, the library versions and the total time.

Example:
    >>> workflow = load_workflow("workflows/denoise_only.yaml")
    >>> result = run_study(workflow, "ct/", "out/s1")  # doctest: +SKIP
    >>> result.status, result.report  # doctest: +SKIP
    ('done', PosixPath('out/s1/report.html'))
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path
from typing import Any

from ctpipe.errors import CTPipeError
from ctpipe.io.atomic import atomic_path
from ctpipe.io.discovery import DicomSeries
from ctpipe.workflow.config import Workflow, load_workflow
from ctpipe.workflow.outputs import study_paths, write_outputs
from ctpipe.workflow.steps import Models, StudyState, run_step

__all__ = ["RECORD_NAME", "StudyResult", "StudyRun", "load_workflow", "read_record", "run_study"]

logger = logging.getLogger("ctpipe.workflow")

#: The run record of a study, in its folder.
RECORD_NAME = "run.json"

InputSource = str | PathLike[str] | DicomSeries


@dataclass(frozen=True)
class StudyResult:
    """What :func:`run_study` did.

    Args:
        name: The study's name (its folder's name).
        status: ``"done"`` or ``"failed"``.
        output_dir: The study folder.
        error: One line naming the problem when failed.
        seconds: Wall time.
        record: The run record (as written to ``run.json``).
    """

    name: str
    status: str
    output_dir: Path
    error: str | None = None
    seconds: float = 0.0
    record: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def report(self) -> Path | None:
        """The HTML report, when written."""
        path = study_paths(self.output_dir)["report"]
        return path if self.status == "done" and path.exists() else None

    @property
    def dicom_outputs(self) -> list[Path]:
        """DICOM files written (derived series, then the Segmentation), absolute paths."""
        outputs = self.record.get("outputs", {})
        files = list(outputs.get("dicom_series", []))
        if outputs.get("dicom_seg"):
            files.append(outputs["dicom_seg"])
        return [self.output_dir / f for f in files]


def run_study(
    workflow: Workflow,
    source: InputSource,
    output_dir: str | PathLike[str],
    *,
    models: Models | None = None,
    workflow_source: str | PathLike[str] = "<workflow>",
    notes: dict[str, Any] | None = None,
) -> StudyResult:
    """Run ``workflow`` on one study and write its folder atomically.

    Any error while reading or processing is caught and recorded: the study ends
    ``failed`` with the error in ``run.json`` and the previous contents of
    ``output_dir`` (if any) replaced by that record. ``KeyboardInterrupt`` is not
    caught: the staging folder stays behind, hidden, and is cleared by the next run.

    Args:
        workflow: The workflow (see :func:`~ctpipe.workflow.config.load_workflow`).
        source: DICOM folder or file, a :class:`~ctpipe.io.discovery.DicomSeries`, or
            a ``.nii``/``.nii.gz`` volume.
        output_dir: The study folder to create (replaced when it exists).
        models: Models already loaded (a batch loads them once); loaded here otherwise.
        workflow_source: The workflow file, for weights paths relative to it.
        notes: Entries added to the run record, e.g. how a DICOM node received the series
            (``reception``); a ``warnings`` list among them heads the report.

    Returns:
        The :class:`StudyResult`.
    """
    run = StudyRun.start(workflow, source, output_dir, workflow_source=workflow_source)
    run.record.update(notes or {})
    run.read()
    run.compute(models)
    return run.finish()


class StudyRun:
    """One study in three phases, so a batch can overlap them across studies.

    :meth:`read` loads the input, :meth:`compute` runs the steps, :meth:`finish` writes
    the outputs, the report and the record and publishes the folder. An error in any
    phase is recorded and the later phases skip their work, so :meth:`finish` always
    publishes a folder: the complete result or the failure record.

    Example:
        >>> run = StudyRun.start(workflow, "ct/", "out/s1")  # doctest: +SKIP
        >>> run.read(); run.compute(); result = run.finish()  # doctest: +SKIP
    """

    def __init__(
        self,
        workflow: Workflow,
        source: InputSource,
        output_dir: Path,
        workflow_source: str | PathLike[str],
    ) -> None:
        self.workflow = workflow
        self.source = source
        self.output_dir = output_dir
        self.workflow_source = workflow_source
        self.record = _record_start(workflow, source)
        self.state: StudyState | None = None
        self.staging: Path | None = None
        self.seconds = 0.0

    @classmethod
    def start(
        cls,
        workflow: Workflow,
        source: InputSource,
        output_dir: str | PathLike[str],
        *,
        workflow_source: str | PathLike[str] = "<workflow>",
    ) -> StudyRun:
        """A run of ``workflow`` on ``source`` into ``output_dir`` (nothing done yet)."""
        return cls(workflow, source, Path(output_dir), workflow_source)

    @property
    def failed(self) -> bool:
        """Whether a phase failed."""
        return self.record["status"] == "failed"

    def read(self) -> StudyRun:
        """Load the input volume."""
        with self._phase("read"):
            self.state = StudyState(_read(self.source, self.workflow))
            self.record["input"].update(_describe_volume(self.state))
        return self

    def compute(self, models: Models | None = None) -> StudyRun:
        """Run the steps (loading the models first when none are given)."""
        if self.failed:
            return self
        with self._phase("compute"):
            if models is None:
                models = Models.load(self.workflow, source=self.workflow_source)
            for step in self.workflow.steps:
                logger.info("%s: %s", self.output_dir.name, step)
                self.record["steps"][step] = run_step(step, self.state, self.workflow, models)
        return self

    def finish(self) -> StudyResult:
        """Write outputs, report and record; publish the folder; free the volumes."""
        self.staging = _staging(self.output_dir)
        if not self.failed:
            with self._phase("export"):
                self.record["outputs"] = write_outputs(
                    self.state, self.workflow, self.staging, self.record["steps"]
                )
                self.record["status"] = "done"
        if self.failed:
            _clear(self.staging)
            self.staging.mkdir(parents=True)
        record = self.record
        record["timings"]["total"] = round(sum(record["timings"].values()), 3)
        record["finished"] = _now()
        if record["status"] == "done" and self.workflow.export.report:
            from ctpipe.export.report import write_study_report

            record["outputs"]["report"] = "report.html"
            write_study_report(record, self.staging / "report.html")
        _write_record(record, self.staging / RECORD_NAME)
        _publish(self.staging, self.output_dir)
        self.state = None
        return StudyResult(
            name=self.output_dir.name,
            status=record["status"],
            output_dir=self.output_dir,
            error=record.get("error"),
            seconds=record["timings"]["total"],
            record=record,
        )

    @contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        except Exception as err:  # one study's failure is recorded, never raised
            self.record["status"] = "failed"
            self.record["error"] = _one_line(err)
            self.record["traceback"] = traceback.format_exc()
            self.record["failed_in"] = name
            logger.warning("%s: failed: %s", self.output_dir.name, self.record["error"])
        finally:
            self.record["timings"][name] = round(time.perf_counter() - started, 3)


def read_record(folder: str | PathLike[str]) -> dict[str, Any] | None:
    """A study folder's run record, or ``None`` when it has none (or it is unreadable)."""
    path = Path(folder) / RECORD_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read(source: InputSource, workflow: Workflow):
    from ctpipe.io.dicom_volume import CTVolume
    from ctpipe.io.image_file import is_image_file, read_image_file
    from ctpipe.io.nifti import NIFTI_SUFFIXES

    if not isinstance(source, DicomSeries):
        path = Path(source)
        if not path.exists():
            from ctpipe.errors import InputError

            raise InputError(path, "no such file or folder")
        if path.is_file() and path.name.endswith(NIFTI_SUFFIXES):
            return CTVolume.from_nifti(path)
        if is_image_file(path):
            return read_image_file(path)
    return CTVolume.from_dicom_series(
        source,
        series_uid=workflow.input.series_uid,
        allow_irregular=workflow.input.allow_irregular,
    )


def _record_start(workflow: Workflow, source: InputSource) -> dict[str, Any]:
    from ctpipe.engines.common import versions

    described = (
        {"path": str(source.folder), "series_key": str(source.key)}
        if isinstance(source, DicomSeries)
        else {"path": str(source)}
    )
    return {
        "status": "running",
        "started": _now(),
        "workflow": workflow.to_dict(),
        "workflow_sha256": workflow.sha256,
        "input": described,
        "steps": {},
        "timings": {},
        "versions": {
            **versions(),
            "python": platform.python_version(),
            **_versions("pydicom", "highdicom", "nibabel", "SimpleITK"),
        },
        "machine": {"host": platform.node(), "platform": platform.platform(), "pid": os.getpid()},
    }


def _describe_volume(state: StudyState) -> dict[str, Any]:
    volume = state.volume
    meta = volume.meta or {}
    keys = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SeriesDescription", "Modality")
    return {
        "shape": list(volume.hu.shape),
        "spacing_mm": [round(float(s), 4) for s in volume.spacing],
        "files": len(meta.get("ctpipe_source_files", [])),
        **{k: str(meta[k]) for k in keys if meta.get(k) not in (None, "")},
    }


def _versions(*packages: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _staging(output_dir: Path) -> Path:
    staging = output_dir.parent / f".{output_dir.name}.partial"
    _clear(staging)
    staging.mkdir(parents=True)
    return staging


def _publish(staging: Path, output_dir: Path) -> None:
    """Rename the staging folder into place, replacing an older result."""
    old = output_dir.parent / f".{output_dir.name}.old"
    _clear(old)
    if output_dir.exists():
        os.replace(output_dir, old)
    os.replace(staging, output_dir)
    _clear(old)


def _clear(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _write_record(record: dict[str, Any], path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")


def _one_line(err: BaseException) -> str:
    if isinstance(err, CTPipeError):
        return str(err)
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
