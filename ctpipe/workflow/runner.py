"""Run a workflow on one study: read, run the steps, export, record; all or nothing.

:func:`run_study` reads the input (a DICOM folder or file, a scanned series, or a NIfTI
volume), runs the workflow's steps in order, writes the outputs and the HTML report into
a hidden staging folder beside the destination and, once everything is written, renames
it into place. A study folder therefore either holds a complete result with
``run.json`` saying ``"status": "done"``, or (after a failure) only ``run.json`` with
``"status": "failed"``, the error and its traceback; never half of a result.

Nothing ctpipe did not write is ever replaced. Before any work the destination is checked
(:func:`ctpipe.io.output_folder.check_output_folder`): it may not be, hold or lie inside
the input; an existing folder must be empty or a study folder of an earlier run (its
``run.json`` lists every file it holds) unless ``overwrite`` is given. A failed run
leaves an earlier result in place (only an earlier failure record is replaced).

The run record (``run.json``) holds the input (path, series identity, shape, spacing, and
the fingerprint of its files: :mod:`ctpipe.io.fingerprint`),
the workflow and its hash, each step's model (file, sha256), settings, timings and
metrics, the outputs, the library versions and the total time; with a ``guard`` step also
its verdict (``"guard"``) and its warning (in ``"warnings"``). A study the guard skips
(``action: skip``) ends ``"out_of_distribution"`` with the steps it did not run.

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
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path
from typing import Any

from ctpipe.errors import CTPipeError, InputError, OutputError
from ctpipe.io.atomic import atomic_path
from ctpipe.io.dicom_volume import CTVolume
from ctpipe.io.discovery import DicomSeries
from ctpipe.io.output_folder import check_output_folder, is_non_empty
from ctpipe.workflow.config import Workflow, load_workflow
from ctpipe.workflow.outputs import study_paths, write_outputs
from ctpipe.workflow.steps import Models, StudyState, run_step

__all__ = [
    "FINISHED",
    "RECORD_NAME",
    "StudyResult",
    "StudyRun",
    "load_workflow",
    "read_record",
    "run_study",
    "study_folder_problem",
]

logger = logging.getLogger("ctpipe.workflow")

#: The run record of a study, in its folder.
RECORD_NAME = "run.json"
#: Statuses of a study that ran to the end: every step (``done``), or the guard found it
#: out of distribution with ``action: skip`` and no other step ran.
FINISHED = ("done", "out_of_distribution")
#: A file that marks a staging folder as ctpipe's (removed before it is published).
STAGING_MARK = ".ctpipe-staging"

InputSource = str | PathLike[str] | DicomSeries


@dataclass(frozen=True)
class StudyResult:
    """What :func:`run_study` did.

    Args:
        name: The study's name (its folder's name).
        status: ``"done"``, ``"out_of_distribution"`` (the guard skipped the steps) or
            ``"failed"``.
        output_dir: The study folder.
        error: One line naming the problem when failed.
        seconds: Wall time.
        record: The run record (as written to ``run.json``).
        kept_previous: The run failed and an earlier result in ``output_dir`` was left
            as it was (the failure record was not written there).
        bad_input: The run failed because its input or output cannot be used (an
            :class:`~ctpipe.errors.InputError`), not while processing.
        written: Whether ``output_dir`` was written (False when the output was refused
            or an earlier result was kept).
    """

    name: str
    status: str
    output_dir: Path
    error: str | None = None
    seconds: float = 0.0
    record: dict[str, Any] = field(default_factory=dict, repr=False)
    kept_previous: bool = False
    written: bool = True
    bad_input: bool = False

    @property
    def report(self) -> Path | None:
        """The HTML report, when written."""
        path = study_paths(self.output_dir)["report"]
        return path if self.status in FINISHED and path.exists() else None

    @property
    def warnings(self) -> list[str]:
        """Warnings of the run (e.g. the guard's), in the record."""
        return list(self.record.get("warnings", []))

    @property
    def dicom_outputs(self) -> list[Path]:
        """DICOM files written (derived series, Segmentation, RT Structure Set), absolute."""
        outputs = self.record.get("outputs", {})
        files = list(outputs.get("dicom_series", []))
        for key in ("dicom_seg", "dicom_rtstruct"):
            if outputs.get(key):
                files.append(outputs[key])
        return [self.output_dir / f for f in files]


def run_study(
    workflow: Workflow,
    source: InputSource,
    output_dir: str | PathLike[str],
    *,
    models: Models | None = None,
    workflow_source: str | PathLike[str] = "<workflow>",
    notes: dict[str, Any] | None = None,
    overwrite: bool = False,
    volume: CTVolume | None = None,
) -> StudyResult:
    """Run ``workflow`` on one study and write its folder atomically.

    Any error while reading or processing is caught and recorded: the study ends
    ``failed`` with the error in ``run.json``. That record replaces an earlier failure
    record in ``output_dir``, but never an earlier result: a result stays as it was.
    ``KeyboardInterrupt`` is not caught: the staging folder stays behind, hidden, and is
    cleared by the next run.

    Args:
        workflow: The workflow (see :func:`~ctpipe.workflow.config.load_workflow`).
        source: DICOM folder or file, a :class:`~ctpipe.io.discovery.DicomSeries`, or
            a ``.nii``/``.nii.gz`` volume.
        output_dir: The study folder to create (a study folder of an earlier run is
            replaced on success).
        models: Models already loaded (a batch loads them once); loaded here otherwise.
        workflow_source: The workflow file, for weights paths relative to it.
        notes: Entries added to the run record, e.g. how a DICOM node received the series
            (``reception``); a ``warnings`` list among them heads the report.
        overwrite: Replace ``output_dir`` even when it holds files ctpipe did not write
            (never when it is, holds or lies inside the input).
        volume: ``source`` already read (:func:`ctpipe.io.reader.read_study`), so that
            it is not read twice (the demo summarises it first).

    Returns:
        The :class:`StudyResult`.

    Raises:
        OutputError: ``output_dir`` may not be written (before any work is done).
    """
    run = StudyRun.start(
        workflow, source, output_dir, workflow_source=workflow_source, overwrite=overwrite
    )
    if run.refusal is not None:
        raise run.refusal
    run.record.update(notes or {})
    run.read(volume)
    run.compute(models)
    return run.finish()


class StudyRun:
    """One study in three phases, so a batch can overlap them across studies.

    :meth:`read` loads the input, :meth:`compute` runs the steps, :meth:`finish` writes
    the outputs, the report and the record and publishes the folder. An error in any
    phase is recorded and the later phases skip their work, so :meth:`finish` publishes
    the complete result or the failure record; the failure record only where no earlier
    result would be replaced. An output refused at the start (:attr:`refusal`) is never
    written.

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
        overwrite: bool = False,
    ) -> None:
        self.workflow = workflow
        self.source = source
        self.output_dir = output_dir
        self.workflow_source = workflow_source
        self.record = _record_start(workflow, source)
        self.state: StudyState | None = None
        self.staging: Path | None = None
        self.seconds = 0.0
        self.refusal: OutputError | None = None
        try:
            check_output_folder(
                output_dir,
                inputs=_protected(source, workflow_source),
                overwrite=overwrite,
                foreign=study_folder_problem,
            )
            _check_staging_name(output_dir)
        except OutputError as err:
            self.refusal = err
            self.record.update(
                status="failed", error=str(err), failed_in="output", error_type="input"
            )

    @classmethod
    def start(
        cls,
        workflow: Workflow,
        source: InputSource,
        output_dir: str | PathLike[str],
        *,
        workflow_source: str | PathLike[str] = "<workflow>",
        overwrite: bool = False,
    ) -> StudyRun:
        """A run of ``workflow`` on ``source`` into ``output_dir`` (nothing done yet).

        The output is checked first; a refused output is kept in :attr:`refusal` and
        the run is failed from the start (nothing is read, computed or written).
        """
        return cls(workflow, source, Path(output_dir), workflow_source, overwrite)

    @property
    def failed(self) -> bool:
        """Whether a phase failed."""
        return self.record["status"] == "failed"

    def read(self, volume: CTVolume | None = None) -> StudyRun:
        """Load the input volume (``volume``: the input already read)."""
        if self.failed:
            return self
        with self._phase("read"):
            if volume is None:
                self.source = self._pick_series()
                volume = _read(self.source, self.workflow)
            self.state = StudyState(volume)
            self.record["input"].update(_describe_volume(self.state))
        return self

    def compute(self, models: Models | None = None) -> StudyRun:
        """Run the steps (loading the models first when none are given)."""
        if self.failed:
            return self
        with self._phase("compute"):
            if models is None:
                models = Models.load(self.workflow, source=self.workflow_source)
            steps = list(self.workflow.steps)
            for index, step in enumerate(steps):
                logger.info("%s: %s", self.output_dir.name, step)
                self.record["steps"][step] = run_step(step, self.state, self.workflow, models)
                if self.state.stop is not None:
                    self.record["steps_not_run"] = steps[index + 1 :]
                    break
            self._record_warnings()
        return self

    def _record_warnings(self) -> None:
        """Copy the guard's verdict to the top of the record; add the steps' warnings."""
        guard = self.record["steps"].get("guard")
        if guard is not None:
            metrics = guard["metrics"]
            self.record["guard"] = {
                "flagged": metrics["flagged"],
                "study_score": metrics["study_score"],
                "study_threshold": metrics["study_threshold"],
                "action": guard["settings"]["action"],
                "warning": guard["warning"],
            }
        if self.state.warnings:
            self.record["warnings"] = [*self.record.get("warnings", []), *self.state.warnings]
        for warning in self.state.warnings:
            logger.warning("%s: %s", self.output_dir.name, warning)

    def finish(self) -> StudyResult:
        """Write outputs, report and record; publish the folder; free the volumes."""
        if self.refusal is not None:
            return self._result(written=False)
        try:
            self.staging = _staging(self.output_dir)
        except (OSError, OutputError) as err:  # the folder cannot be written
            self._fail("output", err)
            return self._result(written=False)
        try:
            return self._write_and_publish()
        except KeyboardInterrupt:
            raise  # the staging folder stays, hidden; the next run clears it
        except BaseException:
            _clear(self.staging)
            raise
        finally:
            self.state = None

    def _write_and_publish(self) -> StudyResult:
        assert self.staging is not None
        if not self.failed:
            with self._phase("export"):
                self.record["outputs"] = write_outputs(
                    self.state, self.workflow, self.staging, self.record["steps"]
                )
                self.record["status"] = self.state.stop or "done"
        record = self.record
        record["timings"]["total"] = round(sum(record["timings"].values()), 3)
        record["finished"] = _now()
        if self.failed:
            _clear(self.staging)
            if _holds_a_result(self.output_dir):
                logger.warning("%s: earlier result kept as it was", self.output_dir)
                return self._result(written=False, kept_previous=True)
            self.staging = _staging(self.output_dir)  # the failure record only
        if record["status"] in FINISHED and self.workflow.export.report:
            from ctpipe.export.report import write_study_report

            record["outputs"]["report"] = "report.html"
            write_study_report(record, self.staging / "report.html")
        _write_record(record, self.staging / RECORD_NAME)
        _publish(self.staging, self.output_dir)
        return self._result()

    def _result(self, *, written: bool = True, kept_previous: bool = False) -> StudyResult:
        record = self.record
        return StudyResult(
            name=self.output_dir.name,
            status=record["status"],
            output_dir=self.output_dir,
            error=record.get("error"),
            seconds=record["timings"].get("total", 0.0),
            record=record,
            kept_previous=kept_previous,
            written=written,
            bad_input=record.get("error_type") == "input",
        )

    def _fail(self, phase: str, err: BaseException) -> None:
        self.record["status"] = "failed"
        self.record["error"] = _one_line(err)
        self.record["error_type"] = "input" if isinstance(err, InputError) else "processing"
        self.record["traceback"] = traceback.format_exc()
        self.record["failed_in"] = phase
        logger.info("%s: failed: %s", self.output_dir.name, self.record["error"])

    def _pick_series(self) -> InputSource:
        """A folder of several series: the one the workflow's ``select`` rules pick."""
        source = self.source
        if isinstance(source, DicomSeries) or self.workflow.input.series_uid is not None:
            return source
        if not Path(source).is_dir():
            return source
        from ctpipe.io.discovery import scan_dicom
        from ctpipe.io.series_selection import pick_series

        scan = scan_dicom(source)
        if len(scan.series) == 1:
            return scan.series[0]
        chosen, choices = pick_series(scan.series, self.workflow.select, folder=source)
        self.record["input"]["selection"] = [
            {"series_uid": c.series.key, "selected": c.selected, "reason": c.reason}
            for c in choices
        ]
        self.record["input"]["series_key"] = str(chosen.key)
        return chosen

    @contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        except Exception as err:  # one study's failure is recorded, never raised
            self._fail(name, err)
        finally:
            self.record["timings"][name] = round(time.perf_counter() - started, 3)


def read_record(folder: str | PathLike[str]) -> dict[str, Any] | None:
    """A study folder's run record, or ``None`` when it has none (or it is unreadable)."""
    path = Path(folder) / RECORD_NAME
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not {"status", "workflow_sha256"} <= set(record):
        return None
    return record


def study_folder_problem(folder: str | PathLike[str]) -> str | None:
    """Why ``folder`` is not a study folder ctpipe wrote, or None when it is one.

    A study folder holds a ctpipe run record (``run.json``) and only the files that
    record lists (a failure record lists none), so replacing it loses nothing of the
    user's.

    Example:
        >>> import tempfile
        >>> study_folder_problem(tempfile.mkdtemp())
        'is a folder without a ctpipe run record (run.json)'
    """
    folder = Path(folder)
    record = read_record(folder)
    if record is None:
        return f"is a folder without a ctpipe run record ({RECORD_NAME})"
    listed = {RECORD_NAME, *_listed_files(record.get("outputs", {}))}
    foreign = sorted(
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if not path.is_dir() and str(path.relative_to(folder)) not in listed
    )
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        shown = ", ".join(foreign[:3]) + more
        return f"holds {len(foreign)} file(s) that ctpipe did not write ({shown})"
    return None


def _listed_files(outputs: Any) -> Iterator[str]:
    """Every relative path named in a record's ``outputs`` (lists, mappings, strings)."""
    if isinstance(outputs, str):
        yield str(Path(outputs))
    elif isinstance(outputs, dict):
        for value in outputs.values():
            yield from _listed_files(value)
    elif isinstance(outputs, list):
        for value in outputs:
            yield from _listed_files(value)


def _holds_a_result(folder: Path) -> bool:
    """True when ``folder`` holds anything but an earlier failure record."""
    if not folder.is_dir() or not is_non_empty(folder):
        return False
    record = read_record(folder)
    failure_only = (
        record is not None
        and record.get("status") == "failed"
        and [p.name for p in folder.iterdir()] == [RECORD_NAME]
    )
    return not failure_only


def _protected(source: InputSource, workflow_source: str | PathLike[str]) -> list[Path]:
    """The paths a study's output may not overlap: the input and the workflow file."""
    if isinstance(source, DicomSeries):
        paths = {s.path.parent for s in source.slices}
    else:
        paths = {Path(source)}
    workflow_file = Path(workflow_source)
    if workflow_file.is_file():
        paths.add(workflow_file)
    return sorted(paths)


def _read(source: InputSource, workflow: Workflow) -> CTVolume:
    from ctpipe.io.reader import read_study
    from ctpipe.io.validate import MIN_CT_SLICE_PIXELS

    return read_study(
        source,
        series_uid=workflow.input.series_uid,
        allow_irregular=workflow.input.allow_irregular,
        allow_non_hu=workflow.input.allow_non_hu,
        min_slice_pixels=MIN_CT_SLICE_PIXELS,
    )


def _record_start(workflow: Workflow, source: InputSource) -> dict[str, Any]:
    from ctpipe.provenance import package_versions, versions

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
            **package_versions("pydicom", "highdicom", "nibabel", "SimpleITK"),
        },
        "machine": {"host": platform.node(), "platform": platform.platform(), "pid": os.getpid()},
    }


def _describe_volume(state: StudyState) -> dict[str, Any]:
    from ctpipe.io.fingerprint import input_fingerprint

    volume = state.volume
    meta = volume.meta or {}
    keys = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SeriesDescription", "Modality")
    files = meta.get("ctpipe_source_files", [])
    return {
        "shape": list(volume.hu.shape),
        "spacing_mm": [round(float(s), 4) for s in volume.spacing],
        "files": len(files),
        "fingerprint": input_fingerprint(files),
        **{k: str(meta[k]) for k in keys if meta.get(k) not in (None, "")},
    }


def _staging_path(output_dir: Path) -> Path:
    return output_dir.parent / f".{output_dir.name}.partial"


def _check_staging_name(output_dir: Path) -> None:
    staging = _staging_path(output_dir)
    if (staging.exists() or staging.is_symlink()) and not _is_staging(staging):
        raise OutputError(staging, "exists and was not made by ctpipe; move it away")


def _staging(output_dir: Path) -> Path:
    """A fresh hidden staging folder beside ``output_dir``, marked as ctpipe's."""
    _check_staging_name(output_dir)
    staging = _staging_path(output_dir)
    if staging.exists():
        _clear(staging)
    staging.mkdir(parents=True)
    (staging / STAGING_MARK).touch()
    return staging


def _is_staging(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and (path / STAGING_MARK).is_file()


def _publish(staging: Path, output_dir: Path) -> None:
    """Rename the staging folder into place, replacing an older result only once done."""
    (staging / STAGING_MARK).unlink()
    if not (output_dir.exists() or output_dir.is_symlink()):
        os.replace(staging, output_dir)
        return
    old = output_dir.parent / f".{output_dir.name}.old-{uuid.uuid4().hex[:12]}"
    os.replace(output_dir, old)
    try:
        os.replace(staging, output_dir)
    except BaseException:
        os.replace(old, output_dir)  # put the earlier result back
        raise
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
