"""RTSTRUCT export: contours round-trip on the phantom, exact geometry, references, dciodvfy."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pydicom
import pytest

from ctpipe.export.dicom_series import write_ct_series
from ctpipe.export.rtstruct import read_rtstruct_masks, write_rtstruct
from ctpipe.phantom import make_phantom, write_phantom
from tests.conftest import axial_affine


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rtstruct")
    phantom = make_phantom(shape=(96, 96, 8), spacing=(1.5, 1.5, 3.0))
    files = write_phantom(folder, phantom, patient_id="RT-1")
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files.dicom_files]
    path = write_rtstruct(phantom.labels, dict(phantom.label_names), sources, folder / "rt.dcm")
    return phantom, files, sources, path


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_contours_round_trip_to_the_phantom_organs(written):
    phantom, _, _, path = written
    masks = read_rtstruct_masks(path, phantom.shape, phantom.affine_lps)
    assert sorted(masks) == sorted(phantom.label_names)
    for name in phantom.label_names:
        assert phantom.mask(name).any()
        assert dice(masks[name], phantom.mask(name)) >= 0.95, name


def test_rt_utils_reads_back_the_same_masks(written):
    from rt_utils import RTStructBuilder

    phantom, files, _, path = written
    structure = RTStructBuilder.create_from(str(files.dicom_folder), str(path))
    for name in phantom.label_names:
        mask = structure.get_roi_mask_by_name(name).transpose(1, 0, 2)  # rows, columns
        assert dice(mask, phantom.mask(name)) >= 0.95, name


def test_structure_set_references_the_source_series(written):
    _, _, sources, path = written
    ds = pydicom.dcmread(path)
    first = sources[0]
    assert ds.Modality == "RTSTRUCT"
    for keyword in ("PatientID", "StudyInstanceUID", "FrameOfReferenceUID"):
        assert ds[keyword].value == first[keyword].value
    assert ds.SeriesInstanceUID != first.SeriesInstanceUID
    frame = ds.ReferencedFrameOfReferenceSequence[0]
    assert frame.FrameOfReferenceUID == first.FrameOfReferenceUID
    series = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == first.SeriesInstanceUID
    referenced = {item.ReferencedSOPInstanceUID for item in series.ContourImageSequence}
    assert referenced == {s.SOPInstanceUID for s in sources}
    uids = {s.SOPInstanceUID for s in sources}
    for roi in ds.ROIContourSequence:
        for contour in roi.ContourSequence:
            assert contour.ContourImageSequence[0].ReferencedSOPInstanceUID in uids
            assert contour.NumberOfContourPoints * 3 == len(contour.ContourData)


def test_rois_carry_names_types_and_codes(written):
    ds = pydicom.dcmread(written[3])
    rois = {roi.ROINumber: roi for roi in ds.StructureSetROISequence}
    observed = {}
    for observation in ds.RTROIObservationsSequence:
        name = rois[observation.ReferencedROINumber].ROIName
        code = observation.RTROIIdentificationCodeSequence[0]
        observed[name] = (code.CodingSchemeDesignator, code.CodeValue, code.CodeMeaning)
        assert observation.RTROIInterpretedType == "ORGAN"
    assert observed["liver"] == ("SCT", "10200004", "Liver")
    assert observed["kidney_left"] == ("SCT", "64033007", "Kidney")
    assert {roi.ROIGenerationAlgorithm for roi in rois.values()} == {"AUTOMATIC"}
    assert ds.Manufacturer == "ctpipe" and "InstitutionName" not in ds


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) absent")
def test_passes_dciodvfy(written):
    report = subprocess.run(["dciodvfy", str(written[3])], capture_output=True, text=True)
    errors = [line for line in report.stderr.splitlines() if line.startswith("Error")]
    assert not errors, errors


@pytest.mark.parametrize("rotation", [0.0, 30.0])
def test_non_square_pixels_land_where_the_affine_says(tmp_path, rotation):
    # rt-utils reads PixelSpacing in the wrong order (its issue 92); the writer corrects it
    affine = axial_affine(spacing=(0.6, 1.1, 2.0), rotation_deg=rotation)
    files = write_ct_series(np.zeros((40, 30, 4), np.float32), affine, tmp_path / "ct")
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    labels = np.zeros((40, 30, 4), np.uint8)
    labels[5:30, 4:12, 1:3] = 1
    labels[12:16, 18:26, 0] = 2
    path = write_rtstruct(labels, {"liver": 1, "tumour": 2}, sources, tmp_path / "rt.dcm")
    masks = read_rtstruct_masks(path, labels.shape, affine)
    np.testing.assert_array_equal(masks["liver"], labels == 1)
    np.testing.assert_array_equal(masks["tumour"], labels == 2)
    # every contour point is the centre of a boundary voxel of its ROI
    ds = pydicom.dcmread(path)
    to_voxel = np.linalg.inv(affine)
    for roi in ds.ROIContourSequence:
        for contour in roi.ContourSequence:
            points = np.asarray(contour.ContourData, float).reshape(-1, 3)
            voxels = (to_voxel[:3, :3] @ points.T).T + to_voxel[:3, 3]
            np.testing.assert_allclose(voxels, np.rint(voxels), atol=1e-3)
            i, j, k = np.rint(voxels).astype(int).T
            assert (labels[i, j, k] == int(roi.ReferencedROINumber)).all()


def test_holes_stay_holes(tmp_path):
    affine = axial_affine(spacing=(1.0, 1.0, 2.0))
    files = write_ct_series(np.zeros((30, 30, 1), np.float32), affine, tmp_path / "ct")
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    labels = np.zeros((30, 30, 1), np.uint8)
    labels[5:25, 5:25] = 1
    labels[10:20, 12:18] = 0
    path = write_rtstruct(labels, {"heart": 1}, sources, tmp_path / "rt.dcm")
    np.testing.assert_array_equal(
        read_rtstruct_masks(path, labels.shape, affine)["heart"], labels == 1
    )


def test_absent_classes_get_no_roi(tmp_path):
    affine = axial_affine()
    files = write_ct_series(np.zeros((20, 20, 2), np.float32), affine, tmp_path / "ct")
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    labels = np.zeros((20, 20, 2), np.uint8)
    labels[2:6, 2:6, 1] = 3
    path = write_rtstruct(labels, {"liver": 1, "spleen": 3}, sources, tmp_path / "rt.dcm")
    assert [r.ROIName for r in pydicom.dcmread(path).StructureSetROISequence] == ["spleen"]


def test_bad_inputs_are_refused(tmp_path):
    affine = axial_affine()
    files = write_ct_series(np.zeros((20, 20, 3), np.float32), affine, tmp_path / "ct")
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    labels = np.zeros((20, 20, 3), np.uint8)
    labels[2:6, 2:6, 1] = 2
    with pytest.raises(ValueError, match=r"values \[2\] that class_map"):
        write_rtstruct(labels, {"liver": 1}, sources, tmp_path / "a.dcm")
    with pytest.raises(ValueError, match=r"source grid's shape"):
        write_rtstruct(labels[:, :, :2], {"liver": 2}, sources, tmp_path / "b.dcm")
    sources[2].ImagePositionPatient = [
        float(v) + d for v, d in zip(sources[2].ImagePositionPatient, (0.0, 3.0, 0.0), strict=True)
    ]
    with pytest.raises(ValueError, match="evenly spaced, untilted"):
        write_rtstruct(labels, {"liver": 2}, sources, tmp_path / "c.dcm")
    assert not list(tmp_path.glob("*.dcm"))


def test_single_voxels_and_thin_lines_round_trip(tmp_path):
    affine = axial_affine(spacing=(0.7, 0.7, 2.5))
    files = write_ct_series(np.zeros((24, 24, 2), np.float32), affine, tmp_path / "ct")
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    labels = np.zeros((24, 24, 2), np.uint8)
    labels[3, 4, 0] = 1  # one voxel: a one-point contour
    labels[10:20, 7, 0] = 2  # a line one voxel wide: a two-point contour
    labels[5:15, 15, 1] = 3  # an L one voxel wide
    labels[14, 15:22, 1] = 3
    names = {"liver": 1, "spleen": 2, "spine": 3}
    path = write_rtstruct(labels, names, sources, tmp_path / "rt.dcm")
    masks = read_rtstruct_masks(path, labels.shape, affine)
    for name, value in names.items():
        np.testing.assert_array_equal(masks[name], labels == value, err_msg=name)
