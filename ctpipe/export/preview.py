"""Quick-look PNG of a HU volume, optionally with organ labels blended in.

A volume is indexed ``(i, j, k)`` = (column, row, slice). The axial view shows row ``j``
as image row and column ``i`` as image column (the DICOM display of the slice). The
coronal and sagittal views put the last slice ``k`` at the top, which is superior for
series stored feet-to-head (as the ctpipe phantom is). Pixels are scaled with the voxel
spacing so that anatomy keeps its aspect ratio.

Example:
    >>> import numpy as np, tempfile
    >>> hu = np.zeros((8, 6, 4), dtype=np.float32)
    >>> path = write_preview_png(hu, tempfile.mkdtemp() + "/a.png")
    >>> from PIL import Image
    >>> Image.open(path).size
    (8, 6)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
from PIL import Image

from ctpipe.io.atomic import atomic_path
from ctpipe.transforms import DISPLAY_WINDOW

__all__ = ["LABEL_COLOURS", "write_preview_png"]

#: RGB colour of label values 1, 2, ... (repeating after the last one).
LABEL_COLOURS: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
)
#: Black columns between the views of ``axes="all"``.
PANEL_GAP = 4
_AXES = ("axial", "all")


@dataclass(frozen=True)
class _View:
    """One 2D view: image rows x columns, its labels, and pixel size (row, column) mm."""

    hu: np.ndarray
    labels: np.ndarray | None
    pixel_mm: tuple[float, float]


def write_preview_png(
    hu: np.ndarray,
    path: str | PathLike[str],
    *,
    window: tuple[float, float] = DISPLAY_WINDOW,
    slice_index: int | None = None,
    axes: str = "axial",
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    labels: np.ndarray | None = None,
    label_alpha: float = 0.4,
) -> Path:
    """Write a windowed PNG of one axial slice, or axial, coronal and sagittal views.

    HU ``window[0]`` maps to grey 0 and ``window[1]`` to 255, linearly, clipped outside.
    The image is greyscale (mode ``L``) without labels and RGB with them.

    Args:
        hu: Volume in HU indexed ``(i, j, k)``.
        path: PNG file to write (atomically); its folder is created when missing.
        window: ``(low, high)`` HU of the grey ramp, low < high.
        slice_index: Axial slice ``k`` to show; the middle slice when None. With
            ``axes="all"`` the coronal and sagittal views go through the middle row and
            column.
        axes: ``"axial"``, or ``"all"`` for axial, coronal and sagittal side by side.
        spacing: Voxel size (mm) along ``(i, j, k)``, used to keep the aspect ratio.
        labels: Integer labels of the same shape as ``hu``; non-zero values are blended
            in with :data:`LABEL_COLOURS`.
        label_alpha: Opacity of the label colours, in (0, 1].

    Returns:
        The written path.

    Raises:
        ValueError: When an argument breaks the rules above; the message names it.

    Example:
        >>> import numpy as np, tempfile
        >>> hu = np.linspace(-160, 240, 5)[:, None, None] * np.ones((5, 2, 3))
        >>> path = write_preview_png(hu, tempfile.mkdtemp() + "/ramp.png")
        >>> np.asarray(Image.open(path))[0].tolist()
        [0, 64, 128, 191, 255]
    """
    volume = _check_volume(hu)
    low, high = _check_window(window)
    pixel = _check_spacing(spacing)
    overlay = _check_labels(labels, volume.shape)
    k = _check_slice_index(slice_index, volume.shape[2])
    if axes not in _AXES:
        raise ValueError(f"axes must be one of {_AXES}, got {axes!r}")
    if not 0 < label_alpha <= 1:
        raise ValueError(f"label_alpha must be in (0, 1], got {label_alpha}")
    views = _views(volume, overlay, k, pixel, axes == "all")
    scale = min(min(view.pixel_mm) for view in views)
    panels = [_render(view, low, high, scale, label_alpha) for view in views]
    image = _side_by_side(panels)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return Path(path)


def _check_volume(hu: np.ndarray) -> np.ndarray:
    volume = np.asarray(hu)
    if volume.ndim != 3 or min(volume.shape) < 1:
        raise ValueError(f"hu must be a non-empty 3D array indexed (i, j, k), got {volume.shape}")
    if volume.dtype.kind not in "iuf":
        raise ValueError(f"hu must hold real numbers, got dtype {volume.dtype}")
    return volume


def _check_window(window: tuple[float, float]) -> tuple[float, float]:
    if len(window) != 2:
        raise ValueError(f"window must be (low, high) HU, got {window!r}")
    low, high = float(window[0]), float(window[1])
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"window must be (low, high) HU with low < high, got ({low}, {high})")
    return low, high


def _check_spacing(spacing: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(s) for s in spacing)
    if len(values) != 3 or not all(np.isfinite(s) and s > 0 for s in values):
        raise ValueError(f"spacing must be 3 positive numbers (mm), got {tuple(spacing)}")
    return values  # type: ignore[return-value]


def _check_labels(labels: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    if labels is None:
        return None
    array = np.asarray(labels)
    if array.shape != shape:
        raise ValueError(f"labels must have the shape of hu {shape}, got {array.shape}")
    if array.dtype.kind not in "iub":
        raise ValueError(f"labels must be integers, got dtype {array.dtype}")
    return array


def _check_slice_index(slice_index: int | None, count: int) -> int:
    if slice_index is None:
        return count // 2
    if not -count <= slice_index < count:
        raise ValueError(f"slice_index must be in 0..{count - 1}, got {slice_index}")
    return int(slice_index) % count


def _views(
    hu: np.ndarray,
    labels: np.ndarray | None,
    k: int,
    spacing: tuple[float, float, float],
    all_axes: bool,
) -> list[_View]:
    def cut(array: np.ndarray | None, index: tuple) -> np.ndarray | None:
        return None if array is None else array[index].T

    sx, sy, sz = spacing
    views = [_View(cut(hu, np.s_[:, :, k]), cut(labels, np.s_[:, :, k]), (sy, sx))]
    if all_axes:
        jc, ic = hu.shape[1] // 2, hu.shape[0] // 2
        coronal, sagittal = np.s_[:, jc, :], np.s_[ic, :, :]
        views.append(_View(cut(hu, coronal)[::-1], _flip(cut(labels, coronal)), (sz, sx)))
        views.append(_View(cut(hu, sagittal)[::-1], _flip(cut(labels, sagittal)), (sz, sy)))
    return views  # type: ignore[return-value]


def _flip(array: np.ndarray | None) -> np.ndarray | None:
    return None if array is None else array[::-1]


def _render(view: _View, low: float, high: float, scale: float, alpha: float) -> Image.Image:
    grey = np.rint(np.clip((view.hu - low) / (high - low), 0.0, 1.0) * 255.0).astype(np.uint8)
    if view.labels is None:
        image = Image.fromarray(grey)
    else:
        image = Image.fromarray(_blend(grey, view.labels, alpha))
    rows, cols = grey.shape
    size = (
        max(1, round(cols * view.pixel_mm[1] / scale)),
        max(1, round(rows * view.pixel_mm[0] / scale)),
    )
    return image if size == image.size else image.resize(size, Image.Resampling.NEAREST)


def _blend(grey: np.ndarray, labels: np.ndarray, alpha: float) -> np.ndarray:
    rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.float64)
    palette = np.asarray(LABEL_COLOURS, dtype=np.float64)
    inside = labels > 0
    colours = palette[(labels[inside].astype(np.int64) - 1) % len(palette)]
    rgb[inside] = (1 - alpha) * rgb[inside] + alpha * colours
    return np.rint(rgb).astype(np.uint8)


def _side_by_side(panels: list[Image.Image]) -> Image.Image:
    if len(panels) == 1:
        return panels[0]
    mode = panels[0].mode
    width = sum(p.width for p in panels) + PANEL_GAP * (len(panels) - 1)
    canvas = Image.new(mode, (width, max(p.height for p in panels)))
    left = 0
    for panel in panels:
        canvas.paste(panel, (left, 0))
        left += panel.width + PANEL_GAP
    return canvas
