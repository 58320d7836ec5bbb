"""Organ statistics of a label map: voxels, volume (mL) and HU mean/median/std per label.

:func:`organ_statistics` gives one :class:`OrganStatistics` row per class of a label map
(the background excepted), in label order, like TotalSegmentator's ``--statistics``:
the voxel count, the volume in millilitres (voxels times the voxel volume of the affine)
and the mean, median and standard deviation (population, ``ddof=0``) of the HU under the
label. Classes with no voxel get zero voxels and no HU values (``None``).
:func:`write_statistics_csv` writes the rows as CSV (atomically), one line per class.

The labels and the HU volume must share one grid (same shape); the affine gives the voxel
size. Only the labelled voxels are sorted (for the medians), so a volume with small
organs costs little more than one pass over it.

Example:
    >>> import numpy as np
    >>> labels = np.zeros((4, 4, 2), np.uint8)
    >>> labels[:2, :2, 0] = 1
    >>> hu = np.arange(32, dtype=np.float32).reshape(4, 4, 2)
    >>> row = organ_statistics(labels, hu, np.diag([2.0, 2.0, 2.5, 1.0]),
    ...                        {"liver": 1, "spleen": 2})[0]
    >>> row.name, row.voxels, round(row.volume_ml, 6), row.mean_hu, row.median_hu
    ('liver', 4, 0.04, 5.0, 5.0)
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from ctpipe.io.atomic import atomic_path

__all__ = ["COLUMNS", "OrganStatistics", "organ_statistics", "write_statistics_csv"]

#: Columns of ``statistics.csv``, in order.
COLUMNS = ("label", "name", "voxels", "volume_ml", "mean_hu", "median_hu", "std_hu")


@dataclass(frozen=True)
class OrganStatistics:
    """The statistics of one class of a label map.

    Attributes:
        label: The label value.
        name: The class name.
        voxels: Voxels with this label.
        volume_ml: Their volume in millilitres.
        mean_hu: Mean HU under the label (``None`` when the class is absent).
        median_hu: Median HU (``None`` when absent).
        std_hu: Standard deviation of the HU, population form (``None`` when absent).
    """

    label: int
    name: str
    voxels: int
    volume_ml: float
    mean_hu: float | None
    median_hu: float | None
    std_hu: float | None

    def to_dict(self, digits: int = 3) -> dict[str, Any]:
        """Plain data for JSON records, floats rounded to ``digits`` decimals.

        Example:
            >>> OrganStatistics(1, "liver", 2, 0.0123456, 60.0, 60.0, 0.0).to_dict(2)["volume_ml"]
            0.01
        """
        return {k: round(v, digits) if isinstance(v, float) else v for k, v in asdict(self).items()}


def organ_statistics(
    labels: np.ndarray,
    hu: np.ndarray,
    affine: np.ndarray,
    class_map: Mapping[str, int],
) -> list[OrganStatistics]:
    """One row of statistics per class of ``class_map`` (background 0 excluded), by label.

    Args:
        labels: Integer labels ``(i, j, k)``.
        hu: HU on the same grid (same shape).
        affine: The grid's 4x4 affine (RAS or LPS: only the voxel volume is used).
        class_map: Class name -> label value (positive).

    Returns:
        The rows, sorted by label value.

    Raises:
        ValueError: Shapes differ, labels are not integers, or a label value is not
            positive.

    Example:
        >>> import numpy as np
        >>> organ_statistics(np.zeros((2, 2, 2), np.uint8), np.zeros((2, 2, 2)), np.eye(4),
        ...                  {"liver": 1})[0].mean_hu is None
        True
    """
    labels = np.asarray(labels)
    hu = np.asarray(hu)
    if labels.shape != hu.shape:
        raise ValueError(f"labels and hu must have one shape, got {labels.shape} and {hu.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    if any(int(v) < 1 for v in class_map.values()):
        raise ValueError(f"class_map values must be positive labels, got {dict(class_map)}")
    voxel_ml = abs(float(np.linalg.det(np.asarray(affine, dtype=np.float64)[:3, :3]))) / 1000.0
    flat = labels.reshape(-1)
    inside = np.flatnonzero(flat > 0)
    values = flat[inside].astype(np.int64)
    order = np.argsort(values, kind="stable")
    values = values[order]
    samples = hu.reshape(-1)[inside[order]].astype(np.float64)
    rows = []
    for name, label in sorted(class_map.items(), key=lambda item: item[1]):
        start, stop = np.searchsorted(values, [int(label), int(label) + 1])
        rows.append(_row(int(label), name, samples[start:stop], voxel_ml))
    return rows


def _row(label: int, name: str, samples: np.ndarray, voxel_ml: float) -> OrganStatistics:
    count = int(samples.size)
    if not count:
        return OrganStatistics(label, name, 0, 0.0, None, None, None)
    return OrganStatistics(
        label=label,
        name=name,
        voxels=count,
        volume_ml=count * voxel_ml,
        mean_hu=float(samples.mean()),
        median_hu=float(np.median(samples)),
        std_hu=float(samples.std()),
    )


def write_statistics_csv(
    rows: Sequence[OrganStatistics], path: str | PathLike[str], *, digits: int = 3
) -> Path:
    """Write ``rows`` as CSV with the :data:`COLUMNS` header (atomically); return the path.

    Absent classes get empty HU cells. Floats are rounded to ``digits`` decimals.

    Example:
        >>> import tempfile
        >>> path = write_statistics_csv([OrganStatistics(1, "liver", 0, 0.0, None, None, None)],
        ...                             tempfile.mkdtemp() + "/statistics.csv")
        >>> path.read_text().splitlines()[1]
        '1,liver,0,0.0,,,'
    """
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(COLUMNS)
        for row in rows:
            record = row.to_dict(digits)
            writer.writerow(["" if _missing(record[c]) else record[c] for c in COLUMNS])
    return Path(path)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
