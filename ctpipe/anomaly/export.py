"""Write anomaly results: the map as NIfTI, an overlay PNG and a JSON record of the scores.

* :func:`write_anomaly_nifti`: the map (float32 HU) with the CT's RAS affine, so it lines up
  with the CT voxel for voxel in any viewer.
* :func:`write_anomaly_overlay`: one axial slice (by default the one with the highest slice
  score) as two panels side by side: the CT in a window, and the same with the map drawn
  over it in a heat colour map (transparent below ``threshold_hu``). Rows are ``j``,
  columns ``i``, as the slice is displayed.
* :func:`write_anomaly_record`: per-slice scores and the settings that made them (JSON).

Every file is written atomically (:func:`ctpipe.io.atomic.atomic_path`).

Example:
    >>> import numpy as np, tempfile
    >>> from ctpipe.anomaly.scorer import AnomalyResult
    >>> hu = np.zeros((8, 6, 2), np.float32)
    >>> result = AnomalyResult(np.ones_like(hu), np.zeros(2), np.zeros(2), np.zeros(2),
    ...                        np.ones(hu.shape, bool), np.ones((8, 6), bool))
    >>> path = write_anomaly_overlay(hu, result, tempfile.mkdtemp() + "/overlay.png")
    >>> from PIL import Image
    >>> Image.open(path).size  # two 8 x 6 panels and a 4-pixel gap
    (20, 6)
"""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ctpipe.io.atomic import atomic_path
from ctpipe.transforms import DISPLAY_WINDOW, window

if TYPE_CHECKING:
    from ctpipe.anomaly.scorer import AnomalyResult

__all__ = ["write_anomaly_nifti", "write_anomaly_overlay", "write_anomaly_record"]

#: Black columns between the two panels of the overlay.
PANEL_GAP = 4


def write_anomaly_nifti(
    result: AnomalyResult, affine_ras: np.ndarray, path: str | PathLike[str]
) -> Path:
    """Write the anomaly map as float32 NIfTI with the CT's RAS affine."""
    return result.write_nifti(path, affine_ras)


def write_anomaly_overlay(
    volume_hu: np.ndarray,
    result: AnomalyResult,
    path: str | PathLike[str],
    *,
    slice_index: int | None = None,
    threshold_hu: float | None = None,
    vmax_hu: float | None = None,
    ct_window: tuple[float, float] = DISPLAY_WINDOW,
    alpha: float = 0.7,
) -> Path:
    """Write a PNG: the CT slice, and the same slice with the anomaly map over it.

    Args:
        volume_hu: The scored HU volume ``(i, j, k)``.
        result: Its :class:`~ctpipe.anomaly.scorer.AnomalyResult`.
        path: The PNG to write.
        slice_index: The slice shown; ``None``: the highest negative ELBO.
        threshold_hu: Map values below it are not drawn; ``None``: the 95th percentile of the
            map in the body over the whole volume.
        vmax_hu: Map value of the brightest colour; ``None``: the 99.9th percentile.
        ct_window: HU window of the CT.
        alpha: Opacity of the map at ``vmax_hu`` (it fades to 0 at the threshold).

    Returns:
        The path written.

    Raises:
        ValueError: The slice is outside the volume, or shapes differ.
    """
    from matplotlib import colormaps
    from PIL import Image

    hu = np.asarray(volume_hu, dtype=np.float32)
    if hu.ndim == 2:
        hu = hu[:, :, None]
    if hu.shape != result.map_hu.shape:
        raise ValueError(f"volume shape {hu.shape} differs from the map's {result.map_hu.shape}")
    k = int(np.argmax(result.neg_elbo)) if slice_index is None else int(slice_index)
    if not 0 <= k < hu.shape[2]:
        raise ValueError(f"slice_index must be in [0, {hu.shape[2] - 1}], got {slice_index}")
    inside = result.map_hu[result.body & result.fov[:, :, None]]
    low = threshold_hu if threshold_hu is not None else _percentile(inside, 95)
    high = vmax_hu if vmax_hu is not None else max(_percentile(inside, 99.9), low + 1e-6)
    grey = window(hu[:, :, k].T, ct_window)
    value = np.clip((result.map_hu[:, :, k].T - low) / (high - low), 0.0, 1.0)
    colour = colormaps["inferno"](0.25 + 0.75 * value)[..., :3]
    weight = alpha * value[..., None] * (low <= result.map_hu[:, :, k].T)[..., None]
    blended = grey[..., None] * (1 - weight) + colour * weight
    grey_rgb = np.repeat(grey[..., None], 3, axis=2)
    gap = np.zeros((grey.shape[0], PANEL_GAP, 3))
    panels = np.concatenate([grey_rgb, gap, blended], axis=1)
    image = Image.fromarray(np.round(np.clip(panels, 0, 1) * 255).astype(np.uint8), "RGB")
    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def write_anomaly_record(
    result: AnomalyResult, path: str | PathLike[str], *, extra: dict[str, Any] | None = None
) -> Path:
    """Write the per-slice scores and the settings as JSON.

    Args:
        result: The anomaly result.
        path: The JSON file.
        extra: More facts to store (input path, outputs written, timings).
    """
    document = {
        "format": "ctpipe.anomaly",
        "version": 1,
        "settings": result.settings,
        "slices": result.slice_table(),
        **(extra or {}),
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return path


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else 0.0
