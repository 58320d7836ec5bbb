from __future__ import annotations

import argparse

import pytest

from ctpipe.cli.train import add_train_parser, run_train_denoise
from ctpipe.training.config import TrainConfigError


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="ctpipe")
    add_train_parser(root.add_subparsers())
    return root


def test_train_denoise_arguments():
    args = parser().parse_args(
        ["train", "denoise", "c.yaml", "--resume", "runs/a/checkpoint_latest.pt", "--output", "o"]
    )
    assert args.func is run_train_denoise
    assert (args.config, args.resume, args.output) == ("c.yaml", "runs/a/checkpoint_latest.pt", "o")


def test_train_without_task_prints_help(capsys):
    args = parser().parse_args(["train"])
    assert args.func(args) == 2
    assert "denoise" in capsys.readouterr().err


def test_bad_config_raises_for_the_cli_to_report(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {name: redcnn}\n")
    args = parser().parse_args(["train", "denoise", str(bad)])
    with pytest.raises(TrainConfigError, match="key 'data' is required"):
        run_train_denoise(args)
