"""What every ``ctpipe`` sub-command module shares: exit codes, commands and their options.

A command's help and description are its handler's docstring (:func:`add_command`).

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
import inspect
import itertools
import sys
from collections.abc import Callable, Sequence
from typing import Any

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
    "docstring_help",
    "error_line",
    "one_line",
    "parse_args",
    "positive_int",
    "print_help",
    "series_keywords",
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
    subparsers: SubParsers,
    name: str,
    handler: Handler,
    *,
    help: str | None = None,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """Add the command ``name`` that runs ``handler`` on the parsed arguments.

    The command's help (its line in the command list) and description (the text above its
    options) come from the handler's docstring (:func:`docstring_help`), so the text users
    read is written once, beside the code that does what it says; ``help`` and
    ``description`` replace them where the text lives elsewhere.

    Returns:
        The command's parser: add its arguments to it.

    Example:
        >>> def run_hello(args):
        ...     '''Say hello.
        ...
        ...     Print a greeting and exit.
        ...
        ...     Returns:
        ...         0.
        ...     '''
        ...     return 0
        >>> parser = argparse.ArgumentParser(prog="ctpipe")
        >>> hello = add_command(parser.add_subparsers(), "hello", run_hello)
        >>> parser.parse_args(["hello"]).func(None), hello.description
        (0, 'Print a greeting and exit.')
    """
    if help is None or description is None:
        doc_help, doc_description = docstring_help(handler)
        help = doc_help if help is None else help
        description = doc_description if description is None else description
    parser = subparsers.add_parser(name, help=help, description=description)
    parser.set_defaults(func=handler)
    return parser


#: Google-style section headers: a command's description ends at the first of them.
DOCSTRING_SECTIONS = frozenset(
    {
        "Args",
        "Arguments",
        "Attributes",
        "Example",
        "Examples",
        "Note",
        "Notes",
        "Raises",
        "References",
        "Returns",
        "See Also",
        "Todo",
        "Warning",
        "Warnings",
        "Yields",
    }
)


def docstring_help(handler: Handler) -> tuple[str, str]:
    """A command's ``(help, description)`` from its handler's Google-style docstring.

    The help is the summary (the first paragraph, one line) written the way argparse's
    own messages are: its first letter lowercased unless the second is a capital too (an
    acronym such as ``VAE`` stays), its final period dropped. The description is the
    paragraphs between the summary and the first section (``Returns:``, ``Example:``,
    ... :data:`DOCSTRING_SECTIONS`), their whitespace collapsed (argparse wraps them
    again to the terminal's width).

    Raises:
        ValueError: If the handler's docstring lacks a summary or a description.

    Example:
        >>> def run_demo(args):
        ...     '''Run the default workflow on a sample series.
        ...
        ...     Run the default workflow on a CT series: a generated phantom
        ...     unless --input is given.
        ...
        ...     Returns:
        ...         0 when the study is done.
        ...     '''
        >>> help_line, description = docstring_help(run_demo)
        >>> help_line
        'run the default workflow on a sample series'
        >>> description
        'Run the default workflow on a CT series: a generated phantom unless --input is given.'
    """
    lines = (inspect.getdoc(handler) or "").splitlines()
    blank = lines.index("") if "" in lines else len(lines)
    summary = " ".join(lines[:blank]).strip()
    body = itertools.takewhile(lambda line: not _is_section(line), lines[blank:])
    description = " ".join(" ".join(body).split())
    if not summary or not description:
        name = getattr(handler, "__qualname__", repr(handler))
        raise ValueError(
            f"{name}: a command handler's docstring needs a summary line and a description "
            f"paragraph before its first section, got {inspect.getdoc(handler)!r}"
        )
    return _help_line(summary), description


def _is_section(line: str) -> bool:
    """Whether a (dedented) docstring line opens a Google-style section, e.g. ``Returns:``."""
    return line.endswith(":") and line[:-1] in DOCSTRING_SECTIONS


def _help_line(summary: str) -> str:
    """``summary`` as a command's help: lowercase start (unless an acronym), no final period.

    Example:
        >>> _help_line("Decode N draws from the prior N(0, I)."), _help_line("VAE anomaly map.")
        ('decode N draws from the prior N(0, I)', 'VAE anomaly map')
    """
    if not summary[1:2].isupper():
        summary = summary[:1].lower() + summary[1:]
    return summary.removesuffix(".")


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


def series_keywords(args: argparse.Namespace) -> dict[str, Any]:
    """The reader's keywords from the options :func:`add_series_options` added.

    ``series_uid``, ``allow_irregular`` and ``allow_non_hu``, as
    :func:`ctpipe.io.reader.load_ct` takes them; a flag the command does not have is false.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_series_options(parser, irregular=False)
        >>> series_keywords(parser.parse_args(["--series", "1.2.3"]))
        {'series_uid': '1.2.3', 'allow_irregular': False, 'allow_non_hu': False}
    """
    return {
        "series_uid": args.series,
        "allow_irregular": getattr(args, "allow_irregular", False),
        "allow_non_hu": getattr(args, "allow_non_hu", False),
    }


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
