"""Corrupted pixels: a guard statistic of isolated extreme values.

Bits flipped in transit or on a failing disk, or a detector pixel that fails, leave single
pixels far above or below every one of their eight neighbours. A reconstructed CT slice
has none: its noise is a few tens of HU, and what is small and dense (a vessel, a
calcification, a thin cortex) spans several pixels or runs along a line, so that some
neighbour shares its value.

* ``log_impulse_fraction``: the share of the body's pixels (on the native grid) more than
  :data:`IMPULSE_HU` above the highest, or below the lowest, of their 8 neighbours; the log
  of that share plus :data:`IMPULSE_FLOOR`. Normal CT: the floor (no such pixel), or a few
  per slice in the lungs; 0.2 % of the pixels set to random 12-bit values: about -6.6.

Example:
    >>> hu = np.full((32, 32), 40.0)
    >>> body = np.ones((32, 32), bool)
    >>> round(impulse_statistic(hu, body), 2)  # log(1e-5): none
    -11.51
    >>> hu[10, 10] = 2000.0  # one pixel in 1024
    >>> round(impulse_fraction(hu, body), 6)
    0.000977
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["IMPULSE_STATISTICS", "impulse_fraction", "impulse_statistic"]

#: The statistic of this module.
IMPULSE_STATISTICS = ("log_impulse_fraction",)
#: How far (HU) a pixel must lie beyond all 8 neighbours to count.
IMPULSE_HU = 600.0
#: Added to the share before the log (a slice with none).
IMPULSE_FLOOR = 1e-5


def impulse_fraction(hu: np.ndarray, body: np.ndarray) -> float:
    """Share of ``body`` pixels more than :data:`IMPULSE_HU` beyond all 8 neighbours.

    Args:
        hu: One slice's HU, ``(i, j)``, on its native grid.
        body: Its body mask.
    """
    if not body.any():
        return 0.0
    values = hu.astype(np.float64)
    padded = np.pad(values, 1, mode="edge")
    rows, columns = values.shape
    shifts = [(di, dj) for di in (0, 1, 2) for dj in (0, 1, 2) if (di, dj) != (1, 1)]
    neighbours = np.stack([padded[di : di + rows, dj : dj + columns] for di, dj in shifts])
    above = values - neighbours.max(axis=0) > IMPULSE_HU
    below = neighbours.min(axis=0) - values > IMPULSE_HU
    return float(((above | below) & body).sum() / body.sum())


def impulse_statistic(hu: np.ndarray, body: np.ndarray) -> float:
    """``log_impulse_fraction`` of one slice (see the module)."""
    return math.log(impulse_fraction(hu, body) + IMPULSE_FLOOR)
