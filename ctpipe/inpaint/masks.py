"""Inpainting masks: read them from NIfTI or PNG files and check them against the CT.

A mask marks the pixels to inpaint (the hole): ``True`` (or any non-zero value in a file)
means "replace", ``False``/0 means "keep". Masks are boolean arrays indexed like the CT,
``(i, j, k)`` = (column, row, slice).

* **NIfTI** (``.nii``, ``.nii.gz``): a 3D mask on the CT's grid, or a 2D one applied to
  every slice. Its affine must equal the CT's (to 1e-3 mm): a mask drawn on another grid
  is refused rather than silently misplaced.
* **PNG**: one image of ``rows x columns`` (the CT's ``(j, i)``), applied to every slice;
  greyscale, or colour reduced to greyscale.

A mask must be binary (two values at most, one of them 0), leave at least one known
pixel in every slice it touches, and mark at least one pixel. :func:`check_mask`
enforces this for arrays; :func:`read_mask` raises :class:`~ctpipe.errors.InputError`
naming the file.

Example:
    >>> import numpy as np, tempfile
    >>> from PIL import Image
    >>> path = tempfile.mkdtemp() + "/hole.png"
    >>> pixels = np.zeros((4, 6), np.uint8)  # 4 rows, 6 columns
    >>> pixels[1, 2] = 255
    >>> Image.fromarray(pixels).save(path)
    >>> mask = read_mask(path, (6, 4, 3))
    >>> mask.shape, int(mask.sum()), bool(mask[2, 1, 0])
    ((6, 4, 3), 3, True)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ctpipe.errors import InputError

__all__ = ["MASK_SUFFIXES", "check_mask", "read_mask"]

#: File suffixes :func:`read_mask` reads.
MASK_SUFFIXES = (".nii", ".nii.gz", ".png")
#: Largest difference between the mask's and the CT's affine entries, in mm.
AFFINE_TOLERANCE_MM = 1e-3


def check_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Check an inpainting mask against the CT's shape; return it as a bool array.

    Args:
        mask: The mask (bool, or numbers with 0 = keep).
        shape: The CT's shape, ``(i, j)`` or ``(i, j, k)``.

    Returns:
        The mask as a C-contiguous bool array.

    Raises:
        ValueError: Wrong shape, more than two values, no pixel to inpaint, or a slice with
            no known pixel left (the message says which rule and the value).

    Example:
        >>> check_mask(np.zeros((4, 4), bool), (4, 4))
        Traceback (most recent call last):
        ...
        ValueError: mask must mark at least one pixel to inpaint, got an empty mask
    """
    array = np.asarray(mask)
    if array.shape != tuple(shape):
        raise ValueError(f"mask shape must equal the CT's {tuple(shape)}, got {array.shape}")
    if array.dtype != bool:
        if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
            raise ValueError(f"mask must hold finite numbers or booleans, got dtype {array.dtype}")
        values = np.unique(array)
        if len(values) > 2 or (len(values) == 2 and 0 not in values):
            shown = ", ".join(f"{v:g}" for v in values[:6]) + (" ..." if len(values) > 6 else "")
            raise ValueError(
                f"mask must be binary (0 = keep, one non-zero value = inpaint), got values {shown}"
            )
        array = array != 0
    if not array.any():
        raise ValueError("mask must mark at least one pixel to inpaint, got an empty mask")
    planes = array if array.ndim == 3 else array[:, :, None]
    full = np.flatnonzero(planes.all(axis=(0, 1)))
    if full.size:
        raise ValueError(
            f"mask must leave known pixels in every slice, got slice(s) "
            f"{', '.join(map(str, full[:8]))} entirely masked"
        )
    return np.ascontiguousarray(array)


def read_mask(
    path: str | os.PathLike[str],
    shape: tuple[int, int, int],
    affine_ras: np.ndarray | None = None,
) -> np.ndarray:
    """Read an inpainting mask from NIfTI or PNG for a CT of ``shape``.

    Args:
        path: ``.nii``/``.nii.gz`` (2D or 3D) or ``.png`` (2D, rows x columns).
        shape: The CT's ``(i, j, k)`` shape.
        affine_ras: The CT's RAS affine; a NIfTI mask's affine must match it.

    Returns:
        A bool array of ``shape`` (2D masks repeated on every slice).

    Raises:
        InputError: The file is missing, unreadable, of another suffix, on another grid,
            not binary, empty or covers a whole slice (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "mask file does not exist")
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        array = _read_nifti_mask(path, affine_ras)
    elif name.endswith(".png"):
        array = _read_png_mask(path)
    else:
        raise InputError(
            path,
            f"mask must be NIfTI (.nii, .nii.gz) or PNG (.png), got {path.suffix or 'no suffix'}",
        )
    if array.ndim == 2 and len(shape) == 3:
        if array.shape != tuple(shape[:2]):
            raise InputError(
                path,
                f"2D mask of {array.shape[0]} x {array.shape[1]} (i x j) does not fit the CT's "
                f"slices of {shape[0]} x {shape[1]}",
            )
        array = np.repeat(array[:, :, None], shape[2], axis=2)
    try:
        return check_mask(array, shape)
    except ValueError as err:
        raise InputError(path, str(err)) from None


def _read_nifti_mask(path: Path, affine_ras: np.ndarray | None) -> np.ndarray:
    from ctpipe.io.nifti import read_nifti

    array, affine = read_nifti(path)
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3):
        raise InputError(path, f"mask must be 2D or 3D, got shape {array.shape}")
    if affine_ras is not None and array.ndim == 3:
        expected = np.asarray(affine_ras, dtype=np.float64)
        if not np.allclose(affine, expected, rtol=0, atol=AFFINE_TOLERANCE_MM):
            worst = float(np.abs(affine - expected).max())
            raise InputError(
                path,
                f"mask is on another grid than the CT (affines differ by up to {worst:.3g} mm); "
                "resample it onto the CT first",
            )
    return array


def _read_png_mask(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("RGB", "RGBA", "P", "LA", "CMYK"):
                image = image.convert("L")
            pixels = np.asarray(image)
    except (OSError, UnidentifiedImageError) as err:
        raise InputError(path, f"not a readable PNG image ({err})") from None
    if pixels.ndim != 2:
        raise InputError(path, f"mask must be a single-channel image, got shape {pixels.shape}")
    return np.ascontiguousarray(pixels.T)  # (rows, columns) -> (i, j)
