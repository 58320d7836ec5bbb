"""The ``ctpipe train`` command group: train models from YAML configurations.

``ctpipe train TASK CONFIG [--resume CHECKPOINT] [--output DIR]`` trains the task's model
(``denoise``, ``segment``, ``vae``, ``gan``: :data:`ctpipe.training.entry.TASKS`) and
prints where the checkpoints, the log and the loss curve are. Several processes train
together under ``torchrun``::

    torchrun --nproc_per_node 2 -m ctpipe train denoise CONFIG
    torchrun --nproc_per_node 2 -m ctpipe.training denoise CONFIG

Log lines go to stderr, tagged with the process's rank. Heavy modules (torch, MONAI) are
imported when a task runs, so that ``ctpipe --help`` stays fast.

Example:
    >>> from ctpipe.cli.common import parse_args
    >>> args = parse_args(add_train_parser, ["train", "denoise", "cfg.yaml", "--output", "runs/a"])
    >>> args.func is run_train_denoise, args.config, args.output, args.resume
    (True, 'cfg.yaml', 'runs/a', None)
"""

from __future__ import annotations

import argparse

from ctpipe.cli.common import SubParsers, add_command, add_command_group
from ctpipe.training.entry import TASKS, add_run_arguments, run_task

__all__ = [
    "add_train_parser",
    "run_train_denoise",
    "run_train_gan",
    "run_train_segment",
    "run_train_vae",
]


def add_train_parser(
    subparsers: SubParsers,
) -> argparse.ArgumentParser:
    """Add the ``train`` command group (a command per task) to a CLI."""
    train, tasks = add_command_group(
        subparsers,
        "train",
        help="train models from a YAML configuration",
        description="Train models from a YAML configuration (see workflows/training/). "
        "Run under torchrun to train on several processes or GPUs.",
        title="tasks",
        metavar="TASK",
    )
    for task in TASKS.values():
        handler = HANDLERS[task.name]
        parser = add_command(
            tasks, task.name, handler, help=task.help, description=task.description
        )
        add_run_arguments(parser)
    return train


def run_train_denoise(args: argparse.Namespace) -> int:
    """Handler of ``ctpipe train denoise`` (:func:`ctpipe.training.entry.run_task`)."""
    return run_task("denoise", args)


def run_train_segment(args: argparse.Namespace) -> int:
    """Handler of ``ctpipe train segment`` (:func:`ctpipe.training.entry.run_task`)."""
    return run_task("segment", args)


def run_train_vae(args: argparse.Namespace) -> int:
    """Handler of ``ctpipe train vae`` (:func:`ctpipe.training.entry.run_task`)."""
    return run_task("vae", args)


def run_train_gan(args: argparse.Namespace) -> int:
    """Handler of ``ctpipe train gan`` (:func:`ctpipe.training.entry.run_task`)."""
    return run_task("gan", args)


#: The handler of each task's command.
HANDLERS = {
    "denoise": run_train_denoise,
    "segment": run_train_segment,
    "vae": run_train_vae,
    "gan": run_train_gan,
}
