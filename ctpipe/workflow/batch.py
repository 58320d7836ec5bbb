"""Run a workflow on every DICOM series under a folder tree: isolated, resumable, recorded.

:func:`run_batch` scans the tree (:func:`ctpipe.io.discovery.scan_dicom`), applies the
workflow's series selection rules (``select``, :class:`~ctpipe.io.series_selection.
SeriesSelection`: localizers, dose reports, other reconstructions and phases are left out
and recorded as ``not_selected`` with the reason), names each
series' study folder from its patient, series number and a hash of its identity
(:func:`study_name`: stable across runs, safe as a file name whatever the tags hold), loads
the workflow's models once, and runs :func:`~ctpipe.workflow.runner.run_study` on each
series with a progress bar. A failing series is recorded with its error and the others go
on. A re-run skips every series whose folder records ``done`` under the same workflow
settings and the same input files (the same fingerprint: names, sizes, modification
times and a hash of each file's header and end, :mod:`ctpipe.io.fingerprint`), and redoes
the rest: failed ones, changed ones, and half-finished ones (their hidden staging folders
are cleared first).

After every series the batch writes ``batch.json`` (the summary and the scan's
unreadable files), ``summary.csv`` and ``index.html`` (links to each report), atomically,
so even an interrupted batch leaves a true summary of what is done.

Example:
    >>> from ctpipe.workflow import load_workflow
    >>> workflow = load_workflow("workflows/denoise_segment.yaml")  # doctest: +SKIP
    >>> result = run_batch(workflow, "/data/tree", "out")  # doctest: +SKIP
    >>> result.counts, result.exit_code  # doctest: +SKIP
    ({'done': 11, 'failed': 1}, 1)
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from os import PathLike
from pathlib import Path
from typing import Any

from ctpipe.errors import InputError
from ctpipe.io.atomic import atomic_path
from ctpipe.io.discovery import DicomSeries, scan_dicom
from ctpipe.io.output_folder import check_output_folder
from ctpipe.io.series_selection import SeriesChoice, SeriesSelection
from ctpipe.workflow.config import Workflow
from ctpipe.workflow.runner import FINISHED, StudyResult, StudyRun, read_record
from ctpipe.workflow.steps import Models

__all__ = [
    "BatchResult",
    "SeriesJob",
    "batch_folder_problem",
    "find_jobs",
    "process_job",
    "run_batch",
    "status_counts",
    "study_name",
    "worker_models",
]

logger = logging.getLogger("ctpipe.workflow")

SUMMARY_JSON, SUMMARY_CSV, INDEX_HTML = "batch.json", "summary.csv", "index.html"
CSV_COLUMNS = (
    "name",
    "status",
    "seconds",
    "input",
    "series_uid",
    "description",
    "reason",
    "guard",
    "guard_score",
    "warning",
    "report",
    "error",
)
#: Status of a series the workflow's selection rules leave out.
NOT_SELECTED = "not_selected"


@dataclass(frozen=True)
class SeriesJob:
    """One series of a batch: its study folder name, the scanned series, and the decision.

    Args:
        name: The study folder's name.
        series: The scanned series.
        selected: Whether the workflow's selection rules take it.
        reason: Why it was left out, or how it was chosen among its study's series.
    """

    name: str
    series: DicomSeries
    selected: bool = True
    reason: str = ""

    @property
    def input(self) -> str:
        """The series' folder, for summaries."""
        return str(self.series.folder)


@dataclass(frozen=True)
class BatchResult:
    """What :func:`run_batch` did.

    Args:
        output_dir: The batch folder.
        rows: One summary row per series (and per unreadable file).
        seconds: Wall time.
    """

    output_dir: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        """Rows per status: done, out_of_distribution, skipped, not_selected, failed."""
        return status_counts(self.rows)

    @property
    def flagged(self) -> list[dict[str, Any]]:
        """Rows of the series the guard found out of distribution."""
        return [row for row in self.rows if str(row.get("guard", "")).startswith("flagged")]

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, else 1."""
        return 1 if self.counts.get("failed") else 0


def status_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Rows per status.

    Example:
        >>> status_counts([{"status": "done"}, {"status": "failed"}, {"status": "done"}])
        {'done': 2, 'failed': 1}
    """
    return dict(Counter(row["status"] for row in rows))


def study_name(series: DicomSeries) -> str:
    """A stable, file-name-safe study folder name for a series.

    Example:
        >>> from types import SimpleNamespace
        >>> first = SimpleNamespace(patient_id="../../etc/passwd", series_number=3)
        >>> study_name(SimpleNamespace(first=first, key="1.2.3"))
        'etc_passwd_S3_6f9f3348'
    """
    first = series.first
    patient = re.sub(r"[^A-Za-z0-9.-]+", "_", str(first.patient_id or "anonymous"))
    patient = patient.strip("._-")[:40] or "anonymous"
    number = first.series_number if first.series_number is not None else "x"
    digest = hashlib.sha1(str(series.key).encode()).hexdigest()[:8]
    return f"{patient}_S{number}_{digest}"


def batch_folder_problem(folder: str | PathLike[str]) -> str | None:
    """Why ``folder`` is not a batch folder ctpipe wrote (its ``batch.json``), or None.

    Example:
        >>> import tempfile
        >>> batch_folder_problem(tempfile.mkdtemp())
        'is a folder without a ctpipe batch summary (batch.json)'
    """
    try:
        summary = json.loads((Path(folder) / SUMMARY_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        summary = None
    if isinstance(summary, dict) and {"workflow_sha256", "series"} <= set(summary):
        return None
    return f"is a folder without a ctpipe batch summary ({SUMMARY_JSON})"


def check_batch_folders(
    tree: str | PathLike[str],
    output_dir: str | PathLike[str],
    *,
    overwrite: bool = False,
    workflow_source: str | PathLike[str] = "<workflow>",
) -> None:
    """Refuse a batch folder that overlaps the tree (either way) or holds foreign files.

    An output inside the input tree would be scanned by the next run, its derived series
    taken for new studies; an input inside the output could be replaced by a study.

    Raises:
        InputError: ``tree`` does not exist.
        OutputError: The batch folder is refused (the message says why).
    """
    root = Path(tree)
    if not root.exists():
        raise InputError(root, "no such folder")
    protected = [root, *([Path(workflow_source)] if Path(workflow_source).is_file() else [])]
    check_output_folder(
        output_dir,
        inputs=protected,
        overwrite=overwrite,
        foreign=batch_folder_problem,
        replaced=False,
    )


def find_jobs(
    tree: str | PathLike[str], selection: SeriesSelection | None = None
) -> tuple[list[SeriesJob], list[tuple[Path, str]]]:
    """Every series under ``tree`` as a job, and the files that could not be read.

    Args:
        tree: The folder to scan.
        selection: Rules that decide which series are run (``None``: all of them); the
            jobs of the others carry ``selected=False`` and the reason.

    Raises:
        InputError: ``tree`` does not exist or holds no DICOM series.
    """
    root = Path(tree)
    if not root.exists():
        raise InputError(root, "no such folder")
    scan = scan_dicom(root, progress=False)
    if not scan.series and not scan.unreadable:
        raise InputError(root, "no DICOM series found under this folder")
    choices = _decide(scan.series, selection)
    jobs = [SeriesJob(study_name(c.series), c.series, c.selected, c.reason) for c in choices]
    names = [job.name for job in jobs]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:  # the same hash prefix twice: make the names unique by position
        jobs = [
            replace(job, name=f"{job.name}_{i}") if job.name in duplicates else job
            for i, job in enumerate(jobs)
        ]
    return jobs, list(scan.unreadable)


def _decide(series: list[DicomSeries], selection: SeriesSelection | None) -> list[SeriesChoice]:
    if selection is None:
        return [SeriesChoice(s, True) for s in series]
    return selection.decide(series)


def process_job(
    job: SeriesJob,
    workflow: Workflow,
    output_dir: str | PathLike[str],
    *,
    models: Models | None = None,
    resume: bool = True,
    workflow_source: str | PathLike[str] = "<workflow>",
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run (or skip, when already done) one series; return its summary row.

    This is the task a Dask worker runs: without ``models`` it loads them once per
    process (:func:`worker_models`) and reuses them for the next series.
    """
    folder = Path(output_dir) / job.name
    if not job.selected:
        return _not_selected_row(job)
    if resume and _is_done(folder, workflow, job):
        return _skipped_row(job, folder)
    run = StudyRun.start(
        workflow, job.series, folder, workflow_source=workflow_source, overwrite=overwrite
    )
    if run.refusal is None and models is None:
        models = worker_models(workflow, workflow_source)
    return _row(job, run.read().compute(models).finish())


_MODEL_CACHE: dict[tuple[str, str], Models] = {}


def worker_models(workflow: Workflow, workflow_source: str | PathLike[str]) -> Models:
    """The workflow's models, loaded once per process (a Dask worker serves many series)."""
    key = (workflow.sha256, str(workflow_source))
    if key not in _MODEL_CACHE:
        _MODEL_CACHE[key] = Models.load(workflow, source=workflow_source)
    return _MODEL_CACHE[key]


def run_batch(
    workflow: Workflow,
    tree: str | PathLike[str],
    output_dir: str | PathLike[str],
    *,
    resume: bool = True,
    progress: bool = True,
    models: Models | None = None,
    workflow_source: str | PathLike[str] = "<workflow>",
    client: Any = None,
    task_resources: dict[str, float] | None = None,
    overlap: bool = True,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    overwrite: bool = False,
) -> BatchResult:
    """Run ``workflow`` on every series under ``tree``; one study folder per series.

    Locally, reading the next series and writing the previous one's outputs run in
    threads beside the current series' steps (``overlap``), so the model is rarely idle.
    With a Dask ``client`` every series is one task on the cluster (see
    :mod:`ctpipe.workflow.cluster`); the records, resume and failure isolation are the
    same, and the summary is written here as tasks finish.

    Args:
        workflow: The workflow.
        tree: Folder searched recursively for DICOM series.
        output_dir: The batch folder (created); on a cluster, a path every worker sees.
        resume: Skip series already done under the same settings (else redo all).
        progress: Show a progress bar over series.
        models: Models already loaded (local runs); loaded once here otherwise.
        workflow_source: The workflow file, for weights paths relative to it.
        client: A ``distributed.Client``; ``None`` runs in this process.
        task_resources: Dask resources each series needs, e.g. ``{"GPU": 1}`` so a
            worker started with ``--resources GPU=1`` runs one series at a time.
        overlap: Overlap reading, computing and writing of successive series (local).
        on_row: Called with each series' summary row as it finishes.
        overwrite: Write into (and replace study folders in) a folder that holds files
            ctpipe did not write; never into the input tree.

    Returns:
        The :class:`BatchResult` (``exit_code`` 1 when any series failed).

    Raises:
        InputError: ``tree`` is missing or holds no DICOM, or the models cannot be loaded.
        OutputError: ``output_dir`` is, holds or lies inside ``tree``, or holds files
            ctpipe did not write (without ``overwrite``).
    """
    started = time.perf_counter()
    check_batch_folders(tree, output_dir, overwrite=overwrite, workflow_source=workflow_source)
    output = Path(output_dir)
    jobs, unreadable = find_jobs(tree, workflow.select)
    output.mkdir(parents=True, exist_ok=True)
    _clear_staging(output)
    rows = [_unreadable_row(path, why) for path, why in unreadable]
    todo = []
    for job in jobs:
        if not job.selected:
            rows.append(_not_selected_row(job))
        elif resume and _is_done(output / job.name, workflow, job):
            rows.append(_skipped_row(job, output / job.name))
        else:
            todo.append(job)
    selected = sum(job.selected for job in jobs)
    logger.info(
        "%d series (%d not selected, %d to run, %d done before), %d unreadable files",
        len(jobs),
        len(jobs) - selected,
        len(todo),
        selected - len(todo),
        len(unreadable),
    )
    bar = _progress(len(todo), progress)

    def emit(row: dict[str, Any]) -> None:
        rows.append(row)
        suffix = f": {row['error']}" if row["error"] else ""
        logger.info("%s: %s (%.1f s)%s", row["name"], row["status"], row["seconds"], suffix)
        _write_summary(output, rows, workflow, tree, time.perf_counter() - started)
        if bar is not None:
            bar.update(1)
        if on_row is not None:
            on_row(row)

    _write_summary(output, rows, workflow, tree, time.perf_counter() - started)
    try:
        if client is not None:
            from ctpipe.workflow.cluster import run_on_cluster

            run_on_cluster(
                client,
                todo,
                workflow,
                output,
                workflow_source,
                task_resources or {},
                emit,
                overwrite=overwrite,
                task=process_job,
            )
        elif todo:
            models = models or Models.load(workflow, source=workflow_source)
            _run_local(todo, workflow, output, models, workflow_source, overlap, emit, overwrite)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - started
    _write_summary(output, rows, workflow, tree, seconds)
    return BatchResult(output_dir=output, rows=rows, seconds=seconds)


def _run_local(
    todo: list[SeriesJob],
    workflow: Workflow,
    output: Path,
    models: Models,
    workflow_source: str | PathLike[str],
    overlap: bool,
    emit: Callable[[dict[str, Any]], None],
    overwrite: bool = False,
) -> None:
    """Series one after another; with ``overlap``, read ahead and write behind in threads.

    At most three studies are in memory: the one being read, the one being computed and
    the one being written.
    """

    def start(job: SeriesJob) -> StudyRun:
        return StudyRun.start(
            workflow,
            job.series,
            output / job.name,
            workflow_source=workflow_source,
            overwrite=overwrite,
        )

    if not overlap:
        for job in todo:
            emit(_row(job, start(job).read().compute(models).finish()))
        return
    from concurrent.futures import Future, ThreadPoolExecutor

    with (
        ThreadPoolExecutor(1, thread_name_prefix="ctpipe-read") as reader,
        ThreadPoolExecutor(1, thread_name_prefix="ctpipe-write") as writer,
    ):
        reading = reader.submit(lambda: start(todo[0]).read())
        writing: tuple[SeriesJob, Future] | None = None
        try:
            for index, job in enumerate(todo):
                run = reading.result()
                if index + 1 < len(todo):
                    following = todo[index + 1]
                    reading = reader.submit(lambda job=following: start(job).read())
                run.compute(models)
                if writing is not None:
                    emit(_row(writing[0], writing[1].result()))
                writing = (job, writer.submit(run.finish))
        finally:
            if writing is not None:  # publish (and record) the study being written
                done_job, future = writing
                writing = None
                emit(_row(done_job, future.result()))


def _row(job: SeriesJob, result: StudyResult) -> dict[str, Any]:
    return {
        **_job_row(job),
        "status": result.status,
        "seconds": round(result.seconds, 2),
        "error": result.error,
        **_guard_columns(result.record),
        **(_report(job) if result.report is not None else {}),
    }


def _guard_columns(record: dict[str, Any] | None) -> dict[str, Any]:
    """The guard's verdict and the run's warnings, for the summaries."""
    guard = (record or {}).get("guard")
    warnings = (record or {}).get("warnings") or []
    if not guard:
        return {"guard": "", "guard_score": "", "warning": " | ".join(warnings)}
    verdict = "flagged" if guard["flagged"] else "ok"
    if guard["flagged"] and guard.get("action") == "skip":
        verdict = "flagged, not run"
    return {
        "guard": verdict,
        "guard_score": guard["study_score"],
        "warning": " | ".join(warnings),
    }


def _job_row(job: SeriesJob) -> dict[str, Any]:
    return {
        "name": job.name,
        "input": job.input,
        "series_uid": job.series.first.series_instance_uid,
        "description": job.series.first.series_description,
        "reason": job.reason,
    }


def _skipped_row(job: SeriesJob, folder: Path | None = None) -> dict[str, Any]:
    record = read_record(folder) if folder is not None else None
    return {
        **_job_row(job),
        "status": "skipped",
        "seconds": 0.0,
        "error": None,
        **_guard_columns(record),
        **_report(job),
    }


def _not_selected_row(job: SeriesJob) -> dict[str, Any]:
    return {**_job_row(job), "status": NOT_SELECTED, "seconds": 0.0, "error": None}


def _is_done(folder: Path, workflow: Workflow, job: SeriesJob) -> bool:
    """Done before under the same settings and from the same files.

    The same files: names, sizes, times and the hash of each file's header and end
    (:mod:`ctpipe.io.fingerprint`).
    """
    from ctpipe.io.fingerprint import input_fingerprint

    record = read_record(folder)
    if not (
        record
        and record.get("status") in FINISHED
        and record.get("workflow_sha256") == workflow.sha256
        and record.get("input", {}).get("files") == len(job.series.slices)
    ):
        return False
    recorded = record["input"].get("fingerprint")
    return recorded == input_fingerprint(s.path for s in job.series.slices)


def _report(job: SeriesJob) -> dict[str, str]:
    return {"report": f"{job.name}/report.html"}


def _unreadable_row(path: Path, why: str) -> dict[str, Any]:
    return {
        "name": f"unreadable file {path.name}",
        "input": str(path),
        "series_uid": "",
        "description": "",
        "reason": "",
        "status": "failed",
        "seconds": 0.0,
        "error": f"{path}: {why}",
    }


def _clear_staging(output: Path) -> None:
    """Remove staging folders a killed run left behind (their studies are redone)."""
    for staging in [*output.glob(".*.partial"), *output.glob(".*.old")]:
        if staging.is_dir():
            shutil.rmtree(staging)


def _progress(total: int, enabled: bool) -> Any:
    if not enabled or not total:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="series", unit="series")


def _write_summary(
    output: Path, rows: list[dict[str, Any]], workflow: Workflow, tree: Any, seconds: float
) -> None:
    from ctpipe.export.report import write_batch_index

    counts = status_counts(rows)
    summary = {
        "workflow": workflow.name,
        "workflow_sha256": workflow.sha256,
        "input": str(tree),
        "seconds": round(seconds, 2),
        "counts": counts,
        "guard_flagged": sum(str(r.get("guard", "")).startswith("flagged") for r in rows),
        "series": rows,
    }
    with atomic_path(output / SUMMARY_JSON) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(output / SUMMARY_CSV) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
    write_batch_index(rows, output / INDEX_HTML, title=f"ctpipe batch: {workflow.name}")
