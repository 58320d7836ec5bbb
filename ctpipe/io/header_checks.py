"""Header checks of a DICOM series: what its HU and geometry depend on, before decoding.

:func:`ctpipe.io.discovery.check_series` records what these functions find as the
series' problems, so ``ctpipe info`` lists them and the reader refuses the series with
the file named:

* **HU rescale** (CT only): ``RescaleSlope`` or ``RescaleIntercept`` missing on any
  slice, a slope that is zero, negative, above 100 or not finite, an intercept that is
  not finite or beyond +-35000.
  Without them the stored values are not Hounsfield units. ``allow_non_hu`` reads the
  series anyway (a missing slope is taken as 1, a missing intercept as 0).
* **Geometry values**: ``ImagePositionPatient`` must be 3 finite numbers,
  ``ImageOrientationPatient`` 6, ``PixelSpacing`` 2 finite positive numbers.
* **Pixel layout**: ``Rows`` and ``Columns`` positive, one sample per pixel,
  ``BitsAllocated`` 8, 16 or 32, ``BitsStored`` no more than ``BitsAllocated``, a
  grey-scale ``PhotometricInterpretation`` (MONOCHROME1 or MONOCHROME2).
* **Consistency**: ``Modality``, ``PixelRepresentation``, ``BitsAllocated``,
  ``BitsStored`` and ``PhotometricInterpretation`` the same on every slice.
* **Size**: the voxels the series declares, against the limit of
  :mod:`ctpipe.io.limits`, before anything is allocated.

Example:
    >>> from pydicom.data import get_testdata_file
    >>> from ctpipe.io.dicom_header import read_slice_header
    >>> header = read_slice_header(get_testdata_file("CT_small.dcm"))
    >>> rescale_problems([header]), value_problems([header])
    ([], [])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from ctpipe.io.dicom_header import SliceHeader

__all__ = [
    "HU_PROBLEM",
    "consistency_problems",
    "is_hu_problem",
    "rescale_problems",
    "size_problems",
    "value_problems",
]

#: How every HU rescale problem begins (``allow_non_hu`` tolerates these).
HU_PROBLEM = "no valid HU rescale"
#: File names a problem lists before it says "and N more".
MAX_NAMES = 3
#: Largest plausible CT RescaleSlope (scanners use 1, sometimes 0.5 to 2).
MAX_SLOPE = 100.0
#: Largest plausible magnitude of a CT RescaleIntercept (usually -1024 or -1000 or 0).
MAX_INTERCEPT = 35000.0
#: The photometric interpretations of a grey-scale image (CT allows only these).
GREY_SCALE = frozenset({"MONOCHROME1", "MONOCHROME2"})
#: Header values every slice of one series must share, by DICOM keyword.
CONSISTENT: dict[str, Callable[[SliceHeader], object]] = {
    "Modality": lambda h: h.modality,
    "PixelRepresentation": lambda h: h.pixel_representation,
    "BitsAllocated": lambda h: h.bits_allocated,
    "BitsStored": lambda h: h.bits_stored,
    "PhotometricInterpretation": lambda h: h.photometric_interpretation,
}


def is_hu_problem(problem: str) -> bool:
    """True for a problem that ``allow_non_hu`` tolerates.

    Example:
        >>> is_hu_problem("no valid HU rescale: RescaleSlope missing in 1 of 8 slice(s)")
        True
    """
    return problem.startswith(HU_PROBLEM)


def _names(headers: Sequence[SliceHeader]) -> str:
    shown = ", ".join(h.path.name for h in headers[:MAX_NAMES])
    more = len(headers) - MAX_NAMES
    return shown + (f" and {more} more" if more > 0 else "")


def _where(bad: Sequence[SliceHeader], total: int) -> str:
    return f"{len(bad)} of {total} slice(s) ({_names(bad)})"


def rescale_problems(slices: Sequence[SliceHeader]) -> list[str]:
    """Problems of the HU rescale of a CT series (empty for other modalities).

    Example:
        >>> from dataclasses import replace
        >>> from pydicom.data import get_testdata_file
        >>> from ctpipe.io.dicom_header import read_slice_header
        >>> good = read_slice_header(get_testdata_file("CT_small.dcm"))
        >>> rescale_problems([good, replace(good, rescale_slope=0.0)])[0]
        'no valid HU rescale: RescaleSlope is 0 in 1 of 2 slice(s) (CT_small.dcm), ...'
    """
    if not slices or slices[0].modality != "CT" or slices[0].number_of_frames > 1:
        return []
    total = len(slices)
    checks: list[tuple[str, Callable[[SliceHeader], bool]]] = [
        ("RescaleSlope missing", lambda h: h.rescale_slope is None),
        ("RescaleIntercept missing", lambda h: h.rescale_intercept is None),
        ("RescaleSlope is 0", lambda h: h.rescale_slope == 0),
        (
            "RescaleSlope is negative or not finite",
            lambda h: (
                h.rescale_slope is not None
                and h.rescale_slope != 0
                and not (math.isfinite(h.rescale_slope) and h.rescale_slope > 0)
            ),
        ),
        (
            "RescaleIntercept is not finite",
            lambda h: h.rescale_intercept is not None and not math.isfinite(h.rescale_intercept),
        ),
        (
            f"RescaleSlope is above {MAX_SLOPE:g}",
            lambda h: (
                h.rescale_slope is not None
                and math.isfinite(h.rescale_slope)
                and h.rescale_slope > MAX_SLOPE
            ),
        ),
        (
            f"RescaleIntercept is beyond +-{MAX_INTERCEPT:g}",
            lambda h: (
                h.rescale_intercept is not None
                and math.isfinite(h.rescale_intercept)
                and abs(h.rescale_intercept) > MAX_INTERCEPT
            ),
        ),
    ]
    problems = []
    for what, failing in checks:
        bad = [h for h in slices if failing(h)]
        if bad:
            problems.append(
                f"{HU_PROBLEM}: {what} in {_where(bad, total)}, so the stored values "
                "cannot be converted to Hounsfield units"
            )
    return problems


def value_problems(slices: Sequence[SliceHeader]) -> list[str]:
    """Geometry and pixel-layout values that no regular CT image can have."""
    checks: list[tuple[str, Callable[[SliceHeader], bool]]] = [
        (
            "ImagePositionPatient is not 3 finite numbers",
            lambda h: h.position is not None and not _finite(h.position, 3),
        ),
        (
            "ImageOrientationPatient is not 6 finite numbers",
            lambda h: h.orientation is not None and not _finite(h.orientation, 6),
        ),
        (
            "PixelSpacing is not 2 positive finite numbers",
            lambda h: (
                h.pixel_spacing is not None
                and not (_finite(h.pixel_spacing, 2) and min(h.pixel_spacing) > 0)
            ),
        ),
        ("Rows or Columns is 0", lambda h: h.rows < 1 or h.columns < 1),
        ("SamplesPerPixel is not 1 (a colour image)", lambda h: h.samples_per_pixel != 1),
        (
            "BitsAllocated is not 8, 16 or 32",
            lambda h: h.number_of_frames == 1 and h.bits_allocated not in (8, 16, 32),
        ),
        (
            "BitsStored is above BitsAllocated",
            lambda h: h.bits_stored is not None and h.bits_stored > h.bits_allocated,
        ),
        (
            "PhotometricInterpretation is not MONOCHROME1 or MONOCHROME2 (not a grey-scale image)",
            lambda h: h.photometric_interpretation not in {*GREY_SCALE, ""},
        ),
    ]
    problems = []
    for what, failing in checks:
        bad = [h for h in slices if failing(h)]
        if bad:
            example = _value_example(what, bad[0])
            problems.append(f"{what} in {_where(bad, len(slices))}{example}")
    return problems + consistency_problems(slices)


def consistency_problems(slices: Sequence[SliceHeader]) -> list[str]:
    """Tags that must be the same on every slice of a series, since they change the values.

    A slice whose ``Modality``, ``PixelRepresentation``, ``BitsAllocated``, ``BitsStored``
    or ``PhotometricInterpretation`` differs from the others does not belong to the series
    (or its stored values mean something else): the files of the minority are named.

    Example:
        >>> from dataclasses import replace
        >>> from pydicom.data import get_testdata_file
        >>> from ctpipe.io.dicom_header import read_slice_header
        >>> good = read_slice_header(get_testdata_file("CT_small.dcm"))
        >>> consistency_problems([good, good, replace(good, modality="MR")])[0]
        'slices disagree on Modality: CT in 2, MR in 1 (CT_small.dcm)'
    """
    problems = []
    for keyword, value_of in CONSISTENT.items():
        groups: dict[object, list[SliceHeader]] = {}
        for header in slices:
            groups.setdefault(value_of(header), []).append(header)
        if len(groups) > 1:
            ranked = sorted(groups.items(), key=lambda item: -len(item[1]))
            counts = ", ".join(f"{_shown(value)} in {len(group)}" for value, group in ranked)
            others = [h for _, group in ranked[1:] for h in group]
            problems.append(f"slices disagree on {keyword}: {counts} ({_names(others)})")
    return problems


def _shown(value: object) -> str:
    return "(none)" if value is None or value == "" else str(value)


def _finite(values: Sequence[float], count: int) -> bool:
    return len(values) == count and all(math.isfinite(v) for v in values)


def _value_example(what: str, header: SliceHeader) -> str:
    name = what.split()[0]
    value = {
        "ImagePositionPatient": header.position,
        "ImageOrientationPatient": header.orientation,
        "PixelSpacing": header.pixel_spacing,
    }.get(name)
    return f": {list(value)}" if value is not None else ""


def size_problems(slices: Sequence[SliceHeader]) -> list[str]:
    """The series' declared voxels against the limit (:func:`ctpipe.io.limits.max_voxels`)."""
    from ctpipe.io.limits import voxel_problem

    if not slices or min(min(h.rows, h.columns) for h in slices) < 1:
        return []  # an empty image is a value problem
    first = slices[0]
    frames = sum(max(h.number_of_frames, 1) for h in slices)
    columns = max(h.columns for h in slices)
    rows = max(h.rows for h in slices)
    problem = voxel_problem((columns, rows, frames), what="the headers declare")
    return [f"{problem} ({first.path.name} and the rest)"] if problem else []
