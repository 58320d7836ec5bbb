"""Classical inpainting baselines, slice by slice in HU: biharmonic, Telea, Navier-Stokes.

The methods GAN inpainting is compared with, on the same ``(i, j, k)`` HU volume and bool
mask as :func:`ctpipe.inpaint.volume.inpaint_volume`:

* ``biharmonic``: scikit-image's ``inpaint_biharmonic`` (a smooth fill solving the
  biharmonic equation from the hole's surroundings, Damelin and Hoang 2018);
* ``telea``: OpenCV's fast marching method (Telea 2004), ``cv2.INPAINT_TELEA``;
* ``ns``: OpenCV's Navier-Stokes method (Bertalmio et al. 2001), ``cv2.INPAINT_NS``.

OpenCV works on the float32 HU slice directly, with an inpainting radius of
``radius`` pixels (3 by default, OpenCV's documented example). Known pixels are returned
unchanged (bit for bit); slices without hole pixels are not touched.

Example:
    >>> import numpy as np
    >>> hu = np.tile(np.linspace(-100, 100, 16, dtype=np.float32), (16, 1))[:, :, None]
    >>> mask = np.zeros_like(hu, dtype=bool)
    >>> mask[6:10, 6:10, 0] = True
    >>> out = inpaint_classical(hu, mask, "biharmonic")
    >>> bool(np.array_equal(out[~mask], hu[~mask])), bool(np.abs(out - hu).max() < 1)
    (True, True)
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["CLASSICAL_METHODS", "inpaint_classical", "inpaint_classical_slice"]

#: Method names :func:`inpaint_classical` knows.
CLASSICAL_METHODS = ("biharmonic", "telea", "ns")
Method = Literal["biharmonic", "telea", "ns"]


def inpaint_classical_slice(
    image: np.ndarray, hole: np.ndarray, method: Method, *, radius: float = 3.0
) -> np.ndarray:
    """Inpaint one 2D HU slice; known pixels unchanged.

    Args:
        image: 2D HU.
        hole: 2D bool, True where to inpaint.
        method: ``biharmonic``, ``telea`` or ``ns``.
        radius: OpenCV's inpainting radius in pixels (``telea`` and ``ns``).

    Returns:
        The float32 slice.

    Raises:
        ValueError: Unknown method or shapes that differ.
    """
    if method not in CLASSICAL_METHODS:
        raise ValueError(f"method must be one of {', '.join(CLASSICAL_METHODS)}, got {method!r}")
    image = np.ascontiguousarray(image, np.float32)
    hole = np.ascontiguousarray(hole, bool)
    if image.shape != hole.shape or image.ndim != 2:
        raise ValueError(
            f"image and hole must be 2D of one shape, got {image.shape} and {hole.shape}"
        )
    if not hole.any():
        return image.copy()
    if method == "biharmonic":
        from skimage.restoration import inpaint_biharmonic

        filled = inpaint_biharmonic(image.astype(np.float64), hole).astype(np.float32)
    else:
        import cv2

        flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
        filled = cv2.inpaint(image, hole.astype(np.uint8), radius, flag)
    return np.where(hole, filled, image)


def inpaint_classical(
    volume_hu: np.ndarray, mask: np.ndarray, method: Method, *, radius: float = 3.0
) -> np.ndarray:
    """Inpaint every slice of an ``(i, j, k)`` HU volume that has hole pixels.

    Returns:
        The float32 volume, equal to the input outside the mask.

    Raises:
        ValueError: Unknown method, or mask and volume of different shapes.
    """
    volume = np.asarray(volume_hu, np.float32)
    mask = np.asarray(mask, bool)
    if volume.shape != mask.shape or volume.ndim != 3:
        raise ValueError(
            f"volume and mask must be 3D of one shape, got {volume.shape} and {mask.shape}"
        )
    out = volume.copy()
    for k in np.flatnonzero(mask.any(axis=(0, 1))):
        out[:, :, k] = inpaint_classical_slice(
            volume[:, :, k], mask[:, :, k], method, radius=radius
        )
    return out
