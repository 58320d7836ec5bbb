"""Write a HU volume as a series of single-frame CT Image Storage files.

:func:`write_ct_series` turns a volume indexed ``(i, j, k)`` (column, row, slice) with its
``(i, j, k) -> LPS`` affine into one DICOM file per slice ``k``. Each file carries the
Patient, General Study, General Series, Frame of Reference, General Equipment, General
Image, Image Plane, Image Pixel, CT Image, VOI LUT and SOP Common modules, so any DICOM
reader (GDCM/SimpleITK, pydicom, dcm2niix) rebuilds the same HU values and geometry.

Every file is first written under a hidden temporary name in the target folder and then
moved into place with :func:`os.replace`, so a reader never sees half-written files.

Example:
    >>> import numpy as np, tempfile
    >>> hu = np.full((4, 3, 2), 40.0, dtype=np.float32)
    >>> affine = np.diag([0.7, 0.7, 2.5, 1.0])
    >>> paths = write_ct_series(hu, affine, tempfile.mkdtemp())
    >>> [p.name for p in paths]
    ['IM0001.dcm', 'IM0002.dcm']
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.datadict import keyword_dict
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    RE_VALID_UID,
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
    generate_uid,
)
from pydicom.valuerep import DSfloat

from ctpipe import __version__
from ctpipe.io.atomic import atomic_path
from ctpipe.io.geometry import ORTHOGONALITY_TOLERANCE, TILT_TOLERANCE_DEG

__all__ = [
    "SUPPORTED_TRANSFER_SYNTAXES",
    "hu_to_stored",
    "write_ct_series",
]

#: Transfer syntaxes :func:`write_ct_series` can write.
SUPPORTED_TRANSFER_SYNTAXES: tuple[UID, ...] = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    JPEG2000Lossless,
)
#: How far a given slice position may lie from the affine's (mm).
POSITION_TOLERANCE_MM = 0.01
#: openjpeg's default of 6 resolution levels needs at least this many rows and columns.
JPEG2000_MIN_SIZE = 32

#: Attributes the writer derives from the volume; ``extra`` may not override them.
PROTECTED_KEYWORDS = frozenset(
    {
        "SOPClassUID",
        "SOPInstanceUID",
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "FrameOfReferenceUID",
        "Modality",
        "InstanceNumber",
        "ImagePositionPatient",
        "ImageOrientationPatient",
        "PixelSpacing",
        "SliceLocation",
        "Rows",
        "Columns",
        "SamplesPerPixel",
        "PhotometricInterpretation",
        "BitsAllocated",
        "BitsStored",
        "HighBit",
        "PixelRepresentation",
        "PixelData",
        "RescaleSlope",
        "RescaleIntercept",
        "RescaleType",
        "NumberOfFrames",
    }
)


@dataclass(frozen=True)
class _Geometry:
    """Image Plane values derived from an ``(i, j, k) -> LPS`` affine."""

    row_cosine: np.ndarray
    column_cosine: np.ndarray
    column_spacing: float
    row_spacing: float
    step: np.ndarray
    origin: np.ndarray

    @property
    def normal(self) -> np.ndarray:
        """Unit slice normal, row cosine x column cosine."""
        return np.cross(self.row_cosine, self.column_cosine)

    def position(self, k: int) -> np.ndarray:
        """ImagePositionPatient of slice ``k``."""
        return self.origin + k * self.step


def write_ct_series(
    hu: np.ndarray,
    affine_lps: np.ndarray,
    folder: str | PathLike[str],
    *,
    patient_id: str = "CTPIPE-PHANTOM",
    patient_name: str = "Phantom^Ctpipe",
    study_uid: str | None = None,
    series_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    series_number: int = 1,
    series_description: str = "",
    modality: str = "CT",
    rescale_slope: float = 1.0,
    rescale_intercept: float = -1024.0,
    transfer_syntax: str = ExplicitVRLittleEndian,
    convolution_kernel: str = "",
    window_center: float = 40.0,
    window_width: float = 400.0,
    file_name_pattern: str = "IM{index:04d}.dcm",
    extra: Mapping[str, Any] | None = None,
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    slice_extra: Sequence[Mapping[str, Any]] | None = None,
    slice_positions: np.ndarray | None = None,
) -> list[Path]:
    """Write a HU volume as one single-frame CT Image Storage file per slice.

    Stored values are ``round((hu - rescale_intercept) / rescale_slope)`` as 16-bit
    integers: unsigned (PixelRepresentation 0) when every value fits, else signed.

    Args:
        hu: Volume in Hounsfield units indexed ``(i, j, k)`` = (column, row, slice).
        affine_lps: 4x4 matrix mapping ``(i, j, k, 1)`` to LPS millimetres. Its first two
            columns give the direction cosines times the pixel spacing, the third the step
            between slices and the fourth the position of slice 0.
        folder: Output folder; created when missing. Existing files of the same names
            are replaced.
        patient_id: PatientID.
        patient_name: PatientName, DICOM person name (``Family^Given``).
        study_uid: StudyInstanceUID; a new one when None.
        series_uid: SeriesInstanceUID; a new one when None.
        frame_of_reference_uid: FrameOfReferenceUID; a new one when None.
        series_number: SeriesNumber.
        series_description: SeriesDescription.
        modality: Modality (a CT Image Storage file is normally ``"CT"``).
        rescale_slope: RescaleSlope, positive.
        rescale_intercept: RescaleIntercept.
        transfer_syntax: One of :data:`SUPPORTED_TRANSFER_SYNTAXES`. JPEG 2000 Lossless
            needs pylibjpeg-openjpeg and slices of at least 32 x 32 pixels.
        convolution_kernel: ConvolutionKernel; left out when empty.
        window_center: WindowCenter (HU).
        window_width: WindowWidth (HU), at least 1.
        file_name_pattern: :meth:`str.format` pattern of the file names; ``{index}`` is
            the 1-based InstanceNumber and ``{k}`` the 0-based slice index.
        extra: More attributes by DICOM keyword, set on every file after the writer's
            own (for example ``{"BodyPartExamined": "ABDOMEN"}``). Attributes the writer
            derives from the volume (:data:`PROTECTED_KEYWORDS`) are refused.
        image_type: ImageType values, e.g. ``("DERIVED", "SECONDARY", "AXIAL")`` for an
            image computed from another series.
        slice_extra: One mapping of attributes per slice (set after ``extra``), e.g. the
            ``SourceImageSequence`` naming the source instance of each slice.
        slice_positions: ``(slices, 3)`` ImagePositionPatient per slice, to copy a
            source series' positions exactly; ``None``: from the affine. Each must lie
            within 0.01 mm of the affine's position (the geometry stays one grid).

    Returns:
        The written files, in slice order ``k = 0, 1, ...``.

    Raises:
        ValueError: When the volume, affine, UIDs, rescale, transfer syntax, file name
            pattern or ``extra`` are unusable; the message names the value and the rule.
        ImportError: When JPEG 2000 is asked for and pylibjpeg-openjpeg is missing.

    Example:
        >>> import numpy as np, tempfile
        >>> hu = np.zeros((4, 3, 2), dtype=np.float32)
        >>> ds = pydicom.dcmread(write_ct_series(hu, np.eye(4), tempfile.mkdtemp())[1])
        >>> int(ds.InstanceNumber), [float(v) for v in ds.ImagePositionPatient]
        (2, [0.0, 0.0, 1.0])
        >>> int(ds.pixel_array[0, 0]) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        0.0
    """
    volume = _check_volume(hu)
    geometry = _check_affine(affine_lps)
    stored, pixel_representation = hu_to_stored(volume, rescale_slope, rescale_intercept)
    syntax = _check_transfer_syntax(transfer_syntax, volume.shape)
    names = _file_names(file_name_pattern, volume.shape[2])
    _check_extra(extra or {})
    per_slice = _check_slice_extra(slice_extra, volume.shape[2])
    positions = _check_positions(slice_positions, geometry, volume.shape[2])
    _check_window(window_center, window_width)
    base = _series_dataset(
        patient_id=patient_id,
        patient_name=patient_name,
        study_uid=_uid(study_uid, "study_uid"),
        series_uid=_uid(series_uid, "series_uid"),
        frame_of_reference_uid=_uid(frame_of_reference_uid, "frame_of_reference_uid"),
        series_number=series_number,
        series_description=series_description,
        modality=modality,
        convolution_kernel=convolution_kernel,
    )
    base.ImageType = list(image_type)
    _set_pixel_module(base, geometry, volume.shape, pixel_representation)
    base.RescaleSlope = _ds(rescale_slope)
    base.RescaleIntercept = _ds(rescale_intercept)
    base.WindowCenter = _ds(window_center)
    base.WindowWidth = _ds(window_width)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, name in enumerate(names):
        ds = _slice_dataset(
            base, positions[k], geometry.normal, k, {**(extra or {}), **per_slice[k]}
        )
        _write_slice(ds, stored[:, :, k].T, syntax, out / name)
        paths.append(out / name)
    return paths


def hu_to_stored(
    hu: np.ndarray, rescale_slope: float = 1.0, rescale_intercept: float = -1024.0
) -> tuple[np.ndarray, int]:
    """Convert HU to the 16-bit stored values of a CT image.

    Args:
        hu: Hounsfield units, any shape, finite.
        rescale_slope: RescaleSlope, positive and finite.
        rescale_intercept: RescaleIntercept, finite.

    Returns:
        ``(stored, pixel_representation)``: a ``uint16`` array and 0 when every stored
        value fits in 0..65535, else an ``int16`` array and 1.

    Raises:
        ValueError: When hu is not finite, slope or intercept are unusable, or the stored
            values fit in neither 16-bit range; the message names the HU range that would fit.

    Example:
        >>> import numpy as np
        >>> stored, pr = hu_to_stored(np.array([-1024.0, 0.0, 1000.4]))
        >>> stored.tolist(), pr
        ([0, 1024, 2024], 0)
    """
    if not (np.isfinite(rescale_slope) and rescale_slope > 0):
        raise ValueError(f"rescale_slope must be positive and finite, got {rescale_slope}")
    if not np.isfinite(rescale_intercept):
        raise ValueError(f"rescale_intercept must be finite, got {rescale_intercept}")
    values = np.rint((np.asarray(hu, dtype=np.float64) - rescale_intercept) / rescale_slope)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"hu must be finite, got {int(np.sum(~np.isfinite(values)))} NaN/inf")
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if low >= 0 and high <= 65535:
        return values.astype(np.uint16), 0
    if low >= -32768 and high <= 32767:
        return values.astype(np.int16), 1
    signed = _hu_range(-32768, 32767, rescale_slope, rescale_intercept)
    unsigned = _hu_range(0, 65535, rescale_slope, rescale_intercept)
    raise ValueError(
        f"HU values {float(np.min(hu)):g}..{float(np.max(hu)):g} do not fit in 16 bits with "
        f"rescale_slope={rescale_slope:g} and rescale_intercept={rescale_intercept:g}: "
        f"stored values would be {low:g}..{high:g}, but must lie in -32768..32767 (HU "
        f"{signed[0]:g}..{signed[1]:g}) or 0..65535 (HU {unsigned[0]:g}..{unsigned[1]:g}); "
        "choose another slope/intercept or clip the volume"
    )


def _hu_range(low: int, high: int, slope: float, intercept: float) -> tuple[float, float]:
    return low * slope + intercept, high * slope + intercept


def _check_volume(hu: np.ndarray) -> np.ndarray:
    volume = np.asarray(hu)
    if volume.ndim != 3:
        raise ValueError(f"hu must be a 3D array indexed (i, j, k), got shape {volume.shape}")
    if min(volume.shape) < 1:
        raise ValueError(f"hu must have at least one voxel along each axis, got {volume.shape}")
    if volume.dtype.kind not in "iuf":
        raise ValueError(f"hu must hold real numbers, got dtype {volume.dtype}")
    if volume.shape[0] > 65535 or volume.shape[1] > 65535:
        raise ValueError(f"hu slices must be at most 65535 x 65535 pixels, got {volume.shape}")
    if not np.all(np.isfinite(volume)):
        raise ValueError(f"hu must be finite, got {int(np.sum(~np.isfinite(volume)))} NaN/inf")
    return volume


def _check_affine(affine_lps: np.ndarray) -> _Geometry:
    affine = np.asarray(affine_lps, dtype=np.float64)
    if affine.shape != (4, 4):
        raise ValueError(f"affine_lps must be a 4x4 matrix, got shape {affine.shape}")
    if not np.all(np.isfinite(affine)):
        raise ValueError(f"affine_lps must be finite, got {affine.tolist()}")
    if not np.allclose(affine[3], [0, 0, 0, 1]):
        raise ValueError(f"affine_lps last row must be [0, 0, 0, 1], got {affine[3].tolist()}")
    lengths = np.linalg.norm(affine[:3, :3], axis=0)
    if np.any(lengths < 1e-6):
        raise ValueError(
            f"affine_lps columns 0-2 must be non-zero (voxel spacings), got lengths "
            f"{lengths.tolist()}"
        )
    row, col, step = (affine[:3, n] / lengths[n] for n in range(3))
    dot = float(np.dot(row, col))
    if abs(dot) > ORTHOGONALITY_TOLERANCE:
        raise ValueError(
            f"affine_lps columns 0 and 1 (row and column directions) must be orthogonal, "
            f"got row . column = {dot:.4f} (tolerance {ORTHOGONALITY_TOLERANCE})"
        )
    col = col - dot * row
    col = col / np.linalg.norm(col)
    normal = np.cross(row, col)
    tilt = float(np.degrees(np.arccos(min(1.0, abs(float(np.dot(step, normal)))))))
    if tilt > TILT_TOLERANCE_DEG:
        raise ValueError(
            f"affine_lps column 2 (slice step) must be along the slice normal, got an angle "
            f"of {tilt:.3f} degrees (gantry tilt; tolerance {TILT_TOLERANCE_DEG})"
        )
    return _Geometry(
        row, col, float(lengths[0]), float(lengths[1]), affine[:3, 2].copy(), affine[:3, 3]
    )


def _check_transfer_syntax(transfer_syntax: str, shape: tuple[int, ...]) -> UID:
    text = str(transfer_syntax)
    if text not in SUPPORTED_TRANSFER_SYNTAXES:
        names = ", ".join(f"{s.name} ({s})" for s in SUPPORTED_TRANSFER_SYNTAXES)
        known = UID(text).name if RE_VALID_UID.match(text) else ""
        raise ValueError(
            f"transfer_syntax must be one of {names}; got {known or 'an unknown UID'} ({text!r})"
        )
    syntax = UID(text)
    if syntax == JPEG2000Lossless:
        from pydicom.pixels.encoders import JPEG2000LosslessEncoder

        if not JPEG2000LosslessEncoder.is_available:
            raise ImportError(
                "transfer_syntax JPEG 2000 Lossless needs an encoder: "
                "pip install pylibjpeg pylibjpeg-openjpeg"
            )
        if min(shape[:2]) < JPEG2000_MIN_SIZE:
            raise ValueError(
                f"transfer_syntax JPEG 2000 Lossless needs slices of at least "
                f"{JPEG2000_MIN_SIZE} x {JPEG2000_MIN_SIZE} pixels, got {shape[0]} x {shape[1]}"
            )
    return syntax


def _file_names(pattern: str, count: int) -> list[str]:
    try:
        names = [pattern.format(index=k + 1, k=k) for k in range(count)]
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"file_name_pattern may only use {{index}} and {{k}}, got {pattern!r} ({exc})"
        ) from exc
    if any(Path(name).name != name or name in ("", ".", "..") for name in names):
        raise ValueError(f"file_name_pattern must give plain file names, got {pattern!r}")
    if len(set(names)) != count:
        raise ValueError(
            f"file_name_pattern must give a different name per slice (use {{index}}), "
            f"got {pattern!r}"
        )
    return names


def _check_extra(extra: Mapping[str, Any]) -> None:
    for keyword in extra:
        if keyword in PROTECTED_KEYWORDS:
            raise ValueError(
                f"extra may not set {keyword}: write_ct_series derives it from the volume"
            )
        if keyword not in keyword_dict:
            close = difflib.get_close_matches(keyword, keyword_dict, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"extra key {keyword!r} is not a DICOM keyword{hint}")


def _check_window(center: float, width: float) -> None:
    if not (np.isfinite(center) and np.isfinite(width) and width >= 1):
        raise ValueError(
            f"window_width must be at least 1 and window_center finite, "
            f"got center {center}, width {width}"
        )


def _uid(value: str | None, name: str) -> UID:
    if value is None:
        return generate_uid()
    if not (isinstance(value, str) and len(value) <= 64 and RE_VALID_UID.match(value)):
        raise ValueError(
            f"{name} must be a valid DICOM UID (digits and dots, at most 64 characters), "
            f"got {value!r}"
        )
    return UID(value)


def _ds(value: float) -> DSfloat:
    return DSfloat(float(value), auto_format=True)


def _series_dataset(
    *,
    patient_id: str,
    patient_name: str,
    study_uid: UID,
    series_uid: UID,
    frame_of_reference_uid: UID,
    series_number: int,
    series_description: str,
    modality: str,
    convolution_kernel: str,
) -> Dataset:
    now = datetime.now()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = CTImageStorage
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    for prefix in ("Study", "Series", "Acquisition", "Content", "InstanceCreation"):
        setattr(ds, f"{prefix}Date", date)
        setattr(ds, f"{prefix}Time", time)
    ds.AccessionNumber = ""
    ds.StudyID = ""
    ds.Modality = modality
    ds.Manufacturer = "ctpipe"
    ds.ManufacturerModelName = "ctpipe write_ct_series"
    ds.SoftwareVersions = __version__
    ds.ReferringPhysicianName = ""
    ds.SeriesDescription = series_description
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.KVP = _ds(120)
    if convolution_kernel:
        ds.ConvolutionKernel = convolution_kernel
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = ""
    ds.SeriesNumber = int(series_number)
    ds.AcquisitionNumber = 1
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    return ds


def _set_pixel_module(
    ds: Dataset, geometry: _Geometry, shape: tuple[int, ...], pixel_representation: int
) -> None:
    ds.ImageOrientationPatient = [_ds(v) for v in (*geometry.row_cosine, *geometry.column_cosine)]
    ds.PixelSpacing = [_ds(geometry.row_spacing), _ds(geometry.column_spacing)]
    ds.SliceThickness = _ds(float(np.linalg.norm(geometry.step)))
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = int(shape[1])
    ds.Columns = int(shape[0])
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = pixel_representation
    ds.RescaleType = "HU"


def _check_slice_extra(
    slice_extra: Sequence[Mapping[str, Any]] | None, count: int
) -> list[Mapping[str, Any]]:
    if slice_extra is None:
        return [{}] * count
    if len(slice_extra) != count:
        raise ValueError(
            f"slice_extra must hold one mapping per slice ({count}), got {len(slice_extra)}"
        )
    for attributes in slice_extra:
        _check_extra(attributes)
    return list(slice_extra)


def _check_positions(positions: np.ndarray | None, geometry: _Geometry, count: int) -> np.ndarray:
    expected = np.array([geometry.position(k) for k in range(count)], dtype=np.float64)
    if positions is None:
        return expected
    given = np.asarray(positions, dtype=np.float64)
    if given.shape != (count, 3):
        raise ValueError(f"slice_positions must have shape ({count}, 3), got {given.shape}")
    worst = float(np.abs(given - expected).max()) if count else 0.0
    if worst > POSITION_TOLERANCE_MM:
        raise ValueError(
            f"slice_positions must lie within {POSITION_TOLERANCE_MM} mm of the affine's "
            f"positions, got a difference of {worst:.4g} mm"
        )
    return given


def _slice_dataset(
    base: Dataset, position: np.ndarray, normal: np.ndarray, k: int, extra: Mapping[str, Any]
) -> Dataset:
    ds = copy.deepcopy(base)
    ds.SOPInstanceUID = generate_uid()
    ds.InstanceNumber = k + 1
    ds.ImagePositionPatient = [_ds(v) for v in position]
    ds.SliceLocation = _ds(float(np.dot(position, normal)))
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return ds


def _write_slice(ds: Dataset, frame: np.ndarray, syntax: UID, path: Path) -> None:
    """Store one (rows, columns) frame in ``ds`` and write it atomically to ``path``."""
    frame = np.ascontiguousarray(frame, dtype=frame.dtype.newbyteorder("<"))
    if syntax.is_compressed:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.compress(syntax, frame, generate_instance_uid=False)
    else:
        ds.file_meta.TransferSyntaxUID = syntax
        ds.PixelData = frame.tobytes()
        ds["PixelData"].VR = "OW"
    ds.preamble = b"\0" * 128
    with atomic_path(path) as tmp:
        pydicom.dcmwrite(tmp, ds, enforce_file_format=True)
