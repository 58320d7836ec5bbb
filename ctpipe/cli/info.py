"""``ctpipe info PATH``: list the DICOM series under a folder, with their problems.

With ``--workflow WORKFLOW``, also which series its ``select`` rules take, and why it
leaves each other one out.

Example:
    >>> print(format_series_table([]))
    no series
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from ctpipe.cli.common import EXIT_OK, EXIT_PROBLEMS, SubParsers, add_command

__all__ = ["add_info_parser", "format_series_table"]


def add_info_parser(sub: SubParsers) -> None:
    """Add ``info`` to a CLI."""
    p = add_command(sub, "info", run_info)
    p.add_argument("path", help="folder (searched recursively) or DICOM file")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--workflow",
        metavar="WORKFLOW",
        help="also show which series this workflow (YAML file or shipped name) would take, "
        "and why it leaves the others out (its select rules)",
    )


def run_info(args: argparse.Namespace) -> int:
    """List the DICOM series under a folder.

    List every DICOM image series under PATH: patient, study, series, modality, slices,
    size, spacing, kernel and any problems that stop it from being read as a regular
    volume.

    Returns:
        0, or 1 when a series has problems or a file is unreadable.
    """
    from ctpipe.io.discovery import scan_dicom

    scan = scan_dicom(args.path, progress=True)
    rows = [s.describe() for s in scan.series]
    if getattr(args, "workflow", None):
        _add_selection(rows, scan, args.workflow)
    if args.json:
        print(json.dumps({"series": rows, **_scan_extras(scan)}, indent=2))
    else:
        print(format_series_table(rows))
        for path, why in scan.unreadable:
            print(f"unreadable: {path}: {why}")
        if scan.skipped:
            print(f"skipped {len(scan.skipped)} non-DICOM file(s)")
    return EXIT_PROBLEMS if any(r["problems"] for r in rows) or scan.unreadable else EXIT_OK


def _add_selection(rows: list[dict], scan, workflow_name: str) -> None:
    """Add each series' ``selected`` and ``selection`` (the reason) under a workflow's rules."""
    from ctpipe.workflow import load_workflow
    from ctpipe.workflow.shipped import resolve_workflow

    workflow = load_workflow(resolve_workflow(workflow_name), check_weights=False)
    for row, choice in zip(rows, workflow.select.decide(scan.series), strict=True):
        row["selected"] = choice.selected
        row["selection"] = choice.reason


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
    columns = ("workflow", *TABLE_COLUMNS) if "selected" in rows[0] else TABLE_COLUMNS
    cells = [[_cell(r, c) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    for row, cell in zip(rows, cells, strict=True):
        lines.append("  ".join(v.ljust(w) for v, w in zip(cell, widths, strict=True)))
        lines.append(f"    folder: {row['folder']}  study: {row['study']}")
        if row.get("selection"):
            lines.append(f"    {'chosen' if row['selected'] else 'left out'}: {row['selection']}")
        lines += [f"    note: {n}" for n in row["notes"]]
        lines += [f"    PROBLEM: {p}" for p in row["problems"]]
    return "\n".join(lines)


def _cell(row: dict, column: str) -> str:
    if column == "workflow":
        return "takes" if row["selected"] else "skips"
    return str(row[column])
