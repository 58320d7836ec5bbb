"""Seeded inpainting masks: boxes, irregular strokes and metal-like streak regions.

Each kind of mask is a fixed shape (a frozen dataclass whose fields are all its
parameters, so a run can record and repeat it) with ``render(shape) -> bool (i, j)``, and
a ``draw_*`` function that draws its parameters from a ``numpy.random.Generator``:

* :class:`BoxMask`: an axis-aligned rectangle (the classic centre/random box hole);
* :class:`StrokeMask`: free-form brush strokes, polylines of a given width (as in
  free-form inpainting masks);
* :class:`StreakMask`: a metal-like region: an ellipse (the implant) with straight bands
  through its centre (the streaks a metal object casts in a CT reconstruction).

:func:`generate_mask` draws one shape and repeats it over a range of slices, giving an
``(i, j, k)`` mask and its parameters.

Example:
    >>> import numpy as np
    >>> box = BoxMask(center=(10, 8), size=(4, 2))
    >>> box.render((20, 16)).sum()
    np.int64(8)
    >>> rng = np.random.default_rng(0)
    >>> mask, params = generate_mask("streaks", (64, 64, 3), seed=0)
    >>> mask.shape, params["kind"], bool(mask[..., 0].any())
    ((64, 64, 3), 'streaks', True)
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

__all__ = [
    "MASK_KINDS",
    "BoxMask",
    "StreakMask",
    "StrokeMask",
    "draw_box",
    "draw_streaks",
    "draw_strokes",
    "generate_mask",
]

MaskKind = Literal["box", "strokes", "streaks"]
#: Kinds of generated masks.
MASK_KINDS: tuple[str, ...] = ("box", "strokes", "streaks")


def _check_point(name: str, point: tuple[float, float]) -> tuple[float, float]:
    if len(point) != 2 or not all(math.isfinite(float(v)) for v in point):
        raise ValueError(f"{name} must be two finite numbers (i, j), got {point!r}")
    return (float(point[0]), float(point[1]))


@dataclass(frozen=True)
class BoxMask:
    """An axis-aligned rectangle of ``size`` pixels centred on ``center``.

    Args:
        center: ``(i, j)`` of the centre (may be fractional for even sizes).
        size: ``(width along i, height along j)`` in pixels, each >= 1.
    """

    center: tuple[float, float]
    size: tuple[int, int]

    def __post_init__(self) -> None:
        object.__setattr__(self, "center", _check_point("center", self.center))
        if len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f"size must be two integers >= 1, got {self.size!r}")
        object.__setattr__(self, "size", (int(self.size[0]), int(self.size[1])))

    def render(self, shape: tuple[int, int]) -> np.ndarray:
        """The box as a bool ``(i, j)`` array of ``shape`` (clipped to it)."""
        mask = np.zeros(shape, bool)
        i0 = round(self.center[0] - self.size[0] / 2)
        j0 = round(self.center[1] - self.size[1] / 2)
        mask[max(i0, 0) : max(i0 + self.size[0], 0), max(j0, 0) : max(j0 + self.size[1], 0)] = True
        return mask


@dataclass(frozen=True)
class StrokeMask:
    """Brush strokes: polylines through ``strokes`` vertices, ``width`` pixels wide.

    Args:
        strokes: One tuple of ``(i, j)`` vertices per stroke (at least two each).
        width: Brush diameter in pixels (>= 1).
    """

    strokes: tuple[tuple[tuple[float, float], ...], ...]
    width: int

    def __post_init__(self) -> None:
        strokes = tuple(tuple(_check_point("vertex", v) for v in s) for s in self.strokes)
        if not strokes or any(len(s) < 2 for s in strokes):
            raise ValueError(
                f"strokes must hold at least one polyline of >= 2 vertices, got {self.strokes!r}"
            )
        if int(self.width) < 1:
            raise ValueError(f"width must be >= 1 pixel, got {self.width!r}")
        object.__setattr__(self, "strokes", strokes)
        object.__setattr__(self, "width", int(self.width))

    def render(self, shape: tuple[int, int]) -> np.ndarray:
        """The strokes as a bool ``(i, j)`` array of ``shape`` (clipped to it)."""
        mask = np.zeros(shape, bool)
        for stroke in self.strokes:
            for start, end in itertools.pairwise(stroke):
                mask |= _band(shape, start, end, self.width)
        return mask


@dataclass(frozen=True)
class StreakMask:
    """A metal-like region: an ellipse with straight streak bands through its centre.

    Args:
        center: ``(i, j)`` of the metal object's centre.
        radii: Semi-axes of the ellipse along its own axes, in pixels.
        orientation: Angle of the ellipse's first axis from the i axis, in degrees.
        angles: Direction of each streak band from the i axis, in degrees.
        length: Half-length of each band from the centre, in pixels.
        width: Width of each band, in pixels (>= 1).
    """

    center: tuple[float, float]
    radii: tuple[float, float]
    orientation: float
    angles: tuple[float, ...]
    length: float
    width: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "center", _check_point("center", self.center))
        if len(self.radii) != 2 or min(self.radii) <= 0:
            raise ValueError(f"radii must be two numbers > 0, got {self.radii!r}")
        object.__setattr__(self, "radii", (float(self.radii[0]), float(self.radii[1])))
        object.__setattr__(self, "angles", tuple(float(a) for a in self.angles))
        if self.length < 0:
            raise ValueError(f"length must be >= 0, got {self.length!r}")
        if int(self.width) < 1:
            raise ValueError(f"width must be >= 1 pixel, got {self.width!r}")
        object.__setattr__(self, "width", int(self.width))

    def render(self, shape: tuple[int, int]) -> np.ndarray:
        """The region as a bool ``(i, j)`` array of ``shape`` (clipped to it)."""
        ii, jj = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
        di, dj = ii - self.center[0], jj - self.center[1]
        t = math.radians(self.orientation)
        u = di * math.cos(t) + dj * math.sin(t)
        v = -di * math.sin(t) + dj * math.cos(t)
        mask = (u / self.radii[0]) ** 2 + (v / self.radii[1]) ** 2 <= 1.0
        for angle in self.angles:
            a = math.radians(angle)
            reach = (math.cos(a) * self.length, math.sin(a) * self.length)
            start = (self.center[0] - reach[0], self.center[1] - reach[1])
            end = (self.center[0] + reach[0], self.center[1] + reach[1])
            mask |= _band(shape, start, end, self.width)
        return mask


def _band(
    shape: tuple[int, int], start: tuple[float, float], end: tuple[float, float], width: float
) -> np.ndarray:
    """Pixels whose centre lies within ``width / 2`` of the segment ``start``-``end``."""
    ii, jj = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    p = np.stack([ii - start[0], jj - start[1]], axis=-1).astype(np.float64)
    d = np.array([end[0] - start[0], end[1] - start[1]], np.float64)
    length2 = float(d @ d)
    t = np.clip((p @ d) / length2, 0.0, 1.0) if length2 > 0 else np.zeros(shape)
    nearest = p - t[..., None] * d
    return np.einsum("...k,...k->...", nearest, nearest) <= (width / 2.0) ** 2


def _centre(
    rng: np.random.Generator, shape: tuple[int, int], region: np.ndarray | None, margin: float
) -> tuple[float, float]:
    """A random pixel of ``region`` (or of the image) at least ``margin`` from the border."""
    allowed = np.zeros(shape, bool)
    m = math.ceil(margin)
    if shape[0] <= 2 * m or shape[1] <= 2 * m:
        raise ValueError(f"the mask needs a margin of {m} pixels, more than a {shape} slice allows")
    allowed[m : shape[0] - m, m : shape[1] - m] = True
    if region is not None:
        allowed &= np.asarray(region, bool)
    candidates = np.flatnonzero(allowed)
    if candidates.size == 0:
        raise ValueError(
            f"region has no pixel at least {m} pixels from the border to centre a mask on"
        )
    i, j = np.unravel_index(rng.choice(candidates), shape)
    return (float(i), float(j))


def draw_box(
    rng: np.random.Generator,
    shape: tuple[int, int],
    *,
    size: tuple[int, int] = (12, 32),
    region: np.ndarray | None = None,
) -> BoxMask:
    """A box of random width and height in ``[size[0], size[1]]``, centred in ``region``."""
    w, h = (int(v) for v in rng.integers(size[0], size[1] + 1, size=2))
    return BoxMask(_centre(rng, shape, region, max(w, h) / 2 + 1), (w, h))


def draw_strokes(
    rng: np.random.Generator,
    shape: tuple[int, int],
    *,
    strokes: tuple[int, int] = (1, 3),
    vertices: tuple[int, int] = (3, 5),
    step: tuple[float, float] = (5.0, 10.0),
    width: tuple[int, int] = (3, 6),
    region: np.ndarray | None = None,
) -> StrokeMask:
    """Random brush strokes: each a random walk of ``vertices`` points from a start in ``region``.

    Each step turns by up to 90 degrees and runs ``step`` pixels; vertices are kept inside
    the image.
    """
    lines = []
    for _ in range(int(rng.integers(strokes[0], strokes[1] + 1))):
        point = _centre(rng, shape, region, width[1])
        line = [point]
        angle = rng.uniform(0, 2 * math.pi)
        for _ in range(int(rng.integers(vertices[0], vertices[1] + 1)) - 1):
            angle += rng.uniform(-math.pi / 2, math.pi / 2)
            length = rng.uniform(*step)
            point = (
                float(np.clip(point[0] + length * math.cos(angle), 0, shape[0] - 1)),
                float(np.clip(point[1] + length * math.sin(angle), 0, shape[1] - 1)),
            )
            line.append(point)
        lines.append(tuple(line))
    return StrokeMask(tuple(lines), int(rng.integers(width[0], width[1] + 1)))


def draw_streaks(
    rng: np.random.Generator,
    shape: tuple[int, int],
    *,
    radius: tuple[float, float] = (2.0, 5.0),
    streaks: tuple[int, int] = (2, 3),
    length: tuple[float, float] = (12.0, 20.0),
    width: tuple[int, int] = (2, 3),
    region: np.ndarray | None = None,
) -> StreakMask:
    """A random metal-like region: ellipse radii, streak count, angles, length and width."""
    half = float(rng.uniform(*length))
    count = int(rng.integers(streaks[0], streaks[1] + 1))
    first = rng.uniform(0, 180)
    angles = tuple(
        float((first + n * 180.0 / count + rng.uniform(-15, 15)) % 180) for n in range(count)
    )
    return StreakMask(
        center=_centre(rng, shape, region, half + width[1]),
        radii=(float(rng.uniform(*radius)), float(rng.uniform(*radius))),
        orientation=float(rng.uniform(0, 180)),
        angles=angles,
        length=half,
        width=int(rng.integers(width[0], width[1] + 1)),
    )


_DRAW = {"box": draw_box, "strokes": draw_strokes, "streaks": draw_streaks}


def generate_mask(
    kind: MaskKind,
    shape: tuple[int, int, int],
    *,
    seed: int,
    slices: tuple[int, int] | None = None,
    region: np.ndarray | None = None,
    **options: Any,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Draw one mask of ``kind`` and repeat it over a range of slices.

    Args:
        kind: ``box``, ``strokes`` or ``streaks``.
        shape: The CT's ``(i, j, k)`` shape.
        seed: Seed of the draw (the same seed gives the same mask).
        slices: ``[start, stop)`` slices that get the mask; ``None``: every slice.
        region: Bool ``(i, j)`` pixels allowed as the shape's centre (e.g. the body).
        **options: Ranges passed to the ``draw_*`` function (``size``, ``width``, ...).

    Returns:
        ``(mask, parameters)``: the bool ``(i, j, k)`` mask and plain data recording the
        kind, seed, slices and the drawn shape.

    Raises:
        ValueError: Unknown kind, empty slice range, or no room for the shape.
    """
    if kind not in _DRAW:
        raise ValueError(f"kind must be one of {', '.join(MASK_KINDS)}, got {kind!r}")
    start, stop = slices if slices is not None else (0, shape[2])
    if not 0 <= start < stop <= shape[2]:
        raise ValueError(f"slices must be [start, stop) within 0..{shape[2]}, got {slices!r}")
    rng = np.random.default_rng(seed)
    drawn = _DRAW[kind](rng, shape[:2], region=region, **options)
    mask = np.zeros(shape, bool)
    mask[:, :, start:stop] = drawn.render(shape[:2])[:, :, None]
    parameters = {
        "kind": kind,
        "seed": seed,
        "slices": [start, stop],
        "shape": _plain(asdict(drawn)),
    }
    return mask, parameters


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
