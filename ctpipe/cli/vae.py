"""The ``ctpipe vae`` command group: decode VAE codes into CT slices.

The VAE is trained by ``ctpipe train vae CONFIG`` (:mod:`ctpipe.cli.train`).

* ``ctpipe vae sample --output PNG [-n N] [--seed S] [--temperature T]`` decodes draws from
  the prior.
* ``ctpipe vae interpolate A B --output PNG [--slices KA KB] [--steps N] [--slerp]`` decodes
  codes between two slices' codes.
* ``ctpipe vae arithmetic A B C --output PNG [--slices KA KB KC]`` decodes ``code(A) -
  code(B) + code(C)``.
* ``ctpipe vae calibrate CONFIG --weights W --output OUT`` fits the out-of-distribution
  guard's calibration on the ``data.calibration`` slices of a training configuration and
  writes the weights with it (:mod:`ctpipe.anomaly.guard`).

Inputs are CT volumes (DICOM series folders or files, NIfTI); ``--slices`` picks the slice
of each (the middle one by default). Every command uses the shipped VAE unless
``--weights`` names another checkpoint, and writes one PNG (plus ``.npy`` images with
``--save-array``). Heavy modules are imported inside the handlers.

Example:
    >>> from ctpipe.cli.common import parse_args
    >>> args = parse_args(add_vae_parser, ["vae", "interpolate", "a.nii.gz", "b", "-o", "i.png"])
    >>> args.func is run_interpolate, args.inputs, args.steps
    (True, ['a.nii.gz', 'b'], 8)
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ctpipe.cli.common import (
    EXIT_OK,
    SubParsers,
    add_allow_irregular,
    add_command,
    add_command_group,
)

__all__ = [
    "add_vae_parser",
    "run_arithmetic",
    "run_calibrate",
    "run_interpolate",
    "run_sample",
]


def add_vae_parser(subparsers: SubParsers) -> argparse.ArgumentParser:
    """Add the ``vae`` command group: ``sample``, ``interpolate``, ``arithmetic``, ``calibrate``."""
    vae, commands = add_command_group(
        subparsers,
        "vae",
        help="generate with a VAE: prior samples, interpolation, latent arithmetic",
        description="Generate CT slices with a trained VAE (the shipped one by default).",
    )
    sample = add_command(commands, "sample", run_sample)
    sample.add_argument("-n", type=int, default=16, help="images (default: %(default)s)")
    sample.add_argument("--columns", type=int, default=8, help="images per row of the grid")
    sample.add_argument(
        "--temperature", type=float, default=1.0, help="prior std scale (default: 1)"
    )
    _common(sample)
    interp = add_command(commands, "interpolate", run_interpolate)
    interp.add_argument("inputs", nargs=2, metavar="INPUT", help="CT volumes A and B")
    interp.add_argument("--steps", type=int, default=8, help="decoded codes (default: 8)")
    interp.add_argument("--slerp", action="store_true", help="spherical interpolation")
    _slices(interp, 2)
    _common(interp)
    arith = add_command(commands, "arithmetic", run_arithmetic)
    arith.add_argument("inputs", nargs=3, metavar="INPUT", help="CT volumes A, B and C")
    _slices(arith, 3)
    _common(arith)
    calibrate = add_command(commands, "calibrate", run_calibrate)
    calibrate.add_argument("config", help="the VAE training configuration (YAML)")
    calibrate.add_argument("--weights", required=True, help="the trained VAE weights")
    calibrate.add_argument("-o", "--output", required=True, help="weights file to write")
    return vae


def run_calibrate(args: argparse.Namespace) -> int:
    """Fit the out-of-distribution guard's calibration and store it with the weights.

    Score the data.calibration slices of a VAE training CONFIG (held back from training)
    with the guard's statistics, fit their distribution and thresholds, and write the
    weights with the calibration in their record.

    Returns:
        0 when the calibrated weights are written.
    """
    from ctpipe.anomaly.guard_calibration import calibrate_guard, write_calibrated_weights
    from ctpipe.checkpoints.vae import load_vae
    from ctpipe.errors import InputError
    from ctpipe.training.vae.config import load_vae_config
    from ctpipe.training.vae.data import source_volumes

    config = load_vae_config(args.config)
    if not config.data.calibration:
        raise InputError(args.config, "data.calibration lists no sources to calibrate on")
    volumes = source_volumes(config.data.calibration, allow_irregular=config.data.allow_irregular)
    calibration = calibrate_guard(load_vae(args.weights), volumes)
    path = write_calibrated_weights(args.weights, calibration, args.output)
    sources = "; ".join(calibration.sources)
    print(f"calibrated on {calibration.settings['slices']} slices: {sources}")
    print(
        f"thresholds: study {calibration.study_threshold:.2f}, "
        f"slice {calibration.slice_threshold:.2f}"
    )
    print(f"weights: {path}")
    return EXIT_OK


def _slices(parser: argparse.ArgumentParser, count: int) -> None:
    parser.add_argument(
        "--slices",
        type=int,
        nargs=count,
        metavar="K",
        help="slice index of each input (default: the middle slice of each)",
    )
    add_allow_irregular(parser)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", required=True, help="PNG file to write")
    parser.add_argument("--weights", help="VAE checkpoint (default: the shipped model)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--save-array", action="store_true", help="also write the images as .npy beside the PNG"
    )


def run_sample(args: argparse.Namespace) -> int:
    """Decode N draws from the prior N(0, I).

    Decode N codes drawn from the prior and write them as a PNG grid.

    Returns:
        0 when the PNG is written.
    """
    from ctpipe.vae_generate import sample_images

    _check_count("-n", args.n)
    model = _model(args.weights)
    images = sample_images(model, args.n, seed=args.seed, temperature=args.temperature)
    return _write(args, images, columns=args.columns)


def run_interpolate(args: argparse.Namespace) -> int:
    """Decode codes between two slices' codes.

    Encode a slice of A and a slice of B and decode STEPS codes on the line (or great
    circle) between their codes, A and B included; the PNG shows A, the steps and B.

    Returns:
        0 when the PNG is written.
    """
    import numpy as np

    from ctpipe.vae_generate import interpolate

    _check_count("--steps", args.steps, minimum=2)
    model = _model(args.weights)
    a, b = _inputs(args, model)
    steps = interpolate(model, a, b, steps=args.steps, method="slerp" if args.slerp else "linear")
    return _write(args, np.concatenate([a[None], steps, b[None]]))


def run_arithmetic(args: argparse.Namespace) -> int:
    """Decode code(A) - code(B) + code(C).

    Decode code(A) - code(B) + code(C) from slices of three volumes; the PNG shows A, B, C
    and the result.

    Returns:
        0 when the PNG is written.
    """
    import numpy as np

    from ctpipe.vae_generate import latent_arithmetic

    model = _model(args.weights)
    a, b, c = _inputs(args, model)
    result = latent_arithmetic(model, a, b, c)
    return _write(args, np.stack([a, b, c, result]))


def _model(weights: str | None) -> Any:
    if weights:
        from ctpipe.checkpoints.vae import load_vae

        return load_vae(weights)
    from ctpipe.weights import load_default_vae

    return load_default_vae()


def _inputs(args: argparse.Namespace, model: Any) -> list[Any]:
    from ctpipe.vae_generate import grid_slice, model_grid

    grid = model_grid(model)
    indices: Sequence[int | None] = args.slices or [None] * len(args.inputs)
    return [
        grid_slice(path, grid, k, allow_irregular=args.allow_irregular)
        for path, k in zip(args.inputs, indices, strict=True)
    ]


def _write(args: argparse.Namespace, images: Any, columns: int | None = None) -> int:
    from pathlib import Path

    import numpy as np

    from ctpipe.errors import InputError
    from ctpipe.io.atomic import atomic_path
    from ctpipe.vae_generate import write_image_grid

    output = Path(args.output)
    if output.suffix.lower() != ".png":
        raise InputError(output, "the output must be a .png file")
    path = write_image_grid(images, output, columns=columns)
    print(f"wrote {path} ({len(images)} images)")
    if args.save_array:
        array_path = output.with_suffix(".npy")
        with atomic_path(array_path) as tmp, tmp.open("wb") as handle:
            np.save(handle, np.asarray(images, dtype=np.float32))
        print(f"wrote {array_path}")
    return EXIT_OK


def _check_count(name: str, value: int, minimum: int = 1) -> None:
    from ctpipe.errors import CTPipeError

    if value < minimum:
        raise CTPipeError(f"{name} must be at least {minimum}, got {value}")
