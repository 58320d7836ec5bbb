"""A processor for the node tests: a derived copy of the series plus a threshold DICOM-SEG.

``threshold_seg`` reads the received series, writes it back as a derived series (same
patient, study and frame of reference; new series; ``SourceImageSequence`` naming the
source slice of each file) and a highdicom Segmentation of ``HU > 150`` that references
the derived series. It appends ``start``/``end`` lines to the file named by
``CTPIPE_TEST_PROCESS_LOG`` (when set) and sleeps ``CTPIPE_TEST_PROCESS_DELAY`` seconds
between them, so tests can count runs and kill a node mid-job.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from ctpipe.export.dicom_series import write_ct_series
from ctpipe.io.atomic import atomic_path
from ctpipe.io.dicom_volume import read_dicom_volume

THRESHOLD_HU = 150.0
DERIVED_SERIES_OFFSET = 1000


def _log(event: str, series_folder: Path, count: int) -> None:
    path = os.environ.get("CTPIPE_TEST_PROCESS_LOG")
    if path:
        with open(path, "a") as handle:
            handle.write(f"{event} {series_folder} {count}\n")


def threshold_seg(series_folder: Path, output_folder: Path) -> list[Path]:
    files = sorted(Path(series_folder).glob("*.dcm"))
    _log("start", series_folder, len(files))
    time.sleep(float(os.environ.get("CTPIPE_TEST_PROCESS_DELAY", "0")))
    volume = read_dicom_volume(series_folder)
    sources = [pydicom.dcmread(s.path, stop_before_pixels=True) for s in volume.series.slices]
    derived = _derived_series(volume.hu, volume.affine_lps, sources, output_folder / "derived")
    seg = _threshold_seg(volume.hu, derived, output_folder / "seg.dcm")
    _log("end", series_folder, len(files))
    return [*derived, seg]


def _derived_series(hu, affine, sources: list[Dataset], folder: Path) -> list[Path]:
    first = sources[0]
    paths = write_ct_series(
        hu,
        affine,
        folder,
        patient_id=str(first.PatientID),
        patient_name=str(first.get("PatientName", "")),
        study_uid=str(first.StudyInstanceUID),
        frame_of_reference_uid=str(first.FrameOfReferenceUID),
        series_number=int(first.get("SeriesNumber", 0) or 0) + DERIVED_SERIES_OFFSET,
        series_description="ctpipe test derived",
        rescale_intercept=float(np.floor(min(hu.min(), -1024.0))),
        extra={"ImageType": ["DERIVED", "SECONDARY"], "DerivationDescription": "test copy"},
    )
    for path, source in zip(paths, sources, strict=True):
        ds = pydicom.dcmread(path)
        item = Dataset()
        item.ReferencedSOPClassUID = source.SOPClassUID
        item.ReferencedSOPInstanceUID = source.SOPInstanceUID
        ds.SourceImageSequence = [item]
        with atomic_path(path) as tmp:
            ds.save_as(tmp, enforce_file_format=True)
    return paths


def _threshold_seg(hu: np.ndarray, derived: list[Path], target: Path) -> Path:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    images = [pydicom.dcmread(p) for p in derived]
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="dense",
        segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=codes.SCT.Bone,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name="threshold", version="1", family=codes.cid7162.ArtificialIntelligence
        ),
    )
    mask = (hu > THRESHOLD_HU).transpose(2, 1, 0).astype(np.uint8)  # (slices, rows, columns)
    seg = hd.seg.Segmentation(
        source_images=images,
        pixel_array=mask,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description],
        series_instance_uid=generate_uid(),
        series_number=DERIVED_SERIES_OFFSET + 1,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="ctpipe",
        manufacturer_model_name="ctpipe tests",
        software_versions="0",
        device_serial_number="0",
        omit_empty_frames=False,
    )
    with atomic_path(target) as tmp:
        seg.save_as(tmp)
    return target
