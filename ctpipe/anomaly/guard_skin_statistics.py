"""A dense layer just outside the body: a guard statistic of what lies on the patient.

The guard's earlier statistics (:mod:`ctpipe.anomaly.guard_statistics`) look inside the
body mask, or at air and a blurred ghost just outside it. A bismuth breast shield (a thin
layer of 2000-3000 HU laid over the chest on a foam pad, with its shadow under it) slipped
through them (``benchmarks/RESULTS.md``, "Guard v4"): too thin for the thick-dense-tissue
statistic, outside the body mask for the others. Around a real body there is air,
clothing, a mattress and the couch (all below a few hundred HU), and now and then a small
dense object (an ECG electrode's snap, a zip, a necklace: a few mm²).

* ``log_skin_layer_mm2``: log of 1 plus the area (mm²) of pixels *outside* the body, within
  :data:`SKIN_BAND_MM` of it, whose HU exceed :data:`SKIN_LAYER_HU`, on a grid of about
  1 mm (blocks of ``round(1 / pixel)`` pixels, as
  :func:`~ctpipe.anomaly.guard_statistics.v3_statistics`). Normal slices: 0 (the five
  calibration patients: 0 on every slice but a few of one chest CT, up to 2.0, where a row
  of small dense objects lies in front of the neck); a bismuth shield over the chest:
  4.6-5.8 (100-300 mm²).

Example:
    >>> body = np.zeros((60, 60), bool); body[20:40, 20:40] = True
    >>> hu = np.where(body, 40.0, -1000.0)
    >>> hu[20:40, 12] = 2500.0  # a 20 mm layer 8 mm from the skin, 1 mm pixels
    >>> round(skin_layer_statistic(hu, body, (1.0, 1.0)), 2)  # log(1 + 20)
    3.04
"""

from __future__ import annotations

import math

import numpy as np

from ctpipe.anomaly.guard_grid import block_mean

__all__ = ["SKIN_STATISTICS", "skin_layer_area", "skin_layer_statistic"]

#: The statistic of this module.
SKIN_STATISTICS = ("log_skin_layer_mm2",)
#: The band outside the body (mm) and the HU above which ``log_skin_layer_mm2`` counts.
SKIN_BAND_MM = 30.0
SKIN_LAYER_HU = 500.0


def skin_layer_area(hu: np.ndarray, body: np.ndarray, pixel_mm: tuple[float, float]) -> float:
    """Area (mm²) outside the body, within :data:`SKIN_BAND_MM` of it, above :data:`SKIN_LAYER_HU`.

    Example:
        >>> body = np.zeros((60, 60), bool); body[20:40, 20:40] = True
        >>> hu = np.where(body, 40.0, -1000.0)
        >>> hu[20:40, 12] = 2500.0  # a 20 mm shield 8 mm from the skin, 1 mm pixels
        >>> hu[20:40, 0] = 200.0  # a mattress: not dense
        >>> skin_layer_area(hu, body, (1.0, 1.0))
        20.0
    """
    from scipy.ndimage import distance_transform_edt

    if not body.any():
        return 0.0
    margin = np.ceil(SKIN_BAND_MM / np.asarray(pixel_mm)).astype(int) + 1
    where = np.argwhere(body)
    low = np.maximum(where.min(axis=0) - margin, 0)
    high = np.minimum(where.max(axis=0) + margin + 1, body.shape)
    box = slice(low[0], high[0]), slice(low[1], high[1])
    body, hu = body[box], hu[box]
    distance = distance_transform_edt(~body, sampling=pixel_mm)
    band = ~body & (distance <= SKIN_BAND_MM)
    return float((band & (hu > SKIN_LAYER_HU)).sum() * pixel_mm[0] * pixel_mm[1])


def skin_layer_statistic(hu: np.ndarray, body: np.ndarray, pixel_mm: tuple[float, float]) -> float:
    """``log_skin_layer_mm2`` of one slice, on a grid of about 1 mm.

    Args:
        hu: The slice's HU, ``(i, j)``.
        body: Its body mask.
        pixel_mm: Pixel size ``(i, j)`` in mm.
    """
    factor = max(1, round(1.0 / pixel_mm[0]))
    coarse = block_mean(hu.astype(np.float64), factor)
    coarse_body = block_mean(body.astype(np.float64), factor) >= 0.5
    pixel = (pixel_mm[0] * factor, pixel_mm[1] * factor)
    return math.log(skin_layer_area(coarse, coarse_body, pixel) + 1.0)
