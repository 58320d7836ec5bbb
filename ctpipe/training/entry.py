"""Running a training task: load its config, apply overrides, train, print the outputs.

Every task (``denoise``, ``segment``, ``vae``, ``gan``) is one :class:`Task` row of
:data:`TASKS`: the functions that load its YAML and train it, and how its result is
printed. ``ctpipe train TASK CONFIG`` (the CLI) and ``python -m ctpipe.training TASK
CONFIG`` (:func:`torchrun_main`, the entry point for ``torchrun``) both run a task through
:func:`run_task`, so the two train the same way. Nothing here imports the CLI.

Log lines go to stderr, tagged with the process's rank (:func:`configure_logging`).
Heavy modules (torch, MONAI) are imported when a task runs, not when this module is.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="train")
    >>> add_run_arguments(parser)
    >>> args = parser.parse_args(["cfg.yaml", "--output", "runs/a"])
    >>> args.config, args.output, args.resume
    ('cfg.yaml', 'runs/a', None)
    >>> sorted(TASKS)
    ['denoise', 'gan', 'segment', 'vae']
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ctpipe.errors import EXIT_ERROR, EXIT_OK

__all__ = [
    "TASKS",
    "Task",
    "add_run_arguments",
    "configure_logging",
    "print_result",
    "run_task",
    "torchrun_main",
    "with_overrides",
]


@dataclass(frozen=True)
class Task:
    """A training task: how to load its configuration, train it and print the result.

    Args:
        name: The task's name (``ctpipe train NAME``).
        help: One line for the command list.
        description: What the task trains and writes.
        load_config: ``"module:function"`` reading the YAML into the task's config.
        train: ``"module:function"`` training a config and returning its result.
        digits: Format of the validation metrics printed.
        extra: Result -> more lines to print (e.g. the images written).
    """

    name: str
    help: str
    description: str
    load_config: str
    train: str
    digits: str = ".4f"
    extra: Callable[[Any], list[str]] = field(default=lambda result: [])

    def function(self, which: str) -> Callable[..., Any]:
        """The ``load_config`` or ``train`` function, imported now."""
        module, _, name = getattr(self, which).partition(":")
        return getattr(importlib.import_module(module), name)


#: Every training task, by name.
TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task(
            "denoise",
            help="train a low-dose CT denoiser (RED-CNN, REDNet)",
            description="Train a denoiser on paired low-/normal-dose slices as configured in "
            "CONFIG. Writes checkpoint_latest.pt, checkpoint_best.pt, training_log.json, "
            "loss_curve.png and config.yaml to the output folder.",
            load_config="ctpipe.training.denoise.config:load_train_config",
            train="ctpipe.training.denoise.trainer:train_denoiser",
        ),
        Task(
            "segment",
            help="train an organ segmenter (MONAI UNet/SegResNet, Dice loss)",
            description="Train a segmenter on labelled CT cases as configured in CONFIG. "
            "Writes checkpoint_latest.pt, checkpoint_best.pt (best mean Dice), "
            "training_log.json, loss_curve.png and config.yaml to the output folder.",
            load_config="ctpipe.training.segment.config:load_segment_config",
            train="ctpipe.training.segment.trainer:train_segmenter",
        ),
        Task(
            "gan",
            help="train a DCGAN on CT patches (for inpainting)",
            description="Train a DCGAN (MONAI GanTrainer, k discriminator steps per "
            "generator step, non-saturating generator loss) on HU-windowed CT patches as "
            "configured in CONFIG. Writes checkpoint_latest.pt, training_log.json, "
            "loss_curve.png, samples/epoch_NNNN.png and config.yaml to the output folder.",
            load_config="ctpipe.training.gan.config:load_gan_config",
            train="ctpipe.training.gan.trainer:train_gan",
            extra=lambda result: [f"samples: {result.samples}"],
        ),
        Task(
            "vae",
            help="train a VAE on normal-anatomy CT slices (anomaly modelling, generation)",
            description="Train a convolutional VAE (negative beta-ELBO, KL warm-up) on "
            "HU-windowed CT slices as configured in CONFIG. Writes checkpoint_latest.pt, "
            "checkpoint_best.pt (lowest validation negative ELBO), training_log.json, "
            "loss_curve.png, images/samples_epoch_NNN.png, "
            "images/interpolation_epoch_NNN.png and config.yaml to the output folder.",
            load_config="ctpipe.training.vae.config:load_vae_config",
            train="ctpipe.training.vae.trainer:train_vae",
            digits=".4g",
            extra=lambda result: [f"images: {image}" for image in result.images],
        ),
    )
}


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``CONFIG``, ``--resume CHECKPOINT`` and ``--output DIR`` to a parser."""
    parser.add_argument("config", help="training configuration (YAML)")
    parser.add_argument(
        "--resume",
        metavar="CHECKPOINT",
        help="continue this run from its checkpoint (overrides the config's resume)",
    )
    parser.add_argument(
        "--output", metavar="DIR", help="output folder (overrides the config's output_dir)"
    )


def run_task(name: str, args: argparse.Namespace) -> int:
    """Load task ``name``'s config (``args.config``), apply overrides, train, print.

    Returns:
        0 when training finished. Bad input raises ``CTPipeError`` (the callers print it
        as one line and exit with 2).
    """
    task = TASKS[name]
    config = with_overrides(task.function("load_config")(args.config), args)
    configure_logging()
    result = task.function("train")(config)
    if getattr(result, "rank", 0) == 0:
        print_result(result, digits=task.digits, extra=task.extra(result))
    return EXIT_OK


def with_overrides(config: Any, args: argparse.Namespace) -> Any:
    """The config with ``--output`` and ``--resume`` applied when given.

    Example:
        >>> from types import SimpleNamespace
        >>> from ctpipe.training.config import OptimizerConfig
        >>> with_overrides(OptimizerConfig(), SimpleNamespace(output=None, resume=None)).lr
        0.0001
    """
    from dataclasses import replace

    overrides = {"output_dir": args.output, "resume": args.resume}
    overrides = {key: value for key, value in overrides.items() if value}
    return replace(config, **overrides) if overrides else config


def print_result(result: Any, digits: str = ".4f", extra: Sequence[str] = ()) -> None:
    """Print where a training run wrote its checkpoints, log and curve, and its metrics.

    ``extra`` lines (e.g. the images written) come before the metrics.
    """
    print(f"checkpoint: {result.checkpoint}")
    if getattr(result, "best_checkpoint", None) is not None:
        print(f"best checkpoint: {result.best_checkpoint}")
    print(f"log: {result.log}")
    print(f"loss curve: {result.curve}")
    for line in extra:
        print(line)
    metrics = getattr(result, "metrics", None)
    if metrics:
        print("validation: " + ", ".join(f"{k} {v:{digits}}" for k, v in metrics.items()))


def configure_logging() -> None:
    """Send ``ctpipe`` log lines (INFO and up) to stderr, tagged with the process's rank.

    Under ``torchrun`` the rank comes from ``RANK``; alone it is 0. Calling it again adds
    no second handler.
    """
    root = logging.getLogger("ctpipe")
    if any(getattr(h, "ctpipe_train", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    rank = os.environ.get("RANK", "0")
    handler.setFormatter(logging.Formatter(f"%(asctime)s [rank {rank}] %(message)s", "%H:%M:%S"))
    handler.ctpipe_train = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def torchrun_main(argv: Sequence[str] | None = None) -> int:
    """``python -m ctpipe.training TASK CONFIG [--resume CKPT] [--output DIR] [--debug]``.

    The same as ``ctpipe train TASK``, for ``torchrun ... -m ctpipe.training TASK CONFIG``.
    Returns the exit status: 0 on success, 2 on bad input with one line on stderr naming
    the file and the problem (``--debug`` shows the traceback).

    Example:
        >>> torchrun_main(["denoise", "no/such/train.yaml"])
        2
    """
    from ctpipe.errors import CTPipeError

    parser = argparse.ArgumentParser(
        prog="python -m ctpipe.training",
        description="Train a model from a YAML configuration (works under torchrun).",
    )
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    for task in TASKS.values():
        sub = tasks.add_parser(task.name, help=task.help, description=task.description)
        add_run_arguments(sub)
        sub.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    args = parser.parse_args(argv)
    try:
        return run_task(args.task, args)
    except CTPipeError as exc:
        if args.debug:
            raise
        print(f"ctpipe: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
