"""The ``ctpipe anomaly`` command: a VAE anomaly map and slice scores of one CT volume.

``ctpipe anomaly INPUT --output DIR`` reads a CT volume (DICOM series folder or file, NIfTI),
scores it with the shipped VAE (or ``--weights``) through
:func:`ctpipe.anomaly.anomaly_volume`, and writes to ``DIR``:

* ``anomaly_map.nii.gz``: the map (float32 HU of reconstruction error) on the CT's grid,
  with its RAS affine;
* ``anomaly_overlay.png``: the highest-scoring slice (or ``--slice K``) without and with
  the map over it;
* ``anomaly_scores.json``: the negative ELBO of every slice and the settings used.

It prints the slices with the highest scores. Heavy modules are imported in the handler.

Example:
    >>> from ctpipe.cli.common import parse_args
    >>> argv = ["anomaly", "ct.nii.gz", "--output", "out", "--samples", "8"]
    >>> args = parse_args(add_anomaly_parser, argv)
    >>> args.func is run_anomaly, args.samples, args.error
    (True, 8, 'abs')
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ctpipe.cli.common import SubParsers, add_command, add_series_options, series_keywords

__all__ = ["MAP_NAME", "OVERLAY_NAME", "SCORES_NAME", "add_anomaly_parser", "run_anomaly"]

#: File names written to the output folder.
MAP_NAME, OVERLAY_NAME, SCORES_NAME = (
    "anomaly_map.nii.gz",
    "anomaly_overlay.png",
    "anomaly_scores.json",
)


def add_anomaly_parser(subparsers: SubParsers) -> argparse.ArgumentParser:
    """Add ``ctpipe anomaly INPUT --output DIR`` to a CLI."""
    parser = add_command(subparsers, "anomaly", run_anomaly)
    parser.add_argument("input", help="CT volume: DICOM series folder or file, or NIfTI")
    parser.add_argument("-o", "--output", required=True, help="output folder")
    parser.add_argument("--weights", help="VAE checkpoint (default: the shipped model)")
    parser.add_argument(
        "--samples", type=int, default=4, help="posterior draws per slice (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws (default: 0)")
    parser.add_argument(
        "--error", choices=("abs", "signed"), default="abs", help="map of |x - x_hat| or x - x_hat"
    )
    parser.add_argument(
        "--smooth-mm", type=float, default=0.0, help="Gaussian smoothing of the map (sigma, mm)"
    )
    parser.add_argument("--slice", type=int, help="slice shown in the overlay (default: top score)")
    add_series_options(parser)
    parser.add_argument("--top", type=int, default=5, help="slices listed (default: 5)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into an output folder that holds files this command did not write",
    )
    return parser


def run_anomaly(args: argparse.Namespace) -> int:
    """VAE anomaly map (NIfTI, overlay PNG) and per-slice scores of a CT volume.

    Score a CT volume with a VAE trained on normal anatomy: a per-voxel map of
    reconstruction error in HU (averaged over posterior draws) and the negative ELBO of
    each slice. Writes anomaly_map.nii.gz, anomaly_overlay.png and anomaly_scores.json to
    the output folder. For research only: not a diagnostic device.

    Returns:
        0 when the three outputs (:data:`MAP_NAME`, :data:`OVERLAY_NAME`,
        :data:`SCORES_NAME`) are written.
    """
    import time
    from pathlib import Path

    import numpy as np

    from ctpipe.anomaly import anomaly_volume, write_anomaly_overlay, write_anomaly_record
    from ctpipe.cli.vae import _model
    from ctpipe.errors import InputError
    from ctpipe.io.output_folder import check_output_file, check_output_folder
    from ctpipe.io.reader import read_study
    from ctpipe.io.validate import MIN_CT_SLICE_PIXELS

    if args.samples < 1:
        raise InputError(args.input, f"--samples must be at least 1, got {args.samples}")
    check_output_folder(
        args.output,
        inputs=[args.input],
        overwrite=args.overwrite,
        foreign=_foreign_files,
        replaced=False,
    )
    for name in (MAP_NAME, OVERLAY_NAME, SCORES_NAME):
        check_output_file(Path(args.output) / name, inputs=[args.input])
    volume = read_study(args.input, min_slice_pixels=MIN_CT_SLICE_PIXELS, **series_keywords(args))
    hu, affine, spacing = volume.hu, volume.affine_ras, volume.spacing
    if args.slice is not None and not 0 <= args.slice < hu.shape[2]:
        raise InputError(
            args.input,
            f"--slice {args.slice} is outside its {hu.shape[2]} slices (0 to {hu.shape[2] - 1})",
        )
    model = _model(args.weights)
    start = time.perf_counter()
    result = anomaly_volume(
        hu,
        model,
        spacing=spacing,
        samples=args.samples,
        seed=args.seed,
        error=args.error,
        smooth_mm=args.smooth_mm,
    )
    seconds = time.perf_counter() - start
    output = Path(args.output)
    written = {
        "map": str(result.write_nifti(output / MAP_NAME, affine)),
        "overlay": str(
            write_anomaly_overlay(hu, result, output / OVERLAY_NAME, slice_index=args.slice)
        ),
    }
    record = write_anomaly_record(
        result,
        output / SCORES_NAME,
        extra={"input": str(args.input), "outputs": written, "seconds": round(seconds, 3)},
    )
    order = np.argsort(result.neg_elbo)[::-1][: max(args.top, 0)]
    print(f"scored {hu.shape[2]} slices in {seconds:.1f} s ({args.samples} draws each)")
    for k in order:
        print(f"  slice {int(k):4d}: negative ELBO {result.neg_elbo[k]:.1f} nats")
    for name, path in written.items():
        print(f"{name}: {path}")
    print(f"scores: {record}")
    return 0


def _foreign_files(folder: Path) -> str | None:
    """Why an existing output folder is not one this command wrote (None when it is)."""
    others = sorted(p.name for p in folder.iterdir() if p.name not in _OUTPUT_NAMES)
    if not others:
        return None
    more = f" and {len(others) - 1} more" if len(others) > 1 else ""
    return f"is a folder holding files the anomaly command did not write ({others[0]}{more})"


_OUTPUT_NAMES = frozenset({MAP_NAME, OVERLAY_NAME, SCORES_NAME})
