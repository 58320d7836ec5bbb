"""NRRD/MetaImage volumes: geometry against SimpleITK, MONAI loading, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from ctpipe.errors import InputError
from ctpipe.io.image_file import read_image_file
from ctpipe.io.reader import load_ct
from tests.conftest import shared_path


@pytest.fixture
def oblique_nrrd(tmp_path, rng):
    array = rng.integers(-1000, 1000, size=(5, 7, 9)).astype(np.int16)  # (k, j, i)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.7, 0.8, 2.5))
    image.SetOrigin((-10.0, 20.0, -30.0))
    c, s = np.cos(0.3), np.sin(0.3)
    image.SetDirection((c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0))
    path = tmp_path / "ct.nrrd"
    sitk.WriteImage(image, str(path))
    return path, image, array


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_voxels_map_where_simpleitk_puts_them(tmp_path, oblique_nrrd, suffix):
    path, image, array = oblique_nrrd
    if suffix != ".nrrd":
        path = tmp_path / f"ct{suffix}"
        sitk.WriteImage(image, str(path))
    volume = read_image_file(path)
    np.testing.assert_array_equal(volume.hu, array.transpose(2, 1, 0))
    for index in [(0, 0, 0), (8, 6, 4), (3, 5, 1)]:
        expected = image.TransformIndexToPhysicalPoint(index)
        np.testing.assert_allclose((volume.affine_lps @ [*index, 1])[:3], expected, atol=1e-9)


def test_load_ct_reads_nrrd_with_ras_affine(oblique_nrrd):
    path = oblique_nrrd[0]
    loaded = load_ct(path)
    lps = read_image_file(path).affine_lps
    np.testing.assert_allclose(loaded.affine.numpy(), np.diag([-1, -1, 1, 1]) @ lps, atol=1e-9)


def test_shared_lung_nrrd_matches_simpleitk():
    path = shared_path("radiomics_lung", "lung1_image.nrrd")
    volume = read_image_file(path)
    image = sitk.ReadImage(str(path))
    assert volume.hu.shape == image.GetSize()
    np.testing.assert_allclose(volume.spacing, image.GetSpacing(), atol=1e-6)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match=r"missing\.nrrd: no such file"):
        read_image_file(tmp_path / "missing.nrrd")
    bad = tmp_path / "bad.nrrd"
    bad.write_text("NRRD0004\ngarbage\n")
    with pytest.raises(InputError, match=r"bad\.nrrd: cannot read the image"):
        read_image_file(bad)
    with pytest.raises(InputError, match=r"nope\.nii\.gz: no such file or folder"):
        load_ct(tmp_path / "nope.nii.gz")
