"""Coarser grids for the guard's statistics: a slice averaged over square blocks of pixels.

Several statistics of the out-of-distribution guard (:mod:`ctpipe.anomaly.guard_statistics`,
:mod:`ctpipe.anomaly.guard_skin_statistics`) are taken on a grid of about 1 or 2 mm, not
on the native pixels, which makes them cheaper and alike for different pixel sizes.

Example:
    >>> import numpy as np
    >>> block_mean(np.ones((5, 5)), 2).shape  # the last row and column fill no block
    (2, 2)
"""

from __future__ import annotations

import numpy as np

__all__ = ["block_mean"]


def block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """``image`` averaged over ``factor`` x ``factor`` blocks (edges that do not fill one dropped).

    Example:
        >>> block_mean(np.arange(16.0).reshape(4, 4), 2).tolist()
        [[2.5, 4.5], [10.5, 12.5]]
    """
    if factor <= 1:
        return image
    n_i, n_j = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    blocks = image[:n_i, :n_j].reshape(n_i // factor, factor, n_j // factor, factor)
    return blocks.mean(axis=(1, 3))
