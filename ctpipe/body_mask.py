"""The patient's body in each axial slice: thresholded, largest component, holes filled.

A pixel is in the body when it lies in the largest connected region above ``threshold``
HU (-500 by default, between air and fat) of its slice, or in a hole of that region (the
lungs and bowel gas are inside the body). The table and the air outside drop out because
they are not connected to the body, or are below the threshold.

Example:
    >>> import numpy as np
    >>> hu = np.full((9, 9, 1), -1000.0, np.float32)
    >>> hu[2:7, 2:7] = 40.0   # a soft-tissue square ...
    >>> hu[4, 4] = -900.0     # ... with gas inside
    >>> mask = body_mask(hu)
    >>> int(mask.sum()), bool(mask[4, 4, 0])
    (25, True)
"""

from __future__ import annotations

import numpy as np

from ctpipe.transforms import BODY_THRESHOLD_HU

__all__ = ["body_bbox_centre", "body_mask"]


def body_mask(volume_hu: np.ndarray, threshold: float = BODY_THRESHOLD_HU) -> np.ndarray:
    """The body of each axial slice of a volume indexed ``(i, j, k)``.

    Args:
        volume_hu: HU, ``(i, j, k)`` (a single slice ``(i, j)`` is accepted too).
        threshold: HU above which a pixel may belong to the body.

    Returns:
        Boolean array of the input's shape.

    Raises:
        ValueError: If the array is not 2-D or 3-D.
    """
    from scipy import ndimage

    hu = np.asarray(volume_hu)
    if hu.ndim not in (2, 3):
        raise ValueError(f"volume_hu must be (i, j) or (i, j, k), got shape {hu.shape}")
    stack = hu[..., None] if hu.ndim == 2 else hu
    mask = np.zeros(stack.shape, dtype=bool)
    for k in range(stack.shape[2]):
        labels, count = ndimage.label(stack[:, :, k] > threshold)
        if count == 0:
            continue
        sizes = np.bincount(labels.ravel())[1:]
        largest = labels == (int(np.argmax(sizes)) + 1)
        mask[:, :, k] = ndimage.binary_fill_holes(largest)
    return mask[..., 0] if hu.ndim == 2 else mask


def body_bbox_centre(mask: np.ndarray) -> tuple[float, float] | None:
    """Centre ``(i, j)`` of the bounding box of a body mask over all its slices.

    Returns ``None`` for an empty mask.

    Example:
        >>> m = np.zeros((10, 8, 2), bool)
        >>> m[2:5, 1:4, 0] = True
        >>> body_bbox_centre(m)
        (3.0, 2.0)
    """
    union = mask.any(axis=2) if mask.ndim == 3 else mask
    rows = np.flatnonzero(union.any(axis=1))
    cols = np.flatnonzero(union.any(axis=0))
    if rows.size == 0:
        return None
    return float(rows[0] + rows[-1]) / 2.0, float(cols[0] + cols[-1]) / 2.0
