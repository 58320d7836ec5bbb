"""Run a workflow on every DICOM series under a folder tree: isolated, resumable, recorded.

:func:`run_batch` scans the tree (:func:`ctpipe.io.discovery.scan_dicom`), names each
series' study folder from its patient, series number and a hash of its identity
(:func:`study_name`: stable across runs, safe as a file name whatever the tags hold), loads
the workflow's models once, and runs :func:`~ctpipe.workflow.runner.run_study` on each
series with a progress bar. A failing series is recorded with its error and the others go
on. A re-run skips every series whose folder records ``done`` under the same workflow
settings and the same number of input files, and redoes the rest: failed ones, and
half-finished ones (their hidden staging folders are cleared first).

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from ctpipe.errors import InputError
from ctpipe.io.atomic import atomic_path
from ctpipe.io.discovery import DicomSeries, scan_dicom
from ctpipe.workflow.config import Workflow
from ctpipe.workflow.runner import read_record, run_study
from ctpipe.workflow.steps import Models

__all__ = ["BatchResult", "SeriesJob", "find_jobs", "process_job", "run_batch", "study_name"]

logger = logging.getLogger("ctpipe.workflow")

SUMMARY_JSON, SUMMARY_CSV, INDEX_HTML = "batch.json", "summary.csv", "index.html"
CSV_COLUMNS = ("name", "status", "seconds", "input", "series_uid", "report", "error")


@dataclass(frozen=True)
class SeriesJob:
    """One series to run: its study folder name and the scanned series."""

    name: str
    series: DicomSeries

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
        """Rows per status (``done``, ``skipped``, ``failed``)."""
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        return counts

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, else 1."""
        return 1 if self.counts.get("failed") else 0


def study_name(series: DicomSeries) -> str:
    """A stable, file-name-safe study folder name for a series.

    Example:
        >>> from types import SimpleNamespace
        >>> first = SimpleNamespace(patient_id="../../etc/passwd", series_number=3)
        >>> study_name(SimpleNamespace(first=first, key="1.2.3"))
        'etc_passwd_S3_06f6a6e9'
    """
    first = series.first
    patient = re.sub(r"[^A-Za-z0-9.-]+", "_", str(first.patient_id or "anonymous"))
    patient = patient.strip("._-")[:40] or "anonymous"
    number = first.series_number if first.series_number is not None else "x"
    digest = hashlib.sha1(str(series.key).encode()).hexdigest()[:8]
    return f"{patient}_S{number}_{digest}"


def find_jobs(tree: str | PathLike[str]) -> tuple[list[SeriesJob], list[tuple[Path, str]]]:
    """Every series under ``tree`` as a job, and the files that could not be read.

    Raises:
        InputError: ``tree`` does not exist or holds no DICOM series.
    """
    root = Path(tree)
    if not root.exists():
        raise InputError(root, "no such folder")
    scan = scan_dicom(root, progress=False)
    if not scan.series and not scan.unreadable:
        raise InputError(root, "no DICOM series found under this folder")
    jobs = [SeriesJob(study_name(series), series) for series in scan.series]
    names = [job.name for job in jobs]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:  # the same hash prefix twice: make the names unique by position
        jobs = [
            SeriesJob(f"{job.name}_{i}", job.series) if job.name in duplicates else job
            for i, job in enumerate(jobs)
        ]
    return jobs, list(scan.unreadable)


def process_job(
    job: SeriesJob,
    workflow: Workflow,
    output_dir: str | PathLike[str],
    *,
    models: Models | None = None,
    resume: bool = True,
    workflow_source: str | PathLike[str] = "<workflow>",
) -> dict[str, Any]:
    """Run (or skip, when already done) one series; return its summary row."""
    folder = Path(output_dir) / job.name
    row: dict[str, Any] = {
        "name": job.name,
        "input": job.input,
        "series_uid": job.series.first.series_instance_uid,
    }
    if resume and _is_done(folder, workflow, job):
        return {**row, "status": "skipped", "seconds": 0.0, "error": None, **_report(job)}
    result = run_study(workflow, job.series, folder, models=models, workflow_source=workflow_source)
    report = _report(job) if result.report is not None else {}
    return {
        **row,
        "status": result.status,
        "seconds": round(result.seconds, 2),
        "error": result.error,
        **report,
    }


def run_batch(
    workflow: Workflow,
    tree: str | PathLike[str],
    output_dir: str | PathLike[str],
    *,
    resume: bool = True,
    progress: bool = True,
    models: Models | None = None,
    workflow_source: str | PathLike[str] = "<workflow>",
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> BatchResult:
    """Run ``workflow`` on every series under ``tree``; one study folder per series.

    Args:
        workflow: The workflow.
        tree: Folder searched recursively for DICOM series.
        output_dir: The batch folder (created).
        resume: Skip series already done under the same settings (else redo all).
        progress: Show a progress bar over series.
        models: Models already loaded; loaded once here otherwise.
        workflow_source: The workflow file, for weights paths relative to it.
        on_row: Called with each series' summary row as it finishes.

    Returns:
        The :class:`BatchResult` (``exit_code`` 1 when any series failed).

    Raises:
        InputError: ``tree`` is missing or holds no DICOM, or the models cannot be loaded.
    """
    started = time.perf_counter()
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    jobs, unreadable = find_jobs(tree)
    _clear_staging(output)
    rows = [_unreadable_row(path, why) for path, why in unreadable]
    pending = [job for job in jobs if not (resume and _is_done(output / job.name, workflow, job))]
    if pending and models is None:
        models = Models.load(workflow, source=workflow_source)
    logger.info(
        "%d series (%d to run), %d unreadable files", len(jobs), len(pending), len(unreadable)
    )
    for job in _progress(jobs, progress):
        row = process_job(
            job, workflow, output, models=models, resume=resume, workflow_source=workflow_source
        )
        rows.append(row)
        logger.info(
            "%s: %s (%.1f s)%s",
            row["name"],
            row["status"],
            row["seconds"],
            f": {row['error']}" if row["error"] else "",
        )
        _write_summary(output, rows, workflow, tree, time.perf_counter() - started)
        if on_row is not None:
            on_row(row)
    seconds = time.perf_counter() - started
    _write_summary(output, rows, workflow, tree, seconds)
    return BatchResult(output_dir=output, rows=rows, seconds=seconds)


def _is_done(folder: Path, workflow: Workflow, job: SeriesJob) -> bool:
    record = read_record(folder)
    return bool(
        record
        and record.get("status") == "done"
        and record.get("workflow_sha256") == workflow.sha256
        and record.get("input", {}).get("files") == len(job.series.slices)
    )


def _report(job: SeriesJob) -> dict[str, str]:
    return {"report": f"{job.name}/report.html"}


def _unreadable_row(path: Path, why: str) -> dict[str, Any]:
    return {
        "name": f"unreadable file {path.name}",
        "input": str(path),
        "series_uid": "",
        "status": "failed",
        "seconds": 0.0,
        "error": f"{path}: {why}",
    }


def _clear_staging(output: Path) -> None:
    """Remove staging folders a killed run left behind (their studies are redone)."""
    for staging in [*output.glob(".*.partial"), *output.glob(".*.old")]:
        if staging.is_dir():
            shutil.rmtree(staging)


def _progress(jobs: list[SeriesJob], enabled: bool) -> Iterable[SeriesJob]:
    if not enabled or not jobs:
        return jobs
    from tqdm.auto import tqdm

    return tqdm(jobs, desc="series", unit="series")


def _write_summary(
    output: Path, rows: list[dict[str, Any]], workflow: Workflow, tree: Any, seconds: float
) -> None:
    from ctpipe.export.report import write_batch_index

    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    summary = {
        "workflow": workflow.name,
        "workflow_sha256": workflow.sha256,
        "input": str(tree),
        "seconds": round(seconds, 2),
        "counts": counts,
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
