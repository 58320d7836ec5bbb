"""Image-quality metrics of denoised CT the way the low-dose CT literature reports them.

Both images are given in HU. Each metric is computed twice, on two intensity scales:

* **full range**: HU clipped to [-1024, 3072] and mapped linearly to [0, 1]
  (:data:`ctpipe.transforms.HU_RANGE`, the AAPM challenge normalisation);
* **display window**: HU clipped to the soft-tissue window [-160, 240] and mapped to [0, 1]
  (:data:`ctpipe.transforms.DISPLAY_WINDOW`), which weighs the noise a reader sees.

On either scale ``data_range`` is 1. The metrics are those of scikit-image:

* **PSNR** (dB): ``peak_signal_noise_ratio(reference, estimate, data_range=1)``, i.e.
  ``10 log10(1 / MSE)``; ``inf`` when the two images are equal on that scale.
* **SSIM**: ``structural_similarity`` with the settings of Wang et al. (IEEE TIP 2004):
  an 11 x 11 Gaussian window with sigma 1.5 (:data:`SSIM_SETTINGS`), population
  (co)variances, K1 = 0.01, K2 = 0.03, averaged over the valid part of the image (the
  5-pixel border is left out). These are also the defaults of MONAI's ``SSIMMetric``.
* **RMSE**, twice: ``rmse`` in unit scale (the [0, 1] scale above) and ``rmse_hu`` in HU,
  ``rmse_hu = rmse * (high - low)`` of the range used, i.e. the RMSE of the *clipped* HU
  (4096 HU wide for the full range, 400 HU wide for the window).

Metrics are 2D: a stack of slices is scored slice by slice and the scores are averaged
(:func:`image_quality`); :func:`quality_per_slice` gives the individual scores.

Example:
    >>> import numpy as np
    >>> reference = np.zeros((32, 32))
    >>> q = image_quality(reference + 40.96, reference)  # 40.96 HU = 0.01 in unit scale
    >>> round(q["psnr"], 6), round(q["rmse"], 6), round(q["rmse_hu"], 6)
    (40.0, 0.01, 40.96)
    >>> q = image_quality(reference + 40.0, reference, window=(-160, 240))
    >>> round(q["psnr"], 6), round(q["rmse_hu"], 6)
    (20.0, 40.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from ctpipe.transforms import DISPLAY_WINDOW, HU_RANGE

__all__ = [
    "METRIC_NAMES",
    "SCALES",
    "SSIM_SETTINGS",
    "denoising_quality",
    "image_quality",
    "quality_per_slice",
    "slice_quality",
    "to_metric_scale",
]

#: Keys of the dicts returned by :func:`image_quality`, in report order.
METRIC_NAMES = ("psnr", "ssim", "rmse", "rmse_hu")
#: Name of each intensity scale -> its HU range, as used by :func:`denoising_quality`.
SCALES: dict[str, tuple[float, float]] = {"full": HU_RANGE, "window": DISPLAY_WINDOW}
#: ``structural_similarity`` settings of Wang et al. 2004 (11 x 11 Gaussian, sigma 1.5).
SSIM_SETTINGS = {
    "gaussian_weights": True,
    "sigma": 1.5,
    "use_sample_covariance": False,
    "K1": 0.01,
    "K2": 0.03,
}
#: Side of the SSIM window (2 * int(3.5 * sigma + 0.5) + 1, scikit-image's truncation).
SSIM_WINDOW = 11


def to_metric_scale(hu: np.ndarray, window: Sequence[float] | None = None) -> np.ndarray:
    """Clip HU to ``window`` (the full range [-1024, 3072] when None), map it to [0, 1].

    Returns float64, the precision the metrics are computed in.

    Example:
        >>> to_metric_scale(np.array([-2000.0, -1024.0, 3072.0])).tolist()
        [0.0, 0.0, 1.0]
        >>> to_metric_scale(np.array([-160.0, 40.0, 1000.0]), (-160, 240)).tolist()
        [0.0, 0.5, 1.0]
    """
    low, high = _check_window(window)
    hu = np.asarray(hu, dtype=np.float64)
    return (np.clip(hu, low, high) - low) / (high - low)


def slice_quality(
    estimate_hu: np.ndarray,
    reference_hu: np.ndarray,
    *,
    window: Sequence[float] | None = None,
) -> dict[str, float]:
    """PSNR, SSIM and RMSE of one 2D slice against its reference.

    Args:
        estimate_hu: The image to score, in HU, 2D, at least 11 x 11 (the SSIM window).
        reference_hu: The reference (e.g. normal-dose) image in HU, same shape.
        window: ``(low, high)`` HU to clip to and map to [0, 1]; None for the full range
            [-1024, 3072].

    Returns:
        ``{"psnr": dB, "ssim": ..., "rmse": unit scale, "rmse_hu": HU}`` as floats.

    Raises:
        ValueError: If the shapes differ, an image is not 2D or is smaller than 11 x 11,
            holds NaN or infinity, or ``window`` is not ``(low, high)`` with low < high.
    """
    estimate, reference = _check_pair(estimate_hu, reference_hu, ndim=(2,))
    low, high = _check_window(window)
    x = to_metric_scale(estimate, (low, high))
    y = to_metric_scale(reference, (low, high))
    rmse = math.sqrt(float(mean_squared_error(y, x)))
    with np.errstate(divide="ignore"):  # equal images: MSE 0, PSNR inf
        psnr = float(peak_signal_noise_ratio(y, x, data_range=1.0))
    ssim = float(structural_similarity(y, x, data_range=1.0, **SSIM_SETTINGS))
    return {"psnr": psnr, "ssim": ssim, "rmse": rmse, "rmse_hu": rmse * (high - low)}


def quality_per_slice(
    estimate_hu: np.ndarray,
    reference_hu: np.ndarray,
    *,
    window: Sequence[float] | None = None,
    slice_axis: int = -1,
) -> dict[str, np.ndarray]:
    """Score every 2D slice of a stack; see :func:`slice_quality` for the metrics.

    Args:
        estimate_hu: A 2D slice or a 3D stack in HU.
        reference_hu: The reference, same shape.
        window: ``(low, high)`` HU, or None for the full range.
        slice_axis: Axis of a 3D stack that indexes slices; -1 suits ctpipe volumes
            ``(i, j, k)``.

    Returns:
        Metric name -> float64 array with one score per slice (one entry for a 2D image).

    Example:
        >>> stack = np.zeros((16, 16, 3))
        >>> quality_per_slice(stack + [0.0, 40.96, 4.096], stack)["rmse_hu"].round(3).tolist()
        [0.0, 40.96, 4.096]
    """
    estimate, reference = _check_pair(estimate_hu, reference_hu, ndim=(2, 3))
    if estimate.ndim == 2:
        estimate, reference = estimate[..., None], reference[..., None]
        slice_axis = -1
    estimate = np.moveaxis(estimate, slice_axis, 0)
    reference = np.moveaxis(reference, slice_axis, 0)
    scores = [slice_quality(e, r, window=window) for e, r in zip(estimate, reference, strict=True)]
    return {name: np.array([s[name] for s in scores], dtype=np.float64) for name in METRIC_NAMES}


def image_quality(
    estimate_hu: np.ndarray,
    reference_hu: np.ndarray,
    *,
    window: Sequence[float] | None = None,
    slice_axis: int = -1,
) -> dict[str, float]:
    """PSNR, SSIM and RMSE of a 2D slice, or their means over the slices of a 3D stack.

    Args:
        estimate_hu: The image to score in HU: 2D, or 3D with slices along ``slice_axis``.
        reference_hu: The reference in HU, same shape.
        window: ``(low, high)`` HU to clip to and map to [0, 1], e.g.
            :data:`ctpipe.transforms.DISPLAY_WINDOW`; None for the full range
            [-1024, 3072].
        slice_axis: Slice axis of a 3D stack (-1 for ctpipe volumes ``(i, j, k)``).

    Returns:
        ``{"psnr": dB, "ssim": ..., "rmse": unit scale, "rmse_hu": HU}``, each the mean over
        slices. A slice equal to its reference has PSNR ``inf``, and so has the mean.

    Raises:
        ValueError: See :func:`slice_quality`.
    """
    per_slice = quality_per_slice(estimate_hu, reference_hu, window=window, slice_axis=slice_axis)
    return {name: float(np.mean(values)) for name, values in per_slice.items()}


def denoising_quality(
    estimate_hu: np.ndarray,
    reference_hu: np.ndarray,
    *,
    window: Sequence[float] = DISPLAY_WINDOW,
) -> dict[str, float]:
    """All metrics of a 2D slice (or mean over a 3D stack) on both scales, flat.

    Keys are ``<metric>_<scale>``: ``psnr_full``, ``ssim_full``, ``rmse_full``,
    ``rmse_hu_full``, then the same with ``_window``.

    Example:
        >>> q = denoising_quality(np.full((16, 16), 40.0), np.zeros((16, 16)))
        >>> round(q["rmse_hu_full"], 6), round(q["psnr_window"], 6)
        (40.0, 20.0)
    """
    result: dict[str, float] = {}
    for scale, hu_range in (("full", None), ("window", window)):
        quality = image_quality(estimate_hu, reference_hu, window=hu_range)
        result.update({f"{name}_{scale}": value for name, value in quality.items()})
    return result


def _check_window(window: Sequence[float] | None) -> tuple[float, float]:
    """Return ``window`` (the full range when None) as floats, or raise if malformed."""
    if window is None:
        return HU_RANGE
    try:
        low, high = (float(v) for v in window)
    except (TypeError, ValueError):
        raise ValueError(f"window must be (low, high) in HU or None, got {window!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and high > low):
        raise ValueError(f"window must be (low, high) with finite low < high, got {window!r}")
    return low, high


def _check_pair(
    estimate: np.ndarray, reference: np.ndarray, ndim: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Return both images as float64 arrays, or raise naming what is wrong."""
    estimate = np.asarray(estimate, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if estimate.shape != reference.shape:
        raise ValueError(
            f"estimate and reference must have the same shape, got {estimate.shape} "
            f"and {reference.shape}"
        )
    if estimate.ndim not in ndim:
        wanted = " or ".join(f"{n}D" for n in ndim)
        raise ValueError(f"images must be {wanted}, got shape {estimate.shape}")
    if estimate.ndim == 2 and min(estimate.shape) < SSIM_WINDOW:
        raise ValueError(
            f"images must be at least {SSIM_WINDOW} x {SSIM_WINDOW} pixels (the SSIM "
            f"window), got shape {estimate.shape}"
        )
    for name, image in (("estimate", estimate), ("reference", reference)):
        if not np.isfinite(image).all():
            raise ValueError(f"{name} holds NaN or infinite values")
    return estimate, reference
