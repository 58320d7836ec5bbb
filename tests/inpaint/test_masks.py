"""Mask files: orientation, grid checks and one clear error per bad mask."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ctpipe.errors import InputError
from ctpipe.inpaint.masks import check_mask, read_mask
from ctpipe.io.nifti import write_nifti

AFFINE = np.diag([-0.7, -0.7, 3.0, 1.0])


def png(path, pixels, mode=None):
    Image.fromarray(pixels, mode=mode).save(path)
    return path


def test_png_rows_are_j_and_columns_are_i(tmp_path):
    pixels = np.zeros((5, 7), np.uint8)  # 5 rows (j), 7 columns (i)
    pixels[1, 4] = 255
    mask = read_mask(png(tmp_path / "m.png", pixels), (7, 5, 2))
    assert mask.dtype == bool and mask.shape == (7, 5, 2)
    assert np.argwhere(mask).tolist() == [[4, 1, 0], [4, 1, 1]]


def test_colour_png_is_reduced_to_grey(tmp_path):
    pixels = np.zeros((4, 4, 3), np.uint8)
    pixels[2, 3] = (255, 255, 255)
    assert np.argwhere(read_mask(png(tmp_path / "c.png", pixels), (4, 4, 1))).tolist() == [
        [3, 2, 0]
    ]


def test_nifti_3d_and_2d_masks(tmp_path):
    mask = np.zeros((6, 5, 3), np.uint8)
    mask[1:3, 2, 1] = 1
    path = write_nifti(mask, AFFINE, tmp_path / "m.nii.gz")
    assert np.array_equal(read_mask(path, (6, 5, 3), AFFINE), mask.astype(bool))
    flat = write_nifti(mask[:, :, 1], AFFINE, tmp_path / "flat.nii.gz")
    read = read_mask(flat, (6, 5, 3), AFFINE)
    assert all(np.array_equal(read[:, :, k], mask[:, :, 1].astype(bool)) for k in range(3))


def test_nifti_on_another_grid_is_refused(tmp_path):
    mask = np.zeros((6, 5, 3), np.uint8)
    mask[2, 2, 1] = 1
    shifted = AFFINE.copy()
    shifted[2, 3] += 1.5
    path = write_nifti(mask, shifted, tmp_path / "shifted.nii.gz")
    with pytest.raises(
        InputError,
        match=r"shifted\.nii\.gz: mask is on another grid than the CT "
        r"\(affines differ by up to 1\.5 mm\)",
    ):
        read_mask(path, (6, 5, 3), AFFINE)


@pytest.mark.parametrize(
    ("pixels", "shape", "match"),
    [
        (np.zeros((4, 4), np.uint8), (4, 4, 2), "mask must mark at least one pixel to inpaint"),
        (np.full((4, 4), 255, np.uint8), (4, 4, 2), r"entirely masked"),
        (
            np.array([[0, 128, 255, 0]] * 4, np.uint8),
            (4, 4, 1),
            r"must be binary .* got values 0, 128, 255",
        ),
        (
            np.pad(np.full((1, 1), 255, np.uint8), ((0, 3), (0, 2))),
            (4, 4, 1),
            r"2D mask of 3 x 4 \(i x j\) does not fit the CT's slices of 4 x 4",
        ),
    ],
)
def test_bad_png_masks_name_the_file(tmp_path, pixels, shape, match):
    path = png(tmp_path / "bad_mask.png", pixels)
    with pytest.raises(InputError, match=r"bad_mask\.png: .*" + match):
        read_mask(path, shape)


def test_unreadable_missing_and_foreign_files(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(InputError, match=r"broken\.png: not a readable PNG image"):
        read_mask(broken, (4, 4, 1))
    with pytest.raises(InputError, match=r"absent\.png: mask file does not exist"):
        read_mask(tmp_path / "absent.png", (4, 4, 1))
    other = tmp_path / "mask.tif"
    other.write_bytes(b"x")
    with pytest.raises(InputError, match=r"mask\.tif: mask must be NIfTI .* or PNG .*got \.tif"):
        read_mask(other, (4, 4, 1))


def test_check_mask_rules():
    good = np.zeros((3, 3, 2), np.float32)
    good[1, 1, 0] = 1
    assert check_mask(good, (3, 3, 2)).dtype == bool
    with pytest.raises(
        ValueError, match=r"mask shape must equal the CT's \(3, 3, 1\), got \(3, 3, 2\)"
    ):
        check_mask(good, (3, 3, 1))
    with pytest.raises(ValueError, match="finite numbers"):
        check_mask(np.full((3, 3), np.nan), (3, 3))
    with pytest.raises(ValueError, match="got values 2, 3"):
        check_mask(np.array([[2, 3], [2, 2]]), (2, 2))
