"""One study through a workflow: outputs, DICOM validity, geometry, atomic failure."""

from __future__ import annotations

import json
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pydicom
import pytest

from ctpipe.export.dicom_seg import read_dicom_seg_labels
from ctpipe.io.dicom_volume import read_dicom_volume
from ctpipe.workflow import load_workflow, run_study
from ctpipe.workflow import runner as runner_module


@pytest.fixture
def done_study(tmp_path, phantom_series, workflow_file):
    workflow = load_workflow(workflow_file())
    result = run_study(workflow, phantom_series.dicom_folder, tmp_path / "out" / "study")
    assert result.status == "done", result.error
    return result, phantom_series


def test_study_folder_holds_every_output(done_study):
    result, _ = done_study
    folder = result.output_dir
    for name in (
        "run.json",
        "report.html",
        "nifti/image.nii.gz",
        "nifti/denoised.nii.gz",
        "nifti/labels.nii.gz",
        "dicom/segmentation.dcm",
        "previews/input.png",
        "previews/denoised.png",
        "previews/labels.png",
    ):
        assert (folder / name).is_file(), name
    assert len(list((folder / "dicom" / "derived").glob("*.dcm"))) == 6
    assert not list(folder.parent.glob(".*"))  # no staging left
    assert runner_module.study_folder_problem(folder) is None  # the record lists every file


def test_run_record_names_models_settings_and_timings(done_study):
    result, _ = done_study
    record = json.loads((result.output_dir / "run.json").read_text())
    assert record["status"] == "done"
    assert record["input"]["shape"] == [48, 48, 6]
    assert record["input"]["PatientID"] == "PHANTOM-1"
    for step in ("denoise", "segment"):
        assert len(record["steps"][step]["model"]["sha256"]) == 64
        assert record["steps"][step]["seconds"] >= 0
    assert set(record["steps"]["segment"]["metrics"]["volume_ml"]) == {"liver", "spleen"}
    assert {"ctpipe", "torch", "monai", "pydicom", "highdicom"} <= set(record["versions"])
    assert record["timings"]["total"] >= record["timings"]["export"]
    html = (result.output_dir / "report.html").read_text()
    assert record["steps"]["denoise"]["model"]["sha256"] in html
    assert 'src="previews/labels.png"' in html


def test_derived_series_keeps_study_geometry_and_hu(done_study):
    result, phantom = done_study
    source = read_dicom_volume(phantom.dicom_folder)
    derived = read_dicom_volume(result.output_dir / "dicom" / "derived")
    denoised = nib.load(result.output_dir / "nifti" / "denoised.nii.gz").get_fdata()
    np.testing.assert_allclose(derived.affine_lps, source.affine_lps, atol=1e-4)
    np.testing.assert_allclose(derived.hu, denoised, atol=0.5)
    src_files = sorted(phantom.dicom_files)
    for k, path in enumerate(sorted((result.output_dir / "dicom" / "derived").glob("*.dcm"))):
        ds, src = pydicom.dcmread(path), pydicom.dcmread(src_files[k])
        assert list(ds.ImageType) == ["DERIVED", "SECONDARY", "AXIAL"]
        assert "denoise" in ds.DerivationDescription
        assert ds.StudyInstanceUID == src.StudyInstanceUID
        assert ds.PatientID == src.PatientID
        assert ds.FrameOfReferenceUID == src.FrameOfReferenceUID
        assert ds.SeriesInstanceUID != src.SeriesInstanceUID
        assert ds.SOPInstanceUID != src.SOPInstanceUID
        assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
        assert [float(v) for v in ds.ImagePositionPatient] == pytest.approx(
            [float(v) for v in src.ImagePositionPatient], abs=1e-4
        )


def test_dicom_seg_matches_labels_frame_by_frame(done_study):
    result, phantom = done_study
    labels = np.asarray(nib.load(result.output_dir / "nifti" / "labels.nii.gz").dataobj)
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in sorted(phantom.dicom_files)]
    seg_path = result.output_dir / "dicom" / "segmentation.dcm"
    np.testing.assert_array_equal(
        read_dicom_seg_labels(seg_path, sources, _class_map(result)), labels
    )
    seg = pydicom.dcmread(seg_path)
    assert seg.StudyInstanceUID == sources[0].StudyInstanceUID
    assert seg.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    referenced = {
        item.ReferencedSOPInstanceUID
        for item in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    }
    assert referenced == {ds.SOPInstanceUID for ds in sources}


def test_nifti_outputs_share_the_input_affine(done_study):
    result, phantom = done_study
    reference = nib.load(phantom.ct_nifti).affine
    for name in ("image", "denoised", "labels"):
        image = nib.load(result.output_dir / "nifti" / f"{name}.nii.gz")
        np.testing.assert_allclose(image.affine, reference, atol=1e-5)
        assert image.shape == (48, 48, 6)


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) absent")
def test_outputs_pass_dciodvfy(done_study):
    result, _ = done_study
    files = [
        *sorted((result.output_dir / "dicom" / "derived").glob("*.dcm"))[:2],
        result.output_dir / "dicom" / "segmentation.dcm",
    ]
    for path in files:
        report = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        errors = [line for line in report.stderr.splitlines() if line.startswith("Error")]
        assert not errors, f"{path.name}: {errors}"


def test_nifti_input_gets_new_study_and_seg(tmp_path, phantom_series, workflow_file):
    workflow = load_workflow(workflow_file())
    result = run_study(workflow, phantom_series.ct_nifti, tmp_path / "nifti_study")
    assert result.status == "done", result.error
    files = sorted((result.output_dir / "dicom" / "derived").glob("*.dcm"))
    assert len(files) == 6
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    labels = np.asarray(nib.load(result.output_dir / "nifti" / "labels.nii.gz").dataobj)
    seg = result.output_dir / "dicom" / "segmentation.dcm"
    np.testing.assert_array_equal(read_dicom_seg_labels(seg, sources, _class_map(result)), labels)


def test_failure_is_recorded_and_replaces_nothing_half_written(tmp_path, workflow_file):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.dcm").write_bytes(b"not dicom at all")
    workflow = load_workflow(workflow_file())
    result = run_study(workflow, bad, tmp_path / "out" / "bad")
    assert result.status == "failed"
    assert str(bad) in result.error
    assert sorted(p.name for p in result.output_dir.iterdir()) == ["run.json"]
    record = json.loads((result.output_dir / "run.json").read_text())
    assert record["status"] == "failed" and "Traceback" in record["traceback"]
    assert result.report is None and result.dicom_outputs == []


def test_missing_input_fails_with_its_name(tmp_path, workflow_file):
    result = run_study(load_workflow(workflow_file()), tmp_path / "nope", tmp_path / "o")
    assert result.status == "failed"
    assert "nope: no such file or folder" in result.error


def test_interrupt_leaves_only_hidden_staging_then_rerun_cleans(
    tmp_path, phantom_series, workflow_file, monkeypatch
):
    workflow = load_workflow(workflow_file(steps=["denoise"]))
    out = tmp_path / "out" / "study"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner_module, "write_outputs", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_study(workflow, phantom_series.dicom_folder, out)
    assert not out.exists()
    assert (out.parent / ".study.partial").is_dir()
    monkeypatch.undo()
    assert run_study(workflow, phantom_series.dicom_folder, out).status == "done"
    assert not (out.parent / ".study.partial").exists()


def test_rerun_replaces_previous_result(tmp_path, phantom_series, workflow_file):
    out = tmp_path / "study"
    first = run_study(
        load_workflow(workflow_file(steps=["denoise"])), phantom_series.dicom_folder, out
    )
    assert (out / "nifti" / "denoised.nii.gz").exists() and first.status == "done"
    second = run_study(
        load_workflow(workflow_file(steps=["segment"])), phantom_series.dicom_folder, out
    )
    assert second.status == "done"
    assert not (out / "nifti" / "denoised.nii.gz").exists()
    assert (out / "nifti" / "labels.nii.gz").exists()


def test_anomaly_step_writes_map_overlay_and_scores(tmp_path, phantom_series, workflow_file):
    workflow = load_workflow(workflow_file(steps=["segment", "anomaly"], anomaly={"samples": 2}))
    result = run_study(workflow, phantom_series.dicom_folder, tmp_path / "anomaly")
    assert result.status == "done", result.error
    record = result.record["steps"]["anomaly"]
    assert len(record["model"]["sha256"]) == 64
    assert record["settings"]["samples"] == 2
    anomaly = nib.load(result.output_dir / "nifti" / "anomaly.nii.gz")
    assert anomaly.shape == (48, 48, 6)
    np.testing.assert_allclose(anomaly.affine, nib.load(phantom_series.ct_nifti).affine, atol=1e-5)
    assert np.asarray(anomaly.dataobj).max() > 0
    assert (result.output_dir / "previews" / "anomaly.png").is_file()
    assert 'src="previews/anomaly.png"' in (result.output_dir / "report.html").read_text()
    assert 0 <= max(record["metrics"]["top_slices"]) < 6
    assert runner_module.study_folder_problem(result.output_dir) is None


@pytest.fixture
def phantom_72(tmp_path):
    """A phantom big enough for the 64 x 64 generator."""
    from ctpipe.phantom import make_phantom, write_phantom

    return write_phantom(tmp_path / "p72", make_phantom(shape=(72, 72, 6), spacing=(4.0, 4.0, 5.0)))


@pytest.mark.parametrize("mask", ["generated", "labels", "file"])
def test_inpaint_step_fills_only_the_hole(tmp_path, phantom_72, workflow_file, mask):
    phantom_series = phantom_72
    quick = {"pool_size": 64, "search": {"iterations": 20}, "mode": "independent"}
    inpaint = {"mask": mask, "settings": quick, "mask_kind": "box", "seed": 3}
    steps = ["inpaint"]
    changes = {}
    if mask == "labels":  # the shipped segmenter finds the phantom's kidneys
        inpaint["mask_classes"] = ["kidney_right", "kidney_left"]
        steps = ["segment", "inpaint"]
        changes["segment"] = {"weights": "default", "sw_device": "cpu"}
    if mask == "file":
        from ctpipe.io.nifti import write_nifti

        hole = np.zeros((72, 72, 6), np.uint8)
        hole[30:38, 28:36, 2:4] = 1
        mask_path = tmp_path / "masks" / "dicom.nii.gz"
        write_nifti(hole, nib.load(phantom_series.ct_nifti).affine, mask_path, intent="label")
        inpaint["mask_path"] = str(tmp_path / "masks" / "{series}.nii.gz")
    workflow = load_workflow(workflow_file(steps=steps, inpaint=inpaint, **changes))
    result = run_study(workflow, phantom_series.dicom_folder, tmp_path / f"inpaint_{mask}")
    assert result.status == "done", result.error
    folder = result.output_dir
    hole = np.asarray(nib.load(folder / "nifti" / "inpaint_mask.nii.gz").dataobj).astype(bool)
    before = np.asarray(nib.load(folder / "nifti" / "image.nii.gz").dataobj)
    after = np.asarray(nib.load(folder / "nifti" / "inpainted.nii.gz").dataobj)
    assert hole.any()
    np.testing.assert_array_equal(after[~hole], before[~hole])  # known voxels kept
    assert not np.array_equal(after[hole], before[hole])
    record = result.record["steps"]["inpaint"]
    assert record["metrics"]["hole_voxels"] == int(hole.sum())
    assert record["settings"]["mask"]["source"] == mask
    assert len(list((folder / "dicom" / "derived").glob("*.dcm"))) == 6
    assert runner_module.study_folder_problem(folder) is None


def test_inpaint_labels_needs_segment_first(workflow_file):
    from ctpipe.workflow.config import WorkflowError

    with pytest.raises(WorkflowError, match="needs a segment step before inpaint"):
        load_workflow(
            workflow_file(steps=["inpaint"], inpaint={"mask": "labels", "mask_classes": ["liver"]})
        )


def _class_map(result) -> dict[str, int]:
    return result.record["steps"]["segment"]["class_map"]
