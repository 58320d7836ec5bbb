"""``ctpipe demo``: the default workflow end to end on a phantom or a given series.

Example:
    >>> from ctpipe.cli.common import parse_args
    >>> parse_args(add_demo_parser, ["demo", "--output", "out"]).output
    'out'
"""

from __future__ import annotations

import argparse

from ctpipe.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    SubParsers,
    add_command,
    add_series_options,
    series_keywords,
)

__all__ = ["add_demo_parser"]


def add_demo_parser(sub: SubParsers) -> None:
    """Add ``demo`` to a CLI."""
    p = add_command(sub, "demo", run_demo_command)
    p.add_argument("--input", help="DICOM folder/file or NIfTI to use instead of the phantom")
    p.add_argument("--output", default="ctpipe_demo", help="output folder (default: %(default)s)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write into an output folder that holds files ctpipe did not write",
    )
    add_series_options(p)


def run_demo_command(args: argparse.Namespace) -> int:
    """Run the default workflow (denoise, segment, export) on a sample series.

    Run the default workflow (denoise -> segment -> derived DICOM, DICOM-SEG, NIfTI,
    previews, HTML report) on a CT series: a generated phantom unless --input is given.
    Prints the series summary and where the report is.

    Returns:
        0 when the study is done, 1 when it failed.
    """
    from ctpipe.demo import run_demo
    from ctpipe.workflow.runner import FINISHED

    result = run_demo(
        input_path=args.input,
        output=args.output,
        overwrite=args.overwrite,
        **series_keywords(args),
    )
    return EXIT_OK if result.study.status in FINISHED else EXIT_PROBLEMS
