"""Slice geometry of a DICOM series: ordering, spacing checks and the affine.

DICOM gives each slice an ``ImagePositionPatient`` (IPP, the centre of its first pixel)
and an ``ImageOrientationPatient`` (IOP, the row and column direction cosines) in the
patient's LPS frame. A series is a regular grid only when every slice shares one
orientation and the positions advance by one constant step along the slice normal.
:func:`analyse_slice_positions` checks exactly that and says what is wrong otherwise.

Array convention used throughout ctpipe: a volume is indexed ``(i, j, k)`` = (column,
row, slice), MONAI's spatial order, and its affine maps ``(i, j, k, 1)`` to millimetres.

Example:
    >>> import numpy as np
    >>> iop = [1, 0, 0, 0, 1, 0]
    >>> layout = analyse_slice_positions([[0, 0, 6.0], [0, 0, 0.0], [0, 0, 3.0]], iop)
    >>> layout.order, layout.spacing
    ([1, 2, 0], 3.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: Relative deviation of one slice step from the median step that counts as uneven.
SPACING_TOLERANCE = 0.01
#: Largest angle (degrees) between slice normal and slice step that is not a tilt.
TILT_TOLERANCE_DEG = 0.05
#: Largest |row . column| of the direction cosines that still counts as orthogonal.
ORTHOGONALITY_TOLERANCE = 1e-3
#: Largest deviation of a direction cosine's length from 1 (rounded headers stay inside).
UNIT_TOLERANCE = 1e-2

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def slice_normal(orientation: Sequence[float]) -> np.ndarray:
    """Return the unit slice normal (row cosine x column cosine) of an IOP.

    Args:
        orientation: ImageOrientationPatient, six direction cosines.

    Returns:
        The normal as a length-3 array.

    Example:
        >>> slice_normal([1, 0, 0, 0, 1, 0]).tolist()
        [0.0, 0.0, 1.0]
    """
    iop = np.asarray(orientation, dtype=float)
    normal = np.cross(iop[:3], iop[3:6])
    return normal / np.linalg.norm(normal)


def orientation_problem(orientation: Sequence[float]) -> str | None:
    """Say what is wrong with an IOP, or return None when it is usable.

    Args:
        orientation: ImageOrientationPatient, six direction cosines.

    Returns:
        A sentence describing the problem, or None.

    Example:
        >>> orientation_problem([1, 0, 0, 0.2, 1, 0]).endswith("(row . column = 0.1961)")
        True
    """
    iop = np.asarray(orientation, dtype=float)
    if iop.shape != (6,) or not np.all(np.isfinite(iop)):
        return f"ImageOrientationPatient must be 6 finite numbers, got {list(orientation)}"
    row, col = iop[:3], iop[3:]
    if min(np.linalg.norm(row), np.linalg.norm(col)) < 1e-6:
        return f"ImageOrientationPatient has a zero direction cosine: {iop.tolist()}"
    dot = float(np.dot(row / np.linalg.norm(row), col / np.linalg.norm(col)))
    if abs(dot) > ORTHOGONALITY_TOLERANCE:
        return (
            "ImageOrientationPatient rows and columns are not orthogonal "
            f"(row . column = {dot:.4f})"
        )
    lengths = np.array([np.linalg.norm(row), np.linalg.norm(col)])
    if np.any(np.abs(lengths - 1.0) > UNIT_TOLERANCE):
        shown = " and ".join(f"{v:.4g}" for v in lengths)
        return (
            f"ImageOrientationPatient direction cosines are not unit vectors (lengths {shown}), "
            "so the pixel size would be scaled"
        )
    return None


@dataclass(frozen=True)
class SliceLayout:
    """How the slices of one series sit along their normal.

    Attributes:
        order: Indices into the input positions, sorted along the slice normal.
        positions: The sorted positions along the normal (mm).
        spacing: Median distance between neighbouring slices (mm); 0 for one slice.
        step: The vector (LPS, mm) from one slice's IPP to the next (mean over the
            series); the normal times ``spacing`` for a single slice's default.
        tilt_deg: Angle between the slice step and the slice normal (gantry tilt).
        problems: Sentences naming gaps, duplicates and tilts; empty when regular.
    """

    order: list[int]
    positions: np.ndarray
    spacing: float
    step: np.ndarray
    tilt_deg: float
    problems: list[str] = field(default_factory=list)

    @property
    def regular(self) -> bool:
        """True when the slices form a regular, untilted grid."""
        return not self.problems


def analyse_slice_positions(
    positions: Sequence[Sequence[float]],
    orientation: Sequence[float],
    *,
    default_spacing: float = 1.0,
) -> SliceLayout:
    """Sort slices along their normal and check that they form a regular grid.

    Args:
        positions: ImagePositionPatient of each slice (LPS, mm), in any order.
        orientation: The shared ImageOrientationPatient.
        default_spacing: Slice spacing to assume for a single slice (SliceThickness).

    Returns:
        The :class:`SliceLayout`; its ``problems`` name every gap, duplicate or tilt.

    Example:
        >>> layout = analyse_slice_positions([[0, 0, z] for z in (0, 3, 6, 12)], [1, 0, 0, 0, 1, 0])
        >>> layout.problems[0].split(":")[0], layout.regular
        ('missing slice(s)', False)
    """
    ipp = np.asarray(positions, dtype=float).reshape(-1, 3)
    normal = slice_normal(orientation)
    along = ipp @ normal
    order = [int(i) for i in np.argsort(along, kind="stable")]
    sorted_ipp, sorted_along = ipp[order], along[order]
    if len(order) == 1:
        step = normal * default_spacing
        return SliceLayout(order, sorted_along, float(default_spacing), step, 0.0)
    gaps = np.diff(sorted_along)
    problems = _duplicate_problems(sorted_along, gaps)
    positive = gaps[gaps > 1e-6]
    spacing = float(np.median(positive)) if positive.size else 0.0
    if spacing > 0:
        problems += _gap_problems(sorted_along, gaps, spacing)
    step = (sorted_ipp[-1] - sorted_ipp[0]) / (len(order) - 1)
    tilt = _angle_deg(step, normal)
    if tilt > TILT_TOLERANCE_DEG and not any("duplicate" in p for p in problems):
        problems.append(
            f"tilted gantry: slices are sheared by {tilt:.2f} degrees from the slice normal "
            "(the slice stack is not orthogonal to the image plane)"
        )
    return SliceLayout(order, sorted_along, spacing, step, tilt, problems)


def _duplicate_problems(along: np.ndarray, gaps: np.ndarray) -> list[str]:
    dup = np.flatnonzero(np.abs(gaps) <= 1e-3)
    if not dup.size:
        return []
    where = ", ".join(f"{along[i]:.3f}" for i in dup[:5])
    more = f" and {dup.size - 5} more" if dup.size > 5 else ""
    return [
        f"duplicate slice positions: {dup.size} slice(s) share a position (at {where}{more} mm)"
    ]


#: Irregular gaps listed one by one before the rest are summarised in one line.
MAX_GAPS_LISTED = 3


def _gap_problems(along: np.ndarray, gaps: np.ndarray, spacing: float) -> list[str]:
    problems = []
    for i in np.flatnonzero(np.abs(gaps - spacing) > SPACING_TOLERANCE * spacing + 1e-3):
        if gaps[i] <= 1e-3:
            continue
        missing = round(gaps[i] / spacing) - 1
        kind = "missing slice(s)" if missing >= 1 else "uneven spacing"
        hint = (
            f"; about {missing} slice{'s' if missing > 1 else ''} missing" if missing >= 1 else ""
        )
        problems.append(
            f"{kind}: gap of {gaps[i]:.3f} mm between z={along[i]:.3f} and z={along[i + 1]:.3f} "
            f"(step {spacing:.3f} mm{hint})"
        )
    if len(problems) > MAX_GAPS_LISTED:
        rest = len(problems) - MAX_GAPS_LISTED
        problems = problems[:MAX_GAPS_LISTED] + [
            f"uneven spacing: {rest} more gap(s) differ from the {spacing:.3f} mm step"
        ]
    return problems


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    cos = abs(float(np.dot(a, b))) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12)
    return float(np.degrees(np.arccos(min(1.0, cos))))


def affine_lps(
    orientation: Sequence[float],
    first_position: Sequence[float],
    pixel_spacing: Sequence[float],
    step: Sequence[float],
) -> np.ndarray:
    """Build the ``(i, j, k)`` -> LPS affine of a slice stack.

    Args:
        orientation: ImageOrientationPatient (row cosine, then column cosine).
        first_position: ImagePositionPatient of slice k = 0.
        pixel_spacing: PixelSpacing as DICOM stores it: (row spacing, column spacing).
        step: Vector from one slice's position to the next.

    Returns:
        A 4x4 float64 affine.

    Example:
        >>> affine_lps([1, 0, 0, 0, 1, 0], [-10, -20, 5], [0.5, 0.7], [0, 0, 3]).tolist()[0]
        [0.7, 0.0, 0.0, -10.0]
    """
    iop = np.asarray(orientation, dtype=float)
    row_spacing, col_spacing = (float(v) for v in pixel_spacing)
    affine = np.eye(4)
    affine[:3, 0] = iop[:3] * col_spacing
    affine[:3, 1] = iop[3:6] * row_spacing
    affine[:3, 2] = np.asarray(step, dtype=float)
    affine[:3, 3] = np.asarray(first_position, dtype=float)
    return affine


def lps_to_ras(affine: np.ndarray) -> np.ndarray:
    """Convert an LPS affine to RAS (MONAI's and NIfTI's frame), or back.

    Example:
        >>> lps_to_ras(np.eye(4)).diagonal().tolist()
        [-1.0, -1.0, 1.0, 1.0]
    """
    return LPS_TO_RAS @ np.asarray(affine, dtype=float)


def spacing_of(affine: np.ndarray) -> tuple[float, float, float]:
    """Return the voxel size (mm) along i, j, k of an affine.

    Example:
        >>> spacing_of(np.diag([0.5, 0.5, 3.0, 1.0]))
        (0.5, 0.5, 3.0)
    """
    norms = np.linalg.norm(np.asarray(affine, dtype=float)[:3, :3], axis=0)
    return tuple(float(v) for v in norms)  # type: ignore[return-value]


def reorient(
    array: np.ndarray, affine_ras: np.ndarray, axcodes: str = "LPS"
) -> tuple[np.ndarray, np.ndarray]:
    """Flip and permute a volume's axes so that ``i, j, k`` point along ``axcodes``.

    ``axcodes`` names the direction each array axis points to, as nibabel's
    ``aff2axcodes`` does: ``"LPS"`` (the default) is the array order of an axial DICOM
    series as ctpipe reads it (``i`` to the patient's left, ``j`` to the back, ``k`` up),
    whatever order a file stores (a NIfTI file often stores ``RAS``). Each axis goes to the
    patient axis nearest to it (nibabel's ``io_orientation``), so an oblique volume is
    turned, never resampled.

    Args:
        array: The volume, ``(i, j, k, ...)``.
        affine_ras: Its 4 x 4 ``(i, j, k)`` -> RAS affine.
        axcodes: Three letters, one of each pair L/R, P/A, S/I.

    Returns:
        The reoriented array (a view where possible) and its RAS affine.

    Example:
        >>> ras = np.diag([2.0, 2.0, 3.0, 1.0])  # i to the right, j to the front
        >>> volume = np.arange(8.0).reshape(2, 2, 2)
        >>> lps, affine = reorient(volume, ras)
        >>> bool(lps[0, 0, 0] == volume[1, 1, 0]), np.diag(affine).tolist()
        (True, [-2.0, -2.0, 3.0, 1.0])
    """
    from nibabel.orientations import (
        apply_orientation,
        axcodes2ornt,
        inv_ornt_aff,
        io_orientation,
        ornt_transform,
    )

    array = np.asarray(array)
    affine_ras = np.asarray(affine_ras, dtype=float)
    transform = ornt_transform(io_orientation(affine_ras), axcodes2ornt(tuple(axcodes)))
    turned = apply_orientation(array, transform)
    return turned, affine_ras @ inv_ornt_aff(transform, array.shape)
