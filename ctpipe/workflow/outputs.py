"""Write a finished study's outputs into its (staging) folder, as the workflow asks.

Layout of a study folder::

    run.json                   the run record (written last by the runner)
    report.html                the study report
    statistics.csv             each class's voxels, volume (mL), mean/median/std HU
    nifti/image.nii.gz         the input image (HU)
    nifti/denoised.nii.gz      each image step's result (HU)
    nifti/labels.nii.gz        the labels
    nifti/anomaly.nii.gz       the VAE anomaly map (HU of reconstruction error)
    nifti/inpaint_mask.nii.gz  the hole the inpaint step filled
    dicom/derived/IM0001.dcm   the final image as a derived CT series
    dicom/segmentation.dcm     the labels as a DICOM Segmentation
    dicom/rtstruct.dcm         the labels as an RT Structure Set (``export.rtstruct``)
    previews/*.png             input, result, difference, label and anomaly overlays

Example:
    >>> study_paths("out")["labels_nifti"]
    PosixPath('out/nifti/labels.nii.gz')
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from ctpipe.transforms import DISPLAY_WINDOW
from ctpipe.workflow.config import Workflow
from ctpipe.workflow.steps import StudyState

__all__ = ["DIFFERENCE_WINDOW", "study_paths", "write_outputs"]

#: Grey ramp (HU) of the difference preview (input minus result).
DIFFERENCE_WINDOW = (-60.0, 60.0)
#: Previews add coronal and sagittal views from this many slices on.
MIN_SLICES_FOR_REFORMATS = 16


def study_paths(folder: str | PathLike[str]) -> dict[str, Path]:
    """Where each output of a study goes, relative to its folder."""
    root = Path(folder)
    return {
        "record": root / "run.json",
        "report": root / "report.html",
        "image_nifti": root / "nifti" / "image.nii.gz",
        "labels_nifti": root / "nifti" / "labels.nii.gz",
        "dicom_series": root / "dicom" / "derived",
        "dicom_seg": root / "dicom" / "segmentation.dcm",
        "dicom_rtstruct": root / "dicom" / "rtstruct.dcm",
        "statistics": root / "statistics.csv",
        "previews": root / "previews",
    }


def write_outputs(
    state: StudyState, workflow: Workflow, folder: Path, records: dict[str, Any]
) -> dict[str, Any]:
    """Write NIfTI, DICOM, DICOM-SEG, RTSTRUCT, statistics and previews; return them.

    Args:
        state: The finished study.
        workflow: Its workflow (``export`` says what to write).
        folder: The study's staging folder.
        records: The step records (used in descriptions).

    Returns:
        ``{"nifti": [...], "dicom_series": [...], "dicom_seg": ..., "dicom_rtstruct": ...,
        "statistics": ..., "previews": {...}}`` with paths relative to ``folder``.
    """
    paths = study_paths(folder)
    export = workflow.export
    written: dict[str, Any] = {}
    if export.nifti:
        written["nifti"] = _write_nifti(state, paths)
    if export.dicom and _image_changed(state):
        written["dicom_series"] = _write_dicom(state, workflow, paths, records)
    if export.seg and state.labels is not None:
        description = f"ctpipe {workflow.name} segmentation" + _flag_suffix(records)
        written["dicom_seg"] = _write_labels(
            "dicom_seg", description, state, workflow, paths, records, written
        )
    if export.rtstruct and state.labels is not None:
        description = f"ctpipe {workflow.name} structures"
        written["dicom_rtstruct"] = _write_labels(
            "dicom_rtstruct", description, state, workflow, paths, records, written
        )
    if export.statistics and "statistics" in state.analyses:
        from ctpipe.organ_statistics import write_statistics_csv

        written["statistics"] = write_statistics_csv(
            state.analyses["statistics"], paths["statistics"]
        )
    if export.previews:
        written["previews"] = _write_previews(state, paths["previews"])
    return _relative(written, folder)


def _image_changed(state: StudyState) -> bool:
    return bool(state.outputs)


def _write_nifti(state: StudyState, paths: dict[str, Path]) -> list[Path]:
    from ctpipe.io.nifti import compact_hu, write_nifti

    affine = state.volume.affine_ras
    written = [write_nifti(compact_hu(state.volume.hu), affine, paths["image_nifti"])]
    for name, image in state.outputs.items():
        path = paths["image_nifti"].with_name(f"{name}.nii.gz")
        written.append(write_nifti(compact_hu(image), affine, path, description=f"ctpipe {name}"))
    if state.labels is not None:
        written.append(write_nifti(state.labels, affine, paths["labels_nifti"], intent="label"))
    if "inpaint_mask" in state.analyses:
        path = paths["image_nifti"].with_name("inpaint_mask.nii.gz")
        mask = state.analyses["inpaint_mask"].astype(np.uint8)
        written.append(write_nifti(mask, affine, path, intent="label"))
    if "anomaly" in state.analyses:
        path = paths["image_nifti"].with_name("anomaly.nii.gz")
        written.append(state.analyses["anomaly"].write_nifti(path, affine))
    return written


def _write_dicom(
    state: StudyState, workflow: Workflow, paths: dict[str, Path], records: dict[str, Any]
) -> list[Path]:
    from ctpipe.export.derived import write_derived_series

    steps = [s for s in workflow.steps if records.get(s, {}).get("output") in state.outputs]
    models = "; ".join(
        f"{s}: {records[s]['model']['name']} sha256 {records[s]['model']['sha256'][:16]}"
        for s in steps
        if "model" in records.get(s, {})
    )
    return write_derived_series(
        state.image,
        state.volume,
        paths["dicom_series"],
        derivation_description=f"ctpipe workflow {workflow.name}: {', '.join(steps)} ({models})"
        + _flag_note(records),
        series_description=workflow.export.series_description + _flag_suffix(records),
    )


#: Added to the descriptions of the DICOM outputs of a study the guard flagged.
FLAG_SUFFIX = " [guard: OOD]"


def _flag_suffix(records: dict[str, Any]) -> str:
    return FLAG_SUFFIX if records.get("guard", {}).get("warning") else ""


def _flag_note(records: dict[str, Any]) -> str:
    guard = records.get("guard", {})
    if not guard.get("warning"):
        return ""
    metrics = guard["metrics"]
    return (
        f"; WARNING: input out of distribution (guard score {metrics['study_score']:.1f} > "
        f"{metrics['study_threshold']:.1f})"
    )


def _write_labels(
    key: str,
    description: str,
    state: StudyState,
    workflow: Workflow,
    paths: dict[str, Path],
    records: dict[str, Any],
    written: dict[str, Any],
) -> Path:
    """The labels as a DICOM object (``dicom_seg`` or ``dicom_rtstruct``), written to ``paths``.

    It refers to the source series (or the derived series of a NIfTI input) and names the
    segment step's model as its algorithm.
    """
    from ctpipe.export.dicom_seg import write_dicom_seg
    from ctpipe.export.rtstruct import write_rtstruct

    writer = {"dicom_seg": write_dicom_seg, "dicom_rtstruct": write_rtstruct}[key]
    record = records["segment"]
    return writer(
        state.labels,
        record["class_map"],
        _label_sources(state, workflow, paths, written),
        paths[key],
        series_description=description,
        algorithm_name=f"ctpipe {record['model']['name']}",
    )


def _label_sources(
    state: StudyState, workflow: Workflow, paths: dict[str, Path], written: dict[str, Any]
) -> list[Any]:
    """The datasets the labels refer to: the source series, or a NIfTI's derived series.

    The derived series of a NIfTI input is written here when the export has not already.
    """
    import pydicom

    from ctpipe.export.derived import source_datasets, write_derived_series

    if state.volume.series is not None:
        return source_datasets(state.volume)
    files = written.get("dicom_series") or write_derived_series(
        state.image,
        state.volume,
        paths["dicom_series"],
        derivation_description=f"ctpipe workflow {workflow.name}: image of a NIfTI input",
        series_description=workflow.export.series_description,
    )
    written["dicom_series"] = files
    return [pydicom.dcmread(f, stop_before_pixels=True) for f in files]


def _write_previews(state: StudyState, folder: Path) -> dict[str, Path]:
    from ctpipe.export.preview import write_preview_png

    spacing = state.volume.spacing
    k = _interesting_slice(state)
    views = {
        "input": write_preview_png(
            state.volume.hu,
            folder / "input.png",
            window=DISPLAY_WINDOW,
            slice_index=k,
            axes="all",
            spacing=spacing,
        )
    }
    for name, image in state.outputs.items():
        views[name] = write_preview_png(
            image,
            folder / f"{name}.png",
            window=DISPLAY_WINDOW,
            slice_index=k,
            axes="all",
            spacing=spacing,
        )
        views[f"{name}_difference"] = write_preview_png(
            state.volume.hu - image,
            folder / f"{name}_difference.png",
            window=DIFFERENCE_WINDOW,
            slice_index=k,
            axes="all",
            spacing=spacing,
        )
    if state.labels is not None:
        views["labels"] = write_preview_png(
            state.image,
            folder / "labels.png",
            window=DISPLAY_WINDOW,
            slice_index=k,
            axes="all",
            spacing=spacing,
            labels=state.labels,
        )
    if "anomaly" in state.analyses:
        from ctpipe.anomaly.export import write_anomaly_overlay

        views["anomaly"] = write_anomaly_overlay(
            state.image, state.analyses["anomaly"], folder / "anomaly.png"
        )
    return views


def _interesting_slice(state: StudyState) -> int:
    """The slice with the most labelled voxels, else the middle one."""
    if state.labels is not None and state.labels.any():
        return int(np.argmax((state.labels > 0).sum(axis=(0, 1))))
    return state.volume.hu.shape[2] // 2


def _relative(value: Any, root: Path) -> Any:
    if isinstance(value, Path):
        return str(value.relative_to(root))
    if isinstance(value, dict):
        return {k: _relative(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_relative(v, root) for v in value]
    return value
