"""The ``ctpipe inpaint`` command: fill masked regions of a CT with a GAN or a classical method.

``ctpipe inpaint INPUT --mask MASK --output OUT.nii.gz`` loads INPUT (DICOM folder or
file, or NIfTI) in HU, reads the mask (NIfTI on the same grid, or a PNG of rows x
columns applied to every slice; :mod:`ctpipe.inpaint.masks`) or generates one
(``--generate box|strokes|streaks``, seeded, centred on the body), inpaints it
(:func:`ctpipe.inpaint.volume.inpaint_volume` with the shipped DCGAN or ``--weights``;
or ``--method biharmonic|telea|ns``) and writes:

* ``OUT.nii.gz``: the inpainted HU volume with the input's affine;
* ``OUT.json``: the record: input, mask source (file and its sha256, or the generated
  shape and seed), method and settings, model sha256, per-slice statistics, time;
* ``OUT_mask.nii.gz``: the mask, when it was generated.

Heavy modules are imported inside the handler so that ``ctpipe --help`` stays fast.

Example:
    >>> from ctpipe.cli.common import parse_args
    >>> argv = ["inpaint", "ct.nii.gz", "--mask", "m.png", "-o", "out.nii.gz"]
    >>> args = parse_args(add_inpaint_parser, argv)
    >>> args.func is run_inpaint, args.method, args.mode, args.blend
    (True, 'gan', 'sequence', 'poisson')
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ctpipe.cli.common import EXIT_OK, SubParsers, add_command, add_series_options, series_keywords

__all__ = ["add_inpaint_parser", "output_paths", "run_inpaint"]

_NIFTI_SUFFIXES = (".nii.gz", ".nii")
#: Copies of the choices in ctpipe.inpaint, so that building the parser imports nothing heavy.
METHODS = ("gan", "biharmonic", "telea", "ns")
MASK_KINDS = ("box", "strokes", "streaks")


def add_inpaint_parser(subparsers: SubParsers) -> argparse.ArgumentParser:
    """Add the ``inpaint`` command to a CLI; it sets ``func`` to :func:`run_inpaint`."""
    parser = add_command(subparsers, "inpaint", run_inpaint)
    parser.add_argument("input", metavar="INPUT", help="DICOM folder/file or NIfTI, in HU")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--mask", metavar="MASK", help="NIfTI on the CT's grid (2D or 3D) or PNG (rows x columns)"
    )
    source.add_argument(
        "--generate", choices=MASK_KINDS, help="generate a seeded mask of this kind instead"
    )
    parser.add_argument(
        "-o", "--output", required=True, metavar="OUT", help="output NIfTI (.nii.gz or .nii)"
    )
    parser.add_argument(
        "--mask-seed", type=int, default=0, help="seed of --generate (default: %(default)s)"
    )
    parser.add_argument(
        "--mask-slices",
        type=int,
        nargs=2,
        metavar=("START", "STOP"),
        help="slices [START, STOP) that get the generated mask (default: all)",
    )
    parser.add_argument("--method", choices=METHODS, default="gan", help="default: %(default)s")
    parser.add_argument("--weights", metavar="CKPT", help="DCGAN checkpoint (default: shipped)")
    parser.add_argument(
        "--mode",
        choices=("sequence", "independent"),
        default="sequence",
        help="GAN: slices as a sequence (latent reuse, group consistency) or each on its "
        "own (default: %(default)s)",
    )
    parser.add_argument(
        "--init", choices=("pool", "random"), default="pool", help="GAN start (default: pool)"
    )
    parser.add_argument(
        "--blend", choices=("poisson", "plain"), default="poisson", help="default: %(default)s"
    )
    parser.add_argument(
        "--iterations", type=int, default=1000, help="GAN: most search steps (default: 1000)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=50,
        help="GAN: learning-rate warm-up steps of each full search (default: %(default)s)",
    )
    parser.add_argument(
        "--follow-iterations",
        type=int,
        default=20,
        help="GAN sequence mode: steps of each search that starts from the previous "
        "slice's latent (default: %(default)s)",
    )
    parser.add_argument(
        "--margin", type=int, default=8, help="GAN: context pixels around each hole (default: 8)"
    )
    parser.add_argument("--seed", type=int, default=0, help="GAN seed (default: %(default)s)")
    parser.add_argument(
        "--device", default="auto", help="GAN: auto, cpu, cuda or cuda:N (default: auto)"
    )
    add_series_options(parser, irregular=False)
    return parser


def output_paths(output: str | Path) -> tuple[Path, Path, Path]:
    """The NIfTI, its JSON record and the generated mask's NIfTI.

    Raises:
        ValueError: ``output`` does not end in ``.nii.gz`` or ``.nii``.

    Example:
        >>> [p.name for p in output_paths("out/ct_filled.nii.gz")]
        ['ct_filled.nii.gz', 'ct_filled.json', 'ct_filled_mask.nii.gz']
    """
    output = Path(output)
    for suffix in _NIFTI_SUFFIXES:
        if output.name.endswith(suffix):
            stem = output.name[: -len(suffix)]
            return output, output.with_name(stem + ".json"), output.with_name(stem + "_mask.nii.gz")
    raise ValueError(f"--output must end in .nii.gz or .nii, got {output.name!r}")


def run_inpaint(args: argparse.Namespace) -> int:
    """Fill masked regions of a CT (GAN latent search, or biharmonic/Telea/NS).

    Inpaint the masked voxels of a CT: DCGAN latent search (Yeh et al. 2017) started from
    the nearest pool sample and run along the slices with latent reuse (Lahiri et al.
    2019), or a classical method. Writes the inpainted NIfTI (input affine), a JSON record
    and, for generated masks, the mask.

    Returns:
        0 when the outputs are written.

    Raises:
        CTPipeError: Bad input (one line naming the file, exit status 2).

    Example:
        >>> args = argparse.Namespace(output="out.png")
        >>> run_inpaint(args)
        Traceback (most recent call last):
        ...
        ctpipe.errors.InputError: out.png: --output must end in .nii.gz or .nii, got 'out.png'
    """
    import numpy as np

    from ctpipe.errors import InputError
    from ctpipe.io.output_folder import check_output_file
    from ctpipe.io.reader import load_ct
    from ctpipe.io.validate import MIN_CT_SLICE_PIXELS

    try:
        nifti, sidecar, mask_out = output_paths(args.output)
    except ValueError as err:
        raise InputError(args.output, str(err)) from None
    protected = [args.input, *([args.mask] if getattr(args, "mask", None) else [])]
    for path in (nifti, sidecar, *([mask_out] if getattr(args, "generate", None) else [])):
        check_output_file(path, inputs=protected)
    for flag, value, least in (
        ("--iterations", args.iterations, 1),
        ("--follow-iterations", args.follow_iterations, 1),
        ("--warmup", args.warmup, 0),
    ):
        if value < least:
            raise InputError(args.output, f"{flag} must be >= {least}, got {value}")
    image = load_ct(args.input, min_slice_pixels=MIN_CT_SLICE_PIXELS, **series_keywords(args))
    hu = np.asarray(image, dtype=np.float32)
    affine = np.asarray(image.affine, dtype=np.float64)
    mask, mask_record, source = _mask(args, hu, affine)
    record: dict[str, Any] = {"input": str(args.input), "series": args.series, "mask": mask_record}
    try:
        filled, details = _inpaint(args, hu, mask)
    except ValueError as err:  # a hole too large for the slices, and the like
        raise InputError(source, str(err)) from None
    record.update(details)
    _write(filled, affine, mask if args.generate else None, (nifti, sidecar, mask_out), record)
    print(f"wrote {nifti} and {sidecar}" + (f" and {mask_out}" if args.generate else ""))
    return EXIT_OK


def _mask(args: argparse.Namespace, hu, affine) -> tuple[Any, dict[str, Any], str]:
    """The mask, its record and the name errors about it should carry."""
    import hashlib

    from ctpipe.errors import InputError

    if args.mask:
        from ctpipe.inpaint.masks import read_mask

        mask = read_mask(args.mask, hu.shape, affine)
        digest = hashlib.sha256(Path(args.mask).read_bytes()).hexdigest()
        return mask, {"file": str(args.mask), "sha256": digest}, str(args.mask)
    from scipy.ndimage import binary_erosion

    from ctpipe.inpaint.mask_generators import generate_mask
    from ctpipe.transforms import BODY_THRESHOLD_HU

    body = (hu > BODY_THRESHOLD_HU).any(axis=2)
    inner = binary_erosion(body, iterations=12)  # keep the shape's centre off the skin line
    body = inner if inner.any() else body
    try:
        mask, parameters = generate_mask(
            args.generate,
            hu.shape,
            seed=args.mask_seed,
            slices=tuple(args.mask_slices) if args.mask_slices else None,
            region=body if body.any() else None,
        )
    except ValueError as err:
        raise InputError(args.input, f"cannot generate a {args.generate} mask: {err}") from None
    return mask, {"generated": parameters}, f"{args.input} (generated {args.generate} mask)"


def _inpaint(args: argparse.Namespace, hu, mask) -> tuple[Any, dict[str, Any]]:
    import time

    from ctpipe import __version__

    tool = f"ctpipe {__version__} inpaint"
    if args.method != "gan":
        from ctpipe.baselines.inpaint_classical import inpaint_classical
        from ctpipe.inpaint.masks import check_mask

        check_mask(mask, hu.shape)
        start = time.perf_counter()
        filled = inpaint_classical(hu, mask, args.method)
        seconds = round(time.perf_counter() - start, 3)
        return filled, {"tool": tool, "method": args.method, "seconds": seconds}
    import torch

    from ctpipe.checkpoints.gan import load_gan
    from ctpipe.devices import DEVICE_SETTING, compute_device
    from ctpipe.errors import CTPipeError
    from ctpipe.inpaint.search import SearchSettings
    from ctpipe.inpaint.volume import InpaintSettings, inpaint_volume
    from ctpipe.weights import DEFAULT_GAN, weights_path

    if not DEVICE_SETTING.fullmatch(args.device):
        raise CTPipeError(f"--device must be auto, cpu, cuda or cuda:N, got {args.device!r}")
    device = compute_device(args.device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CTPipeError(
            f"--device {args.device}: device is {args.device!r} but CUDA is not available"
        )
    weights = args.weights or weights_path(DEFAULT_GAN)
    gan = load_gan(weights, map_location=device)
    settings = InpaintSettings(
        search=SearchSettings(iterations=args.iterations, warmup=args.warmup),
        follow=SearchSettings(iterations=args.follow_iterations, tolerance=0.0, warmup=0),
        init=args.init,
        mode=args.mode,
        blend=args.blend,
        margin=args.margin,
        seed=args.seed,
    )
    bar = _progress()
    result = inpaint_volume(
        hu,
        mask,
        gan.generator,
        gan.discriminator,
        window=gan.window,
        settings=settings,
        progress=bar,
    )
    bar.close()
    details = {"tool": tool, "method": "gan", "weights": str(weights), **result.to_dict()}
    return result.hu, details


class _progress:
    """A tqdm bar over tiles, created on the first report."""

    def __init__(self) -> None:
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, desc="inpainting", unit="tile", file=sys.stderr, leave=False
            )
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _write(filled, affine, mask, paths: tuple[Path, Path, Path], record: dict[str, Any]) -> None:
    import json

    import numpy as np

    from ctpipe.io.atomic import atomic_path
    from ctpipe.io.nifti import write_nifti

    nifti, sidecar, mask_out = paths
    nifti.parent.mkdir(parents=True, exist_ok=True)
    write_nifti(
        filled.astype(np.float32), affine, nifti, description=f"ctpipe inpaint {record['method']}"
    )
    record["output"] = str(nifti)
    if mask is not None:
        write_nifti(
            mask.astype(np.uint8),
            affine,
            mask_out,
            description="ctpipe inpaint mask",
            intent="label",
        )
        record["mask"]["output"] = str(mask_out)
    with atomic_path(sidecar) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
