"""NIfTI reading and writing with the affine kept exact.

NIfTI stores an affine in RAS, the frame MONAI uses too, so a ctpipe volume's
``affine_ras`` goes into the file's sform and qform unchanged and comes back unchanged.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.nii.gz"
    >>> write_nifti(np.zeros((4, 4, 2), np.float32), np.diag([-1.0, -1.0, 2.0, 1.0]), path)
    PosixPath('...a.nii.gz')
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ctpipe.errors import InputError
from ctpipe.io.atomic import atomic_path

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def write_nifti(
    array: np.ndarray,
    affine_ras: np.ndarray,
    path: str | os.PathLike[str],
    *,
    description: str = "",
    intent: str | None = None,
) -> Path:
    """Write an (i, j, k) array with its RAS affine to NIfTI, atomically.

    Args:
        array: The volume, indexed (i, j, k); its dtype is kept (HU as float32, labels
            as an integer type).
        affine_ras: 4x4 affine from (i, j, k, 1) to RAS mm.
        path: Destination ending in ``.nii`` or ``.nii.gz``.
        description: Short text stored in the header's ``descrip`` (80 bytes max).
        intent: NIfTI intent code name, e.g. ``"label"`` for label maps.

    Returns:
        The written path.

    Raises:
        ValueError: The path has another suffix, or the affine is not 4x4.
    """
    import nibabel as nib

    path = Path(path)
    if not path.name.endswith(NIFTI_SUFFIXES):
        raise ValueError(f"NIfTI path must end in .nii or .nii.gz, got {path.name!r}")
    affine = np.asarray(affine_ras, dtype=np.float64)
    if affine.shape != (4, 4):
        raise ValueError(f"affine must be 4x4, got shape {affine.shape}")
    image = nib.Nifti1Image(np.asarray(array), affine)
    image.set_sform(affine, code="scanner")
    image.set_qform(affine, code="scanner")
    image.header.set_xyzt_units(xyz="mm")
    if intent is not None:
        image.header.set_intent(intent)
    if description:
        image.header["descrip"] = description.encode()[:79]
    with atomic_path(path) as tmp:
        nib.save(image, tmp)
    return path


def read_nifti(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read a NIfTI file into its (i, j, k) array and RAS affine.

    Args:
        path: A ``.nii`` or ``.nii.gz`` file.

    Returns:
        ``(array, affine_ras)``; the array keeps the stored dtype unless the header
        scales it, in which case it is float32.

    Raises:
        InputError: The file is missing or not a readable NIfTI.
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        image = nib.load(path)
        scaled = image.dataobj.slope != 1 or image.dataobj.inter != 0
        array = np.asarray(image.dataobj, dtype=np.float32 if scaled else None)
    except Exception as exc:  # nibabel raises several types on damaged files
        raise InputError(path, f"not a readable NIfTI file ({exc})") from exc
    return array, np.asarray(image.affine, dtype=np.float64)


def compact_hu(hu: np.ndarray) -> np.ndarray:
    """Return HU as int16 when that is lossless (whole numbers in range), else unchanged.

    CT values decoded from integer pixels with integer rescale are whole HU; int16 keeps
    them exactly at half the size of float32.

    Example:
        >>> compact_hu(np.array([-1024.0, 3071.0], np.float32)).dtype
        dtype('int16')
        >>> compact_hu(np.array([0.5], np.float32)).dtype
        dtype('float32')
    """
    values = np.asarray(hu)
    if values.size and np.issubdtype(values.dtype, np.floating):
        info = np.iinfo(np.int16)
        in_range = values.min() >= info.min and values.max() <= info.max
        if in_range and np.array_equal(values, np.round(values)):
            return values.astype(np.int16)
    return values
