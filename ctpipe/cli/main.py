"""The ``ctpipe`` command.

Each sub-command imports what it needs inside its handler, so ``ctpipe --help`` answers
without loading torch or MONAI. Errors ctpipe raises on purpose (bad input) print one line
naming the file and the problem and exit with status 2; ``--debug`` shows the traceback.

Example:
    $ ctpipe info /data/CT
    $ ctpipe demo --output ctpipe_demo
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence

from ctpipe import __version__
from ctpipe.cli.common import EXIT_ERROR, EXIT_OK, EXIT_PROBLEMS


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="ctpipe",
        description="CT research pipeline: DICOM/NIfTI I/O with exact HU and geometry, "
        "low-dose denoising, segmentation and export.",
    )
    parser.add_argument("--version", action="version", version=f"ctpipe {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_info(sub)
    _add_demo(sub)
    from ctpipe.cli.anomaly import add_anomaly_parser
    from ctpipe.cli.data import add_data_parser
    from ctpipe.cli.evaluate import add_evaluate_parser
    from ctpipe.cli.inpaint import add_inpaint_parser
    from ctpipe.cli.pacs import add_pacs_parsers
    from ctpipe.cli.segment import add_segment_parser
    from ctpipe.cli.simulate import add_simulate_parser
    from ctpipe.cli.train import add_train_parser
    from ctpipe.cli.vae import add_vae_parser
    from ctpipe.cli.workflow import add_workflow_parsers

    add_workflow_parsers(sub)
    add_data_parser(sub)
    add_simulate_parser(sub)
    add_train_parser(sub)
    add_segment_parser(sub)
    add_evaluate_parser(sub)
    add_pacs_parsers(sub)
    add_vae_parser(sub)
    add_anomaly_parser(sub)
    add_inpaint_parser(sub)
    return parser


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="list the DICOM series under a folder",
        description="List every DICOM image series under PATH: patient, study, series, "
        "modality, slices, size, spacing, kernel and any problems that stop it from "
        "being read as a regular volume.",
    )
    p.add_argument("path", help="folder (searched recursively) or DICOM file")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_info)


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the default workflow (denoise, segment, export) on a sample series",
        description="Run the default workflow (denoise -> segment -> derived DICOM, "
        "DICOM-SEG, NIfTI, previews, HTML report) on a CT series: a generated phantom "
        "unless --input is given. Prints the series summary and where the report is.",
    )
    p.add_argument("--input", help="DICOM folder/file or NIfTI to use instead of the phantom")
    p.add_argument("--output", default="ctpipe_demo", help="output folder (default: %(default)s)")
    p.add_argument("--series", help="SeriesInstanceUID when the input holds several series")
    p.add_argument(
        "--allow-irregular",
        action="store_true",
        help="read series with missing slices or a tilted gantry (with a warning)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write into an output folder that holds files ctpipe did not write",
    )
    p.set_defaults(func=_cmd_demo)


def _cmd_info(args: argparse.Namespace) -> int:
    from ctpipe.io.discovery import scan_dicom

    scan = scan_dicom(args.path, progress=True)
    rows = [s.describe() for s in scan.series]
    if args.json:
        print(json.dumps({"series": rows, **_scan_extras(scan)}, indent=2))
    else:
        print(format_series_table(rows))
        for path, why in scan.unreadable:
            print(f"unreadable: {path}: {why}")
        if scan.skipped:
            print(f"skipped {len(scan.skipped)} non-DICOM file(s)")
    return EXIT_PROBLEMS if any(r["problems"] for r in rows) or scan.unreadable else EXIT_OK


def _scan_extras(scan) -> dict:
    return {
        "skipped": [str(p) for p in scan.skipped],
        "unreadable": [{"path": str(p), "problem": why} for p, why in scan.unreadable],
        "non_image": [str(p) for p in scan.non_image],
    }


TABLE_COLUMNS = (
    "patient",
    "modality",
    "slices",
    "size",
    "spacing",
    "kernel",
    "description",
    "series",
)


def format_series_table(rows: Sequence[dict]) -> str:
    """Format series summaries as a text table, problems indented below each row.

    Example:
        >>> print(format_series_table([]))
        no series
    """
    if not rows:
        return "no series"
    cells = [[str(r[c]) for c in TABLE_COLUMNS] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(TABLE_COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(TABLE_COLUMNS, widths, strict=True))]
    for row, cell in zip(rows, cells, strict=True):
        lines.append("  ".join(v.ljust(w) for v, w in zip(cell, widths, strict=True)))
        lines.append(f"    folder: {row['folder']}  study: {row['study']}")
        lines += [f"    note: {n}" for n in row["notes"]]
        lines += [f"    PROBLEM: {p}" for p in row["problems"]]
    return "\n".join(lines)


def _cmd_demo(args: argparse.Namespace) -> int:
    from ctpipe.demo import run_demo

    result = run_demo(
        input_path=args.input,
        output=args.output,
        series_uid=args.series,
        allow_irregular=args.allow_irregular,
        overwrite=args.overwrite,
    )
    return EXIT_OK if result.study.status == "done" else EXIT_PROBLEMS


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Print warnings as one ``ctpipe: warning:`` line, without source lines."""
    print(f"ctpipe: warning: {message}", file=file or sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ctpipe`` command; return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_ERROR
    from ctpipe.errors import CTPipeError

    warnings.showwarning = _show_warning
    try:
        return int(args.func(args))
    except CTPipeError as exc:
        if args.debug:
            raise
        print(f"ctpipe: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # a disk full or a path that cannot be written, named
        if args.debug:
            raise
        where = exc.filename if exc.filename is not None else "(no path)"
        print(f"ctpipe: error: {where}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("ctpipe: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
