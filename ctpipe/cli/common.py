"""What every ``ctpipe`` sub-command module shares: exit codes and command groups.

Exit codes: 0 when everything is done, 1 when the command ran but found problems (a
failed study, a manifest mismatch), 2 on unusable input (one line naming the file).

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="ctpipe")
    >>> group, commands = add_command_group(
    ...     parser.add_subparsers(), "data", help="datasets", description="Datasets."
    ... )
    >>> group.prog, EXIT_ERROR
    ('ctpipe data', 2)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ctpipe.errors import EXIT_ERROR, EXIT_OK, EXIT_PROBLEMS

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "SubParsers",
    "add_allow_irregular",
    "add_allow_non_hu",
    "add_command",
    "add_command_group",
    "add_series_options",
    "error_line",
    "one_line",
    "parse_args",
    "positive_int",
    "print_help",
]

#: The commands of a parser (what ``ArgumentParser.add_subparsers()`` returns).
SubParsers = argparse._SubParsersAction

#: A command's handler: parsed arguments in, exit status out.
Handler = Callable[[argparse.Namespace], int]


def print_help(parser: argparse.ArgumentParser) -> int:
    """Print ``parser``'s help to stderr; return :data:`EXIT_ERROR` (no command was given)."""
    parser.print_help(sys.stderr)
    return EXIT_ERROR


def add_command(
    subparsers: SubParsers, name: str, handler: Handler, *, help: str, description: str
) -> argparse.ArgumentParser:
    """Add the command ``name`` that runs ``handler`` on the parsed arguments.

    Returns:
        The command's parser: add its arguments to it.

    Example:
        >>> parser = argparse.ArgumentParser(prog="ctpipe")
        >>> _ = add_command(parser.add_subparsers(), "hi", lambda a: 0, help="-", description="-")
        >>> parser.parse_args(["hi"]).func(None)
        0
    """
    parser = subparsers.add_parser(name, help=help, description=description)
    parser.set_defaults(func=handler)
    return parser


def add_command_group(
    subparsers: argparse._SubParsersAction,
    name: str,
    *,
    help: str,
    description: str,
    title: str = "commands",
    metavar: str = "COMMAND",
) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """Add a command group (``ctpipe NAME COMMAND``) that prints its help when bare.

    Returns:
        ``(group_parser, commands)``: add the group's commands to ``commands``.
    """
    group = subparsers.add_parser(name, help=help, description=description)
    group.set_defaults(func=lambda _args: print_help(group))
    return group, group.add_subparsers(title=title, metavar=metavar)


def parse_args(
    add_parser: Callable[[argparse._SubParsersAction], object], argv: Sequence[str]
) -> argparse.Namespace:
    """Parse ``argv`` with a ``ctpipe`` parser holding only what ``add_parser`` adds.

    For examples and tests of one command module.

    Example:
        >>> def add(subparsers):
        ...     subparsers.add_parser("hello").add_argument("--name")
        >>> parse_args(add, ["hello", "--name", "CT"]).name
        'CT'
    """
    parser = argparse.ArgumentParser(prog="ctpipe")
    add_parser(parser.add_subparsers())
    return parser.parse_args(list(argv))


def add_allow_non_hu(parser: argparse.ArgumentParser) -> None:
    """Add ``--allow-non-hu``: read input that does not look like CT in HU anyway.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_allow_non_hu(parser)
        >>> parser.parse_args(["--allow-non-hu"]).allow_non_hu
        True
    """
    parser.add_argument(
        "--allow-non-hu",
        action="store_true",
        help="read input that does not look like CT in Hounsfield units (a missing or invalid "
        "DICOM rescale, no air in the volume) instead of refusing it; the numbers computed "
        "from it are then yours to trust",
    )


def add_series_options(parser: argparse.ArgumentParser, *, irregular: bool = True) -> None:
    """Add the options of which series to read and what input to accept anyway.

    ``--series UID``, ``--allow-irregular`` (unless ``irregular`` is false) and
    ``--allow-non-hu`` (:func:`add_allow_non_hu`).

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_series_options(parser)
        >>> parser.parse_args(["--series", "1.2.3", "--allow-irregular"]).allow_irregular
        True
    """
    parser.add_argument("--series", help="SeriesInstanceUID when the input holds several series")
    if irregular:
        add_allow_irregular(parser)
    add_allow_non_hu(parser)


def add_allow_irregular(parser: argparse.ArgumentParser) -> None:
    """Add ``--allow-irregular``: read a series with gaps or a tilted gantry anyway."""
    parser.add_argument(
        "--allow-irregular",
        action="store_true",
        help="read DICOM series with missing slices or a tilted gantry (with a warning)",
    )


def positive_int(text: str) -> int:
    """An ``argparse`` type: a whole number >= 1.

    Example:
        >>> positive_int("4")
        4
        >>> positive_int("0")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: must be a positive integer, got '0'
    """
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def one_line(text: str) -> str:
    r"""``text`` with control characters escaped, so a message stays on one line.

    A file name may hold a newline; the error about it must still be one line.

    Example:
        >>> one_line("/data/IM\n1.dcm: file is truncated")
        '/data/IM\\n1.dcm: file is truncated'
    """
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


def error_line(message: object) -> str:
    """The one ``ctpipe: error:`` line every command prints for a failure.

    Example:
        >>> error_line("/data/a.dcm: file is truncated")
        'ctpipe: error: /data/a.dcm: file is truncated'
    """
    return f"ctpipe: error: {one_line(str(message))}"
