"""Geometry proof on real CT: ctpipe equals SimpleITK voxel for voxel, and NIfTI round-trips."""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from ctpipe.io.dicom_volume import read_dicom_volume
from ctpipe.io.nifti import write_nifti
from ctpipe.io.reader import load_ct
from tests.conftest import shared_path

pytestmark = pytest.mark.shared_data

SERIES = {
    "aapm_L096_full_3mm_D45_series": 65,
    "pancreas_ct_series": 134,
    "dcmqi_ct3slice": 3,
    "totalseg_example/example_ct_dicom": 20,
}


def _sitk_series(volume) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(p) for p in volume.meta["ctpipe_source_files"]])
    return reader.Execute()


def _assert_same_geometry(volume, image: sitk.Image) -> None:
    np.testing.assert_allclose(volume.spacing, image.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(volume.affine_lps[:3, 3], image.GetOrigin(), atol=1e-4)
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    np.testing.assert_allclose(volume.affine_lps[:3, :3] / volume.spacing, direction, atol=1e-4)


@pytest.fixture(scope="module", params=sorted(SERIES))
def real_series(request):
    folder = shared_path(request.param)
    with warnings.catch_warnings():  # skipped licence/NRRD files; warnings tested below
        warnings.simplefilter("ignore")
        volume = read_dicom_volume(folder)
    return request.param, volume


def test_empty_uids_fall_back_with_warning():
    folder = shared_path("totalseg_example", "example_ct_dicom")
    with pytest.warns(UserWarning, match="20 file.*no SeriesInstanceUID"):
        volume = read_dicom_volume(folder)
    assert volume.hu.shape == (512, 512, 20)


def test_seg_beside_ct_is_listed_but_ct_is_read():
    from ctpipe.io.discovery import scan_dicom

    folder = shared_path("dcmqi_ct3slice")
    with pytest.warns(UserWarning, match="skipped 5 non-DICOM"):
        scan = scan_dicom(folder)
    assert sorted(s.modality for s in scan.series) == ["CT", "SEG"]


def test_equals_simpleitk_voxel_for_voxel(real_series):
    name, volume = real_series
    assert volume.hu.shape[2] == SERIES[name]
    image = _sitk_series(volume)
    expected = sitk.GetArrayFromImage(image).transpose(2, 1, 0).astype(np.float32)
    np.testing.assert_array_equal(volume.hu, expected)
    _assert_same_geometry(volume, image)


def test_slices_in_order_along_normal_not_by_name(real_series):
    _, volume = real_series
    normal = np.cross(volume.affine_lps[:3, 0], volume.affine_lps[:3, 1])
    positions = [volume.affine_lps @ [0, 0, k, 1] for k in range(volume.hu.shape[2])]
    along = np.array([p[:3] @ normal for p in positions])
    assert np.all(np.diff(along) > 0)


def test_nifti_round_trip_nibabel_and_simpleitk(real_series, tmp_path):
    _, volume = real_series
    path = write_nifti(volume.hu, volume.affine_ras, tmp_path / "ct.nii")
    image = nib.load(path)
    np.testing.assert_array_equal(np.asarray(image.dataobj), volume.hu)
    np.testing.assert_allclose(image.affine, volume.affine_ras, atol=1e-5)
    from_sitk = sitk.ReadImage(str(path))
    _assert_same_geometry(volume, from_sitk)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(from_sitk).transpose(2, 1, 0), volume.hu)


def test_monai_loadimage_gives_ras_affine_and_hu(real_series):
    _, volume = real_series
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = load_ct(volume.series.folder)
    np.testing.assert_array_equal(image.numpy(), volume.hu)
    np.testing.assert_allclose(image.affine.numpy(), volume.affine_ras, atol=1e-6)
    assert image.meta["space"] == "RAS"
