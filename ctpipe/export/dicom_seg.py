"""Write a label volume as a DICOM Segmentation (highdicom) referencing its source series.

:func:`write_dicom_seg` turns integer labels on a source series' grid (``(i, j, k)``,
label ``v`` is the class ``class_map`` names with ``v``) into a BINARY Segmentation
instance: one segment per class present in the labels, with SNOMED CT property codes
from ctpipe's table (:mod:`ctpipe.export.terminology`: category, type and laterality
modifier; names the table lacks are coded as "Tissue" with the name as the segment's
description), ``AUTOMATIC`` algorithm type and the algorithm's name and version.
DICOM numbers the segments of a BINARY Segmentation 1, 2, ... without gaps, so the
present classes are numbered in the order of their label values
(:func:`segment_numbers`); each segment's label is its class name. The Segmentation
joins the source's patient, study and frame of reference and references each source
instance, so PACS viewers overlay it on the source series. Empty frames are omitted
(highdicom's default); :func:`read_dicom_seg_labels` rebuilds the label volume (with
the original label values when given the class map).

Example:
    >>> import numpy as np, tempfile
    >>> from ctpipe.export.dicom_series import write_ct_series
    >>> folder = tempfile.mkdtemp()
    >>> files = write_ct_series(np.zeros((8, 6, 3), np.float32), np.eye(4), folder)
    >>> sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    >>> labels = np.zeros((8, 6, 3), np.uint8)
    >>> labels[2:5, 1:4, 1] = 1
    >>> path = write_dicom_seg(labels, {"liver": 1}, sources, folder + "/seg.dcm")
    >>> bool((read_dicom_seg_labels(path, sources, {"liver": 1}) == labels).all())
    True
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from ctpipe import __version__
from ctpipe.export.terminology import segment_code
from ctpipe.io.atomic import atomic_path

__all__ = ["organ_code", "read_dicom_seg_labels", "segment_numbers", "write_dicom_seg"]


def organ_code(name: str) -> tuple[object, object]:
    """(category, property type) codes of a class name such as ``kidney_right``.

    The codes come from :func:`ctpipe.export.terminology.segment_code`, which also gives
    the laterality modifier.

    Example:
        >>> category, kind = organ_code("kidney_left")
        >>> category.meaning, kind.meaning
        ('Anatomical Structure', 'Kidney')
        >>> organ_code("tumour_core")[1].meaning
        'Tissue'
    """
    code = segment_code(name)
    return code.category, code.type


def write_dicom_seg(
    labels: np.ndarray,
    class_map: Mapping[str, int],
    source_images: Sequence[Dataset],
    path: str | PathLike[str],
    *,
    series_description: str = "ctpipe segmentation",
    series_number: int = 2000,
    algorithm_name: str = "ctpipe segmenter",
    algorithm_version: str = __version__,
) -> Path:
    """Write ``labels`` as a BINARY DICOM Segmentation of ``source_images``.

    Args:
        labels: Integer labels ``(i, j, k)`` on the source grid: ``(columns, rows,
            slices)`` with slice ``k`` the ``k``-th of ``source_images``.
        class_map: Class name -> label value (1 .. N); background 0 is not a segment.
        source_images: The source series' datasets (pixel data not needed), in slice
            order, one per slice (or one multi-frame image with a frame per slice).
        path: The ``.dcm`` file to write (atomically).
        series_description: SeriesDescription.
        series_number: SeriesNumber.
        algorithm_name: Name recorded in each segment's algorithm identification.
        algorithm_version: Its version.

    Returns:
        The written path.

    Raises:
        ValueError: Labels of the wrong shape, or values no class names.
    """
    import highdicom as hd

    sources = [_clean(ds) for ds in source_images]
    frames = _frames(labels, sources)
    numbers = segment_numbers(np.unique(frames), class_map)
    names = {value: name for name, value in class_map.items()}
    lookup = np.zeros(max(numbers, default=0) + 1, np.uint16)
    for value, number in numbers.items():
        lookup[value] = number
    frames = lookup[frames] if numbers else frames
    algorithm = hd.AlgorithmIdentificationSequence(
        name=algorithm_name,
        version=str(algorithm_version),
        family=codes.DCM.ArtificialIntelligence,
    )
    described = numbers or {value: value for value in sorted(class_map.values())}
    descriptions = [
        _description(number, names[value], algorithm) for value, number in described.items()
    ]
    with warnings.catch_warnings():  # highdicom's notes on the source's own attributes
        warnings.simplefilter("ignore", UserWarning)
        seg = hd.seg.Segmentation(
            source_images=sources,
            pixel_array=frames,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=int(series_number),
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="ctpipe",
            manufacturer_model_name="ctpipe",
            software_versions=str(__version__),
            device_serial_number="0",
            series_description=series_description,
        )
    with atomic_path(path) as tmp:
        seg.save_as(tmp)
    return Path(path)


def segment_numbers(values: Sequence[int], class_map: Mapping[str, int]) -> dict[int, int]:
    """Segment number of each present label value: 1, 2, ... in the order of the values.

    Args:
        values: The label values present (0, the background, is skipped).
        class_map: Class name -> label value.

    Raises:
        ValueError: A value that ``class_map`` does not name.

    Example:
        >>> segment_numbers([0, 2, 5], {"liver": 2, "spleen": 5, "kidney": 7})
        {2: 1, 5: 2}
    """
    present = sorted({int(v) for v in values} - {0})
    unknown = sorted(set(present) - {int(v) for v in class_map.values()})
    if unknown:
        raise ValueError(f"labels hold values {unknown} that class_map {dict(class_map)} lacks")
    return {value: number for number, value in enumerate(present, start=1)}


def _description(number: int, name: str, algorithm: object) -> Dataset:
    """A segment's description: label, codes (with laterality), algorithm."""
    import highdicom as hd

    code = segment_code(name)
    description = hd.seg.SegmentDescription(
        segment_number=int(number),
        segment_label=name[:64],
        segmented_property_category=code.category,
        segmented_property_type=code.type,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
    )
    if code.modifier is not None:
        modifier = hd.sr.CodedConcept(
            code.modifier.value, code.modifier.scheme_designator, code.modifier.meaning
        )
        description.SegmentedPropertyTypeCodeSequence[
            0
        ].SegmentedPropertyTypeModifierCodeSequence = [modifier]
    description.SegmentDescription = name[:64]
    return description


def read_dicom_seg_labels(
    path: str | PathLike[str],
    source_images: Sequence[Dataset],
    class_map: Mapping[str, int] | None = None,
) -> np.ndarray:
    """Rebuild the ``(i, j, k)`` label volume of a Segmentation on its source grid.

    Each frame is looked up by the source instance it references, so the check is
    frame by frame against the source series, not by the order of frames in the file.
    Voxels hold segment numbers, or with ``class_map`` the label value of the class
    each segment's label names.

    Raises:
        ValueError: The Segmentation references instances outside ``source_images``.
    """
    import highdicom as hd

    seg = hd.seg.segread(path)
    uids = [str(ds.SOPInstanceUID) for ds in source_images]
    if len(uids) == 1 and int(source_images[0].get("NumberOfFrames", 1)) > 1:
        frames = seg.get_pixels_by_source_frame(
            source_sop_instance_uid=uids[0],
            source_frame_numbers=list(range(1, int(source_images[0].NumberOfFrames) + 1)),
            combine_segments=True,
            assert_missing_frames_are_empty=True,
        )
    else:
        frames = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=uids,
            combine_segments=True,
            assert_missing_frames_are_empty=True,
        )
    volume = np.ascontiguousarray(np.transpose(frames, (2, 1, 0)))
    if class_map is None:
        return volume
    lookup = np.zeros(max(seg.segment_numbers, default=0) + 1, np.uint16)
    for number in seg.segment_numbers:
        label = seg.get_segment_description(number).segment_label
        if label not in class_map:
            raise ValueError(f"{path}: segment {number} {label!r} is not a class of class_map")
        lookup[number] = class_map[label]
    return lookup[volume]


def _frames(labels: np.ndarray, sources: Sequence[Dataset]) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 3 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 3-D integer array, got {labels.dtype} {labels.shape}")
    first = sources[0]
    slices = int(first.get("NumberOfFrames", 1)) if len(sources) == 1 else len(sources)
    expected = (int(first.Columns), int(first.Rows), slices)
    if labels.shape != expected:
        raise ValueError(
            f"labels must have the source grid's shape (columns, rows, slices) = {expected}, "
            f"got {labels.shape}"
        )
    return np.ascontiguousarray(np.transpose(labels, (2, 1, 0))).astype(np.uint16)


def _clean(ds: Dataset) -> Dataset:
    """A copy highdicom accepts: an empty SpecificCharacterSet is dropped."""
    copy = pydicom.Dataset(ds)
    copy.file_meta = getattr(ds, "file_meta", pydicom.dataset.FileMetaDataset())
    if "SpecificCharacterSet" in copy and not copy.SpecificCharacterSet:
        del copy.SpecificCharacterSet
    return copy
