"""``ctpipe demo``: load a CT series, print its summary, write NIfTI and a PNG preview.

Without an input the demo writes a seeded synthetic phantom as a DICOM series first, so it
runs anywhere, offline, in a few seconds. Later steps of the pipeline (denoise, segment,
export) join this command as they are built.

Example:
    >>> import tempfile
    >>> result = run_demo(output=tempfile.mkdtemp(), quiet=True)
    >>> result.nifti.name, result.preview.name
    ('ct.nii.gz', 'preview.png')
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ctpipe.io.atomic import atomic_path

#: Display window for previews: the soft-tissue window used for abdominal CT (HU).
PREVIEW_WINDOW = (-160.0, 240.0)


@dataclass(frozen=True)
class DemoResult:
    """Where the demo wrote its outputs, and the summary it printed."""

    output: Path
    nifti: Path
    preview: Path
    summary_json: Path
    summary: dict[str, Any]


def run_demo(
    input_path: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] = "ctpipe_demo",
    *,
    series_uid: str | None = None,
    allow_irregular: bool = False,
    quiet: bool = False,
) -> DemoResult:
    """Load a series (a generated phantom by default) and write NIfTI + PNG + summary.

    Args:
        input_path: DICOM folder/file or NIfTI; None writes and uses the phantom.
        output: Output folder (created).
        series_uid: SeriesInstanceUID when the input holds several series.
        allow_irregular: Read series with gaps or a tilted gantry (with a warning).
        quiet: Print nothing.

    Returns:
        The :class:`DemoResult`.
    """
    out = Path(output)
    say = (lambda *_: None) if quiet else print
    labels = None
    if input_path is None:
        input_path, labels = _make_phantom_input(out, say)
    started = time.perf_counter()
    image = _load(input_path, series_uid, allow_irregular)
    seconds = time.perf_counter() - started
    hu = image.numpy()
    affine_ras = image.affine.numpy()
    summary = summarise(image, source=input_path, load_seconds=seconds)
    say(format_summary(summary))
    result = _write_outputs(out, hu, affine_ras, labels, summary)
    say(f"\nWrote {result.nifti}\n      {result.preview}\n      {result.summary_json}")
    return result


def _make_phantom_input(out: Path, say) -> tuple[Path, np.ndarray]:
    from ctpipe.phantom import make_phantom, write_phantom

    phantom = make_phantom()
    files = write_phantom(out / "phantom", phantom)
    say(
        f"No --input given: wrote a synthetic CT phantom (seed {phantom.seed}, "
        f"{len(files.dicom_files)} slices) as DICOM to {files.dicom_folder}\n"
    )
    return files.dicom_folder, phantom.labels


def _load(input_path: str | os.PathLike[str], series_uid: str | None, allow_irregular: bool):
    from ctpipe.io.reader import load_ct

    return load_ct(input_path, series_uid=series_uid, allow_irregular=allow_irregular)


def summarise(image, *, source: str | os.PathLike[str], load_seconds: float) -> dict[str, Any]:
    """Describe a loaded CT MetaTensor: identity, grid, orientation and HU statistics.

    Example:
        >>> summarise(image, source="ct/", load_seconds=0.1)["shape"]  # doctest: +SKIP
        [512, 512, 134]
    """
    import nibabel as nib

    hu = image.numpy()
    affine = image.affine.numpy()
    meta = image.meta
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    return {
        "source": str(source),
        "patient": str(meta.get("PatientID", "")),
        "study": str(meta.get("StudyInstanceUID", "")),
        "series": str(meta.get("ctpipe_series_key", meta.get("SeriesInstanceUID", ""))),
        "modality": str(meta.get("Modality", "")),
        "kernel": str(meta.get("ConvolutionKernel", "")),
        "shape": list(hu.shape),
        "spacing_mm": [round(float(v), 4) for v in spacing],
        "field_of_view_mm": [
            round(float(n * s), 1) for n, s in zip(hu.shape, spacing, strict=True)
        ],
        "orientation": "".join(nib.aff2axcodes(affine)),
        "origin_ras_mm": [round(float(v), 3) for v in affine[:3, 3]],
        "hu_min": float(hu.min()),
        "hu_mean": round(float(hu.mean()), 2),
        "hu_max": float(hu.max()),
        "load_seconds": round(load_seconds, 3),
    }


def format_summary(summary: dict[str, Any]) -> str:
    """Format a summary as aligned ``key: value`` lines.

    Example:
        >>> print(format_summary({"modality": "CT", "shape": [4, 4, 2]}))
        modality  CT
        shape     4 x 4 x 2
    """
    width = max(len(k) for k in summary)
    lines = []
    for key, value in summary.items():
        text = " x ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        lines.append(f"{key.ljust(width)}  {text}")
    return "\n".join(lines)


def _write_outputs(
    out: Path, hu: np.ndarray, affine_ras: np.ndarray, labels: np.ndarray | None, summary: dict
) -> DemoResult:
    from ctpipe.export.preview import write_preview_png
    from ctpipe.io.nifti import compact_hu, write_nifti

    nifti = write_nifti(compact_hu(hu), affine_ras, out / "ct.nii.gz", description="ctpipe demo")
    spacing = tuple(float(v) for v in summary["spacing_mm"])
    preview = write_preview_png(
        hu, out / "preview.png", window=PREVIEW_WINDOW, axes="all", spacing=spacing, labels=labels
    )
    summary_json = out / "summary.json"
    with atomic_path(summary_json) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return DemoResult(out, nifti, preview, summary_json, summary)
