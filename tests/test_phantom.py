"""Tests of ctpipe.phantom: anatomy, reproducibility and the files write_phantom makes."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from ctpipe.phantom import Phantom, make_phantom, write_phantom

SMALL = {"shape": (48, 40, 8), "spacing": (4.0, 4.0, 9.0)}


@pytest.fixture(scope="module")
def phantom() -> Phantom:
    return make_phantom()


@pytest.fixture(scope="module")
def clean() -> Phantom:
    return make_phantom(noise_hu=0.0)


def centroid_lps(phantom: Phantom, name: str) -> np.ndarray:
    ijk = np.argwhere(phantom.mask(name)).mean(axis=0)
    return (phantom.affine_lps @ np.append(ijk, 1.0))[:3]


def test_default_phantom_layout(phantom: Phantom) -> None:
    assert phantom.hu.shape == phantom.labels.shape == (128, 128, 24)
    assert (phantom.hu.dtype, phantom.labels.dtype) == (np.float32, np.uint8)
    assert phantom.spacing == (1.5, 1.5, 3.0)
    centre = phantom.affine_lps @ np.array([127 / 2, 127 / 2, 23 / 2, 1.0])
    np.testing.assert_allclose(centre[:3], 0.0, atol=1e-9)
    np.testing.assert_array_equal(
        phantom.to_ras_affine(), np.diag([-1.0, -1.0, 1.0, 1.0]) @ phantom.affine_lps
    )
    assert set(phantom.label_names.values()) == set(np.unique(phantom.labels)) - {0}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("liver", 60.0),
        ("spleen", 50.0),
        ("kidney_left", 30.0),
        ("kidney_right", 30.0),
        ("lung_left", -850.0),
        ("lung_right", -850.0),
    ],
)
def test_organ_hu(phantom: Phantom, name: str, expected: float) -> None:
    values = phantom.hu[phantom.mask(name)]
    assert values.size > 100
    assert abs(values.mean() - expected) < 10.0
    assert 5.0 < values.std() < 15.0  # the 10 HU noise


def test_spine_air_and_fat_hu(clean: Phantom) -> None:
    spine = clean.hu[clean.mask("spine")]
    assert set(np.unique(spine)) == {250.0, 700.0}  # cancellous core, cortical shell
    assert clean.hu[0, 0, 0] == -1000.0
    row = clean.hu[:, 64, 12]  # left-right line through the middle
    first_body = int(np.argmax(row > -1000))
    assert row[first_body] == -100.0  # subcutaneous fat ring
    assert 30.0 <= row[first_body + 10] <= 60.0


def test_anatomy_sides_follow_lps(clean: Phantom) -> None:
    assert centroid_lps(clean, "liver")[0] < 0 < centroid_lps(clean, "spleen")[0]
    assert centroid_lps(clean, "kidney_right")[0] < 0 < centroid_lps(clean, "kidney_left")[0]
    assert centroid_lps(clean, "spine")[1] > 20.0  # posterior
    assert centroid_lps(clean, "lung_right")[2] > 10.0  # upper slices
    lung_slices = np.flatnonzero(clean.mask("lung_left").any(axis=(0, 1)))
    assert lung_slices.min() > 12 and lung_slices.max() == 23


def test_slices_differ_smoothly(clean: Phantom) -> None:
    liver_area = clean.mask("liver").sum(axis=(0, 1)).astype(float)
    assert liver_area[0] == 0 and liver_area.max() > 1000
    assert np.all(np.abs(np.diff(liver_area)) < 0.35 * liver_area.max())
    for k in range(23):
        assert not np.array_equal(clean.hu[..., k], clean.hu[..., k + 1])


def test_seed_reproducible_and_distinct() -> None:
    a, b, c = make_phantom(**SMALL, seed=3), make_phantom(**SMALL, seed=3), make_phantom(**SMALL)
    np.testing.assert_array_equal(a.hu, b.hu)
    assert not np.array_equal(a.hu, c.hu)
    np.testing.assert_array_equal(a.labels, c.labels)
    noise = a.hu - make_phantom(**SMALL, noise_hu=0.0).hu
    assert noise.std() == pytest.approx(10.0, rel=0.05)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"shape": (4, 64, 8)}, r"at least 8 in-plane .* got \(4, 64, 8\)"),
        ({"shape": (64, 64)}, "shape must be 3 integers"),
        ({"spacing": (1.0, -1.0, 1.0)}, r"spacing must be 3 positive .* \(1.0, -1.0, 1.0\)"),
        ({"noise_hu": -1.0}, "noise_hu must be zero or more, got -1.0"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_phantom(**kwargs)


def test_mask_of_unknown_organ_raises(clean: Phantom) -> None:
    with pytest.raises(ValueError, match=r"name must be one of .* got 'heart'"):
        clean.mask("heart")


def test_write_phantom_nifti_round_trip(tmp_path: Path) -> None:
    phantom = make_phantom(**SMALL, seed=5)
    files = write_phantom(tmp_path / "out", phantom)
    ct, labels = nib.load(files.ct_nifti), nib.load(files.labels_nifti)
    np.testing.assert_array_equal(np.asarray(ct.dataobj), phantom.hu)
    np.testing.assert_array_equal(np.asarray(labels.dataobj), phantom.labels)
    assert labels.get_data_dtype() == np.uint8
    for image in (ct, labels):
        np.testing.assert_array_equal(image.affine, phantom.to_ras_affine())
        assert int(image.header["qform_code"]) == int(image.header["sform_code"]) == 1
    assert json.loads(files.label_names_json.read_text()) == dict(phantom.label_names)


def test_write_phantom_simpleitk_agrees_with_lps(tmp_path: Path) -> None:
    phantom = make_phantom(**SMALL, seed=5)
    files = write_phantom(tmp_path, phantom)
    spacing = np.array(phantom.spacing)
    direction = phantom.affine_lps[:3, :3] / spacing
    image = sitk.ReadImage(str(files.ct_nifti))
    np.testing.assert_allclose(image.GetOrigin(), phantom.affine_lps[:3, 3], atol=1e-4)
    np.testing.assert_allclose(np.reshape(image.GetDirection(), (3, 3)), direction, atol=1e-4)
    np.testing.assert_allclose(image.GetSpacing(), spacing, atol=1e-4)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image).transpose(2, 1, 0), phantom.hu)

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(files.dicom_folder)))
    series = reader.Execute()
    np.testing.assert_allclose(series.GetOrigin(), image.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(series.GetDirection(), image.GetDirection(), atol=1e-4)
    values = sitk.GetArrayFromImage(series).astype(np.float64).transpose(2, 1, 0)
    np.testing.assert_allclose(values, phantom.hu, atol=0.5 + 1e-3)


def test_write_phantom_files_are_valid_and_complete(tmp_path: Path) -> None:
    phantom = make_phantom(**SMALL)
    files = write_phantom(tmp_path, phantom, series_number=4)
    assert [p.name for p in files.dicom_files] == [f"IM{n:04d}.dcm" for n in range(1, 9)]
    ds = pydicom.dcmread(files.dicom_files[0])
    assert (ds.SeriesNumber, ds.SeriesDescription) == (4, "ctpipe phantom")
    assert ds.pixel_array.shape == (40, 48)
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    expected = ["phantom_ct.nii.gz", "phantom_labels.json", "phantom_labels.nii.gz"]
    assert written == sorted(expected + [f"dicom/IM{n:04d}.dcm" for n in range(1, 9)])


def test_phantom_series_passes_dciodvfy(tmp_path):
    import shutil
    import subprocess

    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed")
    files = write_phantom(tmp_path, make_phantom(shape=(40, 36, 3)))
    for path in files.dicom_files:
        result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        report = result.stdout + result.stderr
        assert "Error" not in report, report
