"""Edited regions: a guard statistic of where the noise is missing.

Every reconstructed CT slice carries noise in all of its soft tissue; its level varies
smoothly (higher in the middle of a large body, lower near the skin), by a factor of
about two at most. A region filled in afterwards (inpainting, a cloned or pasted patch,
an image edited for a figure) or flattened by a local filter has almost none, while the
rest of the slice keeps its noise: a global noise level does not see it.

* ``log_quiet_tissue_ratio``: on the native grid, the residual of each pixel to the mean
  of its 4 neighbours; in blocks of about :data:`NOISE_BLOCK_MM` (at least
  :data:`NOISE_BLOCK_MIN_PX` pixels) that are mostly soft tissue of the body (smoothed HU
  in :data:`NOISE_TISSUE_HU`), the robust SD of the residual; the log of the 5th
  percentile of those block SDs over their median (at least :data:`QUIET_RATIO_MIN`).
  Normal CT: about -0.7 to -0.2; a noise-free disc of 60 mm in the abdomen: near the
  minimum. 0 when fewer than :data:`NOISE_MIN_BLOCKS` blocks qualify.

Example:
    >>> rng = np.random.default_rng(0)
    >>> hu = rng.normal(40.0, 15.0, (200, 200))
    >>> body = np.ones((200, 200), bool)
    >>> quiet_tissue_ratio(hu, body, (1.0, 1.0)) > -0.3
    True
    >>> hu[50:110, 50:110] = 40.0  # a flat patch: 9 % of the slice
    >>> round(quiet_tissue_ratio(hu, body, (1.0, 1.0)), 1)
    -6.9
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["NOISE_MAP_STATISTICS", "quiet_tissue_ratio"]

#: The statistic of this module.
NOISE_MAP_STATISTICS = ("log_quiet_tissue_ratio",)
#: Side of a block (mm).
NOISE_BLOCK_MM = 10.0
#: Fewest pixels along a block's side.
NOISE_BLOCK_MIN_PX = 4
#: Smoothed HU (over 2 mm) of the soft tissue the noise is measured in.
NOISE_TISSUE_HU = (-100.0, 200.0)
#: Share of a block's pixels that must be such tissue.
NOISE_BLOCK_TISSUE = 0.9
#: Fewest qualifying blocks for a ratio.
NOISE_MIN_BLOCKS = 20
#: Smallest ratio (a block with no noise at all).
QUIET_RATIO_MIN = 1e-3


def quiet_tissue_ratio(hu: np.ndarray, body: np.ndarray, pixel_mm: tuple[float, float]) -> float:
    """``log_quiet_tissue_ratio`` of one slice on its native grid (see the module).

    Args:
        hu: The slice's HU, ``(i, j)``, as stored (not resampled).
        body: Its body mask.
        pixel_mm: Pixel size ``(i, j)`` in mm.
    """
    from scipy.ndimage import gaussian_filter

    values = hu.astype(np.float64)
    smooth = gaussian_filter(values, (2.0 / pixel_mm[0], 2.0 / pixel_mm[1]))
    tissue = body & (smooth >= NOISE_TISSUE_HU[0]) & (smooth <= NOISE_TISSUE_HU[1])
    padded = np.pad(values, 1, mode="edge")
    neighbours = 0.25 * (
        padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]
    )
    residual = np.abs(values - neighbours)
    bi = max(NOISE_BLOCK_MIN_PX, round(NOISE_BLOCK_MM / pixel_mm[0]))
    bj = max(NOISE_BLOCK_MIN_PX, round(NOISE_BLOCK_MM / pixel_mm[1]))
    ni, nj = values.shape[0] // bi, values.shape[1] // bj
    if ni == 0 or nj == 0:
        return 0.0
    blocks = residual[: ni * bi, : nj * bj].reshape(ni, bi, nj, bj).transpose(0, 2, 1, 3)
    share = tissue[: ni * bi, : nj * bj].reshape(ni, bi, nj, bj).mean(axis=(1, 3))
    chosen = blocks[share >= NOISE_BLOCK_TISSUE].reshape(-1, bi * bj)
    if chosen.shape[0] < NOISE_MIN_BLOCKS:
        return 0.0
    noise = np.median(chosen, axis=1)
    middle = float(np.median(noise))
    if middle <= 0:
        return math.log(QUIET_RATIO_MIN)
    return math.log(max(float(np.percentile(noise, 5)) / middle, QUIET_RATIO_MIN))
