"""Segmentation scoring: MONAI metrics against hand and NumPy values; masks aligned by geometry."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from monai.data import MetaTensor

from ctpipe.errors import InputError
from ctpipe.evaluate.segmentation import (
    dice_per_class,
    hd95_per_class,
    mask_on_grid,
    numpy_dice,
    reference_labels,
)
from tests.conftest import shared_path

RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def ct(shape=(12, 10, 4), spacing=(2.0, 2.0, 3.0), origin=(-11.0, -9.0, 0.0)) -> MetaTensor:
    affine_lps = np.diag([*spacing, 1.0])
    affine_lps[:3, 3] = origin
    return MetaTensor(torch.zeros(shape), affine=torch.from_numpy(RAS_FROM_LPS @ affine_lps))


def test_dice_is_the_hand_computed_value():
    pred = np.zeros((4, 4, 1), np.uint8)
    ref = np.zeros((4, 4, 1), np.uint8)
    pred[0:2, :, 0] = 1  # 8 voxels
    ref[1:4, :, 0] = 1  # 12 voxels, 4 shared
    assert dice_per_class(pred, ref, {"liver": 1})["liver"] == pytest.approx(2 * 4 / (8 + 12))
    assert np.isnan(dice_per_class(pred, ref, {"absent": 2})["absent"])  # not in the reference


def test_monai_dice_equals_numpy_dice_on_random_labels(rng):
    pred = rng.integers(0, 4, size=(20, 18, 6))
    ref = np.where(rng.random((20, 18, 6)) < 0.7, pred, rng.integers(0, 4, size=(20, 18, 6)))
    classes = {"a": 1, "b": 2, "c": 3}
    scores = dice_per_class(pred, ref, classes)
    for name, value in classes.items():
        assert scores[name] == pytest.approx(numpy_dice(pred == value, ref == value), abs=1e-6)


def test_hd95_in_millimetres_and_missing_classes():
    pred = np.zeros((1, 10, 1))
    ref = np.zeros((1, 10, 1))
    pred[0, 2:5], ref[0, 2:7] = 1, 1  # the farthest reference voxel is 2 voxels away
    assert hd95_per_class(pred, ref, {"x": 1}, (1.0, 2.0, 1.0), percentile=100) == {"x": 4.0}
    scores = hd95_per_class(pred * 0, ref, {"x": 1, "y": 2}, (1.0, 1.0, 1.0))
    assert scores["x"] == float("inf") and np.isnan(scores["y"])


def write_mask(path, array_ijk, affine_lps) -> None:
    image = sitk.GetImageFromArray(np.ascontiguousarray(array_ijk.transpose(2, 1, 0)))
    columns = affine_lps[:3, :3]
    spacing = np.linalg.norm(columns, axis=0)
    image.SetSpacing(spacing.tolist())
    image.SetOrigin(affine_lps[:3, 3].tolist())
    image.SetDirection((columns / spacing).ravel().tolist())
    sitk.WriteImage(image, str(path))


def test_mask_on_another_grid_is_aligned_by_geometry(tmp_path):
    """The mask is stored flipped along j with a finer in-plane grid: geometry decides."""
    image = ct()
    truth = np.zeros(image.shape, np.int16)
    truth[3:7, 2:5, 1:3] = 1
    # the same object on a grid of 1 mm pixels, stored with j running anterior
    fine = np.repeat(np.repeat(truth, 2, axis=0), 2, axis=1)[:, ::-1, :]
    affine = np.diag([1.0, -1.0, 3.0, 1.0])
    affine[:3, 3] = [-11.5, -9.5 + 2 * 10 - 1, 0.0]  # voxel centres nested in the CT's
    write_mask(tmp_path / "mask.nrrd", fine, affine)
    np.testing.assert_array_equal(mask_on_grid(tmp_path / "mask.nrrd", image), truth)
    labels = reference_labels({"liver": (tmp_path / "mask.nrrd", [1])}, image, {"liver": 3})
    assert labels.dtype == np.uint8 and set(np.unique(labels)) == {0, 3}


def test_mask_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match=r"absent\.nrrd: mask file does not exist"):
        mask_on_grid(tmp_path / "absent.nrrd", ct())
    far = np.ones((2, 2, 2), np.int16)
    shifted = np.diag([1.0, 1.0, 1.0, 1.0])
    shifted[:3, 3] = 500.0
    write_mask(tmp_path / "far.nrrd", far, shifted)
    with pytest.raises(InputError, match=r"far\.nrrd: mask does not overlap the CT volume"):
        mask_on_grid(tmp_path / "far.nrrd", ct())


@pytest.mark.shared_data
def test_dicom_seg_and_nrrd_give_the_same_liver_on_the_ct_grid():
    from ctpipe.io.reader import load_ct

    folder = shared_path("dcmqi_ct3slice")
    with pytest.warns(UserWarning, match="non-DICOM"):
        image = load_ct(folder)
    nrrd = mask_on_grid(folder / "liver_seg.nrrd", image)
    seg = mask_on_grid(folder / "liver_SEG.dcm", image)  # frames stored in the other z order
    assert image.shape == (512, 512, 3)
    assert int((nrrd > 0).sum()) == 107098
    np.testing.assert_array_equal(nrrd > 0, seg > 0)
    # slice by slice, not just in total: the SEG's frames run from z = -128.69 upwards
    assert [int((seg[..., k] > 0).sum()) for k in range(3)] == [
        int((nrrd[..., k] > 0).sum()) for k in range(3)
    ]
