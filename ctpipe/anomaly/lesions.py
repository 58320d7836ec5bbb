"""Synthetic lesions for evaluating anomaly detection: hypo- and hyper-dense blobs in HU.

A :class:`Lesion` is a fixed operation: an ellipse of given radii (mm) and orientation on
one axial slice, whose HU are shifted by ``contrast_hu`` inside and by a smoothly falling
fraction of it across an edge ``edge_mm`` wide (a raised-cosine profile), and left exactly
unchanged outside. The image noise inside is kept (the contrast is added), as in a real
lesion scanned with the same dose. :func:`insert_lesions` applies fixed lesions and returns
the lesion mask: the pixels where the profile is at least one half.

:class:`RandomLesions` draws lesion parameters with a seeded generator and places each
lesion wholly inside soft tissue (the slice smoothed over ``smooth_mm`` within
``tissue_hu``, inside the body), away from the other lesions of the slice. The defaults
give lesions 10-30 mm across, 30-80 HU darker or brighter than their surroundings: the range
of hypodense metastases and cysts and of hyperdense (enhancing or haemorrhagic) lesions in
contrast CT. The drawn lesions are returned with the images, so a trial can be repeated and
audited.

Example:
    >>> import numpy as np
    >>> hu = np.full((64, 64, 1), 50.0, np.float32)
    >>> lesion = Lesion(slice_index=0, centre=(32.0, 32.0), radii_mm=(10.0, 10.0),
    ...                 contrast_hu=-40.0)
    >>> out, mask = insert_lesions(hu, (1.0, 1.0), [lesion])
    >>> float(out[32, 32, 0]), float(out[0, 0, 0]), int(mask.sum()) in range(300, 330)
    (10.0, 50.0, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["Lesion", "LesionInsertion", "RandomLesions", "insert_lesions", "lesion_profile"]


@dataclass(frozen=True)
class Lesion:
    """One synthetic lesion: where, how big and how much denser (HU).

    Args:
        slice_index: The axial slice ``k``.
        centre: Centre ``(i, j)`` in pixels.
        radii_mm: Semi-axes in mm (along the rotated ``i`` and ``j`` axes).
        contrast_hu: HU added inside (negative: hypodense).
        angle_deg: Rotation of the first semi-axis from the ``i`` axis, degrees.
        edge_mm: Width of the soft edge in mm (0: a sharp edge).

    Example:
        >>> Lesion(0, (5.0, 5.0), (4.0, 3.0), 50.0).kind
        'hyper'
    """

    slice_index: int
    centre: tuple[float, float]
    radii_mm: tuple[float, float]
    contrast_hu: float
    angle_deg: float = 0.0
    edge_mm: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "centre", tuple(float(c) for c in self.centre))
        object.__setattr__(self, "radii_mm", tuple(float(r) for r in self.radii_mm))
        if len(self.radii_mm) != 2 or not all(r > 0 for r in self.radii_mm):
            raise ValueError(f"radii_mm must be two sizes > 0, got {self.radii_mm}")
        if not math.isfinite(self.contrast_hu):
            raise ValueError(f"contrast_hu must be finite, got {self.contrast_hu!r}")
        if not (math.isfinite(self.edge_mm) and self.edge_mm >= 0):
            raise ValueError(f"edge_mm must be >= 0, got {self.edge_mm!r}")
        if self.slice_index < 0:
            raise ValueError(f"slice_index must be >= 0, got {self.slice_index!r}")

    @property
    def kind(self) -> str:
        """``"hypo"`` (darker than its surroundings) or ``"hyper"``."""
        return "hypo" if self.contrast_hu < 0 else "hyper"

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for JSON records)."""
        data = asdict(self)
        data["centre"], data["radii_mm"] = list(self.centre), list(self.radii_mm)
        return data


def lesion_profile(shape_ij: Sequence[int], spacing: Sequence[float], lesion: Lesion) -> np.ndarray:
    """The lesion's weight on one slice: 1 inside, 0 outside, a raised cosine across the edge.

    The signed distance to the ellipse is approximated by ``(rho - 1) * min(radii)``, with
    ``rho`` the elliptical radius (1 on the boundary); the weight is 1 where it is below
    ``-edge/2``, 0 above ``+edge/2`` and ``(1 - sin(pi d / edge)) / 2`` between.

    Returns:
        float64 ``(n_i, n_j)`` in [0, 1].
    """
    n_i, n_j = (int(s) for s in shape_ij)
    s_i, s_j = (float(s) for s in tuple(spacing)[:2])
    x = (np.arange(n_i) - lesion.centre[0])[:, None] * s_i
    y = (np.arange(n_j) - lesion.centre[1])[None, :] * s_j
    angle = math.radians(lesion.angle_deg)
    u = x * math.cos(angle) + y * math.sin(angle)
    v = -x * math.sin(angle) + y * math.cos(angle)
    a, b = lesion.radii_mm
    rho = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    distance = (rho - 1.0) * min(a, b)
    if lesion.edge_mm == 0:
        return (distance <= 0).astype(np.float64)
    half = lesion.edge_mm / 2
    ramp = 0.5 * (1.0 - np.sin(np.pi * np.clip(distance, -half, half) / lesion.edge_mm))
    return np.where(distance <= -half, 1.0, np.where(distance >= half, 0.0, ramp))


def insert_lesions(
    volume_hu: np.ndarray, spacing: Sequence[float], lesions: Sequence[Lesion]
) -> tuple[np.ndarray, np.ndarray]:
    """Add lesions to a copy of an HU volume ``(i, j, k)``.

    Args:
        volume_hu: HU ``(i, j, k)``; it is not changed.
        spacing: Pixel size ``(i, j)`` in mm.
        lesions: The lesions (each on its ``slice_index``).

    Returns:
        ``(hu, mask)``: float32 HU with the lesions, and the bool lesion mask (profile >= 0.5).

    Raises:
        ValueError: A lesion's slice is outside the volume.
    """
    hu = np.array(volume_hu, dtype=np.float32, copy=True)
    if hu.ndim != 3:
        raise ValueError(f"volume_hu must be (i, j, k), got shape {hu.shape}")
    mask = np.zeros(hu.shape, dtype=bool)
    for lesion in lesions:
        k = lesion.slice_index
        if k >= hu.shape[2]:
            raise ValueError(f"lesion slice_index {k} is outside the volume's {hu.shape[2]} slices")
        weight = lesion_profile(hu.shape[:2], spacing, lesion)
        hu[:, :, k] += (lesion.contrast_hu * weight).astype(np.float32)
        mask[:, :, k] |= weight >= 0.5
    return hu, mask


@dataclass(frozen=True)
class LesionInsertion:
    """A volume with synthetic lesions, their mask and the lesions drawn."""

    hu: np.ndarray
    mask: np.ndarray
    lesions: tuple[Lesion, ...]


class RandomLesions:
    """Draw lesions of realistic size and HU contrast inside soft tissue, seeded.

    Args:
        radius_mm: Range of the larger semi-axis in mm.
        elongation: The smaller semi-axis is ``1 - U(0, elongation)`` times the larger.
        contrast_hu: Range of the absolute HU contrast.
        kinds: Kinds drawn with equal chance: ``"hypo"`` (negative contrast), ``"hyper"``.
        per_slice: Lesions per slice.
        edge_mm: Width of each lesion's soft edge.
        tissue_hu: HU range of the tissue a lesion may lie in (after smoothing).
        smooth_mm: Size of the box filter that smooths the slice before ``tissue_hu``.
        seed: Seed of all draws.

    Raises:
        ValueError: A range with low > high, or a value out of its range.

    Example:
        >>> hu = np.full((96, 96, 2), -1000.0, np.float32)
        >>> hu[8:88, 8:88] = 50.0
        >>> trial = RandomLesions(seed=1)(hu, (1.0, 1.0))
        >>> len(trial.lesions), trial.mask.shape, bool(trial.mask.any())
        (2, (96, 96, 2), True)
    """

    def __init__(
        self,
        *,
        radius_mm: tuple[float, float] = (5.0, 15.0),
        elongation: float = 0.3,
        contrast_hu: tuple[float, float] = (30.0, 80.0),
        kinds: Sequence[str] = ("hypo", "hyper"),
        per_slice: int = 1,
        edge_mm: float = 1.0,
        tissue_hu: tuple[float, float] = (0.0, 130.0),
        smooth_mm: float = 5.0,
        seed: int = 0,
    ) -> None:
        for name, (low, high) in (
            ("radius_mm", radius_mm),
            ("contrast_hu", contrast_hu),
            ("tissue_hu", tissue_hu),
        ):
            if not low <= high:
                raise ValueError(f"{name} must be (low, high) with low <= high, got {(low, high)}")
        if radius_mm[0] <= 0 or contrast_hu[0] < 0:
            raise ValueError(
                f"radius_mm must be > 0 and contrast_hu >= 0 (its sign comes from kinds), "
                f"got {radius_mm} and {contrast_hu}"
            )
        if not 0 <= elongation < 1:
            raise ValueError(f"elongation must be in [0, 1), got {elongation!r}")
        kinds = tuple(kinds)
        if not kinds or not set(kinds) <= {"hypo", "hyper"}:
            raise ValueError(f"kinds must be a non-empty choice of 'hypo', 'hyper', got {kinds}")
        if isinstance(per_slice, bool) or not isinstance(per_slice, int) or per_slice < 1:
            raise ValueError(f"per_slice must be an integer >= 1, got {per_slice!r}")
        self.radius_mm, self.elongation = tuple(radius_mm), float(elongation)
        self.contrast_hu, self.kinds, self.per_slice = tuple(contrast_hu), kinds, per_slice
        self.edge_mm, self.tissue_hu = float(edge_mm), tuple(tissue_hu)
        self.smooth_mm, self.seed = float(smooth_mm), int(seed)

    def settings(self) -> dict[str, Any]:
        """The drawing settings, JSON-ready."""
        return {
            "radius_mm": list(self.radius_mm),
            "elongation": self.elongation,
            "contrast_hu": list(self.contrast_hu),
            "kinds": list(self.kinds),
            "per_slice": self.per_slice,
            "edge_mm": self.edge_mm,
            "tissue_hu": list(self.tissue_hu),
            "smooth_mm": self.smooth_mm,
            "seed": self.seed,
        }

    def draw(
        self,
        volume_hu: np.ndarray,
        spacing: Sequence[float],
        slices: Sequence[int] | None = None,
    ) -> list[Lesion]:
        """Draw the lesions of ``slices`` (all by default); a slice without room gets none."""
        from ctpipe.body_mask import body_mask

        rng = np.random.default_rng(self.seed)
        hu = np.asarray(volume_hu, dtype=np.float32)
        indices = range(hu.shape[2]) if slices is None else slices
        lesions: list[Lesion] = []
        for k in indices:
            room = self._tissue(hu[:, :, k], spacing) & body_mask(hu[:, :, k])
            for _ in range(self.per_slice):
                lesion = self._draw_one(rng, room, spacing, k)
                if lesion is None:
                    break
                lesions.append(lesion)
                room &= lesion_profile(room.shape, spacing, _grown(lesion, 5.0)) == 0
        return lesions

    def __call__(
        self,
        volume_hu: np.ndarray,
        spacing: Sequence[float],
        slices: Sequence[int] | None = None,
    ) -> LesionInsertion:
        """Draw lesions and insert them into a copy of the volume."""
        lesions = self.draw(volume_hu, spacing, slices)
        hu, mask = insert_lesions(volume_hu, spacing, lesions)
        return LesionInsertion(hu, mask, tuple(lesions))

    def _tissue(self, hu_slice: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
        from scipy.ndimage import uniform_filter

        size = [max(1, round(self.smooth_mm / float(s))) for s in tuple(spacing)[:2]]
        smooth = uniform_filter(hu_slice, size=size)
        return (smooth >= self.tissue_hu[0]) & (smooth <= self.tissue_hu[1])

    def _draw_one(
        self, rng: np.random.Generator, room: np.ndarray, spacing: Sequence[float], k: int
    ) -> Lesion | None:
        from scipy.ndimage import distance_transform_edt

        radius = float(rng.uniform(*self.radius_mm))
        minor = radius * (1.0 - float(rng.uniform(0.0, self.elongation)))
        angle = float(rng.uniform(0.0, 180.0))
        sign = -1.0 if self.kinds[int(rng.integers(len(self.kinds)))] == "hypo" else 1.0
        contrast = sign * float(rng.uniform(*self.contrast_hu))
        depth = distance_transform_edt(room, sampling=tuple(float(s) for s in spacing[:2]))
        candidates = np.argwhere(depth > radius + self.edge_mm)
        if candidates.size == 0:
            return None
        i, j = candidates[int(rng.integers(len(candidates)))]
        return Lesion(k, (float(i), float(j)), (radius, minor), contrast, angle, self.edge_mm)


def _grown(lesion: Lesion, margin_mm: float) -> Lesion:
    """The same ellipse with ``margin_mm`` added to both semi-axes (to keep lesions apart)."""
    a, b = lesion.radii_mm
    return Lesion(
        lesion.slice_index,
        lesion.centre,
        (a + margin_mm, b + margin_mm),
        1.0,
        lesion.angle_deg,
        lesion.edge_mm,
    )
