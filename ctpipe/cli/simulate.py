"""The ``ctpipe simulate`` command: make a lower-dose version of a normal-dose CT.

``ctpipe simulate INPUT --output OUT --dose 0.25`` loads INPUT (a DICOM folder or file,
or NIfTI) in HU, inserts the noise of a scan at that fraction of the dose
(:class:`ctpipe.simulate.LowDoseSimulator`, slice by slice) and writes a NIfTI with the
input's affine, plus a JSON sidecar (``OUT.json``) recording every parameter, the seed
and each slice's photon count, so the run can be repeated.

Photons per detector bin: ``--photons N`` for every slice; otherwise, for DICOM input
whose slices all carry ``XRayTubeCurrent``, each slice's count follows its tube current
and voltage (:func:`ctpipe.simulate.photons_for_exposure`, ``--photons-per-ma``), which
follows tube current modulation; otherwise the default count.

Heavy modules are imported inside the handler so that ``ctpipe --help`` stays fast.

Example:
    >>> from ctpipe.cli.common import parse_args
    >>> argv = ["simulate", "ct.nii.gz", "--output", "out", "--dose", "0.5"]
    >>> args = parse_args(add_simulate_parser, argv)
    >>> args.func is run_simulate, args.dose, args.seed
    (True, 0.5, 0)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ctpipe.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    SubParsers,
    add_command,
    add_series_options,
    error_line,
    series_keywords,
)

__all__ = ["add_simulate_parser", "output_paths", "run_simulate"]


_NIFTI_SUFFIXES = (".nii.gz", ".nii")

# Copies of ctpipe.simulate's FILTERS, REFERENCE_VIEWS, PHOTONS_PER_MA and the default
# angular modulation, so that building the parser imports no numpy (a test checks them).
FILTER_CHOICES = ("ramp", "shepp-logan", "cosine", "hamming", "hann")
DEFAULT_ANGLES = 360
DEFAULT_PHOTONS_PER_MA = 2750.0
DEFAULT_ANGULAR_MODULATION = 0.5


def add_simulate_parser(subparsers: SubParsers) -> argparse.ArgumentParser:
    """Add the ``simulate`` command to a CLI; it sets ``func`` to :func:`run_simulate`."""
    parser = add_command(subparsers, "simulate", run_simulate)
    parser.add_argument("input", metavar="INPUT", help="DICOM folder/file or NIfTI, in HU")
    parser.add_argument(
        "--output",
        required=True,
        metavar="OUT",
        help="NIfTI file (.nii.gz/.nii) or folder to write <input name>_dose<DOSE>.nii.gz in",
    )
    parser.add_argument(
        "--dose", type=float, default=0.25, help="dose fraction in (0, 1] (default: %(default)s)"
    )
    photons = parser.add_mutually_exclusive_group()
    photons.add_argument(
        "--photons",
        type=float,
        metavar="N",
        help="unattenuated photons per detector bin per view of the normal-dose scan, for "
        "every slice (default: from each DICOM slice's XRayTubeCurrent, else 1e6)",
    )
    photons.add_argument(
        "--photons-per-ma",
        type=float,
        metavar="K",
        help=f"photons per bin per view per mA at 120 kV, for DICOM input with "
        f"XRayTubeCurrent (default: {DEFAULT_PHOTONS_PER_MA:g}, calibrated on the AAPM data)",
    )
    parser.add_argument(
        "--electronic-noise",
        type=float,
        default=10.0,
        metavar="S",
        help="electronic noise std in photons per reading (default: %(default)s)",
    )
    parser.add_argument(
        "--angles",
        type=int,
        default=DEFAULT_ANGLES,
        help="views over 180 degrees; time grows with it (default: %(default)s)",
    )
    parser.add_argument(
        "--filter",
        choices=FILTER_CHOICES,
        default="ramp",
        help="FBP filter, i.e. noise texture: ramp for sharp kernels such as D45, hann for "
        "smooth ones such as B30 (default: %(default)s)",
    )
    parser.add_argument(
        "--angular-modulation",
        type=float,
        default=DEFAULT_ANGULAR_MODULATION,
        metavar="A",
        help="tube current per view ~ attenuation**A, in [0, 1]; 0.5 is the noise-optimal "
        "modulation that automatic exposure control approximates, 0 a constant current "
        "(default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default: %(default)s)")
    add_series_options(parser, irregular=False)
    return parser


def output_paths(input_path: str | Path, output: str | Path, dose: float) -> tuple[Path, Path]:
    """Where ``simulate`` writes: the NIfTI and its JSON sidecar.

    Args:
        input_path: The INPUT argument (names the file in a folder output).
        output: A ``.nii``/``.nii.gz`` path, or a folder.
        dose: The dose fraction (part of the file name in a folder output).

    Returns:
        ``(nifti, sidecar)``.

    Example:
        >>> [p.name for p in output_paths("scans/ct.nii.gz", "out", 0.25)]
        ['ct_dose0.25.nii.gz', 'ct_dose0.25.json']
        >>> [p.name for p in output_paths("dicom/L096", "low.nii.gz", 0.5)]
        ['low.nii.gz', 'low.json']
    """
    output = Path(output)
    if not output.name.endswith(_NIFTI_SUFFIXES):
        output = output / f"{_stem(Path(input_path))}_dose{dose:g}.nii.gz"
    return output, output.with_name(_stem(output) + ".json")


def _stem(path: Path) -> str:
    for suffix in _NIFTI_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem if path.suffix.lower() in (".dcm", ".ima") else path.name


def run_simulate(args: argparse.Namespace) -> int:
    """Simulate a lower-dose scan from a normal-dose one (noise insertion).

    Insert the noise of a scan at a fraction of the dose into a normal-dose CT, through its
    projections (parallel beam), slice by slice. Writes a NIfTI with the input's affine and
    a JSON sidecar of the parameters.

    Returns:
        0 when the NIfTI and its sidecar are written, 2 when the settings or the output
        cannot be used.

    Raises:
        CTPipeError: Bad input (one line naming the file, exit status 2).

    Example:
        >>> args = argparse.Namespace(input="ct.nii.gz", output="out", dose=2.0,
        ...     photons=None, photons_per_ma=None, electronic_noise=10.0, angles=360,
        ...     filter="ramp", angular_modulation=0.5, seed=0, series=None)
        >>> run_simulate(args)
        2
    """
    try:
        simulator = _simulator(args)
        nifti, sidecar = output_paths(args.input, args.output, args.dose)
        _check_outputs(args.input, nifti, sidecar)
        _simulate(args, simulator, nifti, sidecar)
    except (ValueError, OSError) as error:  # bad settings; a disk that refuses the write
        print(error_line(error), file=sys.stderr)
        return EXIT_ERROR
    print(f"wrote {nifti} and {sidecar}")
    return EXIT_OK


def _check_outputs(source: str, *outputs: Path) -> None:
    """Refuse outputs that are (or hold) the input, or cannot be written, before reading."""
    from ctpipe.io.output_folder import check_output_file

    for output in outputs:
        check_output_file(output, inputs=[source])


def _simulator(args: argparse.Namespace):
    from ctpipe.simulate import DEFAULT_INCIDENT_PHOTONS, LowDoseSimulator

    return LowDoseSimulator(
        dose_fraction=args.dose,
        incident_photons=DEFAULT_INCIDENT_PHOTONS if args.photons is None else args.photons,
        electronic_noise=args.electronic_noise,
        n_angles=args.angles,
        filter_name=args.filter,
        angular_modulation=args.angular_modulation,
    )


def _simulate(args: argparse.Namespace, simulator, nifti: Path, sidecar: Path) -> None:
    import numpy as np

    from ctpipe.io.reader import load_ct
    from ctpipe.io.validate import MIN_CT_SLICE_PIXELS

    image = load_ct(args.input, min_slice_pixels=MIN_CT_SLICE_PIXELS, **series_keywords(args))
    hu, affine = _volume(image), np.asarray(image.affine, dtype=np.float64)
    spacing = tuple(float(s) for s in np.linalg.norm(affine[:3, :3], axis=0))
    photons, source = _photons(args, image.meta, hu.shape[2], simulator.incident_photons)
    simulated = simulator.simulate_volume(
        hu, spacing, args.seed, incident_photons=photons, progress=_progress_bar
    )
    record = _record(args, simulator, hu.shape, spacing, photons, source)
    _write(simulated, affine, nifti, sidecar, record)


def _volume(image) -> Any:
    import numpy as np

    from ctpipe.errors import InputError

    hu = np.asarray(image, dtype=np.float32)
    if hu.ndim == 2:
        hu = hu[:, :, None]
    if hu.ndim != 3:
        source = image.meta.get("filename_or_obj", "input")
        raise InputError(source, f"expected a 2D or 3D image, got shape {hu.shape}")
    return hu


def _photons(
    args: argparse.Namespace, meta: dict, slices: int, default: float
) -> tuple[list[float], str]:
    """Photons per slice and where they came from."""
    from ctpipe.simulate import PHOTONS_PER_MA, photons_for_exposure

    if args.photons is not None:
        return [float(args.photons)] * slices, "--photons"
    exposures = _dicom_exposures(meta.get("ctpipe_source_files") or [], slices)
    if exposures is None:
        if args.photons_per_ma is not None:
            raise ValueError(
                "--photons-per-ma needs DICOM input whose slices all have XRayTubeCurrent; "
                "give --photons instead"
            )
        return [default] * slices, "default"
    per_ma = PHOTONS_PER_MA if args.photons_per_ma is None else args.photons_per_ma
    photons = [photons_for_exposure(ma, kvp, per_ma) for ma, kvp in exposures]
    return photons, f"XRayTubeCurrent and KVP x {per_ma:g} photons/mA"


def _dicom_exposures(files: Sequence[str], slices: int) -> list[tuple[float, float]] | None:
    """(mA, kV) of each slice, or None unless every one of ``slices`` files has them."""
    if len(files) != slices:  # NIfTI, or a multi-frame file
        return None
    import pydicom

    from ctpipe.simulate import REFERENCE_KVP

    exposures = []
    for path in files:
        ds = pydicom.dcmread(
            path, stop_before_pixels=True, specific_tags=["XRayTubeCurrent", "KVP"]
        )
        current = ds.get("XRayTubeCurrent")
        if current is None or float(current) <= 0:
            return None
        kvp = ds.get("KVP")
        exposures.append((float(current), float(kvp) if kvp else REFERENCE_KVP))
    return exposures


def _progress_bar(indices):
    from tqdm import tqdm

    return tqdm(indices, desc="simulating", unit="slice", file=sys.stderr, leave=False)


def _record(
    args: argparse.Namespace,
    simulator,
    shape: tuple[int, ...],
    spacing: tuple[float, ...],
    photons: list[float],
    source: str,
) -> dict[str, Any]:
    from ctpipe import __version__

    return {
        "tool": f"ctpipe {__version__} simulate",
        "input": str(args.input),
        "series": args.series,
        "seed": args.seed,
        "shape": list(shape),
        "spacing_mm": list(spacing),
        "simulator": simulator.parameters(),
        "photon_source": source,
        "incident_photons_per_slice": photons,
    }


def _write(simulated, affine, nifti: Path, sidecar: Path, record: dict[str, Any]) -> None:
    import json

    from ctpipe.io.atomic import atomic_path
    from ctpipe.io.nifti import write_nifti

    nifti.parent.mkdir(parents=True, exist_ok=True)
    dose = record["simulator"]["dose_fraction"]
    write_nifti(simulated, affine, nifti, description=f"ctpipe simulate dose {dose:g}")
    record["output"] = str(nifti)
    with atomic_path(sidecar) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
