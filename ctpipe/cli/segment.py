"""The ``ctpipe segment`` command: organ labels of a CT volume, on the input's grid.

``ctpipe segment INPUT --output OUT.nii.gz`` reads a DICOM CT series (folder or file) or a
NIfTI/NRRD volume in HU, runs a segmenter over it with MONAI's sliding window
(:func:`ctpipe.segment.segment_volume`) and writes the label map as NIfTI (uint8, the
input's shape and affine exactly, written atomically). It prints each class's voxel count
and volume in millilitres.

The segmenter is the shipped default (:func:`ctpipe.weights.load_default_segmenter`)
unless ``--weights`` names a checkpoint of ``ctpipe train segment``, or ``--bundle``
names a local MONAI bundle folder (:mod:`ctpipe.bundle`: the bundle's own network,
preprocessing, inferer and postprocessing; class names from its ``metadata.json``).
The preprocessing and window settings the model was trained with come from its
checkpoint (or bundle); ``--roi-size``, ``--overlap``, ``--blend`` and ``--sw-batch-size``
override the window. ``--sw-device`` is where the network runs and ``--device`` where
the windows are stitched: ``--sw-device cuda --device cpu`` keeps only the windows on
the GPU, for large volumes on small GPUs. ``--statistics FILE.csv`` writes each class's
voxels, volume (mL) and mean/median/std HU (:mod:`ctpipe.organ_statistics`).

Heavy modules are imported inside the handler so that ``ctpipe --help`` stays fast.
Exit status: 0 on success, 2 when the input or the settings cannot be used.

Example:
    >>> from ctpipe.cli.common import parse_args
    >>> argv = ["segment", "ct/", "--output", "l.nii.gz", "--roi-size", "160", "160"]
    >>> args = parse_args(add_segment_parser, [*argv, "--sw-device", "cuda"])
    >>> args.func is run_segment, args.roi_size, args.sw_device, args.device
    (True, [160, 160], 'cuda', 'cpu')
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ctpipe.cli.common import (
    EXIT_OK,
    SubParsers,
    add_command,
    add_series_options,
    positive_int,
    series_keywords,
)

__all__ = ["add_segment_parser", "format_volumes", "read_ct_input", "run_segment"]

#: Windows per forward pass of the shipped model unless ``--sw-batch-size`` says otherwise.
SW_BATCH_SIZE = 4


def add_segment_parser(subparsers: SubParsers) -> argparse.ArgumentParser:
    """Add the ``segment`` command to a CLI."""
    p = add_command(subparsers, "segment", run_segment)
    p.add_argument("input", help="DICOM series folder or file, or NIfTI/NRRD volume in HU")
    p.add_argument("--output", required=True, help="label map to write (.nii or .nii.gz)")
    p.add_argument(
        "--weights",
        help="segmenter checkpoint of `ctpipe train segment` (default: the shipped model)",
    )
    p.add_argument(
        "--bundle",
        metavar="DIR",
        help="a local MONAI bundle folder (configs/, models/) to segment with instead; its "
        "configs can run Python: use bundles you trust",
    )
    p.add_argument(
        "--bundle-model",
        choices=("model.pt", "model.ts"),
        help="the bundle's weights to use (default: model.pt when present, else model.ts)",
    )
    p.add_argument(
        "--statistics",
        metavar="CSV",
        help="also write each class's voxels, volume (mL) and mean/median/std HU as CSV",
    )
    p.add_argument(
        "--device",
        default="cpu",
        help="device the windows are stitched on and labels made (default: %(default)s)",
    )
    p.add_argument(
        "--sw-device",
        help="device the network runs on, e.g. cuda (default: the same as --device)",
    )
    p.add_argument(
        "--roi-size",
        type=positive_int,
        nargs="+",
        metavar="N",
        help="window size in voxels along i j [k] (default: the model's)",
    )
    p.add_argument(
        "--overlap", type=float, help="fraction of a window shared with its neighbour [0, 1)"
    )
    p.add_argument(
        "--blend", choices=("gaussian", "constant"), help="weighting of overlapping windows"
    )
    p.add_argument(
        "--sw-batch-size",
        type=positive_int,
        help=f"windows per forward pass (default: {SW_BATCH_SIZE}, or the bundle's)",
    )
    add_series_options(p)
    return p


def run_segment(args: argparse.Namespace) -> int:
    """Segment organs of a CT volume (labels NIfTI on the input grid).

    Segment the organs of a CT volume (DICOM series or NIfTI in HU) with the shipped
    segmenter or --weights, and write the label map as NIfTI with the input's shape and
    affine. Prints each class's voxels and volume (mL).

    Returns:
        0 on success. Bad input raises ``CTPipeError`` (one line, exit status 2).
    """
    import torch

    from ctpipe.errors import CTPipeError, InputError
    from ctpipe.io.nifti import NIFTI_SUFFIXES, write_nifti
    from ctpipe.segment import class_volumes

    output = Path(args.output)
    if not output.name.endswith(NIFTI_SUFFIXES):
        raise InputError(output, "the label map must be written as NIfTI (.nii or .nii.gz)")
    for name in ("device", "sw_device"):
        value = getattr(args, name)
        if value is not None and str(value).startswith("cuda") and not torch.cuda.is_available():
            flag = "--" + name.replace("_", "-")
            raise CTPipeError(f"{flag} {value}: CUDA is not available on this machine")
    if args.bundle is not None and args.weights is not None:
        raise CTPipeError("--bundle and --weights exclude each other: a bundle brings its weights")
    if args.statistics is not None and not str(args.statistics).endswith(".csv"):
        raise InputError(args.statistics, "the statistics must be written as CSV (.csv)")
    from ctpipe.io.output_folder import check_output_file

    check_output_file(output, inputs=[args.input])
    if args.statistics is not None:
        check_output_file(args.statistics, inputs=[args.input, output])
    image = read_ct_input(args.input, **series_keywords(args))
    window = {"roi_size": args.roi_size, "overlap": args.overlap, "mode": args.blend}
    if args.bundle is not None:
        segment, class_names, description = _bundle_segmenter(args, window)
    else:
        segment, class_names, description = _model_segmenter(args, window)
    try:
        labels = segment(image)
    except ValueError as err:  # a setting outside its rule (named in the message)
        raise CTPipeError(f"cannot segment {args.input}: {err}") from None
    values = labels.numpy()
    affine = labels.affine.numpy()
    write_nifti(values, affine, output, intent="label", description=description)
    print(f"labels: {output} {tuple(values.shape)}")
    print(format_volumes(class_volumes(values, affine, class_names)))
    if args.statistics is not None:
        from ctpipe.organ_statistics import organ_statistics, write_statistics_csv

        class_map = {name: value for value, name in enumerate(class_names) if value > 0}
        rows = organ_statistics(values, image.numpy(), affine, class_map)
        print(f"statistics: {write_statistics_csv(rows, args.statistics)}")
    return EXIT_OK


def _model_segmenter(args: argparse.Namespace, window: dict[str, Any]):
    """The shipped or given ctpipe segmenter as ``image -> labels``, names, description."""
    from ctpipe.segment import segment_volume

    model, config = _load_model(args.weights)
    settings = dict(model.checkpoint_record.get("inference", {}))
    settings.update({k: v for k, v in window.items() if v is not None})

    def segment(image):
        return segment_volume(
            image,
            model,
            config=config,
            sw_batch_size=args.sw_batch_size or SW_BATCH_SIZE,
            sw_device=args.sw_device or args.device,
            device=args.device,
            **settings,
        )

    description = f"ctpipe segment: {', '.join(config.class_names[1:])}"
    return segment, config.class_names, description


def _bundle_segmenter(args: argparse.Namespace, window: dict[str, Any]):
    """A MONAI bundle as ``image -> labels``, its class names, a description."""
    from ctpipe.bundle import BundleSegmenter, find_bundle

    bundle = find_bundle(args.bundle, model=args.bundle_model)
    segmenter = BundleSegmenter(
        bundle,
        device=args.device,
        sw_device=args.sw_device or args.device,
        window={**window, "sw_batch_size": args.sw_batch_size},
    )
    return segmenter, bundle.class_names, f"ctpipe segment: bundle {bundle.name} {bundle.version}"


def read_ct_input(
    path: str,
    *,
    series_uid: str | None = None,
    allow_irregular: bool = False,
    allow_non_hu: bool = False,
):
    """Read a CT volume in HU as a MetaTensor, or raise an InputError naming the problem.

    The command-line form of :func:`ctpipe.io.reader.load_ct`: the same loader and checks
    as every other command, with the commands' smallest slice size.

    Args:
        path: DICOM series folder or file, or a NIfTI/NRRD volume.
        series_uid: SeriesInstanceUID to pick when a folder holds several series.
        allow_irregular: Read DICOM series with gaps or tilt (with a warning).
        allow_non_hu: Read values that are not CT in Hounsfield units anyway.

    Returns:
        The HU volume ``(i, j, k)`` with its RAS affine.

    Raises:
        InputError: Missing file, unreadable file, not 3-D, or values that are not HU
            (see :func:`ctpipe.io.reader.read_study`).

    Example:
        >>> read_ct_input("/no/such/ct.nii.gz")
        Traceback (most recent call last):
        ...
        ctpipe.errors.InputError: /no/such/ct.nii.gz: no such file or folder
    """
    from ctpipe.io.reader import load_ct
    from ctpipe.io.validate import MIN_CT_SLICE_PIXELS

    return load_ct(
        path,
        series_uid=series_uid,
        allow_irregular=allow_irregular,
        allow_non_hu=allow_non_hu,
        min_slice_pixels=MIN_CT_SLICE_PIXELS,
    )


def _load_model(weights: str | None) -> tuple[Any, Any]:
    if weights is None:
        from ctpipe.weights import load_default_segmenter

        return load_default_segmenter()
    from ctpipe.checkpoints.segmenter import load_segmenter

    return load_segmenter(weights)


def format_volumes(rows: list[tuple[str, int, float]]) -> str:
    """The volumes as a text table.

    Example:
        >>> print(format_volumes([("liver", 500, 5.0)]))
        class     voxels  volume_ml
        liver        500       5.00
    """
    width = max([len("class"), *(len(name) for name, _, _ in rows)])
    lines = [f"{'class':<{width}}  {'voxels':>9}  {'volume_ml':>9}"]
    lines += [f"{name:<{width}}  {count:>9}  {ml:>9.2f}" for name, count, ml in rows]
    return "\n".join(line.rstrip() for line in lines)
