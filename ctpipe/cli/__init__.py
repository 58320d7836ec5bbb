"""The ``ctpipe`` command: one module per command group, :func:`main` in :mod:`.main`.

Each sub-command imports what it needs inside its handler, so ``ctpipe --help`` answers
without loading torch or MONAI.

Example:
    >>> from ctpipe.cli import main
    >>> main(["--version"])  # doctest: +SKIP
    ctpipe 0.1.0
"""

from ctpipe.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
