"""``ctpipe run`` and ``ctpipe batch``: run a workflow on one study or on a folder tree.

``ctpipe run WORKFLOW --input PATH --output DIR`` runs the workflow on one study (a DICOM
folder or file, or a NIfTI volume) and prints where the report and the record are.
``ctpipe batch WORKFLOW --input TREE --output DIR`` runs it on every DICOM series under
``TREE``, one study folder each, with a progress bar; a re-run skips series already done.
``--workers N`` runs the series on a local Dask cluster of N processes, ``--scheduler
ADDRESS`` on an existing Dask cluster (``--task-resources GPU=1``: one series per GPU).
``WORKFLOW`` is a YAML file or the name of a shipped one (``denoise_segment``,
``denoise_only``, ``segment_only``, ...: :mod:`ctpipe.workflow.shipped`). The workflow
is checked before any work starts. Nothing the user wrote is replaced: ``--output`` may
not be, hold or lie inside the input, and an existing folder must be empty or one ctpipe
wrote (a study folder with its ``run.json``, a batch folder with its ``batch.json``)
unless ``--overwrite`` is given. A failed run leaves an earlier result as it was.
Exit status: 0 when everything is done, 1 when a study failed while processing (its error
is recorded and printed), 2 when the workflow, the input or the output is unusable (for
``run``, a study that failed on its input: recorded too). A study the ``guard`` step finds
out of distribution is not a failure: its warning is printed, recorded and shown in the
report and the batch summary.

Example:
    >>> from ctpipe.cli.common import parse_args
    >>> argv = ["batch", "wf.yaml", "--input", "tree", "--output", "out"]
    >>> args = parse_args(add_workflow_parsers, argv)
    >>> args.func is run_batch_command, args.resume
    (True, True)
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ctpipe.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_PROBLEMS,
    SubParsers,
    add_allow_non_hu,
    add_command,
    error_line,
    one_line,
)
from ctpipe.workflow.shipped import resolve_workflow, shipped_dir

__all__ = ["add_workflow_parsers", "resolve_workflow", "run_batch_command", "run_command"]

#: Folder of the workflow files shipped with ctpipe (in the package or the checkout).
WORKFLOWS_DIR = shipped_dir()


def add_workflow_parsers(subparsers: SubParsers) -> None:
    """Add ``run`` and ``batch`` to a CLI."""
    run = add_command(subparsers, "run", run_command)
    _common(run)
    run.add_argument("--input", required=True, help="DICOM folder or file, or NIfTI volume")
    run.add_argument("--output", required=True, metavar="DIR", help="the study's output folder")
    batch = add_command(subparsers, "batch", run_batch_command)
    _common(batch)
    batch.add_argument("--input", required=True, metavar="TREE", help="folder to search")
    batch.add_argument("--output", required=True, metavar="DIR", help="the batch folder")
    batch.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="redo series already done instead of skipping them",
    )
    batch.add_argument("--no-progress", dest="progress", action="store_false", help="no bar")
    cluster = batch.add_mutually_exclusive_group()
    cluster.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run series as tasks on this Dask scheduler (e.g. tcp://head:8786)",
    )
    cluster.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="run series on a local Dask cluster of N worker processes",
    )
    batch.add_argument(
        "--task-resources",
        metavar="NAME=AMOUNT",
        help="Dask resources each series needs, e.g. GPU=1 for workers started with "
        "--resources GPU=1 (one series per GPU at a time)",
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workflow", help="workflow YAML file or shipped workflow name")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into an output folder that holds files ctpipe did not write, replacing "
        "them (never the input)",
    )
    add_allow_non_hu(parser)


def run_command(args: argparse.Namespace) -> int:
    """Run a workflow on one study (DICOM folder/file or NIfTI).

    Run WORKFLOW (a YAML file or a shipped workflow's name) on one study and write its
    outputs, report and run record to DIR. DIR must be new, empty or the study folder of
    an earlier run (replaced only when the new run succeeds).

    Returns:
        0 when the study is done, 1 when it failed while processing, 2 when it failed on
        its input.
    """
    from ctpipe.workflow import load_workflow, run_study
    from ctpipe.workflow.runner import FINISHED

    _logging(args.verbose)
    path = resolve_workflow(args.workflow)
    workflow = _with_input_flags(load_workflow(path), args)
    result = run_study(
        workflow, args.input, args.output, workflow_source=path, overwrite=args.overwrite
    )
    print(f"{result.status}: {result.name} in {result.seconds:.1f} s")
    for warning in result.warnings:
        print(f"WARNING: {one_line(warning)}", file=sys.stderr)
    if result.error:
        print(error_line(result.error), file=sys.stderr)
    if result.kept_previous:
        print(f"kept: the earlier result in {result.output_dir} is left as it was")
    elif result.report is not None:
        print(f"report: {result.report}")
    if result.written:
        print(f"record: {result.output_dir / 'run.json'}")
    if result.status in FINISHED:
        return EXIT_OK
    return EXIT_ERROR if result.bad_input else EXIT_PROBLEMS


def run_batch_command(args: argparse.Namespace) -> int:
    """Run a workflow on every DICOM series under a folder tree.

    Run WORKFLOW on every DICOM series under TREE: one study folder per series in DIR, plus
    batch.json, summary.csv and index.html. A failing series is recorded and the rest go
    on; a re-run skips series already done.

    Returns:
        0 when no series failed, 1 when one did.
    """
    from ctpipe.errors import InputError
    from ctpipe.workflow import load_workflow, run_batch
    from ctpipe.workflow.cluster import close, connect, parse_resources

    _logging(args.verbose)
    path = resolve_workflow(args.workflow)
    workflow = _with_input_flags(load_workflow(path), args)
    try:
        resources = parse_resources(args.task_resources)
    except ValueError as err:
        raise InputError("--task-resources", str(err)) from None
    client = None
    if args.scheduler or args.workers:
        client = connect(args.scheduler, args.workers)
        print(f"Dask: {client.dashboard_link or client.scheduler.address}", file=sys.stderr)
    try:
        result = run_batch(
            workflow,
            args.input,
            args.output,
            resume=args.resume,
            progress=args.progress,
            workflow_source=path.resolve() if path.exists() else path,
            client=client,
            task_resources=resources,
            overwrite=args.overwrite,
        )
    finally:
        if client is not None:
            close(client)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(result.counts.items()))
    print(f"{len(result.rows)} series in {result.seconds:.1f} s: {counts or 'none'}")
    for row in result.rows:
        if row["status"] == "failed":
            print(f"failed: {row['name']}: {row['error']}", file=sys.stderr)
    for row in result.flagged:
        print(f"WARNING: {row['name']}: {row['warning']}", file=sys.stderr)
    print(f"summary: {Path(args.output) / 'summary.csv'}")
    print(f"index: {Path(args.output) / 'index.html'}")
    return result.exit_code


def _with_input_flags(workflow, args: argparse.Namespace):
    """The workflow with ``--allow-non-hu`` applied to its ``input`` section."""
    if not args.allow_non_hu:
        return workflow
    from dataclasses import replace

    return replace(workflow, input=replace(workflow.input, allow_non_hu=True))


class _StderrHandler(logging.StreamHandler):
    """Writes to the ``sys.stderr`` of the moment, not the one when it was made.

    A process that runs several commands (tests, notebooks) may replace ``sys.stderr``
    between them; a handler holding an old, closed stream would print a traceback.
    """

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr  # no flush of the old one: it may be closed
        super().emit(record)


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="ctpipe: %(message)s",
        handlers=[_StderrHandler()],
        force=True,  # this command's level, whatever ran before in the process
    )
    # pydicom logs a traceback for every decoder that fails on damaged pixel data; the
    # reader then names the file in one line, so those tracebacks are only noise.
    logging.getLogger("pydicom").setLevel(logging.DEBUG if verbose else logging.CRITICAL)
