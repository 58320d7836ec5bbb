"""A command's help and description come from its handler's docstring."""

from __future__ import annotations

import argparse

import pytest

from ctpipe.cli.common import add_command, add_series_options, docstring_help, series_keywords


def run_toy(args: argparse.Namespace) -> int:
    """Decode N draws from the prior N(0, I).

    Decode N codes drawn from the prior
    and write them as a PNG grid.

    Exit code: 0 when the grid is written.

    Returns:
        0 when the grid is written.

    Raises:
        ValueError: Never.
    """
    return 0


def test_help_is_the_summary_lowercased_without_its_period():
    help, _ = docstring_help(run_toy)
    assert help == "decode N draws from the prior N(0, I)"


def test_description_is_the_paragraphs_before_the_first_section():
    _, description = docstring_help(run_toy)
    assert description == (
        "Decode N codes drawn from the prior and write them as a PNG grid. "
        "Exit code: 0 when the grid is written."
    )


@pytest.mark.parametrize(
    ("summary", "help"),
    [
        ("VAE anomaly map of a CT volume.", "VAE anomaly map of a CT volume"),
        ("CT series under a folder.", "CT series under a folder"),
        ("A map of the series.", "a map of the series"),
        ("Score denoisers (PSNR, SSIM, RMSE)", "score denoisers (PSNR, SSIM, RMSE)"),
        ("Run a DICOM node: receive series...", "run a DICOM node: receive series.."),
    ],
)
def test_help_keeps_an_acronym_and_drops_one_final_period(summary, help):
    def handler(args):
        return 0

    handler.__doc__ = f"{summary}\n\n    Described.\n"
    assert docstring_help(handler) == (help, "Described.")


@pytest.mark.parametrize(
    "doc",
    [None, "", "One line.", "Summary.\n\nReturns:\n    0.", "Summary.\n\nExample:\n    >>> 1"],
)
def test_a_handler_without_summary_or_description_is_refused(doc):
    def run_bare(args):
        return 0

    run_bare.__doc__ = doc
    with pytest.raises(ValueError, match="run_bare: a command handler's docstring needs"):
        docstring_help(run_bare)


def test_only_a_section_header_line_ends_the_description():
    def handler(args):
        """Summary.

        Prints what Returns: and Example: name.

        Note: a line that goes on after the colon.

        Returns:
            0.
        """

    assert docstring_help(handler)[1] == (
        "Prints what Returns: and Example: name. Note: a line that goes on after the colon."
    )


def test_add_command_takes_the_docstring_unless_told_otherwise():
    parser = argparse.ArgumentParser(prog="ctpipe")
    commands = parser.add_subparsers()
    toy = add_command(commands, "toy", run_toy)
    other = add_command(commands, "other", run_toy, help="other help")
    assert toy.description.startswith("Decode N codes drawn")
    assert other.description == toy.description
    helps = {action.dest: action.help for action in commands._choices_actions}
    assert helps == {"toy": "decode N draws from the prior N(0, I)", "other": "other help"}
    assert parser.parse_args(["toy"]).func is run_toy


@pytest.mark.parametrize(
    ("irregular", "argv", "expected"),
    [
        (True, [], {"series_uid": None, "allow_irregular": False, "allow_non_hu": False}),
        (
            True,
            ["--series", "1.2", "--allow-irregular", "--allow-non-hu"],
            {"series_uid": "1.2", "allow_irregular": True, "allow_non_hu": True},
        ),
        (
            False,
            ["--allow-non-hu"],
            {"series_uid": None, "allow_irregular": False, "allow_non_hu": True},
        ),
    ],
)
def test_series_keywords_are_the_series_options(irregular, argv, expected):
    parser = argparse.ArgumentParser()
    add_series_options(parser, irregular=irregular)
    assert series_keywords(parser.parse_args(argv)) == expected
