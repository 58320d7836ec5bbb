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
import sys
import warnings
from collections.abc import Sequence

from ctpipe import __version__
from ctpipe.cli.common import EXIT_ERROR, error_line, one_line, positive_int


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="ctpipe",
        description="CT research pipeline: DICOM/NIfTI I/O with exact HU and geometry, "
        "low-dose denoising, segmentation and export.",
    )
    parser.add_argument("--version", action="version", version=f"ctpipe {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument(
        "--max-voxels",
        type=positive_int,
        metavar="N",
        help="largest volume any command reads, in voxels, checked on the declared size "
        "before allocating (default: 2**30, i.e. 4 GiB as float32; or CTPIPE_MAX_VOXELS)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from ctpipe.cli.anomaly import add_anomaly_parser
    from ctpipe.cli.data import add_data_parser
    from ctpipe.cli.demo import add_demo_parser
    from ctpipe.cli.evaluate import add_evaluate_parser
    from ctpipe.cli.info import add_info_parser
    from ctpipe.cli.inpaint import add_inpaint_parser
    from ctpipe.cli.pacs import add_pacs_parsers
    from ctpipe.cli.segment import add_segment_parser
    from ctpipe.cli.simulate import add_simulate_parser
    from ctpipe.cli.train import add_train_parser
    from ctpipe.cli.vae import add_vae_parser
    from ctpipe.cli.workflow import add_workflow_parsers

    add_info_parser(sub)
    add_demo_parser(sub)
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


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Print warnings as one ``ctpipe: warning:`` line, without source lines."""
    print(f"ctpipe: warning: {one_line(str(message))}", file=file or sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ctpipe`` command; return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_ERROR
    from ctpipe.errors import CTPipeError
    from ctpipe.io.limits import voxel_limit

    warnings.showwarning = _show_warning
    try:
        with voxel_limit(args.max_voxels):
            return int(args.func(args))
    except CTPipeError as exc:
        if args.debug:
            raise
        print(error_line(exc), file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # a disk full or a path that cannot be written, named
        if args.debug:
            raise
        where = exc.filename if exc.filename is not None else "(no path)"
        print(error_line(f"{where}: {exc.strerror or exc}"), file=sys.stderr)
        return EXIT_ERROR
    except MemoryError:
        if args.debug:
            raise
        print("ctpipe: error: out of memory (see --max-voxels)", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("ctpipe: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # no traceback for users: one line, --debug shows it
        if args.debug:
            raise
        text = str(exc).strip().splitlines()
        detail = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
        print(
            f"ctpipe: error: internal error ({detail}); please report it with the output "
            "of --debug",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
