"""Blocking of lossy JPEG compression: a guard statistic of the 8 x 8 block grid.

Baseline JPEG (and the lossy JPEG transfer syntaxes of DICOM) codes an image in blocks of
8 x 8 pixels, aligned with its first row and column, and quantises each block's cosine
transform. Strong compression leaves steps at the block edges that the noise of a real
reconstruction does not have. Where it flattens whole blocks the guard's flat-patch
statistic sees it; where the noise survives the quantisation (``benchmarks/RESULTS.md``,
"Guard v4": lossy JPEG of the L192 D45 and ``dcmqi`` slices), only the block grid tells.

* ``log_block_ratio``: in soft tissue of the body (HU smoothed over 2 mm in
  :data:`BLOCK_TISSUE_HU`), the mean absolute difference between neighbouring pixels
  across a block edge (pixels ``8m - 1`` and ``8m``) over that across the middle of a
  block (pixels ``8m + 3`` and ``8m + 4``), along both axes of the **native** pixel grid;
  the log of their mean. Reconstructed CT has no 8-pixel period: about 0 (within a few
  hundredths); JPEG blocking makes it positive. Comparing with the middle of the blocks
  (not every other pair) makes it blind to other periods: pixels repeated 2 or 4 times,
  or the 3-pixel pattern of an image interpolated to 1.5 times finer pixels, change
  both sides alike. 0 when fewer than :data:`BLOCK_MIN_PAIRS` pairs of each kind.

Example:
    >>> rng = np.random.default_rng(0)
    >>> hu = rng.normal(40.0, 10.0, (64, 64))
    >>> body = np.ones((64, 64), bool)
    >>> abs(block_ratio(hu, body, (1.0, 1.0))) < 0.1
    True
    >>> hu[8::8, :] += 15.0  # a step at the start of every block row
    >>> round(block_ratio(hu, body, (1.0, 1.0)), 1)
    0.2
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["BLOCK_STATISTICS", "block_ratio"]

#: The statistic of this module.
BLOCK_STATISTICS = ("log_block_ratio",)
#: The JPEG block size (pixels).
BLOCK = 8
#: Smoothed HU (over 2 mm) of the soft tissue the pairs are taken in.
BLOCK_TISSUE_HU = (-100.0, 200.0)
#: Fewest pairs of each kind (at block edges, at block middles) for a ratio.
BLOCK_MIN_PAIRS = 100


def block_ratio(hu: np.ndarray, body: np.ndarray, pixel_mm: tuple[float, float]) -> float:
    """``log_block_ratio`` of one slice on its native grid (see the module).

    Args:
        hu: The slice's HU, ``(i, j)``, as stored (not resampled).
        body: Its body mask.
        pixel_mm: Pixel size ``(i, j)`` in mm (for the 2 mm smoothing).
    """
    from scipy.ndimage import gaussian_filter

    values = hu.astype(np.float64)
    smooth = gaussian_filter(values, (2.0 / pixel_mm[0], 2.0 / pixel_mm[1]))
    tissue = body & (smooth >= BLOCK_TISSUE_HU[0]) & (smooth <= BLOCK_TISSUE_HU[1])
    edges, middles = [], []
    for axis in (0, 1):
        step = np.abs(np.diff(values, axis=axis))
        both = np.logical_and(
            np.take(tissue, range(tissue.shape[axis] - 1), axis=axis),
            np.take(tissue, range(1, tissue.shape[axis]), axis=axis),
        )
        position = np.arange(step.shape[axis]) % BLOCK  # pair p joins pixels p and p + 1
        shape = [1, 1]
        shape[axis] = -1
        position = position.reshape(shape)
        edges.append(step[both & (position == BLOCK - 1)])
        middles.append(step[both & (position == BLOCK // 2 - 1)])
    edge, middle = np.concatenate(edges), np.concatenate(middles)
    if edge.size < BLOCK_MIN_PAIRS or middle.size < BLOCK_MIN_PAIRS or middle.mean() <= 0:
        return 0.0
    return math.log(max(edge.mean(), 1e-6) / middle.mean())
