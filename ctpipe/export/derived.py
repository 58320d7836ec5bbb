r"""Write a computed image (e.g. a denoised CT) as a derived series of its source study.

:func:`write_derived_series` keeps the source's patient, study and frame of reference,
gives the new series and every instance new UIDs, marks the images
``DERIVED\SECONDARY\AXIAL`` with a ``DerivationDescription``, names each slice's source
instance in ``SourceImageSequence``, and copies every slice's ``ImagePositionPatient``
from its source slice, so the derived series overlays the source voxel for voxel. Pixel
values are stored with the rescale :func:`~ctpipe.export.dicom_series.hu_to_stored`
picks (HU back exactly to the 1-HU step). Attributes are copied from an explicit list of
the Patient, General Study, Frame of Reference and CT acquisition modules: private tags
and anything else of the source stay behind, so the output is valid CT Image Storage
(``dciodvfy`` finds no errors) whatever the source vendor wrote.

A NIfTI input has no study to join: its derived series gets a new study with the
patient named in ``meta`` (``PatientID``) or ``CTPIPE-NIFTI``.

Example:
    >>> import numpy as np, tempfile
    >>> from ctpipe.io.dicom_volume import CTVolume
    >>> source = CTVolume(np.zeros((4, 3, 2), np.float32), np.diag([0.7, 0.7, 2.0, 1.0]))
    >>> paths = write_derived_series(source.hu + 5, source, tempfile.mkdtemp(),
    ...                              derivation_description="denoised")
    >>> ds = pydicom.dcmread(paths[0])
    >>> list(ds.ImageType), ds.DerivationDescription
    (['DERIVED', 'SECONDARY', 'AXIAL'], 'denoised')
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from ctpipe.errors import InputError
from ctpipe.export.dicom_series import write_ct_series
from ctpipe.io.dicom_volume import CTVolume

__all__ = ["COPIED_KEYWORDS", "DERIVED_IMAGE_TYPE", "source_datasets", "write_derived_series"]

#: ImageType of a series computed from another.
DERIVED_IMAGE_TYPE = ("DERIVED", "SECONDARY", "AXIAL")

#: Source attributes carried over (Patient, General Study, Patient Study, General Series,
#: Frame of Reference, CT Image acquisition), when present and not empty.
COPIED_KEYWORDS = (
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyDescription",
    "PositionReferenceIndicator",
    "PatientPosition",
    "BodyPartExamined",
    "Laterality",
    "ImageLaterality",
    "AcquisitionDate",
    "AcquisitionTime",
    "KVP",
    "SliceThickness",
    "InstitutionName",
)


def write_derived_series(
    hu: np.ndarray,
    source: CTVolume,
    folder: str | PathLike[str],
    *,
    derivation_description: str,
    series_description: str = "ctpipe derived",
    series_number: int | None = None,
    series_uid: str | None = None,
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> list[Path]:
    """Write ``hu`` (on ``source``'s grid) as a derived CT series of ``source``'s study.

    Args:
        hu: Float HU volume ``(i, j, k)`` with ``source.hu``'s shape.
        source: The volume it was computed from (its series gives patient, study,
            geometry and the instances referenced).
        folder: Output folder (created); one file per slice, each written atomically.
        derivation_description: What was done, e.g. ``"RED-CNN denoising (ctpipe
            0.1, weights sha256 ...)"``; at most 1024 characters.
        series_description: SeriesDescription (at most 64 characters).
        series_number: SeriesNumber; ``None``: the source's plus 1000.
        series_uid: SeriesInstanceUID; a new one when ``None``.
        transfer_syntax: See :func:`~ctpipe.export.dicom_series.write_ct_series`.

    Returns:
        The files, in slice order.

    Raises:
        ValueError: ``hu`` does not match the source's shape, or a description is too long.
        InputError: A source file can no longer be read (names it).
    """
    hu = np.asarray(hu)
    if hu.shape != source.hu.shape:
        raise ValueError(f"hu must have the source's shape {source.hu.shape}, got {hu.shape}")
    if len(derivation_description) > 1024:
        raise ValueError("derivation_description must be at most 1024 characters")
    if len(series_description) > 64:
        raise ValueError(
            f"series_description must be at most 64 characters: {series_description!r}"
        )
    common: dict[str, Any] = {"DerivationDescription": derivation_description}
    if source.series is None:
        meta = source.meta or {}
        return write_ct_series(
            hu,
            source.affine_lps,
            folder,
            patient_id=str(meta.get("PatientID") or "CTPIPE-NIFTI"),
            patient_name=str(meta.get("PatientName") or "Nifti^Ctpipe"),
            series_uid=series_uid,
            series_number=series_number or 1001,
            series_description=series_description,
            transfer_syntax=transfer_syntax,
            image_type=DERIVED_IMAGE_TYPE,
            extra=common,
        )
    datasets = source_datasets(source)
    first = datasets[0]
    per_slice, positions = _per_slice(datasets, hu.shape[2])
    common.update(_copied(first))
    return write_ct_series(
        hu,
        source.affine_lps,
        folder,
        patient_id=str(first.get("PatientID", "")),
        patient_name=str(first.get("PatientName", "")),
        study_uid=str(first.StudyInstanceUID) if first.get("StudyInstanceUID") else None,
        frame_of_reference_uid=str(first.FrameOfReferenceUID)
        if first.get("FrameOfReferenceUID")
        else None,
        series_uid=series_uid,
        series_number=series_number if series_number is not None else _series_number(first),
        series_description=series_description,
        convolution_kernel=_kernel(first),
        transfer_syntax=transfer_syntax,
        image_type=DERIVED_IMAGE_TYPE,
        extra=common,
        slice_extra=per_slice,
        slice_positions=positions,
    )


def source_datasets(source: CTVolume) -> list[Dataset]:
    """The source series' headers (no pixel data), one per file, in slice order.

    Raises:
        InputError: A file can no longer be read (names it).
    """
    if source.series is None:
        raise ValueError("source has no DICOM series (it was read from NIfTI)")
    datasets = []
    for header in source.series.slices:
        try:
            datasets.append(pydicom.dcmread(header.path, stop_before_pixels=True))
        except (OSError, pydicom.errors.InvalidDicomError) as err:
            raise InputError(header.path, f"cannot re-read the source header: {err}") from None
    return datasets


def _per_slice(
    datasets: Sequence[Dataset], count: int
) -> tuple[list[dict[str, Any]], np.ndarray | None]:
    """SourceImageSequence per slice, and the source positions when one file per slice."""
    if len(datasets) != count:  # a multi-frame source: reference its frames
        only = datasets[0]
        refs = [{"SourceImageSequence": [_reference(only, frame=k + 1)]} for k in range(count)]
        return refs, None
    refs = [{"SourceImageSequence": [_reference(ds)]} for ds in datasets]
    positions = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in datasets])
    return refs, positions


def _reference(ds: Dataset, frame: int | None = None) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = ds.SOPClassUID
    item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    if frame is not None:
        item.ReferencedFrameNumber = frame
    return item


def _copied(ds: Dataset) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for keyword in COPIED_KEYWORDS:
        value = ds.get(keyword)
        if value is not None and value != "":
            values[keyword] = value
    if not {"BodyPartExamined", "Laterality", "ImageLaterality"} & set(values):
        values["Laterality"] = ""  # Type 2C: empty says "unknown", as the source leaves it
    return values


def _series_number(ds: Dataset) -> int:
    number = ds.get("SeriesNumber")
    return int(number) + 1000 if number not in (None, "") else 1001


def _kernel(ds: Dataset) -> str:
    kernel = ds.get("ConvolutionKernel", "")
    if isinstance(kernel, pydicom.multival.MultiValue):
        return "\\".join(str(k) for k in kernel)
    return str(kernel or "")
