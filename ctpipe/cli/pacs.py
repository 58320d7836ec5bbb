"""The ``ctpipe serve`` and ``ctpipe pull`` commands: PACS integration.

``ctpipe serve CONFIG`` runs a DICOM node (:class:`ctpipe.pacs.node.PacsNode`) from a YAML
configuration (``workflows/pacs_node.yaml``) until SIGTERM or Ctrl-C; ``--status`` prints
its job queue instead. ``ctpipe pull`` finds studies on a PACS by C-FIND or QIDO-RS,
retrieves them by C-GET, C-MOVE or WADO-RS into a folder, and optionally runs a workflow on
each retrieved series.

Heavy modules are imported inside the handlers so that ``ctpipe --help`` stays fast.

Example:
    >>> from ctpipe.cli.common import parse_args
    >>> argv = ["pull", "--dimse", "ORTHANC@127.0.0.1:4242", "-o", "out"]
    >>> args = parse_args(add_pacs_parsers, argv)
    >>> args.func is run_pull, parse_dimse_address(args.dimse)
    (True, ('ORTHANC', '127.0.0.1', 4242))
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from ctpipe.cli.common import EXIT_OK, EXIT_PROBLEMS, SubParsers, add_command

__all__ = ["add_pacs_parsers", "parse_dimse_address", "run_pull", "run_serve"]


#: The study filters of ``pull`` (the fields of :class:`ctpipe.pacs.pull.StudyQuery`), each
#: an option ``--patient-id`` etc., with its help.
STUDY_FILTERS: dict[str, str | None] = {
    "patient_id": None,
    "patient_name": "Family^Given; wildcards * and ? allowed",
    "study_date": "YYYYMMDD or YYYYMMDD-YYYYMMDD",
    "modality": "a modality in the study, e.g. CT",
    "accession_number": None,
    "study_uid": None,
    "study_description": None,
}


def add_pacs_parsers(subparsers: SubParsers) -> None:
    """Add the ``serve`` and ``pull`` commands to a CLI.

    Args:
        subparsers: The object returned by ``parser.add_subparsers()``.
    """
    _add_serve(subparsers)
    _add_pull(subparsers)


def _add_serve(subparsers: SubParsers) -> None:
    p = add_command(subparsers, "serve", run_serve)
    p.add_argument("config", help="node configuration (YAML, see workflows/pacs_node.yaml)")
    p.add_argument("--status", action="store_true", help="print the job queue and exit")
    p.add_argument("--verbose", action="store_true", help="log every received instance")


def _add_pull(subparsers: SubParsers) -> None:
    p = add_command(subparsers, "pull", run_pull)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--dimse", metavar="AET@HOST:PORT", help="PACS reached by DIMSE")
    source.add_argument("--dicomweb", metavar="URL", help="DICOMweb base URL of the PACS")
    p.add_argument("--calling-ae", default="CTPIPE", help="our AE title (default: %(default)s)")
    p.add_argument(
        "--retrieve",
        choices=("get", "move"),
        default="get",
        help="DIMSE retrieval: C-GET, or C-MOVE to --calling-ae (default: %(default)s)",
    )
    p.add_argument(
        "--move-port", type=int, default=11113, help="our port for C-MOVE (default: %(default)s)"
    )
    for key, help in STUDY_FILTERS.items():
        p.add_argument("--" + key.replace("_", "-"), help=help)
    p.add_argument("--limit", type=int, help="retrieve at most this many studies")
    p.add_argument("--list", action="store_true", help="only list the matching studies")
    p.add_argument("-o", "--output", default="pulled", help="folder (default: %(default)s)")
    run = p.add_mutually_exclusive_group()
    run.add_argument("--workflow", help="run this workflow file on each retrieved series")
    run.add_argument("--processor", help="run this module:callable on each retrieved series")


def parse_dimse_address(text: str) -> tuple[str, str, int]:
    """Split ``AET@HOST:PORT``.

    Raises:
        CTPipeError: When the text has another form.

    Example:
        >>> parse_dimse_address("PACS@pacs.example.org:104")
        ('PACS', 'pacs.example.org', 104)
    """
    from ctpipe.errors import CTPipeError

    aet, at, address = text.partition("@")
    host, colon, port = address.rpartition(":")
    if not (at and colon and aet and host and port.isdigit()):
        raise CTPipeError(f"--dimse must be AET@HOST:PORT, got {text!r}")
    return aet, host, int(port)


def configure_logging(verbose: bool = False) -> None:
    """Log ctpipe's messages to stderr with time stamps; other libraries' warnings only."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("pynetdicom", "highdicom", "dicomweb_client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# --- serve -------------------------------------------------------------------------------------


def run_serve(args: argparse.Namespace) -> int:
    """Run a DICOM node: receive series, run a workflow, send the results.

    Run a DICOM node (C-STORE SCP) that writes every received instance to disk before
    acknowledging it, runs the configured workflow on each complete series and sends the
    results by C-STORE or STOW-RS, with retries. Its job queue survives restarts. Stop it
    with Ctrl-C or SIGTERM.

    Returns:
        0 when the node stops, or after printing the job queue (``--status``).
    """
    from ctpipe.pacs.config import load_serve_config

    config = load_serve_config(args.config)
    if args.status:
        print(format_status(config.storage_path))
        return EXIT_OK
    configure_logging(args.verbose)
    from ctpipe.pacs.node import PacsNode

    processor = build_processor(config.workflow, config.processor, source=args.config)
    PacsNode(config, processor).serve_forever()
    return EXIT_OK


def build_processor(workflow: str | None, processor: str | None, *, source: str) -> Any:
    """The processor a serve config or pull command names (a workflow or module:callable)."""
    from ctpipe.pacs.processor import WorkflowProcessor, load_processor

    if workflow is not None:
        return WorkflowProcessor(workflow)
    return load_processor(str(processor), source=source)


def format_status(storage: Path) -> str:
    """A table of a node's jobs, newest last, with counts per state."""
    from datetime import datetime

    from ctpipe.errors import InputError
    from ctpipe.pacs.queue import DATABASE_NAME, JobQueue

    if not (storage / DATABASE_NAME).is_file():
        raise InputError(storage, f"no job queue here ({DATABASE_NAME} is missing)")
    queue = JobQueue(storage)
    try:
        lines = [f"{'job':>6}  {'state':<10}  {'updated':<19}  {'from':<16}  series / error"]
        for job in queue.jobs():
            when = datetime.fromtimestamp(job.updated_at).strftime("%Y-%m-%d %H:%M:%S")
            line = f"{job.id:>6}  {job.state:<10}  {when}  {job.calling_aet:<16}  {job.series_uid}"
            lines.append(line + "".join(f"\n{'':>8}{note}" for note in _notes(job)))
        counts = queue.counts()
    finally:
        queue.close()
    lines.append(", ".join(f"{state}: {n}" for state, n in counts.items()))
    return "\n".join(lines)


def _notes(job: Any) -> list[str]:
    """The lines under a job in ``--status``: incomplete, revision, error."""
    notes = []
    if job.incomplete:
        notes.append(f"INCOMPLETE: {job.incomplete}")
    if job.revised:
        notes.append(f"REVISED: results of job {job.supersedes} were sent before this one")
    elif job.supersedes is not None:
        notes.append(f"includes the instances of job {job.supersedes}")
    if job.error:
        notes.append(job.error)
    return notes


# --- pull --------------------------------------------------------------------------------------


def run_pull(args: argparse.Namespace) -> int:
    """Find studies on a PACS and retrieve them (C-FIND/C-GET/C-MOVE or DICOMweb).

    Query a PACS for studies matching the filters (C-FIND or QIDO-RS) and retrieve them
    (C-GET, C-MOVE or WADO-RS) into OUTPUT/<study>/<series>/, optionally running a
    workflow on each retrieved series.

    Returns:
        0, or 1 when the workflow failed on a retrieved series.
    """
    from ctpipe.errors import CTPipeError
    from ctpipe.pacs.pull import find_studies, retrieve_study

    configure_logging()
    try:
        peer, query = _peer(args), _query(args)
    except ValueError as err:
        raise CTPipeError(f"pull: {err}") from None
    processor = None
    if args.workflow or args.processor:
        processor = build_processor(args.workflow, args.processor, source="--processor")
    studies = find_studies(peer, query)
    if args.limit is not None:
        studies = studies[: max(args.limit, 0)]
    print(f"{len(studies)} matching study(ies) on {peer.describe()}")
    for study in studies:
        count = "?" if study.instances is None else study.instances
        print(
            f"  {study.study_uid}  patient {study.patient_id}  date {study.study_date}  "
            f"{study.modalities}  {count} instance(s)  {study.description}"
        )
    if args.list:
        return EXIT_OK
    output = Path(args.output)
    failures = 0
    for study in studies:
        files = retrieve_study(peer, study.study_uid, output)
        print(f"retrieved {len(files)} file(s) of study {study.study_uid}")
        if processor is not None:
            failures += _process_series(processor, sorted({f.parent for f in files}), output)
    return EXIT_PROBLEMS if failures else EXIT_OK


def _process_series(processor: Any, series_folders: list[Path], output: Path) -> int:
    from ctpipe.errors import CTPipeError

    failures = 0
    for folder in series_folders:
        results = output / "results" / folder.relative_to(output)
        results.mkdir(parents=True, exist_ok=True)
        try:
            files = processor(folder, results)
        except CTPipeError as err:
            print(f"  failed: {folder}: {err}", file=sys.stderr)
            failures += 1
            continue
        print(f"  processed {folder}: {len(files)} result file(s) in {results}")
    return failures


def _peer(args: argparse.Namespace) -> Any:
    from ctpipe.pacs.pull import DimsePeer, WebPeer

    if args.dicomweb:
        return WebPeer(url=args.dicomweb)
    aet, host, port = parse_dimse_address(args.dimse)
    return DimsePeer(
        ae_title=aet,
        host=host,
        port=port,
        calling_ae=args.calling_ae,
        retrieve=args.retrieve,
        move_port=args.move_port,
    )


def _query(args: argparse.Namespace) -> Any:
    from ctpipe.pacs.pull import StudyQuery

    return StudyQuery(**{key: getattr(args, key) for key in STUDY_FILTERS})
