"""``ctpipe demo``: the default workflow end to end on a sample, in well under 2 minutes.

Without an input the demo writes a seeded synthetic CT phantom as a DICOM series first, so
it runs anywhere, offline. It prints the input's summary, runs the default workflow
(``workflows/denoise_segment.yaml``: the out-of-distribution guard, the shipped RED-CNN
denoiser, then the shipped segmenter, then the derived DICOM series, DICOM-SEG, NIfTI,
previews and the HTML report) and prints where the report is. The guard flags the
phantom (a cartoon, unlike the patients the models were trained on); the demo says so
and goes on, as the default workflow's ``warn`` action does.

Example:
    >>> import tempfile
    >>> result = run_demo(output=tempfile.mkdtemp(), quiet=True)  # doctest: +SKIP
    >>> result.study.status, result.report.name  # doctest: +SKIP
    ('done', 'report.html')
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
from ctpipe.io.dicom_volume import CTVolume
from ctpipe.io.reader import read_study
from ctpipe.io.validate import MIN_CT_SLICE_PIXELS

#: The phantom grid of the demo (voxels, mm): an abdomen-sized field of view.
DEMO_SHAPE, DEMO_SPACING = (192, 192, 32), (1.8, 1.8, 3.0)


@dataclass(frozen=True)
class DemoResult:
    """Where the demo wrote its outputs, and the summary it printed."""

    output: Path
    summary_json: Path
    summary: dict[str, Any]
    study: Any  # ctpipe.workflow.StudyResult

    @property
    def report(self) -> Path | None:
        """The study's HTML report."""
        return self.study.report


def run_demo(
    input_path: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] = "ctpipe_demo",
    *,
    series_uid: str | None = None,
    allow_irregular: bool = False,
    quiet: bool = False,
    overwrite: bool = False,
    allow_non_hu: bool = False,
) -> DemoResult:
    """Summarise a series (a generated phantom by default) and run the default workflow.

    Args:
        input_path: DICOM folder/file or NIfTI; None writes and uses the phantom.
        output: Output folder (created): ``summary.json`` and the study folder ``study/``.
        series_uid: SeriesInstanceUID when the input holds several series.
        allow_irregular: Read series with gaps or a tilted gantry (with a warning).
        quiet: Print nothing.
        overwrite: Write into an output folder that holds files the demo did not write.
        allow_non_hu: Read input that does not look like CT in Hounsfield units.

    Returns:
        The :class:`DemoResult`.

    Raises:
        OutputError: ``output`` holds files the demo did not write (without
            ``overwrite``), or its study folder would overlap the input.
    """
    from dataclasses import replace

    from ctpipe.io.output_folder import check_output_folder
    from ctpipe.workflow import Workflow, run_study
    from ctpipe.workflow.config import InputConfig

    out = Path(output)
    inputs = [] if input_path is None else [input_path]
    check_output_folder(
        out, inputs=inputs, overwrite=overwrite, foreign=demo_folder_problem, replaced=False
    )
    say = (lambda *_: None) if quiet else print
    phantom = input_path is None
    if input_path is None:
        input_path = _make_phantom_input(out, say)
    started = time.perf_counter()
    volume = read_study(
        input_path,
        series_uid=series_uid,
        allow_irregular=allow_irregular,
        allow_non_hu=allow_non_hu,
        min_slice_pixels=MIN_CT_SLICE_PIXELS,
    )
    summary = summarise(volume, source=input_path, load_seconds=time.perf_counter() - started)
    say(format_summary(summary))
    summary_json = out / "summary.json"
    with atomic_path(summary_json) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    workflow = Workflow(name="denoise_segment")
    workflow = replace(workflow, input=InputConfig(series_uid, allow_irregular, allow_non_hu))
    say(f"\nRunning workflow {workflow.name}: {' -> '.join(workflow.steps)} -> export ...")
    study = run_study(workflow, input_path, out / "study", overwrite=overwrite, volume=volume)
    say(_describe(study, phantom))
    return DemoResult(out, summary_json, summary, study)


def demo_folder_problem(folder: str | os.PathLike[str]) -> str | None:
    """Why ``folder`` is not a demo output folder (its ``summary.json``), or None.

    Example:
        >>> import tempfile
        >>> demo_folder_problem(tempfile.mkdtemp())
        'is a folder without a ctpipe demo summary (summary.json)'
    """
    folder = Path(folder)
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        summary = None
    started = isinstance(summary, dict) and {"source", "hu_min"} <= set(summary)
    started = started or (folder / "phantom" / "phantom_labels.json").is_file()
    names = {p.name for p in folder.iterdir()}
    ours = {"phantom", "summary.json", "study", ".study.partial"}
    if started and all(n in ours or n.startswith(".study.old-") for n in names):
        return None
    return "is a folder without a ctpipe demo summary (summary.json)"


def _describe(study: Any, phantom: bool) -> str:
    if study.status == "failed":
        return f"failed: {study.error}\nrecord: {study.output_dir / 'run.json'}"
    steps = study.record["steps"]
    times = ", ".join(f"{name} {rec['seconds']:.1f} s" for name, rec in steps.items())
    lines = [f"{study.status} in {study.seconds:.1f} s ({times})"]
    guard = study.record.get("guard")
    if guard is not None:
        lines.append(_guard_line(guard, phantom))
    metrics = steps.get("segment", {}).get("metrics", {})
    volumes = metrics.get("volume_ml", {})
    if volumes:
        mark = " UNRELIABLE (study flagged by the guard)" if metrics.get("volume_warning") else ""
        lines.append(f"volumes (mL){mark}: " + ", ".join(f"{k} {v:g}" for k, v in volumes.items()))
    lines += [f"report: {study.report}", f"outputs: {study.output_dir}"]
    return "\n".join(lines)


def _guard_line(guard: dict[str, Any], phantom: bool) -> str:
    score = f"score {guard['study_score']:.1f}, threshold {guard['study_threshold']:.1f}"
    if not guard["flagged"]:
        return f"guard: the input looks like the CT the models were trained on ({score})"
    expected = (
        " This is expected here: the phantom is a cartoon, not a patient, and the guard "
        "says so; the run went on because the workflow's guard action is 'warn'."
        if phantom
        else ""
    )
    return f"guard: WARNING: {guard['warning']}{expected}"


def _make_phantom_input(out: Path, say) -> Path:
    from ctpipe.phantom import make_phantom, write_phantom

    phantom = make_phantom(shape=DEMO_SHAPE, spacing=DEMO_SPACING)
    files = write_phantom(out / "phantom", phantom)
    say(
        f"No --input given: wrote a synthetic CT phantom (seed {phantom.seed}, "
        f"{len(files.dicom_files)} slices) as DICOM to {files.dicom_folder}\n"
    )
    return files.dicom_folder


def summarise(
    volume: CTVolume, *, source: str | os.PathLike[str], load_seconds: float
) -> dict[str, Any]:
    """Describe a loaded CT volume: identity, grid, orientation and HU statistics.

    Example:
        >>> summarise(volume, source="ct/", load_seconds=0.1)["shape"]  # doctest: +SKIP
        [512, 512, 134]
    """
    import nibabel as nib

    hu = volume.hu
    affine = volume.affine_ras
    meta = volume.meta
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
