"""Axial CT slices on a fixed model grid: an HU window, a pixel size in mm, a crop or pad.

Models that see a whole slice at once (the VAE) need every slice on the same grid whatever
the scanner's field of view. :class:`SliceGrid` maps an HU volume indexed ``(i, j, k)`` to
network images and maps per-pixel results back:

1. HU are clipped to ``window`` and scaled to [0, 1] (:func:`ctpipe.transforms.window`);
2. each slice is shown as it is displayed: image rows are ``j``, columns are ``i`` (the
   same orientation as :mod:`ctpipe.inference`);
3. it is resized to ``pixel_mm`` pixels (bilinear with anti-aliasing, torch's
   ``interpolate``); the size is rounded to whole pixels, so the pixel size reached is
   ``n * spacing / round(n * spacing / pixel_mm)`` (recorded in the placement);
4. a ``size`` window is cut around ``centre`` (the body's centre, by default the slice
   centre); where it reaches beyond the slice, it is padded with 0 (the window's low end).

:meth:`SliceGrid.from_grid` undoes steps 4 to 2 for maps (anomaly maps, reconstructions):
the part of the slice outside the grid's field of view gets ``fill``, and
:meth:`GridPlacement.fov` tells which native pixels the grid covered.

Example:
    >>> import numpy as np
    >>> grid = SliceGrid(size=(64, 64), pixel_mm=3.0)
    >>> hu = np.full((200, 160, 2), 40.0, np.float32)   # 200 x 160 pixels of 0.75 mm
    >>> images, placement = grid.to_grid(hu, spacing=(0.75, 0.75))
    >>> images.shape, placement.resized_hw, round(float(images[0, 0, 20, 25]), 3)
    ((2, 1, 64, 64), (40, 50), 0.5)
    >>> grid.from_grid(images, placement).shape
    (200, 160, 2)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ctpipe.transforms import DISPLAY_WINDOW, window

__all__ = ["GridPlacement", "SliceGrid"]


@dataclass(frozen=True)
class GridPlacement:
    """Where the slices of one volume sit on a :class:`SliceGrid`.

    Args:
        shape_ij: The native slice size ``(n_i, n_j)``.
        resized_hw: The slice size after resizing, ``(rows, columns)`` = ``(j, i)``.
        offset_hw: Grid row ``r`` is resized row ``r + offset_hw[0]`` (columns alike).
        pixel_mm: The pixel size reached, ``(row, column)`` in mm.
    """

    shape_ij: tuple[int, int]
    resized_hw: tuple[int, int]
    offset_hw: tuple[int, int]
    pixel_mm: tuple[float, float]

    def fov(self, size: Sequence[int]) -> np.ndarray:
        """Boolean ``(n_i, n_j)``: native pixels whose centre the grid of ``size`` covers.

        Example:
            >>> p = GridPlacement((4, 4), (4, 4), (1, 0), (1.0, 1.0))
            >>> p.fov((2, 4)).T.astype(int).tolist()  # grid rows 0-1 are resized rows 1-2
            [[0, 0, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0]]
        """
        n_i, n_j = self.shape_ij
        (h2, w2), (dr, dc) = self.resized_hw, self.offset_hw
        rows = (np.arange(n_j) + 0.5) * h2 / n_j - 0.5 - dr  # grid row of each native row
        cols = (np.arange(n_i) + 0.5) * w2 / n_i - 0.5 - dc
        inside_r = (rows >= -0.5) & (rows <= size[0] - 0.5)
        inside_c = (cols >= -0.5) & (cols <= size[1] - 0.5)
        return inside_c[:, None] & inside_r[None, :]


@dataclass(frozen=True)
class SliceGrid:
    """The fixed grid a slice model works on.

    Args:
        size: Grid ``(rows, columns)`` in pixels.
        pixel_mm: Pixel size of the grid in mm (> 0).
        window: HU window ``(low, high)`` mapped to [0, 1], clipped outside.

    Raises:
        ValueError: A value outside its rule (named in the message).

    Example:
        >>> SliceGrid(size=(128, 128), pixel_mm=3.0).field_of_view_mm
        (384.0, 384.0)
    """

    size: tuple[int, int] = (128, 128)
    pixel_mm: float = 3.0
    window: tuple[float, float] = DISPLAY_WINDOW

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        object.__setattr__(self, "window", tuple(float(w) for w in self.window))
        if len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f"size must be two integers >= 1 (rows, columns), got {self.size}")
        if not (math.isfinite(self.pixel_mm) and self.pixel_mm > 0):
            raise ValueError(f"pixel_mm must be a finite number > 0, got {self.pixel_mm!r}")
        if len(self.window) != 2 or not self.window[1] > self.window[0]:
            raise ValueError(f"window must be (low, high) with high > low, got {self.window}")

    @property
    def field_of_view_mm(self) -> tuple[float, float]:
        """Rows and columns of the grid in mm."""
        return self.size[0] * self.pixel_mm, self.size[1] * self.pixel_mm

    @property
    def window_width(self) -> float:
        """HU per unit of the [0, 1] scale: ``high - low``."""
        return self.window[1] - self.window[0]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for checkpoints and run records."""
        return {"size": list(self.size), "pixel_mm": self.pixel_mm, "window": list(self.window)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SliceGrid:
        """Rebuild from :meth:`to_dict`.

        Example:
            >>> SliceGrid.from_dict(SliceGrid().to_dict()) == SliceGrid()
            True
        """
        return cls(tuple(data["size"]), float(data["pixel_mm"]), tuple(data["window"]))

    def unit_to_hu(self, unit: np.ndarray) -> np.ndarray:
        """Map grid values in [0, 1] back to HU within the window."""
        return self.window[0] + np.asarray(unit) * self.window_width

    def placement(
        self,
        shape_ij: Sequence[int],
        spacing: Sequence[float],
        centre: Sequence[float] | None = None,
    ) -> GridPlacement:
        """How slices of ``shape_ij`` pixels of ``spacing`` mm sit on this grid.

        Args:
            shape_ij: Native slice size ``(n_i, n_j)``.
            spacing: Native pixel size ``(i, j)`` in mm (a third value is ignored).
            centre: Native pixel ``(i, j)`` put at the grid centre; ``None``: the slice
                centre.

        Raises:
            ValueError: Non-positive sizes or spacings.
        """
        n_i, n_j = (int(s) for s in shape_ij)
        s_i, s_j = (float(s) for s in tuple(spacing)[:2])
        if min(n_i, n_j) < 1 or not (s_i > 0 and s_j > 0):
            raise ValueError(
                f"slice size and spacing must be positive, got {(n_i, n_j)} and {(s_i, s_j)}"
            )
        h2 = max(1, round(n_j * s_j / self.pixel_mm))
        w2 = max(1, round(n_i * s_i / self.pixel_mm))
        c_i, c_j = ((n_i - 1) / 2, (n_j - 1) / 2) if centre is None else centre
        row = (c_j + 0.5) * h2 / n_j - 0.5
        col = (c_i + 0.5) * w2 / n_i - 0.5
        offset = (round(row - (self.size[0] - 1) / 2), round(col - (self.size[1] - 1) / 2))
        return GridPlacement((n_i, n_j), (h2, w2), offset, (n_j * s_j / h2, n_i * s_i / w2))

    def to_grid(
        self,
        volume_hu: np.ndarray,
        spacing: Sequence[float],
        centre: Sequence[float] | None = None,
    ) -> tuple[np.ndarray, GridPlacement]:
        """Window, resize and crop/pad every slice of ``(i, j, k)`` HU onto the grid.

        Args:
            volume_hu: HU ``(i, j, k)``, or one slice ``(i, j)``.
            spacing: Pixel size ``(i, j)`` in mm.
            centre: Native ``(i, j)`` put at the grid centre (:meth:`placement`).

        Returns:
            ``(images, placement)``: float32 ``(k, 1, rows, columns)`` in [0, 1].
        """
        import torch
        from torch.nn import functional as F

        hu = _as_stack(volume_hu)
        placement = self.placement(hu.shape[:2], spacing, centre)
        unit = window(hu, self.window).astype(np.float32)
        slices = torch.from_numpy(np.ascontiguousarray(unit.transpose(2, 1, 0)))[:, None]
        resized = (
            F.interpolate(
                slices,
                size=placement.resized_hw,
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )
            .clamp_(0.0, 1.0)
            .numpy()
        )
        out = np.zeros((hu.shape[2], 1, *self.size), dtype=np.float32)
        source, target = _overlap(placement.resized_hw, placement.offset_hw, self.size)
        out[(..., *target)] = resized[(..., *source)]
        return out, placement

    def from_grid(
        self, maps: np.ndarray, placement: GridPlacement, fill: float = 0.0
    ) -> np.ndarray:
        """Bring grid maps ``(k, [1,] rows, columns)`` back to the native ``(i, j, k)`` grid.

        The map is placed back in the resized slice (``fill`` outside the grid) and resized
        bilinearly to the native size.

        Returns:
            float32 ``(n_i, n_j, k)``.

        Raises:
            ValueError: If ``maps`` is not shaped like grid images.
        """
        import torch
        from torch.nn import functional as F

        array = np.asarray(maps, dtype=np.float32)
        if array.ndim == 4 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 3 or array.shape[1:] != self.size:
            raise ValueError(
                f"maps must be shaped (k, 1, {self.size[0]}, {self.size[1]}) or "
                f"(k, {self.size[0]}, {self.size[1]}), got {np.shape(maps)}"
            )
        canvas = np.full((array.shape[0], *placement.resized_hw), fill, dtype=np.float32)
        source, target = _overlap(placement.resized_hw, placement.offset_hw, self.size)
        canvas[(..., *source)] = array[(..., *target)]
        n_i, n_j = placement.shape_ij
        native = F.interpolate(
            torch.from_numpy(canvas)[:, None],
            size=(n_j, n_i),
            mode="bilinear",
            align_corners=False,
        )[:, 0].numpy()
        return np.ascontiguousarray(native.transpose(2, 1, 0))


def _as_stack(volume_hu: np.ndarray) -> np.ndarray:
    hu = np.asarray(volume_hu, dtype=np.float32)
    if hu.ndim == 2:
        return hu[:, :, None]
    if hu.ndim != 3:
        raise ValueError(f"volume_hu must be (i, j) or (i, j, k), got shape {hu.shape}")
    return hu


def _overlap(
    resized_hw: Sequence[int], offset_hw: Sequence[int], size: Sequence[int]
) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Index ranges of the part shared by the resized slice and the grid (per axis)."""
    source, target = [], []
    for length, offset, grid in zip(resized_hw, offset_hw, size, strict=True):
        start, stop = max(0, offset), min(length, offset + grid)
        stop = max(stop, start)
        source.append(slice(start, stop))
        target.append(slice(start - offset, stop - offset))
    return (source[0], source[1]), (target[0], target[1])
