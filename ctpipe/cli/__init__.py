"""The ``ctpipe`` command: one module per command group, :func:`main` in :mod:`.main`.

A command group's module has an ``add_*_parser(subparsers)`` that adds its commands to the
``ctpipe`` parser (:func:`ctpipe.cli.main.build_parser` calls each); every command sets
``func``, a handler taking the parsed arguments and returning the exit status
(:data:`ctpipe.errors.EXIT_OK`, ``EXIT_PROBLEMS``, ``EXIT_ERROR``). Each handler imports
what it needs inside, so ``ctpipe --help`` answers without loading torch or MONAI. A new
command is a module here and one line in :func:`~ctpipe.cli.main.build_parser`; its help and
description are its handler's docstring (:func:`ctpipe.cli.common.add_command`).

Example:
    >>> from ctpipe.cli import main
    >>> main(["--version"])  # doctest: +SKIP
    ctpipe 0.1.0
"""

from ctpipe.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
