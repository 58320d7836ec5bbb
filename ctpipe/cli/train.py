"""The ``ctpipe train`` command group: train models from YAML configurations.

``ctpipe train denoise CONFIG [--resume CHECKPOINT] [--output DIR]`` trains a denoiser
(:func:`ctpipe.training.denoise.trainer.train_denoiser`) and prints where the checkpoints, the log
and the loss curve are; ``ctpipe train segment CONFIG`` does the same for a segmenter
(:func:`ctpipe.training.segment.trainer.train_segmenter`). Several processes train together under
``torchrun``::

    torchrun --nproc_per_node 2 -m ctpipe train denoise CONFIG
    torchrun --nproc_per_node 2 -m ctpipe.training.denoise.trainer CONFIG

Log lines go to stderr, tagged with the process's rank. Heavy modules (torch, MONAI) are
imported inside the handler so that ``ctpipe --help`` stays fast.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="ctpipe")
    >>> _ = add_train_parser(parser.add_subparsers())
    >>> args = parser.parse_args(["train", "denoise", "cfg.yaml", "--output", "runs/a"])
    >>> args.func is run_train_denoise, args.config, args.output, args.resume
    (True, 'cfg.yaml', 'runs/a', None)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from ctpipe.cli.common import EXIT_OK, add_command_group

__all__ = [
    "add_denoise_arguments",
    "add_train_parser",
    "configure_logging",
    "run_train_denoise",
    "run_train_gan",
    "run_train_segment",
]


def add_train_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add the ``train`` command group (``denoise``) to a CLI.

    Each command sets ``func``, a handler taking the parsed arguments and returning the
    exit code.

    Args:
        subparsers: The object returned by ``parser.add_subparsers()``.

    Returns:
        The ``train`` parser.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser(prog="ctpipe")
        >>> add_train_parser(parser.add_subparsers()).prog
        'ctpipe train'
    """
    train, tasks = add_command_group(
        subparsers,
        "train",
        help="train models from a YAML configuration",
        description="Train models from a YAML configuration (see workflows/training/). "
        "Run under torchrun to train on several processes or GPUs.",
        title="tasks",
        metavar="TASK",
    )
    denoise = tasks.add_parser(
        "denoise",
        help="train a low-dose CT denoiser (RED-CNN, REDNet)",
        description="Train a denoiser on paired low-/normal-dose slices as configured in "
        "CONFIG. Writes checkpoint_latest.pt, checkpoint_best.pt, training_log.json, "
        "loss_curve.png and config.yaml to the output folder.",
    )
    add_denoise_arguments(denoise)
    denoise.set_defaults(func=run_train_denoise)
    segment = tasks.add_parser(
        "segment",
        help="train an organ segmenter (MONAI UNet/SegResNet, Dice loss)",
        description="Train a segmenter on labelled CT cases as configured in CONFIG. Writes "
        "checkpoint_latest.pt, checkpoint_best.pt (best mean Dice), training_log.json, "
        "loss_curve.png and config.yaml to the output folder.",
    )
    add_denoise_arguments(segment)
    segment.set_defaults(func=run_train_segment)
    gan = tasks.add_parser(
        "gan",
        help="train a DCGAN on CT patches (for inpainting)",
        description="Train a DCGAN (MONAI GanTrainer, k discriminator steps per generator "
        "step, non-saturating generator loss) on HU-windowed CT patches as configured in "
        "CONFIG. Writes checkpoint_latest.pt, training_log.json, loss_curve.png, "
        "samples/epoch_NNNN.png and config.yaml to the output folder.",
    )
    add_denoise_arguments(gan)
    gan.set_defaults(func=run_train_gan)
    from ctpipe.cli.vae import add_train_vae_parser

    add_train_vae_parser(tasks)
    return train


def add_denoise_arguments(parser: argparse.ArgumentParser) -> None:
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


def run_train_denoise(args: argparse.Namespace) -> int:
    """Handler of ``ctpipe train denoise``: load the config, apply overrides, train.

    Returns:
        0 when training finished. Bad input raises ``CTPipeError`` (the ``ctpipe`` command
        prints it as one line and exits with 2).
    """
    from ctpipe.training.denoise.config import load_train_config
    from ctpipe.training.denoise.trainer import train_denoiser

    configure_logging()
    config = with_overrides(load_train_config(args.config), args)
    result = train_denoiser(config)
    if result.rank == 0:
        print_result(result)
    return EXIT_OK


def run_train_segment(args: argparse.Namespace) -> int:
    """Handler of ``ctpipe train segment``: load the config, apply overrides, train.

    Returns:
        0 when training finished. Bad input raises ``CTPipeError``.
    """
    from ctpipe.training.segment.config import load_segment_config
    from ctpipe.training.segment.trainer import train_segmenter

    configure_logging()
    config = with_overrides(load_segment_config(args.config), args)
    result = train_segmenter(config)
    if result.rank == 0:
        print_result(result)
    return EXIT_OK


def run_train_gan(args: argparse.Namespace) -> int:
    """Handler of ``ctpipe train gan``: load the config, apply overrides, train.

    Returns:
        0 when training finished. Bad input raises ``CTPipeError``.
    """
    from ctpipe.training.gan.config import load_gan_config
    from ctpipe.training.gan.trainer import train_gan

    configure_logging()
    result = train_gan(with_overrides(load_gan_config(args.config), args))
    print_result(result)
    print(f"samples: {result.samples}")
    return EXIT_OK


def with_overrides(config: Any, args: argparse.Namespace) -> Any:
    """The config with ``--output`` and ``--resume`` applied when given.

    Example:
        >>> from types import SimpleNamespace
        >>> from ctpipe.training.denoise.config import OptimizerConfig
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
