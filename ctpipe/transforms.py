"""HU normalisation used by the denoisers, as plain functions and MONAI transforms.

The AAPM low-dose CT literature maps HU linearly to [0, 1] over [-1024, 3072] HU
(``unit = (HU + 1024) / 4096``) and reports metrics both over that range and in the
soft-tissue display window [-160, 240] HU.

Example:
    >>> float(hu_to_unit(-1024.0)), float(unit_to_hu(1.0))
    (0.0, 3072.0)
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

#: Full HU range mapped to [0, 1] (AAPM low-dose CT convention).
HU_RANGE = (-1024.0, 3072.0)
#: Abdominal soft-tissue display window (HU) used for metrics and figures.
DISPLAY_WINDOW = (-160.0, 240.0)
#: HU between air (-1000) and fat (-100): above it is body, below it air.
BODY_THRESHOLD_HU = -500.0
#: Default HU window a segmenter maps to [0, 1] (a segmenter checkpoint records its own).
SEGMENT_HU_WINDOW = (-200.0, 300.0)
#: Default HU window a DCGAN maps to [-1, 1] (a GAN checkpoint records its own).
GAN_HU_WINDOW = (-1024.0, 1024.0)

ArrayT = TypeVar("ArrayT")


def hu_to_unit(hu: ArrayT, hu_range: tuple[float, float] = HU_RANGE) -> ArrayT:
    """Map HU to [0, 1] over ``hu_range`` (not clipped: values outside stay outside).

    Works on floats, numpy arrays and torch tensors.
    """
    low, high = hu_range
    return (hu - low) / (high - low)  # type: ignore[operator,return-value]


def unit_to_hu(unit: ArrayT, hu_range: tuple[float, float] = HU_RANGE) -> ArrayT:
    """Inverse of :func:`hu_to_unit`."""
    low, high = hu_range
    return unit * (high - low) + low  # type: ignore[operator,return-value]


def window(hu: np.ndarray, window: tuple[float, float] = DISPLAY_WINDOW) -> np.ndarray:
    """Clip HU to a window and map it to [0, 1] (for display and windowed metrics).

    Example:
        >>> window(np.array([-1000.0, 40.0, 1000.0])).tolist()
        [0.0, 0.5, 1.0]
    """
    low, high = window
    if not high > low:
        raise ValueError(f"window must be (low, high) with high > low, got {window}")
    return (np.clip(hu, low, high) - low) / (high - low)


def hu_to_tanh(hu: ArrayT, window: tuple[float, float]) -> ArrayT:
    """Clip HU to ``window`` and map it linearly to [-1, 1], a ``tanh`` generator's range.

    Works on numpy arrays and torch tensors.

    Example:
        >>> hu_to_tanh(np.array([-2000.0, 0.0, 1024.0]), (-1024.0, 1024.0)).tolist()
        [-1.0, 0.0, 1.0]
    """
    low, high = window
    if not high > low:
        raise ValueError(f"window must be (low, high) with high > low, got {window}")
    return (hu.clip(low, high) - low) * (2.0 / (high - low)) - 1.0  # type: ignore[attr-defined]


def tanh_to_hu(values: ArrayT, window: tuple[float, float]) -> ArrayT:
    """Inverse of :func:`hu_to_tanh` on [-1, 1] (no clipping).

    Example:
        >>> tanh_to_hu(np.array([-1.0, 0.5]), (-1024.0, 1024.0)).tolist()
        [-1024.0, 512.0]
    """
    low, high = window
    return (values + 1.0) * ((high - low) / 2.0) + low  # type: ignore[operator,return-value]


def scale_hu_transform(keys, hu_range: tuple[float, float] = HU_RANGE):
    """MONAI ``ScaleIntensityRanged`` doing :func:`hu_to_unit` on ``keys`` (no clipping).

    Example:
        >>> scale_hu_transform(["image", "label"])  # doctest: +ELLIPSIS
        <monai.transforms.intensity.dictionary.ScaleIntensityRanged object at ...>
    """
    from monai.transforms import ScaleIntensityRanged

    return ScaleIntensityRanged(
        keys=keys, a_min=hu_range[0], a_max=hu_range[1], b_min=0.0, b_max=1.0, clip=False
    )
