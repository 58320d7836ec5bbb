"""Score segmentations against reference masks aligned to the CT grid by geometry.

Reference masks come in many forms (NRRD/NIfTI label maps, DICOM Segmentation objects)
and on grids that need not be the CT's: another orientation (TotalSegmentator's example
stores its DICOM case's labels flipped along ``j``), other spacing or extent (dcmqi's
SEG frames are ordered the other way along z). :func:`mask_on_grid` therefore never
assumes the grids agree: it reads the mask with its geometry (SimpleITK for NRRD/NIfTI,
highdicom for DICOM-SEG) and resamples it onto the CT grid with nearest-neighbour
interpolation by their physical coordinates (``sitk.Resample``); voxels outside the mask's
extent are 0.

:func:`dice_per_class` scores each class with MONAI's ``DiceMetric`` and
:func:`hd95_per_class` with MONAI's ``HausdorffDistanceMetric`` (95th percentile, in mm);
:func:`numpy_dice` is the textbook ``2 |A n B| / (|A| + |B|)`` for checking them.

Example:
    >>> import numpy as np
    >>> pred = np.zeros((4, 4, 1), np.uint8)
    >>> ref = np.zeros((4, 4, 1), np.uint8)
    >>> pred[:2], ref[:3] = 1, 1
    >>> round(dice_per_class(pred, ref, {"liver": 1})["liver"], 4), numpy_dice(pred == 1, ref == 1)
    (0.8, 0.8)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ctpipe.errors import InputError

if TYPE_CHECKING:
    import SimpleITK as sitk
    from monai.data import MetaTensor

__all__ = [
    "ct_reference_image",
    "dice_per_class",
    "hd95_per_class",
    "mask_on_grid",
    "numpy_dice",
    "read_mask",
    "reference_labels",
]

_LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def read_mask(path: str | PathLike[str]) -> sitk.Image:
    """Read a mask or label map with its geometry (LPS, as SimpleITK holds images).

    NRRD, NIfTI and other formats SimpleITK reads are read as they are. A DICOM
    Segmentation object (``.dcm``) is read with highdicom; its segments are combined into
    one label map whose values are the segment numbers.

    Raises:
        InputError: The file is missing or cannot be read as a mask.
    """
    import SimpleITK as sitk

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "mask file does not exist")
    if path.suffix.lower() == ".dcm":
        return _read_dicom_seg(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise InputError(path, f"cannot be read as a mask: {str(err).strip()[:200]}") from None
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(path, "mask must be a 3-D single-component image")
    return image


def _read_dicom_seg(path: Path) -> sitk.Image:
    import highdicom as hd

    try:
        seg = hd.seg.segread(path)
        volume = seg.get_volume(combine_segments=True)
    except Exception as err:  # pydicom/highdicom raise many types on non-SEG files
        raise InputError(path, f"cannot be read as a DICOM Segmentation: {err}") from None
    # highdicom's array is (slice, row, column) with an LPS affine of those indices;
    # SimpleITK's is (k, j, i) with i = column: the same axis order, so it maps directly.
    affine = np.asarray(volume.affine, dtype=np.float64)[:, [2, 1, 0, 3]]  # (i, j, k)
    return _sitk_image(np.asarray(volume.array), affine)


def _sitk_image(array_kji: np.ndarray, affine_lps: np.ndarray) -> sitk.Image:
    """A SimpleITK image of an array ``(k, j, i)`` placed by an ``(i, j, k)`` LPS affine."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(array_kji))
    columns = affine_lps[:3, :3]
    spacing = np.linalg.norm(columns, axis=0)
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(v) for v in affine_lps[:3, 3]])
    image.SetDirection([float(v) for v in (columns / spacing).ravel()])
    return image


def ct_reference_image(image: MetaTensor) -> sitk.Image:
    """An empty SimpleITK image on the grid of a CT ``MetaTensor`` (RAS affine, ``(i, j, k)``).

    Example:
        >>> import torch
        >>> from monai.data import MetaTensor
        >>> ct = MetaTensor(torch.zeros(4, 3, 2), affine=torch.diag(torch.tensor(
        ...     [-0.5, -0.5, 2.0, 1.0], dtype=torch.float64)))
        >>> grid = ct_reference_image(ct)
        >>> grid.GetSize(), grid.GetSpacing(), grid.GetDirection()[0]
        ((4, 3, 2), (0.5, 0.5, 2.0), 1.0)
    """
    affine_lps = _LPS_FROM_RAS @ np.asarray(image.affine, dtype=np.float64)
    shape = tuple(int(n) for n in image.shape[-3:])
    return _sitk_image(np.zeros(shape[::-1], dtype=np.uint8), affine_lps)


def mask_on_grid(path: str | PathLike[str], image: MetaTensor) -> np.ndarray:
    """A mask file's values on the CT grid of ``image`` (nearest neighbour, outside 0).

    Args:
        path: NRRD/NIfTI label map or DICOM-SEG.
        image: The CT, ``(i, j, k)`` with its RAS affine.

    Returns:
        Integer label values ``(i, j, k)`` on the CT grid.

    Raises:
        InputError: The mask cannot be read, or it does not overlap the CT at all.
    """
    import SimpleITK as sitk

    mask = read_mask(path)
    grid = ct_reference_image(image)
    resampled = sitk.Resample(
        sitk.Cast(mask, sitk.sitkInt32),
        grid,
        sitk.Transform(),
        sitk.sitkNearestNeighbor,
        0,
        sitk.sitkInt32,
    )
    values = sitk.GetArrayFromImage(resampled).transpose(2, 1, 0)
    if np.count_nonzero(sitk.GetArrayViewFromImage(mask)) and not values.any():
        raise InputError(path, "mask does not overlap the CT volume (check the frame of reference)")
    return values


def reference_labels(
    masks: Mapping[str, tuple[str | PathLike[str], Sequence[int]]],
    image: MetaTensor,
    class_map: Mapping[str, int],
) -> np.ndarray:
    """A reference label map in the class map, assembled from mask files on the CT grid.

    Args:
        masks: Class name -> (mask file, the file's values that make up the class).
        image: The CT.
        class_map: Class name -> label value.

    Returns:
        uint8 labels ``(i, j, k)``; voxels claimed by no mask are 0.
    """
    labels = np.zeros(tuple(image.shape[-3:]), dtype=np.uint8)
    for name, (path, values) in masks.items():
        on_grid = mask_on_grid(path, image)
        labels[np.isin(on_grid, list(values))] = class_map[name]
    return labels


def dice_per_class(
    prediction: np.ndarray, reference: np.ndarray, class_map: Mapping[str, int]
) -> dict[str, float]:
    """MONAI ``DiceMetric`` of each class; NaN where the reference lacks the class.

    Example:
        >>> a = np.array([[[0, 1, 1, 2]]]); b = np.array([[[0, 1, 2, 2]]])
        >>> {k: round(v, 3) for k, v in dice_per_class(a, b, {"x": 1, "y": 2}).items()}
        {'x': 0.667, 'y': 0.667}
    """
    import torch
    from monai.metrics import DiceMetric

    scores = {}
    for name, value in class_map.items():
        pred = torch.from_numpy(np.asarray(prediction) == value)[None, None].float()
        ref = torch.from_numpy(np.asarray(reference) == value)[None, None].float()
        metric = DiceMetric(include_background=True, reduction="none", ignore_empty=True)
        scores[name] = float(metric(pred, ref)[0, 0])
    return scores


def hd95_per_class(
    prediction: np.ndarray,
    reference: np.ndarray,
    class_map: Mapping[str, int],
    spacing: Sequence[float],
    percentile: float = 95.0,
) -> dict[str, float]:
    """MONAI ``HausdorffDistanceMetric`` (95th percentile by default, mm) of each class.

    NaN where the reference lacks the class, infinity where the prediction does.

    Example:
        >>> a = np.zeros((1, 10, 1)); b = np.zeros((1, 10, 1))
        >>> a[0, 2:5], b[0, 2:7] = 1, 1  # the farthest voxel of b is 2 voxels (4 mm) away
        >>> hd95_per_class(a, b, {"x": 1}, spacing=(1.0, 2.0, 1.0), percentile=100)
        {'x': 4.0}
    """
    import warnings

    import torch
    from monai.metrics import compute_hausdorff_distance

    scores = {}
    for name, value in class_map.items():
        pred = np.asarray(prediction) == value
        ref = np.asarray(reference) == value
        if not ref.any():
            scores[name] = float("nan")
            continue
        if not pred.any():
            scores[name] = float("inf")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            distance = compute_hausdorff_distance(
                torch.from_numpy(pred)[None, None],
                torch.from_numpy(ref)[None, None],
                include_background=True,
                percentile=percentile,
                spacing=[float(s) for s in spacing],
            )
        scores[name] = float(distance[0, 0])
    return scores


def numpy_dice(a: np.ndarray, b: np.ndarray) -> float:
    """``2 |A n B| / (|A| + |B|)`` of two boolean masks (NaN when both are empty).

    Example:
        >>> numpy_dice(np.array([1, 1, 0], bool), np.array([1, 0, 0], bool))
        0.6666666666666666
    """
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int((a & b).sum()) / total if total else float("nan")
