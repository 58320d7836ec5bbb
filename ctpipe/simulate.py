"""Simulate a lower-dose CT scan from a normal-dose one by noise insertion in projections.

The simulated scan is what the same patient would look like at a fraction ``d`` of the
dose (``d = 0.25`` gives the "quarter dose" of the 2016 NIH-AAPM-Mayo Low Dose CT Grand
Challenge). Each axial slice goes through these steps:

1. **HU to attenuation:** ``mu = mu_water * (1 + HU / 1000)`` per mm, negatives (air,
   padding below -1000 HU) clipped to 0.
2. **Forward projection:** a parallel-beam Radon transform over 180° (scikit-image
   ``radon``) with one detector bin per pixel, times the pixel spacing, so the line
   integrals ``p`` are dimensionless (mu in 1/mm times mm).
3. **Noise insertion** (Yu et al. 2012; Zeng et al. 2015). A normal-dose reading has mean
   ``lam = I0 * exp(-p)`` photons and variance ``lam + sigma_e**2`` (Poisson quanta plus
   Gaussian electronic noise of ``sigma_e`` counts). A reading at dose ``d`` has mean
   ``d * lam`` and variance ``d * lam + sigma_e**2``. The normal-dose noise is already in
   the image, so only the difference is drawn::

       N_d = d * lam + sqrt(d * (1 - d) * lam + (1 - d**2) * sigma_e**2) * z,  z ~ N(0, 1)

   since ``d**2 * (lam + sigma_e**2)`` (the scaled normal-dose noise) plus that variance is
   ``d * lam + sigma_e**2``. After the log, ``p_d = log(d * I0 / N_d)``, the variance added
   is ``(1 - d) / (d * lam) * (1 + (1 + d) / d * sigma_e**2 / lam)`` to first order, Yu et
   al.'s formula. Readings are clipped at :data:`MIN_COUNTS` before the log, as scanners
   do for photon-starved rays (the clean reading too, so a ray starved at both doses is
   left unchanged). ``I0`` varies from view to view as with angular tube current
   modulation: proportional to ``exp(alpha * max_s p)`` (mean 1 over the views), where
   ``alpha = 0.5`` (tube current as the square root of the view's attenuation) is the
   noise-optimal modulation of Gies et al. 1999 that scanners' automatic exposure control
   (e.g. Siemens CARE Dose4D, used for the AAPM data) approximates. Without it
   (``angular_modulation=0``) the long lateral paths dominate and the noise shows
   streaks along them that the real quarter-dose images lack.
4. **Reconstruction of the noise only:** ``HU_d = HU + 1000 * FBP(p_d - p) / mu_water``.
   The filtered back-projection (scikit-image ``iradon``, linear interpolation) of the
   clean sinogram is not the input image: it is blurred by interpolation and the filter.
   Adding ``FBP(p_d) - FBP(p)`` (one FBP, since FBP is linear) keeps the input's
   resolution and adds only the dose-dependent noise (and the small bias of the log of
   noisy counts), as a real noise-insertion tool does.

The noise texture is that of the FBP filter (``filter_name``); the noise level follows
from the photon count. Calibrated against the AAPM quarter-dose images (themselves made
by the Mayo tool of Yu et al. 2012 from the raw projections), ``"ramp"`` matches the D45
kernel and ``"hann"`` the smooth B30 kernel with one photon scale, :data:`PHOTONS_PER_MA`
photons per detector bin per view per mA at 120 kV (see :func:`photons_for_exposure`).
Over the 32 pairs, the ratio of the soft-tissue noise std of (simulated - full dose) to
that of (real quarter - full dose) has a median of 1.04 for D45 (0.69-1.31 per slice)
and 0.99 for B30 (0.84-1.07); 30 of 32 slices are within 25 % (``tests/test_simulate.py``
checks 2 slices per kernel). The simulated grain is somewhat coarser than the real one
(probably the linear interpolation of the back-projection), and the texture is the
filter's, not the kernel's.

Geometry: a parallel beam without bowtie filter, not the scanner's fan beam, so all rays
of a view start with the same photon count and the noise's spatial pattern differs somewhat from a
real scan's. Matter outside the image's inscribed circle (the table, arms) is projected
too: the slice is then padded to its diagonal, which doubles the projection time. The
slice must hold the whole body cross-section: a cropped body underestimates attenuation
and so noise. Time: about 2 s per 512x512 slice at 360 views on one core, 4 s when padded
(as the AAPM slices are), most of it in the projection.

References:
    L. Yu, M. Shiung, D. Jondal, C. H. McCollough, "Development and validation of a
    practical lower-dose-simulation tool for optimizing computed tomography scan
    protocols", J. Comput. Assist. Tomogr. 36(4):477-487, 2012,
    doi:10.1097/RCT.0b013e318258e891.

    D. Zeng, J. Huang, Z. Bian, et al., "A simple low-dose x-ray CT simulation from
    high-dose scan", IEEE Trans. Nucl. Sci. 62(5):2226-2233, 2015,
    doi:10.1109/TNS.2015.2467219.

    C. H. McCollough et al., "Low-dose CT for the detection and classification of
    metastatic liver lesions: results of the 2016 Low Dose CT Grand Challenge",
    Med. Phys. 44(10):e339-e352, 2017, doi:10.1002/mp.12345.

    M. Gies, W. A. Kalender, H. Wolf, C. Suess, "Dose reduction in CT by anatomically
    adapted tube current modulation. I. Simulation studies", Med. Phys.
    26(11):2235-2247, 1999, doi:10.1118/1.598779.

    J. H. Hubbell, S. M. Seltzer, "Tables of X-ray mass attenuation coefficients",
    NIST Standard Reference Database 126 (NISTIR 5632), water: 0.2059 cm²/g at 60 keV,
    0.1837 cm²/g at 80 keV.

Example:
    >>> import numpy as np
    >>> hu = np.full((64, 64), -1000.0, np.float32)
    >>> yy, xx = np.mgrid[:64, :64]
    >>> hu[(xx - 32) ** 2 + (yy - 32) ** 2 < 25**2] = 40.0  # a 50-pixel water-like disc
    >>> sim = LowDoseSimulator(dose_fraction=0.25, incident_photons=1e4, n_angles=90)
    >>> low = sim.simulate_slice(hu, 2.0, np.random.default_rng(0))
    >>> low.shape, low.dtype, bool(5 < np.std(low[24:40, 24:40]) < 200)
    ((64, 64), dtype('float32'), True)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_INCIDENT_PHOTONS",
    "FILTERS",
    "MIN_COUNTS",
    "MU_WATER_PER_MM",
    "PHOTONS_PER_MA",
    "REFERENCE_KVP",
    "REFERENCE_VIEWS",
    "LowDoseSimulator",
    "photons_for_exposure",
]

MU_WATER_PER_MM = 0.0194
"""Linear attenuation of water (1/mm) at 70 keV, the effective energy of a 120 kV beam.

Log-log interpolation of NIST's mass attenuation of water, 0.2059 cm²/g at 60 keV and
0.1837 cm²/g at 80 keV, gives 0.194 cm²/g; papers use 0.019-0.020 /mm.
"""

REFERENCE_VIEWS = 360
"""Views (over 180°) at which ``incident_photons`` is counted per view.

With ``n_angles`` views each view gets ``incident_photons * REFERENCE_VIEWS / n_angles``
photons, so the dose, and hence the quantum noise, does not depend on ``n_angles``.
"""

PHOTONS_PER_MA = 2750.0
"""Photons per detector bin per view (at :data:`REFERENCE_VIEWS` views) per mA at 120 kV.

Calibrated on the 32 AAPM Grand Challenge slice pairs in ``../shared/data`` (Siemens
SOMATOM Definition AS+, 3 mm slices, 0.70-0.82 mm pixels): the median ratio of simulated
to real quarter-dose noise is about 1.0 for both D45 (``"ramp"``) and B30 (``"hann"``).
At 300 mA that is about 8e5 photons per bin per view with 360 views; spread over the
1152 readings per rotation of that scanner, about 2.6e5 per reading: the order of the
1e5-2e5 photons per ray used in the literature (e.g. TIGRE's ``addCTnoise``, Zeng et al.
2015).
"""

REFERENCE_KVP = 120.0
"""Tube voltage (kV) at which :data:`PHOTONS_PER_MA` holds."""

DEFAULT_INCIDENT_PHOTONS = 1.0e6
"""Default photons per bin per view, :data:`PHOTONS_PER_MA` at about 360 mA, 120 kV.

A typical abdominal normal-dose tube current; the AAPM slices span 104-643 mA.
"""

FILTERS = ("ramp", "shepp-logan", "cosine", "hamming", "hann")
"""FBP filters of scikit-image's ``iradon``, roughly from sharpest (``ramp``) to smoothest."""

MIN_COUNTS = 1.0
"""Readings below this many photons are clipped before the log (photon starvation)."""

_MIN_SIDE = 8
_MATTER_FRACTION = 0.5
"""Attenuation above this fraction of water outside the inscribed circle is matter."""

Progress = Callable[[Iterable[int]], Iterable[int]]
"""Wraps the slice indices being simulated, e.g. ``lambda k: tqdm(k)``."""


def photons_for_exposure(
    tube_current_ma: float,
    kvp: float = REFERENCE_KVP,
    photons_per_ma: float = PHOTONS_PER_MA,
) -> float:
    """Photons per detector bin per view for a slice's tube current and voltage.

    Scales linearly with the tube current and, by the rule of thumb that tube output
    grows as the square of the voltage (e.g. Bushberg et al., *The Essential Physics of
    Medical Imaging*), with ``(kvp / 120)**2``. Tube current modulation
    changes the current from slice to slice, so the current of each slice (DICOM
    ``XRayTubeCurrent``) gives each slice its photon count. On the 32 AAPM slices this
    narrows the simulated-to-real noise ratios from 0.50-1.55 (1e6 photons for every
    slice; 15 slices within 25 %) to 0.69-1.31 (30 within 25 %); the voltage term brings
    the 100 kV patient in line with the 120 kV ones.

    Args:
        tube_current_ma: Tube current (mA) of the normal-dose slice, positive.
        kvp: Tube voltage (kV), positive.
        photons_per_ma: Photons per bin per view per mA at 120 kV, positive.

    Returns:
        The ``incident_photons`` for :class:`LowDoseSimulator`.

    Raises:
        ValueError: If an argument is not a positive finite number.

    Example:
        >>> photons_for_exposure(100.0), photons_for_exposure(100.0, kvp=60.0)
        (275000.0, 68750.0)
    """
    for name, value in (
        ("tube_current_ma", tube_current_ma),
        ("kvp", kvp),
        ("photons_per_ma", photons_per_ma),
    ):
        _check_positive(name, value)
    return float(photons_per_ma * tube_current_ma * (kvp / REFERENCE_KVP) ** 2)


@dataclass(frozen=True)
class LowDoseSimulator:
    """Projection-domain simulator of a lower-dose scan; see the module docstring.

    Attributes:
        dose_fraction: Dose of the simulated scan relative to the input's, in (0, 1];
            1 adds no noise. 0.25 is the AAPM challenge's quarter dose.
        incident_photons: Unattenuated photons per detector bin (one pixel wide) per
            view of the normal-dose scan, counted at :data:`REFERENCE_VIEWS` views;
            positive. Sets the noise level: the added noise std scales about as
            ``1 / sqrt(incident_photons)``. Default :data:`DEFAULT_INCIDENT_PHOTONS`;
            use :func:`photons_for_exposure` for a slice's tube current.
        electronic_noise: Std of the detector's Gaussian electronic noise, photons per
            reading, zero or more. 10 is a common clinical value (e.g. TIGRE's
            ``addCTnoise``, Zeng et al. 2015); it matters only for photon-starved rays.
        n_angles: Views over 180°, at least 16. Time grows linearly with it (about
            2 s per 512x512 slice at 360 on one core); the quantum noise does not, as
            the photons are shared among the views, but electronic noise adds per view.
        filter_name: FBP filter, one of :data:`FILTERS`; sets the noise texture.
            ``"ramp"`` matches sharp kernels (Siemens D45), ``"hann"`` smooth ones (B30).
        angular_modulation: Exponent ``alpha`` in [0, 1] of the angular tube current
            modulation, photons per view proportional to ``exp(alpha * max p)`` of the
            view; 0.5 is the noise-optimal modulation of Gies et al. 1999 that automatic
            exposure control approximates, 0 a constant tube current.
        mu_water: Linear attenuation of water (1/mm), positive.

    Example:
        >>> sim = LowDoseSimulator(dose_fraction=0.5, filter_name="hann")
        >>> sim.parameters()["filter_name"]
        'hann'
        >>> LowDoseSimulator(dose_fraction=0.0)
        Traceback (most recent call last):
            ...
        ValueError: dose_fraction must be in (0, 1], got 0.0
    """

    dose_fraction: float = 0.25
    incident_photons: float = DEFAULT_INCIDENT_PHOTONS
    electronic_noise: float = 10.0
    n_angles: int = REFERENCE_VIEWS
    filter_name: str = "ramp"
    angular_modulation: float = 0.5
    mu_water: float = MU_WATER_PER_MM

    def __post_init__(self) -> None:
        dose = self.dose_fraction
        if not (_is_real(dose) and math.isfinite(dose) and 0 < dose <= 1):
            raise ValueError(f"dose_fraction must be in (0, 1], got {dose!r}")
        _check_positive("incident_photons", self.incident_photons)
        _check_positive("mu_water", self.mu_water)
        noise = self.electronic_noise
        if not (_is_real(noise) and math.isfinite(noise) and noise >= 0):
            raise ValueError(f"electronic_noise must be a finite number >= 0, got {noise!r}")
        angles = self.n_angles
        if isinstance(angles, bool) or not isinstance(angles, numbers.Integral) or angles < 16:
            raise ValueError(f"n_angles must be an integer >= 16, got {angles!r}")
        if self.filter_name not in FILTERS:
            raise ValueError(
                f"filter_name must be one of {', '.join(FILTERS)}, got {self.filter_name!r}"
            )
        alpha = self.angular_modulation
        if not (_is_real(alpha) and 0 <= alpha <= 1):
            raise ValueError(f"angular_modulation must be in [0, 1], got {alpha!r}")

    def parameters(self) -> dict[str, Any]:
        """The settings and model of this simulator, for a run record.

        Example:
            >>> LowDoseSimulator().parameters()["dose_fraction"]
            0.25
        """
        return {
            "method": "projection-domain noise insertion (Yu et al. 2012; Zeng et al. 2015)",
            "dose_fraction": float(self.dose_fraction),
            "incident_photons": float(self.incident_photons),
            "electronic_noise": float(self.electronic_noise),
            "n_angles": int(self.n_angles),
            "filter_name": self.filter_name,
            "angular_modulation": float(self.angular_modulation),
            "mu_water_per_mm": float(self.mu_water),
            "reference_views": REFERENCE_VIEWS,
            "min_counts": MIN_COUNTS,
            "geometry": "parallel beam over 180 degrees, one detector bin per pixel",
        }

    def simulate_slice(
        self,
        hu: np.ndarray,
        pixel_spacing_mm: float | Sequence[float],
        rng: np.random.Generator,
        *,
        incident_photons: float | None = None,
    ) -> np.ndarray:
        """Simulate one axial slice at ``dose_fraction`` of its dose.

        Args:
            hu: Normal-dose slice in HU, 2D, at least 8x8, finite.
            pixel_spacing_mm: Pixel size (mm): one number or the two (equal) sizes along
                the array's axes.
            rng: Source of the noise; the same state gives the same result.
            incident_photons: This slice's photon count instead of the simulator's
                (e.g. from its tube current); positive.

        Returns:
            The simulated slice in HU, float32, same shape: the input plus noise.

        Raises:
            ValueError: If ``hu``, ``pixel_spacing_mm`` or ``incident_photons`` breaks
                the rules above.

        Example:
            >>> sim = LowDoseSimulator(dose_fraction=1.0, n_angles=32)
            >>> hu = np.zeros((16, 16), np.float32)
            >>> bool(np.allclose(sim.simulate_slice(hu, 1.0, np.random.default_rng(0)), hu))
            True
        """
        hu = _check_slice(hu)
        spacing = _check_pixel_spacing(pixel_spacing_mm)
        photons = self.incident_photons if incident_photons is None else incident_photons
        _check_positive("incident_photons", photons)
        mu, crop = _square_support(_attenuation(hu, self.mu_water), self.mu_water)
        theta = np.linspace(0.0, 180.0, self.n_angles, endpoint=False)
        delta_p = self._noise_sinogram(mu, spacing, theta, photons, rng)
        delta_hu = _reconstruct(delta_p, theta, self.filter_name, max(hu.shape))[crop]
        delta_hu *= 1000.0 / (spacing * self.mu_water)
        return (hu + delta_hu).astype(np.float32)

    def simulate_volume(
        self,
        hu: np.ndarray,
        spacing: Sequence[float],
        seed: int,
        *,
        incident_photons: float | Sequence[float] | None = None,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Simulate a volume slice by slice along ``k``.

        Slice ``k`` draws its noise from the ``k``-th child of
        ``np.random.SeedSequence(seed)``, so a slice's noise depends only on the seed
        and ``k``, not on the order in which slices are processed.

        Args:
            hu: Normal-dose volume in HU indexed ``(i, j, k)``.
            spacing: Voxel size (mm) along ``(i, j, k)``; ``i`` and ``j`` must be equal.
            seed: Seed of the noise, a non-negative integer.
            incident_photons: One photon count for every slice, one per slice (tube
                current modulation), or ``None`` for the simulator's.
            progress: Optional wrapper around the slice indices (e.g. tqdm).

        Returns:
            The simulated volume in HU, float32, same shape.

        Raises:
            ValueError: If ``hu`` is not 3D, ``spacing`` has not 3 entries, the pixels
                are not square, or ``incident_photons`` has the wrong length or a value
                that is not positive.

        Example:
            >>> sim = LowDoseSimulator(n_angles=32)
            >>> hu = np.zeros((16, 16, 2), np.float32)
            >>> a = sim.simulate_volume(hu, (1.0, 1.0, 3.0), seed=7)
            >>> bool(np.array_equal(a, sim.simulate_volume(hu, (1.0, 1.0, 3.0), seed=7)))
            True
        """
        hu = np.asarray(hu)
        if hu.ndim != 3:
            raise ValueError(f"hu must be a 3D (i, j, k) volume, got shape {hu.shape}")
        if len(spacing) != 3:
            raise ValueError(f"spacing must be 3 sizes (i, j, k) in mm, got {spacing!r}")
        photons = _per_slice(incident_photons, self.incident_photons, hu.shape[2])
        children = np.random.SeedSequence(_check_seed(seed)).spawn(hu.shape[2])
        out = np.empty(hu.shape, dtype=np.float32)
        indices: Iterable[int] = range(hu.shape[2])
        for k in progress(indices) if progress is not None else indices:
            rng = np.random.default_rng(children[k])
            out[:, :, k] = self.simulate_slice(
                hu[:, :, k], spacing[:2], rng, incident_photons=photons[k]
            )
        return out

    def _noise_sinogram(
        self,
        mu: np.ndarray,
        spacing: float,
        theta: np.ndarray,
        photons: float,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Simulated-minus-clean line integrals ``p_d - p`` of one padded slice."""
        from skimage.transform import radon

        p = radon(mu, theta, circle=True) * spacing
        i0 = photons * REFERENCE_VIEWS / self.n_angles * _view_weights(p, self.angular_modulation)
        return _insert_noise(p, i0, self.dose_fraction, self.electronic_noise, rng)


def _view_weights(p: np.ndarray, alpha: float) -> np.ndarray:
    """Relative tube current of each view (column of ``p``), mean 1.

    Example:
        >>> _view_weights(np.array([[0.0, 2.0]]), 0.5).round(3).tolist()
        [0.538, 1.462]
    """
    log_w = alpha * p.max(axis=0)
    weights = np.exp(log_w - log_w.max())
    return weights / weights.mean()


def _insert_noise(
    p: np.ndarray, i0: float | np.ndarray, dose: float, sigma_e: float, rng: np.random.Generator
) -> np.ndarray:
    """Log-domain difference ``p_d - p`` of readings drawn at dose ``dose``.

    ``i0`` is the unattenuated count per reading, one number or one per view (column).

    Example:
        >>> p = np.zeros((4, 3))
        >>> bool(_insert_noise(p, 1e4, 1.0, 10.0, np.random.default_rng(0)).any())
        False
    """
    lam = i0 * np.exp(-p)
    variance = dose * (1.0 - dose) * lam + (1.0 - dose**2) * sigma_e**2
    counts = dose * lam + np.sqrt(variance) * rng.standard_normal(p.shape)
    return np.log(np.maximum(dose * lam, MIN_COUNTS) / np.maximum(counts, MIN_COUNTS))


def _reconstruct(sinogram: np.ndarray, theta: np.ndarray, filter_name: str, size: int):
    """FBP of a parallel-beam sinogram onto the central ``size x size`` pixels (pixel units).

    The grid is centred on detector bin ``bins // 2``, the projection centre of the padded
    square, and only the pixels of the input are reconstructed (the padding costs time in
    the projection only).
    """
    from skimage.transform import iradon

    return iradon(sinogram, theta, output_size=size, filter_name=filter_name, circle=False)


def _attenuation(hu: np.ndarray, mu_water: float) -> np.ndarray:
    """Linear attenuation (1/mm) of HU, negatives clipped to 0."""
    return np.maximum(mu_water * (1.0 + hu.astype(np.float64) / 1000.0), 0.0)


def _square_support(mu: np.ndarray, mu_water: float) -> tuple[np.ndarray, tuple[slice, ...]]:
    """Pad ``mu`` into a square whose inscribed circle holds all its matter.

    Returns the padded array (zero outside that circle) and the slices that crop the
    input's pixels out of a ``max(mu.shape)`` square reconstruction centred like it.
    The padded side has the parity of ``max(mu.shape)``, which keeps both centred on the
    same pixel.
    """
    size = max(mu.shape)
    padded = _pad_centred(mu, size)
    outside = _outside_circle(size)
    if np.any(padded[outside] > _MATTER_FRACTION * mu_water):
        side = math.ceil(math.hypot(*mu.shape)) + 2
        padded = _pad_centred(mu, side + (side - size) % 2)
        outside = _outside_circle(padded.shape[0])
    padded[outside] = 0.0  # only air (noise about 0) is left there
    crop = tuple(slice((size - n) // 2, (size - n) // 2 + n) for n in mu.shape)
    return padded, crop


def _pad_centred(array: np.ndarray, side: int) -> np.ndarray:
    padded = np.zeros((side, side), dtype=np.float64)
    padded[tuple(slice((side - n) // 2, (side - n) // 2 + n) for n in array.shape)] = array
    return padded


def _outside_circle(side: int) -> np.ndarray:
    """Pixels outside scikit-image's reconstruction circle of a ``side`` square."""
    centre = side // 2
    rows, cols = np.ogrid[:side, :side]
    return (rows - centre) ** 2 + (cols - centre) ** 2 > centre**2


def _check_slice(hu: np.ndarray) -> np.ndarray:
    hu = np.asarray(hu)
    if hu.ndim != 2 or min(hu.shape) < _MIN_SIDE:
        raise ValueError(
            f"hu must be a 2D slice of at least {_MIN_SIDE}x{_MIN_SIDE} pixels, "
            f"got shape {hu.shape}"
        )
    if not np.isfinite(hu).all():
        raise ValueError(f"hu must be finite, got {int(np.sum(~np.isfinite(hu)))} NaN/inf")
    return hu


def _check_pixel_spacing(pixel_spacing_mm: float | Sequence[float]) -> float:
    sizes = np.atleast_1d(np.asarray(pixel_spacing_mm, dtype=np.float64))
    if sizes.ndim != 1 or sizes.size not in (1, 2) or not np.all(np.isfinite(sizes) & (sizes > 0)):
        raise ValueError(
            f"pixel_spacing_mm must be one or two positive sizes in mm, got {pixel_spacing_mm!r}"
        )
    if not np.isclose(sizes.min(), sizes.max(), rtol=1e-3):
        raise ValueError(
            f"pixel_spacing_mm must be square (equal sizes within 0.1 %) for the parallel-"
            f"beam projector, got {tuple(sizes.tolist())}; resample the slice first"
        )
    return float(sizes.mean())


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_positive(name: str, value: Any) -> None:
    if not (_is_real(value) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _per_slice(photons: float | Sequence[float] | None, default: float, count: int) -> list[float]:
    if photons is None:
        return [default] * count
    if np.ndim(photons) == 0:
        values = [photons] * count
    else:
        values = list(photons)  # type: ignore[arg-type]
        if len(values) != count:
            raise ValueError(
                f"incident_photons must have one value per slice ({count}), got {len(values)}"
            )
    for value in values:
        _check_positive("incident_photons", value)
    return [float(v) for v in values]
