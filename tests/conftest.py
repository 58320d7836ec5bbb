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
