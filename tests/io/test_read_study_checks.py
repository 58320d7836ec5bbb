"""read_study, the one loader: its checks, their overrides, the voxel limit, the fingerprint."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pydicom
import pytest

from ctpipe.errors import InputError, SeriesGeometryError
from ctpipe.io.discovery import scan_dicom
from ctpipe.io.fingerprint import input_fingerprint
from ctpipe.io.limits import voxel_limit, voxel_problem
from ctpipe.io.reader import read_study
from ctpipe.io.validate import NonHUError, affine_problem, hu_problem, validate_ct_array


def _drop_slope(path):
    ds = pydicom.dcmread(path)
    del ds.RescaleSlope
    ds.save_as(path)


def test_reads_a_scanned_series_as_float32_hu(small_series):
    folder, hu, _ = small_series
    series = scan_dicom(folder).series[0]
    volume = read_study(series)
    assert volume.hu.dtype == np.float32
    np.testing.assert_array_equal(volume.hu, hu)


def test_missing_slope_is_refused_then_read_with_a_warning(small_series):
    folder, hu, _ = small_series
    victim = sorted(folder.glob("*.dcm"))[2]
    _drop_slope(victim)
    with pytest.raises(
        SeriesGeometryError, match=rf"RescaleSlope missing in 1 of 6 .*{victim.name}"
    ):
        read_study(folder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        volume = read_study(folder, allow_non_hu=True)
    assert any("RescaleSlope missing" in str(w.message) for w in caught)
    np.testing.assert_array_equal(volume.hu, hu)  # the slope was 1: taken as 1


def test_other_modalities_skip_the_hu_check(tmp_path, rng):
    from ctpipe.export.dicom_series import write_ct_series
    from tests.conftest import axial_affine

    grey = rng.integers(0, 800, size=(24, 20, 4)).astype(np.float32)  # MR-like: no air
    folder = tmp_path / "mr"
    for path in write_ct_series(grey, axial_affine(), folder):
        ds = pydicom.dcmread(path)
        ds.Modality = "MR"
        ds.save_as(path)
    with pytest.raises(InputError, match="modality MR is not allowed"):
        read_study(folder)
    np.testing.assert_array_equal(read_study(folder, modalities=None).hu, grey)


def test_validator_names_count_share_and_rule():
    hu = np.full((8, 8, 2), -1000.0, np.float32)
    hu[0, 0, 0], hu[1, 1, 1] = 40.0, np.nan
    with pytest.raises(InputError, match=r"x\.nii: 1 of 128 voxels \(0\.78 %\) are NaN"):
        validate_ct_array(hu, np.eye(4), "x.nii")
    hu[1, 1, 1] = 0.0
    validate_ct_array(hu, np.eye(4), "x.nii")  # air and content: CT
    with pytest.raises(NonHUError, match="nothing below -500 HU"):
        validate_ct_array(hu + 2000, np.eye(4), "x.nii")
    validate_ct_array(hu + 2000, np.eye(4), "x.nii", allow_non_hu=True)
    with pytest.raises(InputError, match="slices of 8 x 8 pixels are too small"):
        validate_ct_array(hu, np.eye(4), "x.nii", min_slice_pixels=32)


@pytest.mark.parametrize(
    ("affine", "message"),
    [
        (np.zeros((4, 4)), "singular"),
        (np.diag([1.0, 1.0, np.inf, 1.0]), "NaN or infinite"),
        (np.array([[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]), "singular"),
        (np.eye(3), "must be 4x4"),
    ],
)
def test_affine_problems(affine, message):
    assert message in affine_problem(affine)


def test_hu_range_and_constant_volumes():
    assert "beyond any CT scanner's range" in hu_problem(np.array([[[-1000.0, 1e6]]]))
    assert "every voxel is 7 HU" in hu_problem(np.full((2, 2, 2), 7.0))
    assert hu_problem(np.array([[[-1000.0, 40.0]]])) is None


def test_voxel_limit_nests_and_restores():
    assert voxel_problem((512, 512, 1000)) is None
    with voxel_limit(100):
        assert "above the limit of 100 voxels" in voxel_problem((10, 10, 2))
        with voxel_limit(1000):
            assert voxel_problem((10, 10, 2)) is None
        assert voxel_problem((10, 10, 2)) is not None
    assert voxel_problem((10, 10, 2)) is None


def test_fingerprint_follows_content_and_time_not_order(small_series):
    folder, _, _ = small_series
    files = sorted(folder.glob("*.dcm"))
    first = input_fingerprint(files)
    assert input_fingerprint(reversed(files)) == first
    stat = files[0].stat()
    data = bytearray(files[0].read_bytes())
    data[-2] ^= 0xFF  # a pixel changed, size and time kept
    files[0].write_bytes(bytes(data))
    os.utime(files[0], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert input_fingerprint(files) != first
    assert input_fingerprint(files[:-1]) != input_fingerprint(files)
