"""Paired low-dose / normal-dose CT slices, the unit every denoiser evaluation scores.

Example:
    >>> import numpy as np
    >>> pair = SlicePair(np.zeros((4, 4)), np.ones((4, 4)), name="s0")
    >>> pair.low_hu.dtype, pair.name
    (dtype('float32'), 's0')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["LDCT_INPUT", "SlicePair", "load_slice_pairs"]

#: Name of the identity method: the low-dose input scored as it is.
LDCT_INPUT = "LDCT input"


@dataclass(frozen=True)
class SlicePair:
    """One low-dose slice and its normal-dose reference, both 2D HU arrays ``(i, j)``.

    Args:
        low_hu: The low-dose (e.g. quarter-dose) slice in HU.
        normal_hu: The normal-dose slice at the same position, in HU, same shape.
        name: A short label, used in tables and figure file names.
        meta: JSON-serialisable facts to record (patient, kernel, z, files, ...).

    Raises:
        ValueError: If a slice is not 2D, the shapes differ, or a value is not finite.
    """

    low_hu: np.ndarray
    normal_hu: np.ndarray
    name: str
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        low = np.asarray(self.low_hu, dtype=np.float32)
        normal = np.asarray(self.normal_hu, dtype=np.float32)
        if low.ndim != 2 or normal.shape != low.shape:
            raise ValueError(
                f"slice pair {self.name!r}: low_hu and normal_hu must be 2D of one shape, "
                f"got {low.shape} and {normal.shape}"
            )
        for label, array in (("low_hu", low), ("normal_hu", normal)):
            if not np.isfinite(array).all():
                raise ValueError(f"slice pair {self.name!r}: {label} holds NaN or infinity")
        object.__setattr__(self, "low_hu", low)
        object.__setattr__(self, "normal_hu", normal)
        object.__setattr__(self, "meta", dict(self.meta))

    @classmethod
    def from_datalist_entry(cls, entry: Mapping[str, Any]) -> SlicePair:
        """Read one entry of :func:`ctpipe.io.find_aapm_pairs` (``image``/``label`` files).

        Raises:
            InputError: If a file cannot be read as a CT slice (the file is named).
            ValueError: If an entry lacks ``image`` or ``label``, or a file holds several
                slices.
        """
        from ctpipe.io.dicom_volume import read_dicom_volume

        missing = [key for key in ("image", "label") if key not in entry]
        if missing:
            raise ValueError(f"datalist entry lacks {missing}: {dict(entry)!r}")
        slices = []
        for key in ("image", "label"):
            hu = read_dicom_volume(entry[key]).hu
            if hu.ndim != 3 or hu.shape[2] != 1:
                raise ValueError(f"{entry[key]}: expected one slice, got shape {hu.shape}")
            slices.append(hu[:, :, 0])
        meta = {k: v for k, v in entry.items() if isinstance(v, (str, int, float))}
        return cls(slices[0], slices[1], name=_entry_name(entry), meta=meta)


def _entry_name(entry: Mapping[str, Any]) -> str:
    parts = [str(entry.get("patient", "")), str(entry.get("kernel", ""))]
    if "z" in entry:
        parts.append(f"z{float(entry['z']):g}")
    name = "_".join(p for p in parts if p)
    return name or Path(str(entry["image"])).stem


def load_slice_pairs(datalist: Sequence[Mapping[str, Any]]) -> list[SlicePair]:
    """Read every entry of an AAPM datalist into a :class:`SlicePair`."""
    return [SlicePair.from_datalist_entry(entry) for entry in datalist]
