"""What ctpipe reads from one DICOM file's header, without decoding its pixels.

Headers are read with the pixel data deferred: pydicom records where the pixel element
starts and how long it is, which lets :func:`read_slice_header` spot a truncated file
from its size alone and lets the volume reader fetch uncompressed pixels straight from
that offset later.

Example:
    >>> from pydicom.data import get_testdata_file
    >>> header = read_slice_header(get_testdata_file("CT_small.dcm"))
    >>> header.rows, header.columns, header.rescale_intercept
    (128, 128, -1024.0)
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

from ctpipe.errors import CorruptDicomError, NotDicomError


@dataclass(frozen=True)
class SliceHeader:
    """What ctpipe needs from one DICOM image file, read without its pixels."""

    path: Path
    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str
    patient_id: str
    patient_name: str
    modality: str
    frame_of_reference_uid: str
    orientation: tuple[float, ...] | None
    position: tuple[float, ...] | None
    pixel_spacing: tuple[float, ...] | None
    rows: int
    columns: int
    number_of_frames: int
    instance_number: int | None
    series_number: int | None
    series_description: str
    study_date: str
    convolution_kernel: str
    slice_thickness: float | None
    rescale_slope: float | None
    rescale_intercept: float | None
    transfer_syntax_uid: str
    manufacturer: str
    image_type: tuple[str, ...]
    pixel_data_problem: str | None = None
    pixel_data_offset: int | None = None
    bits_allocated: int = 16
    pixel_representation: int = 0
    samples_per_pixel: int = 1
    bits_stored: int | None = None
    sop_class_uid: str = ""
    body_part_examined: str = ""
    photometric_interpretation: str = "MONOCHROME2"

    @property
    def is_native_single_frame(self) -> bool:
        """True when the pixels are one uncompressed little-endian greyscale frame."""
        return (
            self.pixel_data_offset is not None
            and self.transfer_syntax_uid in NATIVE_LITTLE_ENDIAN
            and self.samples_per_pixel == 1
            and self.number_of_frames == 1
            and self.bits_allocated in (8, 16, 32)
        )

    def grouping_key(self) -> tuple:
        """Tags shared by every slice of one series, used when the UID is missing."""
        return (
            self.study_instance_uid,
            self.frame_of_reference_uid,
            self.modality,
            self.series_number,
            self.series_description,
            self.convolution_kernel,
            self.rows,
            self.columns,
            _rounded(self.pixel_spacing, 4),
            _rounded(self.orientation, 3),
        )

    def grid_key(self) -> tuple:
        """Tags that must agree across slices for them to stack into one volume."""
        return (
            self.rows,
            self.columns,
            _rounded(self.pixel_spacing, 4),
            _rounded(self.orientation, 4),
        )


def _rounded(values: Sequence[float] | None, digits: int) -> tuple[float, ...] | None:
    return None if values is None else tuple(round(float(v), digits) for v in values)


def read_slice_header(path: str | os.PathLike[str]) -> SliceHeader | None:
    """Read one file's header (pixels deferred, never decoded).

    Args:
        path: Any file.

    Returns:
        The :class:`SliceHeader`, or None for a DICOM object without an image
        (DICOMDIR, structured report, ...).

    Raises:
        NotDicomError: The file is not DICOM.
        CorruptDicomError: The file is DICOM but its header is damaged or truncated.
        OSError: The file cannot be opened or read (no permission, an I/O error).

    Example:
        >>> from pydicom.data import get_testdata_file
        >>> read_slice_header(get_testdata_file("CT_small.dcm")).modality
        'CT'
    """
    path = Path(path)
    try:
        ds = pydicom.dcmread(path, defer_size=256)
    except InvalidDicomError as exc:
        raise NotDicomError(path, "not a DICOM file") from exc
    except OSError:
        raise  # the file cannot be opened or read (permission, I/O): not a damaged header
    except Exception as exc:  # pydicom raises many types on damaged files
        if _has_dicom_magic(path):
            raise CorruptDicomError(path, f"cannot parse header ({exc})") from exc
        raise NotDicomError(path, "not a DICOM file") from exc
    if "PixelData" not in ds and "FloatPixelData" not in ds:
        damage = _missing_pixels_problem(ds)
        if damage:
            raise CorruptDicomError(path, damage)
        return None
    try:
        return _header_from_dataset(path, ds)
    except Exception as exc:  # any tag value that is not what DICOM says it holds
        raise CorruptDicomError(path, f"malformed header value ({exc})") from exc


def _missing_pixels_problem(ds: pydicom.Dataset) -> str | None:
    """Tell a damaged image file from a legitimately pixel-less object (DICOMDIR, SR)."""
    if len(ds) == 0:
        return "no data elements after the DICOM header (truncated or damaged)"
    sop_class = ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID", "")
    if "Image Storage" in pydicom.uid.UID(str(sop_class)).name:
        return f"{pydicom.uid.UID(str(sop_class)).name} without pixel data (truncated?)"
    return None


def _has_dicom_magic(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"


def _header_from_dataset(path: Path, ds: pydicom.Dataset) -> SliceHeader:
    return SliceHeader(
        path=path,
        sop_instance_uid=str(ds.get("SOPInstanceUID", "") or ""),
        series_instance_uid=str(ds.get("SeriesInstanceUID", "") or ""),
        study_instance_uid=str(ds.get("StudyInstanceUID", "") or ""),
        patient_id=str(ds.get("PatientID", "") or ""),
        patient_name=str(ds.get("PatientName", "") or ""),
        modality=str(ds.get("Modality", "") or ""),
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "") or ""),
        orientation=_floats(_get(ds, "ImageOrientationPatient")),
        position=_floats(_get(ds, "ImagePositionPatient")),
        pixel_spacing=_floats(_get(ds, "PixelSpacing")),
        rows=int(ds.get("Rows", 0) or 0),
        columns=int(ds.get("Columns", 0) or 0),
        number_of_frames=int(ds.get("NumberOfFrames", 1) or 1),
        instance_number=_int_or_none(_get(ds, "InstanceNumber")),
        series_number=_int_or_none(_get(ds, "SeriesNumber")),
        series_description=str(ds.get("SeriesDescription", "") or ""),
        study_date=str(ds.get("StudyDate", "") or ""),
        convolution_kernel=_joined(ds.get("ConvolutionKernel")),
        slice_thickness=_float_or_none(_get(ds, "SliceThickness")),
        rescale_slope=_float_or_none(_get(ds, "RescaleSlope")),
        rescale_intercept=_float_or_none(_get(ds, "RescaleIntercept")),
        transfer_syntax_uid=str(ds.file_meta.get("TransferSyntaxUID", "")),
        manufacturer=str(ds.get("Manufacturer", "") or ""),
        image_type=tuple(str(v) for v in (ds.get("ImageType") or ())),
        pixel_data_problem=_pixel_data_problem(path, ds),
        pixel_data_offset=_pixel_data_offset(ds),
        bits_allocated=int(ds.get("BitsAllocated", 16) or 16),
        pixel_representation=int(ds.get("PixelRepresentation", 0) or 0),
        samples_per_pixel=int(ds.get("SamplesPerPixel", 1) or 1),
        bits_stored=_int_or_none(_get(ds, "BitsStored")),
        sop_class_uid=str(
            ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID", "") or ""
        ),
        body_part_examined=str(ds.get("BodyPartExamined", "") or ""),
        photometric_interpretation=str(ds.get("PhotometricInterpretation", "") or "").strip(),
    )


def _get(ds: pydicom.Dataset, keyword: str) -> object:
    """A numeric element's value; its raw text when it is not a valid number.

    pydicom raises on a DS value such as ``abc``; the raw strings are returned instead,
    so the value checks name the element and the file rather than the file being
    dropped as unreadable.
    """
    try:
        return ds.get(keyword)
    except (ValueError, TypeError, OverflowError):
        raw = ds.get_item(keyword)
        text = raw.value if isinstance(raw.value, str) else bytes(raw.value).decode("latin-1")
        return [part.strip(" \0") for part in text.split("\\")]


def _floats(value: object) -> tuple[float, ...] | None:
    if value is None or value == "":
        return None
    if not isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return (_float(value),)  # one value where DICOM wants more
    return tuple(_float(v) for v in value)


def _float(value: object) -> float:
    """The number, or NaN for text that is not one (refused by the value checks)."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (ValueError, TypeError, OverflowError):
        return math.nan


def _int_or_none(value: object) -> int | None:
    try:
        return None if value in (None, "") else int(value)  # type: ignore[arg-type]
    except (ValueError, TypeError, OverflowError):
        return None  # InstanceNumber and the like are only used for display and order


def _float_or_none(value: object) -> float | None:
    if value is None or value == "" or value == [""]:
        return None
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return _float(value[0]) if len(value) == 1 else math.nan  # several values: invalid
    return _float(value)


def _joined(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return "\\".join(str(v) for v in value)
    return str(value)


def _raw_pixel_element(ds: pydicom.Dataset) -> tuple[int | None, int | None]:
    """File offset and length of the (deferred, not yet read) PixelData value."""
    raw = ds.get_item("PixelData", keep_deferred=True) if "PixelData" in ds else None
    tell = getattr(raw, "value_tell", None)
    length = getattr(raw, "length", None)
    if tell is None or length is None or length == 0xFFFFFFFF:  # undefined: encapsulated
        return None, None
    return int(tell), int(length)


def _pixel_data_offset(ds: pydicom.Dataset) -> int | None:
    return _raw_pixel_element(ds)[0]


def _pixel_data_problem(path: Path, ds: pydicom.Dataset) -> str | None:
    """Spot truncation without decoding: the pixel element must fit in the file."""
    tell, length = _raw_pixel_element(ds)
    if tell is None or length is None:
        return None
    size = path.stat().st_size
    if tell + length > size:
        return f"file is truncated: pixel data needs {length} bytes but only {size - tell} remain"
    if ds.file_meta.get("TransferSyntaxUID", "") in _NATIVE_SYNTAXES:
        expected = _expected_native_bytes(ds)
        if expected and length < expected:
            return f"pixel data holds {length} bytes, {expected} expected for this image size"
        if expected and length > expected + 1:  # one byte pads an odd length
            return (
                f"pixel data holds {length} bytes, more than the {expected} that Rows x "
                "Columns x BitsAllocated declare (a wrong Rows, Columns or BitsAllocated)"
            )
    return None


_NATIVE_SYNTAXES = {
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
}
#: Implicit and explicit VR little endian: pixels stored as plain little-endian integers.
NATIVE_LITTLE_ENDIAN = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"})


def _expected_native_bytes(ds: pydicom.Dataset) -> int:
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    bits = int(ds.get("BitsAllocated", 0) or 0)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    return rows * cols * frames * samples * bits // 8
