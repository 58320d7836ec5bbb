"""Tests of ctpipe.export.dicom_series against pydicom and SimpleITK (GDCM) readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
)

from ctpipe.export import dicom_series
from ctpipe.export.dicom_series import hu_to_stored, write_ct_series

SHAPE = (40, 36, 5)  # (i, j, k): 40 columns, 36 rows, 5 slices; >= 32 for JPEG 2000


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def integer_hu(rng: np.random.Generator, low: int = -1024, high: int = 2000) -> np.ndarray:
    return rng.integers(low, high, size=SHAPE).astype(np.float32)


def make_affine(spacing, origin, angle_deg: float = 0.0, flip_step: bool = False) -> np.ndarray:
    """(i, j, k) -> LPS affine, rotated by angle_deg about the z axis."""
    a = np.radians(angle_deg)
    rotation = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(spacing)
    if flip_step:
        affine[:3, 2] *= -1
    affine[:3, 3] = origin
    return affine


def read_with_sitk(folder: Path) -> tuple[np.ndarray, sitk.Image]:
    reader = sitk.ImageSeriesReader()
    names = reader.GetGDCMSeriesFileNames(str(folder))
    reader.SetFileNames(names)
    image = reader.Execute()
    return sitk.GetArrayFromImage(image).astype(np.float64).transpose(2, 1, 0), image


def assert_geometry(image: sitk.Image, affine: np.ndarray) -> None:
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    np.testing.assert_allclose(image.GetOrigin(), affine[:3, 3], atol=1e-4)
    np.testing.assert_allclose(image.GetSpacing(), spacing, atol=1e-4)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    np.testing.assert_allclose(direction, affine[:3, :3] / spacing, atol=1e-4)


def test_round_trip_axial_with_simpleitk(tmp_path: Path, rng: np.random.Generator) -> None:
    hu = integer_hu(rng)
    affine = make_affine((0.7, 0.8, 2.5), (-14.0, -20.5, 33.25))
    paths = write_ct_series(hu, affine, tmp_path / "series")
    assert [p.name for p in paths] == [f"IM{n:04d}.dcm" for n in range(1, SHAPE[2] + 1)]
    values, image = read_with_sitk(tmp_path / "series")
    np.testing.assert_array_equal(values, hu)
    assert_geometry(image, affine)


def test_round_trip_oblique_with_simpleitk(tmp_path: Path, rng: np.random.Generator) -> None:
    hu = integer_hu(rng)
    affine = make_affine((0.6, 0.9, 3.0), (12.3, -45.6, -78.9), angle_deg=20.0)
    write_ct_series(hu, affine, tmp_path)
    values, image = read_with_sitk(tmp_path)
    np.testing.assert_array_equal(values, hu)
    assert_geometry(image, affine)
    ds = pydicom.dcmread(tmp_path / "IM0001.dcm")
    np.testing.assert_allclose(ds.ImageOrientationPatient[:3], affine[:3, 0] / 0.6, atol=1e-6)


def test_round_trip_non_unit_slope_and_intercept(tmp_path: Path, rng: np.random.Generator) -> None:
    hu = rng.integers(-2000, 4000, size=SHAPE) / 2.0  # multiples of the slope 0.5
    affine = make_affine((1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
    write_ct_series(hu, affine, tmp_path, rescale_slope=0.5, rescale_intercept=-1000.0)
    values, image = read_with_sitk(tmp_path)
    np.testing.assert_allclose(values, hu, atol=1e-4)
    assert_geometry(image, affine)
    ds = pydicom.dcmread(tmp_path / "IM0003.dcm")
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (0.5, -1000.0)
    stored = ds.pixel_array.T.astype(np.float64)
    np.testing.assert_array_equal(stored, (hu[:, :, 2] + 1000.0) / 0.5)


def test_non_integer_hu_is_rounded_to_nearest_stored_value(tmp_path: Path) -> None:
    hu = np.full(SHAPE, 40.0, dtype=np.float32)
    hu[0, 0, 0], hu[1, 0, 0] = 10.4, -10.6
    write_ct_series(hu, np.eye(4), tmp_path)
    values, _ = read_with_sitk(tmp_path)
    assert values[0, 0, 0] == 10.0
    assert values[1, 0, 0] == -11.0


@pytest.mark.parametrize(("low", "expected"), [(-1024, 0), (-1500, 1)], ids=["unsigned", "signed"])
def test_pixel_representation_follows_stored_range(
    tmp_path: Path, rng: np.random.Generator, low: int, expected: int
) -> None:
    hu = integer_hu(rng, low=low)
    write_ct_series(hu, np.eye(4), tmp_path)
    ds = pydicom.dcmread(tmp_path / "IM0001.dcm")
    assert ds.PixelRepresentation == expected
    assert ds.pixel_array.dtype == (np.int16 if expected else np.uint16)
    values, _ = read_with_sitk(tmp_path)
    np.testing.assert_array_equal(values, hu)


@pytest.mark.parametrize(
    "syntax",
    [ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless, JPEG2000Lossless],
    ids=lambda uid: UID(uid).name,
)
def test_transfer_syntaxes_round_trip(
    tmp_path: Path, rng: np.random.Generator, syntax: UID
) -> None:
    if syntax == JPEG2000Lossless:
        from pydicom.pixels.encoders import JPEG2000LosslessEncoder

        if not JPEG2000LosslessEncoder.is_available:
            pytest.skip("pylibjpeg-openjpeg cannot encode here")
    hu = integer_hu(rng, low=-1500)
    affine = make_affine((0.7, 0.7, 1.25), (5.0, 6.0, 7.0))
    paths = write_ct_series(hu, affine, tmp_path, transfer_syntax=syntax)
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == syntax
        np.testing.assert_array_equal(ds.pixel_array.T.astype(np.float64) - 1024.0, hu[..., k])
    values, image = read_with_sitk(tmp_path)
    np.testing.assert_array_equal(values, hu)
    assert_geometry(image, affine)


def test_files_are_complete_ct_images(tmp_path: Path, rng: np.random.Generator) -> None:
    affine = make_affine((0.7, 0.8, 2.5), (-1.0, -2.0, -3.0))
    paths = write_ct_series(
        integer_hu(rng),
        affine,
        tmp_path,
        patient_id="P1",
        patient_name="Doe^Jane",
        series_number=7,
        series_description="test series",
        convolution_kernel="B30f",
    )
    datasets = [pydicom.dcmread(p) for p in paths]
    ds = datasets[1]
    assert ds.SOPClassUID == CTImageStorage == ds.file_meta.MediaStorageSOPClassUID
    assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]
    assert (ds.Modality, ds.PatientID, str(ds.PatientName)) == ("CT", "P1", "Doe^Jane")
    assert (ds.SeriesNumber, ds.SeriesDescription, ds.ConvolutionKernel) == (
        7,
        "test series",
        "B30f",
    )
    assert (ds.Rows, ds.Columns, ds.SamplesPerPixel) == (SHAPE[1], SHAPE[0], 1)
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (16, 16, 15)
    assert (ds.PhotometricInterpretation, ds.RescaleType) == ("MONOCHROME2", "HU")
    assert [float(v) for v in ds.PixelSpacing] == [0.8, 0.7]
    assert float(ds.SliceThickness) == 2.5
    assert ds.InstanceNumber == 2
    np.testing.assert_allclose(ds.ImagePositionPatient, affine[:3, 3] + affine[:3, 2])
    assert float(ds.SliceLocation) == pytest.approx(-3.0 + 2.5)
    for keyword in (
        "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
        "PatientBirthDate", "PatientSex", "PositionReferenceIndicator", "Manufacturer",
        "KVP", "AcquisitionNumber", "PatientPosition", "WindowCenter", "WindowWidth",
    ):  # fmt: skip
        assert keyword in ds, keyword
    for uid_name in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        assert len({d[uid_name].value for d in datasets}) == 1
        assert UID(ds[uid_name].value).is_valid
    assert len({d.SOPInstanceUID for d in datasets}) == len(datasets)


def test_given_uids_are_used(tmp_path: Path) -> None:
    uids = {"study_uid": "1.2.3.4", "series_uid": "1.2.3.5", "frame_of_reference_uid": "1.2.3.6"}
    write_ct_series(np.zeros(SHAPE), np.eye(4), tmp_path, **uids)
    ds = pydicom.dcmread(tmp_path / "IM0005.dcm")
    assert (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID) == (
        "1.2.3.4",
        "1.2.3.5",
        "1.2.3.6",
    )


def test_extra_attributes_and_file_name_pattern(tmp_path: Path) -> None:
    paths = write_ct_series(
        np.zeros(SHAPE),
        np.eye(4),
        tmp_path,
        extra={"BodyPartExamined": "ABDOMEN", "KVP": 100},
        file_name_pattern="slice_{k:03d}.dcm",
    )
    assert paths[0].name == "slice_000.dcm"
    ds = pydicom.dcmread(paths[-1])
    assert (ds.BodyPartExamined, float(ds.KVP)) == ("ABDOMEN", 100.0)


def test_no_temporary_files_remain_and_folder_is_created(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b"
    paths = write_ct_series(np.zeros(SHAPE), np.eye(4), folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in paths)


def test_failed_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "IM0001.dcm").write_bytes(b"old")

    def failing_write(filename, dataset, **kwargs) -> None:
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(dicom_series.pydicom, "dcmwrite", failing_write)
    with pytest.raises(OSError, match="disk full"):
        write_ct_series(np.zeros(SHAPE), np.eye(4), tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["IM0001.dcm"]
    assert (tmp_path / "IM0001.dcm").read_bytes() == b"old"


def test_hu_out_of_16_bit_range_raises(tmp_path: Path) -> None:
    hu = np.zeros(SHAPE)
    hu[0, 0, 0] = 70000.0
    with pytest.raises(ValueError, match=r"HU values 0\.\.70000 do not fit in 16 bits"):
        write_ct_series(hu, np.eye(4), tmp_path)
    with pytest.raises(ValueError, match=r"HU -1024\.\.64511"):
        hu_to_stored(np.array([-40000.0, 40000.0]))
    with pytest.raises(ValueError, match="hu must be finite, got 1 NaN/inf"):
        hu_to_stored(np.array([0.0, np.inf]))
    assert list(tmp_path.iterdir()) == []


def test_hu_to_stored_picks_representation() -> None:
    stored, representation = hu_to_stored(np.array([-1024.0, 3000.0]))
    assert (stored.dtype, representation, stored.tolist()) == (np.uint16, 0, [0, 4024])
    stored, representation = hu_to_stored(np.array([-3000.0, 0.0]), 2.0, 0.0)
    assert (stored.dtype, representation, stored.tolist()) == (np.int16, 1, [-1500, 0])


def sheared() -> np.ndarray:
    affine = np.eye(4)
    affine[0, 1] = 0.2
    return affine


def tilted() -> np.ndarray:
    affine = np.eye(4)
    affine[1, 2] = 0.1
    return affine


@pytest.mark.parametrize(
    ("hu", "affine", "kwargs", "match"),
    [
        (np.zeros((4, 4)), np.eye(4), {}, r"3D array .* got shape \(4, 4\)"),
        (np.full(SHAPE, np.nan), np.eye(4), {}, "must be finite"),
        (np.zeros(SHAPE, dtype=complex), np.eye(4), {}, "real numbers"),
        (np.zeros(SHAPE), np.eye(3), {}, r"4x4 matrix, got shape \(3, 3\)"),
        (np.zeros(SHAPE), np.diag([1, 0, 1, 1]), {}, "must be non-zero"),
        (np.zeros(SHAPE), np.diag([1, 1, 1, 2]), {}, r"last row must be \[0, 0, 0, 1\]"),
        (np.zeros(SHAPE), sheared(), {}, r"orthogonal, got row \. column = 0\.1961"),
        (np.zeros(SHAPE), tilted(), {}, "slice step.*5.711 degrees"),
        (np.zeros(SHAPE), np.eye(4), {"rescale_slope": 0.0}, "rescale_slope must be positive"),
        (np.zeros(SHAPE), np.eye(4), {"study_uid": "1.2.abc"}, "study_uid must be a valid"),
        (np.zeros(SHAPE), np.eye(4), {"transfer_syntax": JPEGBaseline8Bit}, "JPEG Baseline"),
        (np.zeros(SHAPE), np.eye(4), {"file_name_pattern": "a.dcm"}, "different name per"),
        (np.zeros(SHAPE), np.eye(4), {"file_name_pattern": "x/{index}"}, "plain file names"),
        (np.zeros(SHAPE), np.eye(4), {"file_name_pattern": "{n}.dcm"}, "only use {index}"),
        (np.zeros(SHAPE), np.eye(4), {"extra": {"Rows": 3}}, "may not set Rows"),
        (np.zeros(SHAPE), np.eye(4), {"extra": {"BodyPart": "X"}}, "'BodyPartExamined'"),
        (np.zeros(SHAPE), np.eye(4), {"window_width": 0.0}, "window_width must be at least 1"),
        (
            np.zeros((8, 40, 2)),
            np.eye(4),
            {"transfer_syntax": JPEG2000Lossless},
            r"at least 32 x 32 pixels, got 8 x 40",
        ),
    ],
)
def test_bad_inputs_raise(tmp_path: Path, hu, affine, kwargs, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        write_ct_series(hu, affine, tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_step_against_the_normal_is_written_as_given(tmp_path: Path) -> None:
    affine = make_affine((1.0, 1.0, 2.0), (0.0, 0.0, 10.0), flip_step=True)
    paths = write_ct_series(np.zeros(SHAPE), affine, tmp_path)
    z = [float(pydicom.dcmread(p).ImagePositionPatient[2]) for p in paths]
    assert z == [10.0, 8.0, 6.0, 4.0, 2.0]
