"""A bundle in a workflow: ``segment: {bundle: DIR}``, SEG with codes, RTSTRUCT, statistics."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pydicom
import pytest
import yaml

from ctpipe.bundle import BundleSegmenter, find_bundle
from ctpipe.export.dicom_seg import read_dicom_seg_labels
from ctpipe.export.rtstruct import read_rtstruct_masks
from ctpipe.io import load_ct
from ctpipe.workflow.config import WorkflowError, load_workflow
from ctpipe.workflow.runner import run_study
from tests.bundle.conftest import dice


def write_workflow(folder, **segment) -> object:
    data = {
        "name": "bundle_wf",
        "steps": ["segment"],
        "segment": {"sw_device": "cpu", **segment},
        "export": {"rtstruct": True, "previews": False},
    }
    path = folder / "workflow.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def bundle_study(tmp_path_factory, bundle_dir, phantom_files):
    _, files = phantom_files
    folder = tmp_path_factory.mktemp("wf")
    shutil.copytree(bundle_dir, folder / "bundles" / "phantom")
    path = write_workflow(folder, bundle="bundles/phantom")  # relative to the workflow file
    result = run_study(
        load_workflow(path), files.dicom_folder, folder / "out", workflow_source=path
    )
    assert result.status == "done", result.error
    return result


def test_labels_are_the_bundles_own(bundle_study, bundle_dir, phantom_files):
    _, files = phantom_files
    labels = np.asarray(nib.load(bundle_study.output_dir / "nifti" / "labels.nii.gz").dataobj)
    direct = BundleSegmenter(find_bundle(bundle_dir))(load_ct(files.dicom_folder))
    np.testing.assert_array_equal(labels, direct.numpy())
    step = bundle_study.record["steps"]["segment"]
    assert step["class_map"] == {"liver": 1, "spleen": 2}
    assert step["model"]["name"] == "bundle Phantom liver and spleen 0.1.0"
    assert step["model"]["path"].endswith("models/model.pt")
    assert step["settings"]["bundle"]["weights"] == "models/model.pt"


def test_seg_and_rtstruct_carry_the_bundles_classes(bundle_study, phantom_files):
    phantom, files = phantom_files
    out = bundle_study.output_dir
    labels = np.asarray(nib.load(out / "nifti" / "labels.nii.gz").dataobj)
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files.dicom_files]
    class_map = bundle_study.record["steps"]["segment"]["class_map"]
    seg_path = out / "dicom" / "segmentation.dcm"
    np.testing.assert_array_equal(read_dicom_seg_labels(seg_path, sources, class_map), labels)
    seg = pydicom.dcmread(seg_path)
    types = {
        s.SegmentLabel: s.SegmentedPropertyTypeCodeSequence[0].CodeValue
        for s in seg.SegmentSequence
    }
    assert types == {"liver": "10200004", "spleen": "78961009"}
    masks = read_rtstruct_masks(out / "dicom" / "rtstruct.dcm", labels.shape, phantom.affine_lps)
    for name, value in class_map.items():
        assert dice(masks[name], labels == value) >= 0.95
    assert (out / "dicom" / "rtstruct.dcm") in bundle_study.dicom_outputs


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) absent")
def test_bundle_outputs_pass_dciodvfy(bundle_study):
    for name in ("segmentation.dcm", "rtstruct.dcm"):
        path = bundle_study.output_dir / "dicom" / name
        report = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        errors = [line for line in report.stderr.splitlines() if line.startswith("Error")]
        assert not errors, f"{name}: {errors}"


def test_statistics_in_csv_record_and_report(bundle_study, phantom_files):
    phantom, _ = phantom_files
    out = bundle_study.output_dir
    labels = np.asarray(nib.load(out / "nifti" / "labels.nii.gz").dataobj)
    with open(out / "statistics.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    record = json.loads((out / "run.json").read_text())
    classes = record["steps"]["segment"]["statistics"]["classes"]
    assert [r["name"] for r in rows] == [c["name"] for c in classes] == ["liver", "spleen"]
    for row, stored in zip(rows, classes, strict=True):
        hu = phantom.hu[labels == int(row["label"])].astype(np.float64)
        assert int(row["voxels"]) == stored["voxels"] == hu.size
        assert float(row["mean_hu"]) == pytest.approx(hu.mean(), abs=1e-3)
        assert stored["median_hu"] == pytest.approx(np.median(hu), abs=1e-3)
    report = (out / "report.html").read_text()
    assert "<h3>Organ statistics</h3>" in report and "<td>spleen</td>" in report


def test_shipped_model_labels_get_statistics_too(tmp_path, phantom_files):
    _, files = phantom_files
    path = write_workflow(tmp_path)
    result = run_study(load_workflow(path), files.ct_nifti, tmp_path / "out", workflow_source=path)
    assert result.status == "done", result.error
    labels = np.asarray(nib.load(result.output_dir / "nifti" / "labels.nii.gz").dataobj)
    with open(result.output_dir / "statistics.csv", newline="") as stream:
        rows = {r["name"]: r for r in csv.DictReader(stream)}
    class_map = result.record["steps"]["segment"]["class_map"]
    assert sorted(rows) == sorted(class_map)
    for name, value in class_map.items():
        assert int(rows[name]["voxels"]) == int((labels == value).sum())
    assert (result.output_dir / "dicom" / "rtstruct.dcm").exists()  # a NIfTI input: derived refs


def test_a_bundle_name_that_is_no_folder_is_refused_before_work(tmp_path):
    path = write_workflow(tmp_path, bundle="wholeBody_ct_segmentation")
    with pytest.raises(
        WorkflowError,
        match=r"segment.bundle: .*python -m monai.bundle download "
        r"--name wholeBody_ct_segmentation",
    ):
        load_workflow(path)
