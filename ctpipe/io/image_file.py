"""Read NRRD and MetaImage volumes (SimpleITK) into a :class:`CTVolume` with LPS geometry.

SimpleITK's physical space is DICOM's LPS, so the affine is ``direction * spacing`` with
the origin as translation, exactly as for a DICOM series; values are taken as HU.

Example:
    >>> import numpy as np, SimpleITK as sitk, tempfile
    >>> image = sitk.GetImageFromArray(np.zeros((3, 4, 5), np.int16))  # (k, j, i)
    >>> image.SetSpacing((0.5, 0.6, 2.0)); image.SetOrigin((1.0, 2.0, 3.0))
    >>> path = tempfile.mkdtemp() + "/ct.nrrd"
    >>> sitk.WriteImage(image, path)
    >>> volume = read_image_file(path)
    >>> volume.hu.shape, volume.affine_lps[:3, 3].tolist(), volume.spacing
    ((5, 4, 3), [1.0, 2.0, 3.0], (0.5, 0.6, 2.0))
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ctpipe.errors import InputError
from ctpipe.io.dicom_volume import CTVolume

__all__ = ["IMAGE_FILE_SUFFIXES", "is_image_file", "read_image_file"]

#: Suffixes read through SimpleITK.
IMAGE_FILE_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """True for a NRRD or MetaImage file name.

    Example:
        >>> is_image_file("tumour.nrrd"), is_image_file("ct.nii.gz")
        (True, False)
    """
    return Path(path).suffix.lower() in IMAGE_FILE_SUFFIXES


def read_image_file(path: str | os.PathLike[str]) -> CTVolume:
    """Read a 3-D scalar NRRD/MetaImage file as float32 HU with its LPS affine.

    Raises:
        InputError: The file is missing, unreadable, not 3-D or not scalar (names it).
    """
    import SimpleITK as sitk

    from ctpipe.io.limits import voxel_problem

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        raise InputError(path, f"cannot read the image: {_last_line(err)}") from None
    size = reader.GetSize()
    components = reader.GetNumberOfComponents()
    if len(size) != 3 or components != 1:
        raise InputError(
            path,
            f"expected a 3-D scalar volume, got {len(size)}-D with {components} components "
            "per voxel",
        )
    problem = voxel_problem(size, what="the header declares")
    if problem:
        raise InputError(path, problem)
    try:
        image = reader.Execute()
    except RuntimeError as err:
        raise InputError(path, f"cannot read the image: {_last_line(err)}") from None
    hu = np.ascontiguousarray(sitk.GetArrayFromImage(image).transpose(2, 1, 0), dtype=np.float32)
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = direction * np.asarray(image.GetSpacing(), dtype=np.float64)
    affine[:3, 3] = image.GetOrigin()
    return CTVolume(hu, affine, None, {"ctpipe_source_files": [str(path)]})


def _last_line(err: BaseException) -> str:
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(err).__name__
