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

    The header is checked before any voxel is read: its declared size against the voxel
    limit (:mod:`ctpipe.io.limits`), so a gzip bomb or a header that declares gigabytes
    is refused before allocating; an uncompressed file must hold every voxel it declares;
    the voxel type must be a real number.

    Args:
        path: A ``.nii`` or ``.nii.gz`` file.

    Returns:
        ``(array, affine_ras)``; the array keeps the stored dtype unless the header
        scales it, in which case it is float32.

    Raises:
        InputError: The file is missing, not a readable NIfTI, truncated, too large, or
            of a voxel type that is not a number (the message names the file).

    Example:
        >>> read_nifti("/no/such.nii.gz")
        Traceback (most recent call last):
        ...
        ctpipe.errors.InputError: /no/such.nii.gz: no such file
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        image = nib.load(path)
        shape = tuple(int(v) for v in image.header.get_data_shape())
        dtype = np.dtype(image.header.get_data_dtype())
    except Exception as exc:  # nibabel raises several types on damaged files
        raise InputError(path, f"not a readable NIfTI file ({_first_line(exc)})") from None
    _check_declared(path, image, shape, dtype)
    try:
        scaled = image.dataobj.slope != 1 or image.dataobj.inter != 0
        array = np.asarray(image.dataobj, dtype=np.float32 if scaled else None)
        affine = np.asarray(image.affine, dtype=np.float64)
    except MemoryError:
        raise InputError(path, f"not enough memory to read {shape} voxels") from None
    except Exception as exc:  # truncated gzip streams, short data
        raise InputError(path, f"truncated or damaged NIfTI data ({_first_line(exc)})") from None
    return array, affine


def _check_declared(path: Path, image, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Refuse a header whose voxels are too many, not numbers, or not in the file."""
    from ctpipe.io.limits import voxel_problem

    if not shape:
        raise InputError(path, "the header declares no dimensions")
    problem = voxel_problem(shape, what="the header declares")
    if problem:
        raise InputError(path, problem)
    if dtype.fields is not None or not (
        np.issubdtype(dtype, np.integer)
        or np.issubdtype(dtype, np.floating)
        or np.issubdtype(dtype, np.bool_)
    ):
        raise InputError(path, f"voxels of type {dtype} are not numbers of one channel")
    zooms = _stored_zooms(path, image, len(shape))
    if zooms is not None and not all(np.isfinite(z) and z > 0 for z in zooms):
        raise InputError(
            path,
            f"the voxel size is unknown: no sform, and pixdim gives {zooms} mm (a voxel size "
            "must be positive); write the file with its affine",
        )
    if path.name.endswith(".nii"):
        offset = int(getattr(image.dataobj, "offset", 0))
        needed = offset + int(np.prod(shape)) * dtype.itemsize
        size = path.stat().st_size
        if size < needed:
            raise InputError(
                path,
                f"truncated: the header declares {shape} voxels of {dtype} "
                f"({needed} bytes with the header) but the file holds {size} bytes",
            )


def _stored_zooms(path: Path, image, ndim: int) -> list[float] | None:
    """The voxel size ``pixdim`` stores, when no sform gives the affine (else None).

    nibabel replaces a zero ``pixdim`` by 1 while loading, with only a warning, so the
    header is read again unchecked from the file.
    """
    import nibabel as nib

    if int(image.header["sform_code"]) != 0:
        return None
    with nib.openers.ImageOpener(path) as stream:
        raw = type(image.header).from_fileobj(stream, check=False)
    return [float(v) for v in raw["pixdim"][1 : 1 + min(3, ndim)]]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


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
