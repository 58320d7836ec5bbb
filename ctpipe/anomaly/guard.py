"""Out-of-distribution guard: how far a study is from the CT the models were trained on.

ctpipe's models answer confidently outside what they know (a segmenter trained on the
abdomen labels a head CT's brain as liver). The guard scores a study *before* the models
run, with the project's VAE (Kingma & Welling 2014), trained on normal-dose CT slices:

1. each slice (at most ``max_slices``, spread evenly) is described by the statistics of
   :mod:`ctpipe.anomaly.guard_statistics`: the VAE's reconstruction error at two scales
   (the layout, fine detail), three input checks (noise, metal, air) and, since the
   guard's second version, six of the body's shape and intensity (area and width over
   height in mm, clipping at the maximum, tissue of 150-700 HU, cupping, bone under the
   skin), which see what the VAE's window and 3 mm grid cannot;
2. its **slice score** is the Mahalanobis distance of those statistics from their mean on
   held-back in-distribution slices (:class:`GuardCalibration`, stored in the VAE's
   weights file; the shape and intensity statistics are taken as uncorrelated with the
   rest, :data:`DEFAULT_INDEPENDENT`), so a slice is unusual in either direction: a
   blurred, noisy or streaked slice, but also a too-simple one (a phantom, a flat image)
   that a likelihood alone would call *more* typical (Nalisnick et al., ICLR 2019; the
   statistics-then-density approach of Morningstar et al., AISTATS 2021);
3. the **study score** is the median slice score; the study is **flagged** when it is above
   the calibrated study threshold. Each score also comes as a percentile of the
   calibration slices' scores, and the statistics that moved most are named (in standard
   deviations of the calibration), so a warning says why.

The negative ELBO (the seed's score) is computed too and reported beside the guard's
score; alone it separates poorly (see ``benchmarks/RESULTS.md``). The KL term is left out
of the distance: patients the VAE never saw have codes further from the prior than the
held-back slices of the calibration, so it flagged new patients more than it helped to
find other inputs (measured in the benchmark).

Example:
    >>> from ctpipe.weights import load_default_vae  # doctest: +SKIP
    >>> guard = OODGuard(load_default_vae())  # doctest: +SKIP
    >>> result = guard.score(ct.hu, ct.spacing)  # doctest: +SKIP
    >>> result.flagged, round(result.study_score, 1), result.warning()  # doctest: +SKIP
    (True, 9.3, 'out of distribution: guard score 9.3 > threshold 3.1 (...)')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ctpipe.anomaly.guard_statistics import (
    INPUT_STATISTICS,
    SHAPE_STATISTICS,
    STATISTICS,
    SliceStatistics,
    slice_statistics,
)

if TYPE_CHECKING:
    from ctpipe.nets.vae import VAE

__all__ = [
    "DEFAULT_INDEPENDENT",
    "DEFAULT_MIN_STD",
    "GUARD_RECORD_KEY",
    "GUARD_STATISTICS",
    "GuardCalibration",
    "GuardResult",
    "OODGuard",
    "calibrate_guard",
    "write_calibrated_weights",
]

#: Key of the calibration in a VAE weights file's record.
GUARD_RECORD_KEY = "guard"
#: The statistics the guard's distance uses.
GUARD_STATISTICS = ("log_rec_coarse", "log_rec_detail", *INPUT_STATISTICS)
#: Smallest standard deviation each statistic is given: a calibration set of a few
#: patients is narrower than the patients and scanners the guard meets (no metal at all,
#: for one), and a study should not be flagged for differing from it by a trifle.
DEFAULT_MIN_STD: Mapping[str, float] = {
    "log_rec_mse": 0.1,
    "log_rec_coarse": 0.15,
    "log_rec_detail": 0.1,
    "log_kl": 0.1,
    "log_noise_hu": 0.35,
    "log_metal_fraction": 1.0,
    "log_air_fraction": 0.35,
    "log_body_area": 0.5,
    "body_aspect": 0.15,
    "log_top_clip": 1.0,
    "log_bright_fraction": 0.5,
    "radial_drop_hu": 35.0,
    "rim_bone_fraction": 0.03,
}
#: Statistics :meth:`GuardCalibration.fit` takes as uncorrelated with the others.
DEFAULT_INDEPENDENT = SHAPE_STATISTICS
#: What each statistic means, for warnings.
_WORDS = {
    "log_rec_mse": "reconstruction error",
    "log_rec_coarse": "reconstruction error of the layout (24 mm scale)",
    "log_rec_detail": "reconstruction error of fine detail",
    "log_kl": "distance of the code from the prior (KL)",
    "log_noise_hu": "noise in soft tissue",
    "log_metal_fraction": "metal (above 3000 HU)",
    "log_air_fraction": "air around the body",
    "log_body_area": "body area",
    "body_aspect": "body width over height",
    "log_top_clip": "pixels piled at the maximum value (clipping)",
    "log_bright_fraction": "tissue of 150-700 HU (contrast, bone)",
    "radial_drop_hu": "tissue HU of the body's core against its outer part (cupping)",
    "rim_bone_fraction": "bone under the skin (a skull)",
}


@dataclass(frozen=True)
class GuardCalibration:
    """Where the guard statistics of in-distribution slices lie; valid once built.

    Args:
        statistics: Names of the statistics (from :data:`~ctpipe.anomaly.
            guard_statistics.STATISTICS`).
        mean: Their mean on the calibration slices.
        covariance: Their covariance (shrunk towards its diagonal, with each standard
            deviation at least its ``min_std``).
        reference: The calibration slices' own scores, sorted (for percentiles).
        slice_threshold: Slice scores above it are unusual (a quantile of ``reference``).
        study_threshold: Study scores (median slice score) above it flag the study.
        sources: What the calibration slices were (e.g. ``"L143_B30: 7 slices"``).
        settings: How it was fitted (shrinkage, floors, quantiles), for records.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> cal = GuardCalibration.fit(rng.normal(size=(200, 2)), ("log_kl", "log_rec_detail"))
        >>> round(cal.slice_threshold, 1), cal.distance(np.array([[0.0, 0.0]])).round(2).tolist()
        (3.2, [0.1])
    """

    statistics: tuple[str, ...]
    mean: tuple[float, ...]
    covariance: tuple[tuple[float, ...], ...]
    reference: tuple[float, ...]
    slice_threshold: float
    study_threshold: float
    sources: tuple[str, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.statistics)
        unknown = sorted(set(self.statistics) - set(STATISTICS))
        if n == 0 or unknown:
            raise ValueError(
                f"statistics must name some of {', '.join(STATISTICS)}, got {self.statistics}"
            )
        covariance = np.asarray(self.covariance, dtype=np.float64)
        if len(self.mean) != n or covariance.shape != (n, n):
            raise ValueError(
                f"mean and covariance must fit {n} statistics, got {len(self.mean)} and "
                f"{covariance.shape}"
            )
        if not np.all(np.isfinite(covariance)) or np.any(np.linalg.eigvalsh(covariance) <= 0):
            raise ValueError("covariance must be finite and positive definite")
        if not self.reference or not all(math.isfinite(r) for r in self.reference):
            raise ValueError("reference must hold the calibration slices' finite scores")
        for name in ("slice_threshold", "study_threshold"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value}")

    @classmethod
    def fit(
        cls,
        values: np.ndarray,
        statistics: Sequence[str],
        *,
        sources: Sequence[str] = (),
        shrinkage: float = 0.1,
        min_std: Mapping[str, float] | None = None,
        slice_quantile: float = 0.99,
        study_quantile: float = 0.99,
        independent: Sequence[str] | None = None,
    ) -> GuardCalibration:
        """Fit the calibration to the statistics of in-distribution slices.

        Args:
            values: ``(slices, len(statistics))`` statistics of held-back slices.
            statistics: Their names.
            sources: What the slices were, for records.
            shrinkage: Weight of the covariance's diagonal against the full matrix.
            min_std: Floor of each statistic's standard deviation (default
                :data:`DEFAULT_MIN_STD`; 0 for one not named there).
            slice_quantile: Quantile of the calibration slices' own scores that sets the
                slice threshold.
            study_quantile: The same for the study threshold: a study is flagged when its
                median slice lies beyond where this share of in-distribution slices lie.
            independent: Statistics taken as uncorrelated with every other one (their
                covariances set to 0; default :data:`DEFAULT_INDEPENDENT`): the body's
                shape and intensity mix vary between a few calibration patients in ways
                that are those patients', not CT's, and a correlation learnt from them
                would flag the next patient.

        Raises:
            ValueError: Fewer slices than twice the statistics, or settings out of range.
        """
        data = np.asarray(values, dtype=np.float64)
        names = tuple(statistics)
        if data.ndim != 2 or data.shape[1] != len(names) or data.shape[0] < 2 * len(names):
            raise ValueError(
                f"values must be (slices >= {2 * len(names)}, {len(names)}), got {data.shape}"
            )
        if not np.isfinite(data).all():
            raise ValueError("values must be finite")
        if not 0 <= shrinkage <= 1:
            raise ValueError(f"shrinkage must be in [0, 1], got {shrinkage}")
        for name, q in (("slice_quantile", slice_quantile), ("study_quantile", study_quantile)):
            if not 0.5 <= q <= 1:
                raise ValueError(f"{name} must be in [0.5, 1], got {q}")
        floors = dict(DEFAULT_MIN_STD if min_std is None else min_std)
        mean = data.mean(axis=0)
        covariance = np.atleast_2d(np.cov(data, rowvar=False))
        covariance = (1 - shrinkage) * covariance + shrinkage * np.diag(np.diag(covariance))
        std = np.sqrt(np.diag(covariance))
        floor = np.array([floors.get(name, 0.0) for name in names])
        scale = np.maximum(std, floor) / np.where(std > 0, std, 1.0)
        covariance = covariance * np.outer(scale, scale)
        covariance[np.diag_indices(len(names))] = np.maximum(std, floor) ** 2 + 1e-12
        alone = set(DEFAULT_INDEPENDENT if independent is None else independent)
        for index, name in enumerate(names):
            if name in alone:
                variance = covariance[index, index]
                covariance[index, :] = covariance[:, index] = 0.0
                covariance[index, index] = variance
        distances = _mahalanobis(data, mean, covariance)
        return cls(
            statistics=names,
            mean=tuple(float(v) for v in mean),
            covariance=tuple(tuple(float(v) for v in row) for row in covariance),
            reference=tuple(float(v) for v in np.sort(distances)),
            slice_threshold=float(np.quantile(distances, slice_quantile)),
            study_threshold=float(np.quantile(distances, study_quantile)),
            sources=tuple(sources),
            settings={
                "shrinkage": shrinkage,
                "min_std": {name: floors.get(name, 0.0) for name in names},
                "slice_quantile": slice_quantile,
                "study_quantile": study_quantile,
                "independent": [name for name in names if name in alone],
                "slices": int(data.shape[0]),
            },
        )

    def distance(self, values: np.ndarray) -> np.ndarray:
        """Slice scores: Mahalanobis distances of ``(slices, statistics)`` from the mean."""
        return _mahalanobis(
            np.asarray(values, np.float64),
            np.asarray(self.mean),
            np.asarray(self.covariance),
        )

    def z_scores(self, values: np.ndarray) -> np.ndarray:
        """Each statistic in standard deviations from its calibration mean."""
        std = np.sqrt(np.diag(np.asarray(self.covariance)))
        return (np.asarray(values, np.float64) - np.asarray(self.mean)) / std

    def percentile(self, scores: np.ndarray | float) -> np.ndarray:
        """Percentage of calibration slices whose score is lower.

        Example:
            >>> rng = np.random.default_rng(0)
            >>> cal = GuardCalibration.fit(rng.normal(size=(100, 1)), ("log_kl",))
            >>> cal.percentile(np.array([0.0, 100.0])).tolist()
            [0.0, 100.0]
        """
        reference = np.asarray(self.reference)
        ranks = np.searchsorted(reference, np.asarray(scores, np.float64), side="left")
        return 100.0 * ranks / reference.size

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a weights file's record and JSON."""
        return {
            "statistics": list(self.statistics),
            "mean": list(self.mean),
            "covariance": [list(row) for row in self.covariance],
            "reference": list(self.reference),
            "slice_threshold": self.slice_threshold,
            "study_threshold": self.study_threshold,
            "sources": list(self.sources),
            "settings": dict(self.settings),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GuardCalibration:
        """Rebuild from :meth:`to_dict` (raises ``ValueError`` naming what is wrong)."""
        try:
            return cls(
                statistics=tuple(data["statistics"]),
                mean=tuple(float(v) for v in data["mean"]),
                covariance=tuple(tuple(float(v) for v in row) for row in data["covariance"]),
                reference=tuple(float(v) for v in data["reference"]),
                slice_threshold=float(data["slice_threshold"]),
                study_threshold=float(data["study_threshold"]),
                sources=tuple(data.get("sources", ())),
                settings=dict(data.get("settings", {})),
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"not a guard calibration: {type(err).__name__} {err}") from None


@dataclass(frozen=True)
class GuardResult:
    """The guard's verdict on one study.

    Attributes:
        study_score: The median slice score.
        study_threshold: The threshold it was held against.
        flagged: ``study_score > study_threshold``.
        slices: Slice indices ``k`` scored.
        slice_scores: Their scores.
        slice_threshold: Slice scores above it are unusual.
        percentile: Percentage of calibration slices scoring lower than the study score.
        reasons: ``(statistic, median z)`` of the statistics furthest from their
            calibration, largest first.
        neg_elbo: Median negative ELBO of the slices scored (nats), for comparison.
    """

    study_score: float
    study_threshold: float
    flagged: bool
    slices: np.ndarray
    slice_scores: np.ndarray
    slice_threshold: float
    percentile: float
    reasons: tuple[tuple[str, float], ...]
    neg_elbo: float

    @property
    def unusual_slices(self) -> int:
        """How many scored slices are above the slice threshold."""
        return int((self.slice_scores > self.slice_threshold).sum())

    def explanation(self, count: int = 2) -> str:
        """The statistics that moved most, in words.

        Example:
            >>> GuardResult(5.0, 3.0, True, np.arange(2), np.ones(2), 4.0, 100.0,
            ...             (("log_air_fraction", -6.2),), 1e5).explanation()
            'air around the body 6.2 sd below'
        """
        parts = [
            f"{_WORDS.get(name, name)} {abs(z):.1f} sd {'above' if z > 0 else 'below'}"
            for name, z in self.reasons[:count]
        ]
        return ", ".join(parts)

    def warning(self) -> str | None:
        """One line for records and reports when flagged, else ``None``."""
        if not self.flagged:
            return None
        return (
            f"out of distribution: guard score {self.study_score:.1f} > threshold "
            f"{self.study_threshold:.1f} (higher than {self.percentile:.0f} % of in-distribution "
            f"slices; {self.unusual_slices} of {self.slices.size} slices unusual; "
            f"{self.explanation()}). The models were not trained on data like this: check "
            "the input and do not trust the results without review."
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready metrics for run records."""
        return {
            "study_score": round(self.study_score, 3),
            "study_threshold": round(self.study_threshold, 3),
            "flagged": self.flagged,
            "percentile": round(self.percentile, 1),
            "slices_scored": int(self.slices.size),
            "slices_unusual": self.unusual_slices,
            "slice_threshold": round(self.slice_threshold, 3),
            "reasons": {name: round(z, 2) for name, z in self.reasons},
            "median_neg_elbo_nats": round(self.neg_elbo, 1),
            "slice_scores": [round(float(s), 3) for s in self.slice_scores],
            "slice_indices": [int(k) for k in self.slices],
        }


class OODGuard:
    """Score studies against the calibration stored with a VAE.

    Args:
        model: The VAE (:func:`ctpipe.checkpoints.vae.load_vae`).
        calibration: ``None``: the one in the model's weights file (``record["guard"]``).
        study_threshold: Use this threshold instead of the calibrated one.
        max_slices: Score at most this many slices per study, spread evenly.
        batch_size: Slices per forward pass.

    Raises:
        ValueError: No calibration is given or stored, or a setting is out of range.
    """

    def __init__(
        self,
        model: VAE,
        calibration: GuardCalibration | None = None,
        *,
        study_threshold: float | None = None,
        max_slices: int | None = 64,
        batch_size: int = 16,
    ) -> None:
        from ctpipe.vae_generate import model_grid

        record = getattr(model, "checkpoint_record", None) or {}
        if calibration is None:
            stored = record.get(GUARD_RECORD_KEY) if isinstance(record, dict) else None
            if not stored:
                raise ValueError(
                    "the VAE's weights hold no guard calibration; add one with "
                    "`ctpipe vae calibrate` (see ctpipe.anomaly.guard)"
                )
            calibration = GuardCalibration.from_dict(stored)
        if study_threshold is not None and not (
            math.isfinite(study_threshold) and study_threshold > 0
        ):
            raise ValueError(f"study_threshold must be > 0, got {study_threshold}")
        if max_slices is not None and max_slices < 1:
            raise ValueError(f"max_slices must be >= 1, got {max_slices}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.grid = model_grid(model)
        self.sigma = _sigma(record)
        self.calibration = calibration
        self.study_threshold = (
            calibration.study_threshold if study_threshold is None else float(study_threshold)
        )
        self.max_slices, self.batch_size = max_slices, batch_size

    def statistics(self, volume_hu: np.ndarray, spacing: Sequence[float]) -> SliceStatistics:
        """The statistics of the slices the guard scores."""
        return slice_statistics(
            volume_hu,
            spacing,
            self.model,
            self.grid,
            sigma=self.sigma,
            max_slices=self.max_slices,
            batch_size=self.batch_size,
        )

    def score(self, volume_hu: np.ndarray, spacing: Sequence[float]) -> GuardResult:
        """Score a study (float32 HU ``(i, j, k)``, voxel size in mm)."""
        stats = self.statistics(volume_hu, spacing)
        return self.judge(stats)

    def judge(self, stats: SliceStatistics) -> GuardResult:
        """The verdict on statistics already computed."""
        cal = self.calibration
        values = stats.select(cal.statistics)
        scores = cal.distance(values)
        study = float(np.median(scores))
        z = np.median(cal.z_scores(values), axis=0)
        order = np.argsort(-np.abs(z))
        return GuardResult(
            study_score=study,
            study_threshold=self.study_threshold,
            flagged=study > self.study_threshold,
            slices=stats.slices,
            slice_scores=scores,
            slice_threshold=cal.slice_threshold,
            percentile=float(cal.percentile(study)),
            reasons=tuple((cal.statistics[i], float(z[i])) for i in order),
            neg_elbo=float(np.median(stats.column("neg_elbo"))),
        )

    def settings(self) -> dict[str, Any]:
        """What the guard used, for records."""
        return {
            "statistics": list(self.calibration.statistics),
            "study_threshold": self.study_threshold,
            "calibrated_study_threshold": self.calibration.study_threshold,
            "max_slices": self.max_slices,
            "calibration_sources": list(self.calibration.sources),
        }


def calibrate_guard(
    model: VAE,
    volumes: Sequence[tuple[str, np.ndarray, Sequence[float]]],
    *,
    statistics: Sequence[str] = GUARD_STATISTICS,
    **fit_options: Any,
) -> GuardCalibration:
    """Fit the guard's calibration on held-back in-distribution volumes.

    Args:
        model: The VAE.
        volumes: ``(name, hu, spacing)`` of CT the model did not train on but should
            accept (held-back slices of normal-dose CT).
        statistics: The statistics the guard uses.
        **fit_options: Passed to :meth:`GuardCalibration.fit`.

    Example:
        >>> cal = calibrate_guard(vae, [("L143", hu, spacing)])  # doctest: +SKIP
    """
    from ctpipe.vae_generate import model_grid

    grid = model_grid(model)
    sigma = _sigma(getattr(model, "checkpoint_record", None) or {})
    blocks, sources = [], []
    for name, hu, spacing in volumes:
        stats = slice_statistics(hu, spacing, model, grid, sigma=sigma)
        blocks.append(stats.select(statistics))
        sources.append(f"{name}: {stats.slices.size} slices")
    return GuardCalibration.fit(np.concatenate(blocks), statistics, sources=sources, **fit_options)


def write_calibrated_weights(
    weights: str | PathLike[str], calibration: GuardCalibration, path: str | PathLike[str]
) -> Path:
    """Write a copy of VAE weights whose record holds the calibration (atomically).

    ``path`` may be ``weights`` itself.
    """
    import torch

    from ctpipe.checkpoints.file import read_checkpoint
    from ctpipe.checkpoints.vae import VAE_FORMAT
    from ctpipe.io.atomic import atomic_path

    checkpoint = dict(read_checkpoint(weights, "cpu", checkpoint_format=VAE_FORMAT))
    record = dict(checkpoint["ctpipe"])
    record[GUARD_RECORD_KEY] = calibration.to_dict()
    checkpoint["ctpipe"] = record
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)
    return Path(path)


def _sigma(record: Mapping[str, Any]) -> float:
    loss = record.get("config", {}).get("loss", {}) if isinstance(record, Mapping) else {}
    sigma = float(loss.get("sigma", 0.05))
    return sigma if math.isfinite(sigma) and sigma > 0 else 0.05


def _mahalanobis(values: np.ndarray, mean: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    difference = np.atleast_2d(values) - mean
    solved = np.linalg.solve(covariance, difference.T).T
    return np.sqrt(np.maximum(np.einsum("ni,ni->n", difference, solved), 0.0))
