"""Shared fixtures: the real CT data folder, seeded generators and small DICOM series."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CTPIPE_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_path(*parts: str) -> Path:
    """Path under ../shared/data, skipping the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real CT data not available: {path} is absent (set CTPIPE_SHARED_DATA)")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def axial_affine(
    spacing=(0.8, 0.7, 2.5), origin=(-40.0, -30.0, 100.0), rotation_deg: float = 0.0
) -> np.ndarray:
    """An (i, j, k) -> LPS affine, optionally rotated about the patient z axis."""
    t = np.radians(rotation_deg)
    rot = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine


def random_hu(rng: np.random.Generator, shape=(24, 20, 6)) -> np.ndarray:
    """Integer HU values in the CT range, as float32."""
    return rng.integers(-1024, 2000, size=shape).astype(np.float32)


@pytest.fixture
def small_series(tmp_path: Path, rng: np.random.Generator):
    """A 6-slice CT series written with shuffled file names; returns (folder, hu, affine)."""
    from ctpipe.export.dicom_series import write_ct_series

    hu = random_hu(rng)
    affine = axial_affine()
    folder = tmp_path / "series"
    paths = write_ct_series(hu, affine, folder)
    order = rng.permutation(len(paths))
    for new_index, path in zip(order, list(paths), strict=True):
        path.rename(folder / f"shuffled_{new_index:03d}.dcm")
    return folder, hu, affine


def write_study_folder(root: Path, seed: int = 0) -> dict[str, str]:
    """One CT study as a PACS export holds it: returns SeriesInstanceUID by role.

    Roles: ``localizer`` (1 slice, ImageType LOCALIZER), ``dose_report`` (an RGB
    Secondary Capture without geometry), ``venous_3mm`` and ``venous_1_5mm`` (two
    reconstructions of one phase: 6 x 3 mm and 12 x 1.5 mm, kernels B30f and B70f) and
    ``arterial_3mm`` (a second phase, 6 x 3 mm), all 32 x 32 pixels of 10 mm.
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    from ctpipe.export.dicom_series import write_ct_series

    rng = np.random.default_rng(seed)
    study, frame = generate_uid(), generate_uid()
    common = {"patient_id": "STUDY-1", "study_uid": study, "frame_of_reference_uid": frame}
    body = np.full((32, 32), -1000.0, np.float32)
    yy, xx = np.mgrid[:32, :32]
    body[(xx - 15.5) ** 2 / 13**2 + (yy - 15.5) ** 2 / 10**2 < 1] = 40.0
    uids: dict[str, str] = {}
    for role, number, slices, thick, kernel, description, image_type in (
        ("localizer", 1, 1, 3.0, "", "Topogram 0.6 T20s", ("ORIGINAL", "PRIMARY", "LOCALIZER")),
        ("venous_3mm", 2, 6, 3.0, "B30f", "Abdomen 3.0 B30f venous", None),
        ("venous_1_5mm", 3, 12, 1.5, "B70f", "Abdomen 1.5 B70f venous", None),
        ("arterial_3mm", 4, 6, 3.0, "B30f", "Abdomen 3.0 B30f arterial", None),
    ):
        hu = np.repeat(body[:, :, None], slices, axis=2) + rng.normal(0, 5, (32, 32, slices))
        affine = np.diag([10.0, 10.0, thick, 1.0])
        affine[:3, 3] = (-160.0, -160.0, 0.0)
        uids[role] = generate_uid()
        write_ct_series(
            hu.astype(np.float32),
            affine,
            root / role,
            series_uid=uids[role],
            series_number=number,
            series_description=description,
            convolution_kernel=kernel,
            image_type=image_type or ("ORIGINAL", "PRIMARY", "AXIAL"),
            **common,
        )
    uids["dose_report"] = generate_uid()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, uids["dose_report"]
    ds.PatientID, ds.Modality, ds.SeriesNumber = "STUDY-1", "CT", 501
    ds.SeriesDescription, ds.ImageType = "Dose Report", ["DERIVED", "SECONDARY", "OTHER"]
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 16, 16, 3, "RGB"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PlanarConfiguration = 0
    ds.PixelData = rng.integers(0, 255, 16 * 16 * 3, dtype=np.uint8).tobytes()
    (root / "dose_report").mkdir(parents=True)
    pydicom.dcmwrite(root / "dose_report" / "dose.dcm", ds, enforce_file_format=True)
    return uids


@pytest.fixture
def study_folder(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A generated study export (see :func:`write_study_folder`): its folder and UIDs."""
    root = tmp_path / "study"
    return root, write_study_folder(root)
