"""Check a decoded volume before any number is computed from it.

Every command reads its CT through :func:`ctpipe.io.reader.read_study`, which ends here. A
volume is refused, with the file and the reason in one line, when:

* it is not a 3-D volume of real numbers, or it is smaller than the caller needs;
* its affine is not finite or is singular (a zero voxel size, collinear axes), or a
  voxel is larger than 100 mm along an axis;
* any voxel is NaN or infinite (the count is named);
* it does not look like CT in Hounsfield units: no air (nothing below -500 HU in at
  least 0.1 % of the voxels), nothing but air (fewer than 0.1 % at or above -500 HU),
  every voxel the same value, or values beyond what any CT scanner stores.
  ``allow_non_hu`` (``--allow-non-hu``) reads such a volume anyway.

Example:
    >>> import numpy as np
    >>> mr = np.linspace(0, 900, 1024, dtype=np.float32).reshape(16, 16, 4)  # MR-like
    >>> hu_problem(mr).split(" with ")[0]
    'does not look like CT in Hounsfield units: values span 0 .. 900'
"""

from __future__ import annotations

import os

import numpy as np

from ctpipe.errors import InputError

__all__ = [
    "AIR_HU",
    "CT_HU_RANGE",
    "MAX_VOXEL_MM",
    "MIN_AIR_FRACTION",
    "MIN_CT_SLICE_PIXELS",
    "NonHUError",
    "affine_problem",
    "hu_problem",
    "validate_ct_array",
]

#: Below this many HU there is only air (about -1000 HU) and lung; CT always holds some.
AIR_HU = -500.0
#: The share of voxels below :data:`AIR_HU` a CT volume holds at least (air, lung).
MIN_AIR_FRACTION = 0.001
#: HU outside this range are stored by no CT scanner (16-bit values, rescaled; extended
#: scales reach about 30000 HU). Values above it come from a wrong PixelRepresentation
#: (negative values read as unsigned) or a wrong rescale.
CT_HU_RANGE = (-34000.0, 32767.0)
#: Largest voxel size (mm) along any axis: no CT has coarser voxels.
MAX_VOXEL_MM = 100.0
#: The smallest slice, in pixels per side, the commands accept: a smaller one is no CT
#: image, and the denoiser's receptive field alone spans 21 pixels.
MIN_CT_SLICE_PIXELS = 24


class NonHUError(InputError):
    """The volume does not hold CT values in Hounsfield units (``--allow-non-hu`` reads it)."""


def validate_ct_array(
    hu: np.ndarray,
    affine: np.ndarray,
    source: str | os.PathLike[str],
    *,
    allow_non_hu: bool = False,
    min_slice_pixels: int = 1,
) -> None:
    """Refuse a volume whose numbers cannot be trusted; name ``source`` and the reason.

    Args:
        hu: The volume, indexed (i, j, k).
        affine: Its 4x4 affine (LPS or RAS: only its invertibility is checked).
        source: The file or folder it came from, for the message.
        allow_non_hu: Skip the Hounsfield-unit check (finite values are still required).
        min_slice_pixels: The smallest size allowed along i and j.

    Raises:
        InputError: The shape, the affine or the values are unusable.
        NonHUError: The values are not CT in HU (and ``allow_non_hu`` is False).
    """
    if hu.ndim != 3:
        raise InputError(source, f"not a 3-D volume: shape {tuple(hu.shape)}")
    if not (np.issubdtype(hu.dtype, np.integer) or np.issubdtype(hu.dtype, np.floating)):
        raise InputError(source, f"voxels of type {hu.dtype} are not CT intensities")
    if min(hu.shape) < 1:
        raise InputError(source, f"an empty volume: shape {tuple(hu.shape)}")
    if min(hu.shape[:2]) < min_slice_pixels:
        raise InputError(
            source,
            f"slices of {hu.shape[0]} x {hu.shape[1]} pixels are too small; at least "
            f"{min_slice_pixels} x {min_slice_pixels} are needed",
        )
    problem = affine_problem(affine)
    if problem:
        raise InputError(source, problem)
    bad = hu.size - int(np.count_nonzero(np.isfinite(hu)))
    if bad:
        raise InputError(
            source,
            f"{bad} of {hu.size} voxels ({100 * bad / hu.size:.2g} %) are NaN or infinite; "
            "ctpipe computes nothing from such a volume",
        )
    if not allow_non_hu:
        problem = hu_problem(hu)
        if problem:
            raise NonHUError(source, problem)


def affine_problem(affine: np.ndarray) -> str | None:
    """Say what is wrong with a voxel-to-world affine, or None when it is usable.

    Example:
        >>> affine_problem(np.diag([0.7, 0.7, 0.0, 1.0])).split(",")[0]
        'the affine is singular: voxel size 0.7 x 0.7 x 0 mm (a zero or collinear axis)'
    """
    matrix = np.asarray(affine, dtype=np.float64)
    if matrix.shape != (4, 4):
        return f"the affine must be 4x4, got shape {matrix.shape}"
    if not np.all(np.isfinite(matrix)):
        return "the affine holds NaN or infinite values, so voxels have no place in space"
    axes = matrix[:3, :3]
    sizes = np.linalg.norm(axes, axis=0)
    volume = abs(float(np.linalg.det(axes)))
    if sizes.min() < 1e-6 or volume < 1e-6 * float(np.prod(sizes)):
        shown = " x ".join(f"{v:.3g}" for v in sizes)
        return (
            f"the affine is singular: voxel size {shown} mm (a zero or collinear axis), "
            "so voxels have no place in space"
        )
    if sizes.max() > MAX_VOXEL_MM:
        shown = " x ".join(f"{v:.3g}" for v in sizes)
        return (
            f"voxel size {shown} mm is above {MAX_VOXEL_MM:g} mm, which no CT has (check "
            "PixelSpacing, the slice positions or the affine's units)"
        )
    return None


def hu_problem(hu: np.ndarray) -> str | None:
    """Say why finite values do not look like CT in Hounsfield units, or None.

    Example:
        >>> hu_problem(np.full((4, 4, 2), -1000.0, np.float32))
        'every voxel is -1000 HU: an image without content (a RescaleSlope of 0?)'
    """
    low, high = float(hu.min()), float(hu.max())
    if low == high:
        return f"every voxel is {low:g} HU: an image without content (a RescaleSlope of 0?)"
    if low < CT_HU_RANGE[0] or high > CT_HU_RANGE[1]:
        return (
            f"values span {low:g} .. {high:g}, beyond any CT scanner's range "
            f"({CT_HU_RANGE[0]:g} .. {CT_HU_RANGE[1]:g} HU); check RescaleSlope and "
            "RescaleIntercept, or pass --allow-non-hu"
        )
    air = int(np.count_nonzero(hu < AIR_HU))
    if hu.size - air < MIN_AIR_FRACTION * hu.size:
        return (
            f"nothing but air: values span {low:g} .. {high:g} with "
            f"{'no voxel' if air == hu.size else f'only {hu.size - air} of {hu.size} voxels'} "
            f"at or above {AIR_HU:g} HU (a RescaleSlope far too small, or an empty scan); "
            "give a CT volume with its rescale applied, or pass --allow-non-hu"
        )
    if air < MIN_AIR_FRACTION * hu.size:
        found = "nothing" if air == 0 else f"only {air} of {hu.size} voxels"
        return (
            f"does not look like CT in Hounsfield units: values span {low:g} .. {high:g} "
            f"with {found} below {AIR_HU:g} HU (air is about -1000 HU); give a CT volume "
            "with its rescale applied, or pass --allow-non-hu"
        )
    return None
