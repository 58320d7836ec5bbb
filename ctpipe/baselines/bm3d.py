"""BM3D denoising of CT slices, with its noise level chosen on training data.

BM3D (Dabov et al., IEEE TIP 2007; Mäkinen et al., IEEE TIP 2020 for the ``bm3d`` package
used here) assumes additive white Gaussian noise of a known standard deviation. Low-dose
CT noise is neither white nor stationary, so the ``sigma`` given to BM3D is a tuning knob,
not a measurement: :func:`choose_bm3d_sigma` picks it from a grid by the mean full-range
PSNR against the normal-dose slices of the *training* split, and the test split is then
denoised with that one value.

BM3D runs in the unit-normalised domain of the denoisers
(:func:`ctpipe.transforms.hu_to_unit`, ``unit = (HU + 1024) / 4096``, not clipped), so
``sigma`` is in unit scale: ``sigma = 0.01`` is 40.96 HU.

The ``bm3d`` package is optional and imported only when a slice is denoised
(``pip install ctpipe[baselines]``). On one CPU core a 512 x 512 slice takes several
seconds.

Example:
    >>> import numpy as np
    >>> clean = np.zeros((48, 48), dtype=np.float32)
    >>> noisy = clean + np.random.default_rng(0).normal(0, 20, clean.shape)
    >>> denoised = bm3d_denoise_slice(noisy, sigma=20 / 4096)
    >>> denoised.dtype.name, bool(denoised.std() < noisy.std() / 3)
    ('float32', True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from ctpipe.transforms import HU_RANGE, hu_to_unit, unit_to_hu

__all__ = [
    "DEFAULT_SIGMA_GRID",
    "PROFILES",
    "BM3DDenoiser",
    "bm3d_denoise_slice",
    "choose_bm3d_sigma",
]

#: Default sigma grid (unit scale; 0.004 ... 0.025 is 16 ... 102 HU), spanning the
#: quarter-dose noise of smooth (B30) to sharp (D45) kernels in the AAPM data.
DEFAULT_SIGMA_GRID = (0.004, 0.006, 0.008, 0.010, 0.012, 0.015, 0.020, 0.025)
#: Profile names the ``bm3d`` package accepts ("np" is its default, "refilter" is slower).
PROFILES = ("np", "refilter", "vn", "vn_old", "high", "deb")

_INSTALL_HINT = "pip install ctpipe[baselines]"
_HU_WIDTH = HU_RANGE[1] - HU_RANGE[0]


def _import_bm3d() -> ModuleType:
    """Import the optional ``bm3d`` package, or raise naming the extra that installs it."""
    try:
        import bm3d
    except ImportError as error:
        raise ImportError(
            f"the BM3D baseline needs the optional package 'bm3d', which is not installed; "
            f"install the 'baselines' extra: {_INSTALL_HINT}"
        ) from error
    return bm3d


def _check_sigma(sigma: float) -> float:
    """Return ``sigma`` as a float, or raise if it is not a positive finite number."""
    try:
        value = float(sigma)
    except (TypeError, ValueError):
        raise ValueError(
            f"sigma must be a positive number (noise std in unit scale), got {sigma!r}"
        ) from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"sigma must be a positive number (noise std in unit scale), got {sigma}")
    if value >= 1:
        raise ValueError(
            f"sigma is the noise std in unit scale (1 = 4096 HU) and must be < 1, got {sigma}; "
            f"to give it in HU, divide by 4096"
        )
    return value


def _check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    return profile


def _check_slice(hu_2d: np.ndarray, name: str = "hu_2d") -> np.ndarray:
    array = np.asarray(hu_2d)
    if array.ndim != 2:
        raise ValueError(f"{name} must be one 2D slice, got shape {array.shape}")
    if min(array.shape) < 8:
        raise ValueError(f"{name} must be at least 8 x 8 pixels (a BM3D block), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return array


def bm3d_denoise_slice(hu_2d: np.ndarray, sigma: float, *, profile: str = "np") -> np.ndarray:
    """Denoise one 2D HU slice with BM3D (both stages: hard thresholding, then Wiener).

    Args:
        hu_2d: The slice in HU, at least 8 x 8.
        sigma: Noise standard deviation in unit scale (HU / 4096), 0 < sigma < 1.
        profile: ``bm3d`` profile name, one of :data:`PROFILES`.

    Returns:
        The denoised slice in HU, float32, same shape.

    Raises:
        ImportError: If the ``bm3d`` package is not installed (names the extra).
        ValueError: If the slice is not 2D, smaller than 8 x 8 or not finite, or
            ``sigma`` or ``profile`` is invalid.
    """
    array = _check_slice(hu_2d)
    sigma = _check_sigma(sigma)
    profile = _check_profile(profile)
    bm3d = _import_bm3d()
    unit = hu_to_unit(array.astype(np.float64))
    denoised = bm3d.bm3d(unit, sigma_psd=sigma, profile=profile)
    return np.asarray(unit_to_hu(np.asarray(denoised, dtype=np.float64)), dtype=np.float32)


@dataclass(frozen=True)
class BM3DDenoiser:
    """BM3D with fixed settings, as a callable ``hu_2d -> hu_2d`` for evaluation.

    Args:
        sigma: Noise standard deviation in unit scale (HU / 4096), 0 < sigma < 1.
        profile: ``bm3d`` profile name, one of :data:`PROFILES`.

    Example:
        >>> denoiser = BM3DDenoiser(sigma=0.01)
        >>> denoiser.settings()["sigma_hu"]
        40.96
        >>> BM3DDenoiser(sigma=-1)
        Traceback (most recent call last):
        ...
        ValueError: sigma must be a positive number (noise std in unit scale), got -1
    """

    sigma: float
    profile: str = "np"

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", _check_sigma(self.sigma))
        _check_profile(self.profile)

    @property
    def sigma_hu(self) -> float:
        """``sigma`` in HU (``sigma * 4096``)."""
        return round(self.sigma * _HU_WIDTH, 6)

    def __call__(self, hu_2d: np.ndarray) -> np.ndarray:
        """Denoise one 2D HU slice; see :func:`bm3d_denoise_slice`."""
        return bm3d_denoise_slice(hu_2d, self.sigma, profile=self.profile)

    def settings(self) -> dict[str, Any]:
        """The settings to record with results: method, sigma (unit and HU), profile."""
        return {
            "method": "BM3D",
            "sigma": self.sigma,
            "sigma_hu": self.sigma_hu,
            "profile": self.profile,
            "domain": "unit = (HU + 1024) / 4096",
            "package": f"bm3d {_bm3d_version()}",
        }


def _bm3d_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bm3d")
    except PackageNotFoundError:
        return "not installed"


def choose_bm3d_sigma(
    pairs_train: Iterable[tuple[np.ndarray, np.ndarray]],
    grid: Sequence[float] = DEFAULT_SIGMA_GRID,
    *,
    profile: str = "np",
    progress: Callable[[str], None] | None = None,
    window: Sequence[float] | None = None,
) -> tuple[float, list[dict[str, float]]]:
    """Pick the BM3D sigma that maximises the mean PSNR on training pairs.

    Every training slice is denoised with every sigma of the grid and scored against its
    normal-dose reference with :func:`ctpipe.metrics.slice_quality` (full range
    [-1024, 3072] HU, or ``window``). The best mean PSNR wins; a tie goes to the smaller
    sigma. Use training pairs only, so that the test split stays unseen.

    Args:
        pairs_train: ``(low_dose_hu, normal_dose_hu)`` 2D slices of the training split.
        grid: Candidate sigmas in unit scale (HU / 4096), each 0 < sigma < 1.
        profile: ``bm3d`` profile name.
        progress: Called with one line of text after each sigma (e.g. ``print``).
        window: ``(low, high)`` HU: choose by the PSNR in this window (e.g. the display
            window [-160, 240]) instead of the full range; the table's PSNR and SSIM
            keys are then ``psnr_window``, ``psnr_window_std`` and ``ssim_window``.

    Returns:
        ``(best_sigma, table)``: the table has one row per sigma, ascending, with
        ``sigma``, ``sigma_hu``, ``psnr_full`` (mean), ``psnr_full_std``, ``ssim_full``
        (mean), ``n_slices`` and ``seconds`` (total BM3D time of that row).

    Raises:
        ValueError: If ``pairs_train`` or ``grid`` is empty, a sigma is invalid, or a
            pair is not two 2D slices of one shape.
        ImportError: If the ``bm3d`` package is not installed (names the extra).
    """
    from ctpipe.metrics import slice_quality

    pairs = _check_pairs(pairs_train)
    sigmas = _check_grid(grid)
    _check_profile(profile)
    table: list[dict[str, float]] = []
    for sigma in sigmas:
        psnr, ssim, seconds = [], [], 0.0
        for low, normal in pairs:
            start = time.perf_counter()
            denoised = bm3d_denoise_slice(low, sigma, profile=profile)
            seconds += time.perf_counter() - start
            quality = slice_quality(denoised, normal, window=window)
            psnr.append(quality["psnr"])
            ssim.append(quality["ssim"])
        scale = "window" if window is not None else "full"
        row = {
            "sigma": sigma,
            "sigma_hu": round(sigma * _HU_WIDTH, 6),
            f"psnr_{scale}": float(np.mean(psnr)),
            f"psnr_{scale}_std": float(np.std(psnr)),
            f"ssim_{scale}": float(np.mean(ssim)),
            "n_slices": len(pairs),
            "seconds": seconds,
        }
        table.append(row)
        if progress is not None:
            progress(
                f"BM3D sigma {sigma:g} ({row['sigma_hu']:.1f} HU): mean PSNR ({scale}) "
                f"{row[f'psnr_{scale}']:.3f} dB over {len(pairs)} slice(s), {seconds:.1f} s"
            )
    best = max(table, key=lambda r: (r[f"psnr_{scale}"], -r["sigma"]))
    return float(best["sigma"]), table


def _check_grid(grid: Sequence[float]) -> list[float]:
    if isinstance(grid, (str, bytes)) or not isinstance(grid, Iterable):
        raise ValueError(f"grid must be a sequence of sigmas, got {grid!r}")
    sigmas = sorted({_check_sigma(s) for s in grid})
    if not sigmas:
        raise ValueError("grid must hold at least one sigma, got an empty grid")
    return sigmas


def _check_pairs(
    pairs_train: Iterable[tuple[np.ndarray, np.ndarray]],
) -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = []
    for index, pair in enumerate(pairs_train):
        try:
            low, normal = pair
        except (TypeError, ValueError):
            raise ValueError(
                f"pairs_train[{index}] must be a (low_dose_hu, normal_dose_hu) pair, "
                f"got {type(pair).__name__}"
            ) from None
        low = _check_slice(low, f"pairs_train[{index}] low-dose slice")
        normal = _check_slice(normal, f"pairs_train[{index}] normal-dose slice")
        if low.shape != normal.shape:
            raise ValueError(
                f"pairs_train[{index}]: low-dose and normal-dose slices differ in shape, "
                f"{low.shape} and {normal.shape}"
            )
        pairs.append((low, normal))
    if not pairs:
        raise ValueError("pairs_train must hold at least one (low_dose_hu, normal_dose_hu) pair")
    return pairs
