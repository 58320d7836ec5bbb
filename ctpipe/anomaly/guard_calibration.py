"""The out-of-distribution guard's calibration: where in-distribution slices lie.

The guard (:mod:`ctpipe.anomaly.guard`) describes each slice by the statistics of
:mod:`ctpipe.anomaly.guard_statistics`. Its calibration (:class:`GuardCalibration`) holds
their mean and covariance on held-back in-distribution slices (shrunk towards the diagonal,
each standard deviation at least a floor, the body's shape and intensity statistics taken
as uncorrelated with the rest), the calibration slices' own scores and the slice and study
thresholds. :func:`calibrate_guard` fits it on volumes; :func:`write_calibrated_weights`
stores it in a VAE weights file's record (key :data:`GUARD_RECORD_KEY`), where
:class:`~ctpipe.anomaly.guard.OODGuard` finds it.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> cal = GuardCalibration.fit(rng.normal(size=(200, 1)), ("log_kl",))
    >>> cal.statistics, cal.settings["slices"], bool(cal.study_threshold > 2.0)
    (('log_kl',), 200, True)
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
    V3_STATISTICS,
    V4_STATISTICS,
    V5_STATISTICS,
    V6_STATISTICS,
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
    "calibrate_guard",
    "vae_sigma",
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
    "log_flat_fraction": 0.5,
    "log_halo_fraction": 0.5,
    "log_bright_blob_mm2": 1.0,
    "log_dense_core_mm2": 1.5,
    "fat_hu": 8.0,
    "ring_ratio": 0.25,
    "streak_ratio": 0.3,
    "log_skin_layer_mm2": 1.0,
    "log_block_ratio": 0.08,
    "log_impulse_fraction": 1.0,
    "log_quiet_tissue_ratio": 0.7,
}
#: Statistics :meth:`GuardCalibration.fit` takes as uncorrelated with the others.
DEFAULT_INDEPENDENT = (
    *SHAPE_STATISTICS,
    *V3_STATISTICS,
    *V4_STATISTICS,
    *V5_STATISTICS,
    *V6_STATISTICS,
)


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
        groups: Sequence[str] | None = None,
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
            groups: The patient (or series) of each slice. With three or more, the
                thresholds and :attr:`reference` come from **leave-one-group-out** scores:
                each group's slices are scored by a calibration fitted, the same way,
                without that group. A new patient lies further from the mean than the
                slices the mean was fitted on, and in-sample scores understate that (the
                guard's second version flagged normal variants through it). ``None``:
                in-sample scores.

        Raises:
            ValueError: Fewer slices than twice the statistics, groups that do not fit the
                slices, or settings out of range.
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
        floor = np.array([floors.get(name, 0.0) for name in names])
        alone = set(DEFAULT_INDEPENDENT if independent is None else independent)
        mask = np.array([name in alone for name in names])
        mean, covariance = _moments(data, shrinkage, floor, mask)
        held_out = groups is not None and len(set(groups)) >= 3
        if groups is not None and len(groups) != data.shape[0]:
            raise ValueError(f"groups must name each of {data.shape[0]} slices, got {len(groups)}")
        if held_out:
            labels = np.asarray(list(groups))
            distances = np.empty(data.shape[0])
            for group in np.unique(labels):
                inside = labels == group
                other_mean, other_cov = _moments(data[~inside], shrinkage, floor, mask)
                distances[inside] = _mahalanobis(data[inside], other_mean, other_cov)
        else:
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
                "reference_scores": "leave-one-group-out" if held_out else "in-sample",
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
        **fit_options: Passed to :meth:`GuardCalibration.fit`; ``groups`` defaults to the
            volumes' names, so the thresholds come from leave-one-volume-out scores.

    Example:
        >>> cal = calibrate_guard(vae, [("L143", hu, spacing)])  # doctest: +SKIP
    """
    from ctpipe.vae_generate import model_grid

    grid = model_grid(model)
    sigma = vae_sigma(getattr(model, "checkpoint_record", None) or {})
    blocks, sources, groups = [], [], []
    for name, hu, spacing in volumes:
        stats = slice_statistics(hu, spacing, model, grid, sigma=sigma)
        blocks.append(stats.select(statistics))
        sources.append(f"{name}: {stats.slices.size} slices")
        groups += [name] * stats.slices.size
    fit_options.setdefault("groups", groups)
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


def vae_sigma(record: Mapping[str, Any]) -> float:
    """The decoder's fixed standard deviation in a VAE record's loss config (default 0.05)."""
    loss = record.get("config", {}).get("loss", {}) if isinstance(record, Mapping) else {}
    sigma = float(loss.get("sigma", 0.05))
    return sigma if math.isfinite(sigma) and sigma > 0 else 0.05


def _moments(
    data: np.ndarray, shrinkage: float, floor: np.ndarray, independent: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance: shrunk to the diagonal, floored, ``independent`` rows cut loose."""
    mean = data.mean(axis=0)
    covariance = np.atleast_2d(np.cov(data, rowvar=False))
    covariance = (1 - shrinkage) * covariance + shrinkage * np.diag(np.diag(covariance))
    std = np.sqrt(np.diag(covariance))
    scale = np.maximum(std, floor) / np.where(std > 0, std, 1.0)
    covariance = covariance * np.outer(scale, scale)
    covariance[np.diag_indices(len(floor))] = np.maximum(std, floor) ** 2 + 1e-12
    for index in np.flatnonzero(independent):
        variance = covariance[index, index]
        covariance[index, :] = covariance[:, index] = 0.0
        covariance[index, index] = variance
    return mean, covariance


def _mahalanobis(values: np.ndarray, mean: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    difference = np.atleast_2d(values) - mean
    solved = np.linalg.solve(covariance, difference.T).T
    return np.sqrt(np.maximum(np.einsum("ni,ni->n", difference, solved), 0.0))
