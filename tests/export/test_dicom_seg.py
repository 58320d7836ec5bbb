"""DICOM-SEG: a segment per present class, SNOMED CT codes with laterality, dciodvfy."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pydicom
import pytest

from ctpipe.export.dicom_seg import read_dicom_seg_labels, write_dicom_seg
from ctpipe.export.dicom_series import write_ct_series
from tests.conftest import axial_affine


@pytest.fixture
def written(tmp_path):
    files = write_ct_series(np.zeros((24, 20, 4), np.float32), axial_affine(), tmp_path / "ct")
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    labels = np.zeros((24, 20, 4), np.uint8)
    labels[2:8, 3:9, 1:3] = 4  # kidney_left
    labels[12:20, 5:15, 0:2] = 9  # portal_vein_and_splenic_vein: no SNOMED concept
    class_map = {"liver": 1, "kidney_left": 4, "portal_vein_and_splenic_vein": 9}
    path = write_dicom_seg(labels, class_map, sources, tmp_path / "seg.dcm")
    return labels, class_map, sources, path


def test_one_segment_per_present_class_with_codes(written):
    labels, class_map, sources, path = written
    seg = pydicom.dcmread(path)
    segments = {s.SegmentNumber: s for s in seg.SegmentSequence}
    assert [segments[n].SegmentLabel for n in sorted(segments)] == [
        "kidney_left",
        "portal_vein_and_splenic_vein",
    ]
    kidney = segments[1].SegmentedPropertyTypeCodeSequence[0]
    assert (kidney.CodeValue, kidney.CodeMeaning) == ("64033007", "Kidney")
    side = kidney.SegmentedPropertyTypeModifierCodeSequence[0]
    assert (side.CodeValue, side.CodeMeaning) == ("7771000", "Left")
    assert (
        segments[1].SegmentedPropertyCategoryCodeSequence[0].CodeMeaning == "Anatomical Structure"
    )
    generic = segments[2]
    assert generic.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Tissue"
    assert generic.SegmentDescription == "portal_vein_and_splenic_vein"
    np.testing.assert_array_equal(read_dicom_seg_labels(path, sources, class_map), labels)
    numbers = read_dicom_seg_labels(path, sources)
    assert set(np.unique(numbers)) == {0, 1, 2}


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) absent")
def test_passes_dciodvfy(written):
    report = subprocess.run(["dciodvfy", str(written[3])], capture_output=True, text=True)
    errors = [line for line in report.stderr.splitlines() if line.startswith("Error")]
    assert not errors, errors
