"""Every ``ctpipe`` command, walked from the parser: what users read in its help."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from ctpipe.cli.main import build_parser


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ("ctpipe",)
) -> Iterator[tuple[str, str | None, argparse.ArgumentParser]]:
    """``(command line, help, parser)`` of every command and command group below ``parser``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield " ".join((*path, name)), helps.get(name), sub
                yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(build_parser()))


def test_the_walk_finds_every_command():
    names = {name for name, _, _ in COMMANDS}
    assert {"ctpipe info", "ctpipe data verify", "ctpipe vae calibrate"} <= names
    assert {"ctpipe train denoise", "ctpipe serve", "ctpipe pull", "ctpipe batch"} <= names
    assert len(COMMANDS) == 25


@pytest.mark.parametrize(("name", "help", "parser"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_command_has_a_help_line_and_a_description(name, help, parser):
    assert help and help.strip() == help and "\n" not in help
    assert not help.endswith("."), f"{name}: a help line has no final period: {help!r}"
    assert help[:1].islower() or help[1:2].isupper(), f"{name}: {help!r}"
    assert parser.description and len(parser.description) > len("Do it."), name
    assert parser.description[:1].isupper() and parser.description.endswith("."), name


def test_the_anomaly_description_names_the_files_it_writes():
    from ctpipe.cli.anomaly import MAP_NAME, OVERLAY_NAME, SCORES_NAME

    parser = dict((name, p) for name, _, p in COMMANDS)["ctpipe anomaly"]
    for file_name in (MAP_NAME, OVERLAY_NAME, SCORES_NAME):
        assert file_name in parser.description
