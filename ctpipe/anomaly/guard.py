"""Out-of-distribution guard: how far a study is from the CT the models were trained on.

ctpipe's models answer confidently outside what they know (a segmenter trained on the
abdomen labels a head CT's brain as liver). The guard scores a study *before* the models
run, with the project's VAE (Kingma & Welling 2014), trained on normal-dose CT slices:

1. each slice (at most ``max_slices``, spread evenly) is described by the statistics of
   :mod:`ctpipe.anomaly.guard_statistics`: the VAE's reconstruction error at two scales
   (the layout, fine detail), three input checks (noise, metal, air) and, since the
   guard's second version, six of the body's shape and intensity (area and width over
   height in mm, clipping at the maximum, tissue of 150-700 HU, cupping, bone under the
   skin), which see what the VAE's window and 3 mm grid cannot, since the third,
   three more (constant patches in the body, a ghost just outside it, a uniform bright
   lumen away from bone), since the fourth, four more (thick dense tissue, the HU of
   fat, rings about the scan's centre, streaks in one direction), and since the fifth,
   two more (a dense layer just outside the body, the 8 x 8 blocks of lossy JPEG), and
   since the sixth, two more (isolated extreme pixels, soft tissue without noise); a
   volume is scored in LPS array order, as the VAE was trained (:meth:`OODGuard.score`
   turns it there from its affine, so a NIfTI file stored in RAS order is not seen
   upside down);
2. its **slice score** is the Mahalanobis distance of those statistics from their mean on
   held-back in-distribution slices (:class:`GuardCalibration`, in
   :mod:`ctpipe.anomaly.guard_calibration`, stored in the VAE's
   weights file; the shape and intensity statistics are taken as uncorrelated with the
   rest, :data:`DEFAULT_INDEPENDENT`), so a slice is unusual in either direction: a
   blurred, noisy or streaked slice, but also a too-simple one (a phantom, a flat image)
   that a likelihood alone would call *more* typical (Nalisnick et al., ICLR 2019; the
   statistics-then-density approach of Morningstar et al., AISTATS 2021);
3. the **study score** is the median slice score; the study is **flagged** when it is above
   the calibrated study threshold (since the third version, the 99th percentile of the
   calibration slices' scores each taken by a calibration fitted without that slice's
   patient, so that the threshold allows for a new patient). Each score also comes as a
   percentile of the calibration slices' scores, and the statistics that moved most are
   named (in standard deviations of the calibration), so a warning says why.

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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

# The calibration lives in its own module; its names stay importable from here.
from ctpipe.anomaly.guard_calibration import DEFAULT_INDEPENDENT as DEFAULT_INDEPENDENT
from ctpipe.anomaly.guard_calibration import DEFAULT_MIN_STD as DEFAULT_MIN_STD
from ctpipe.anomaly.guard_calibration import GUARD_RECORD_KEY as GUARD_RECORD_KEY
from ctpipe.anomaly.guard_calibration import GUARD_STATISTICS as GUARD_STATISTICS
from ctpipe.anomaly.guard_calibration import GuardCalibration as GuardCalibration
from ctpipe.anomaly.guard_calibration import calibrate_guard as calibrate_guard
from ctpipe.anomaly.guard_calibration import vae_sigma
from ctpipe.anomaly.guard_calibration import write_calibrated_weights as write_calibrated_weights
from ctpipe.anomaly.guard_statistics import SliceStatistics, slice_statistics

if TYPE_CHECKING:
    from ctpipe.nets.vae import VAE

__all__ = ["GuardResult", "OODGuard"]

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
    "log_flat_fraction": "constant patches inside the body (painted or not CT)",
    "log_halo_fraction": "a ghost of the body just outside it (motion)",
    "log_bright_blob_mm2": "a uniform lumen of 350-700 HU away from bone (dense contrast)",
    "log_dense_core_mm2": "thick tissue of 600-3000 HU (dense contrast, not thin cortex)",
    "fat_hu": "the HU of fat (energy or calibration)",
    "ring_ratio": "rings about the scan's centre",
    "streak_ratio": "streaks in one direction",
    "log_skin_layer_mm2": "dense material just outside the body (a shield)",
    "log_block_ratio": "steps at the edges of 8 x 8 blocks (lossy JPEG)",
    "log_impulse_fraction": "isolated extreme pixels (corrupted pixel data)",
    "log_quiet_tissue_ratio": "soft tissue without noise (an edited or filled region)",
}


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
        self.sigma = vae_sigma(record)
        self.calibration = calibration
        self.study_threshold = (
            calibration.study_threshold if study_threshold is None else float(study_threshold)
        )
        self.max_slices, self.batch_size = max_slices, batch_size

    def statistics(
        self,
        volume_hu: np.ndarray,
        spacing: Sequence[float],
        *,
        affine_ras: np.ndarray | None = None,
    ) -> SliceStatistics:
        """The statistics of the slices the guard scores (arguments as :meth:`score`)."""
        if affine_ras is not None:
            from ctpipe.io.geometry import reorient, spacing_of

            volume_hu, affine = reorient(volume_hu, affine_ras)
            spacing = spacing_of(affine)
        return slice_statistics(
            volume_hu,
            spacing,
            self.model,
            self.grid,
            sigma=self.sigma,
            max_slices=self.max_slices,
            batch_size=self.batch_size,
        )

    def score(
        self,
        volume_hu: np.ndarray,
        spacing: Sequence[float],
        *,
        affine_ras: np.ndarray | None = None,
    ) -> GuardResult:
        """Score a study.

        Args:
            volume_hu: float32 HU ``(i, j, k)``; in LPS order (an axial DICOM series as
                ctpipe reads it: ``i`` to the patient's left, ``j`` to the back) unless
                ``affine_ras`` is given. The VAE was trained on slices in that order
                (rotated by at most 10 degrees), so a body turned upside down looks
                unusual to it.
            spacing: Voxel size in mm, ``(i, j, k)``; taken from ``affine_ras`` when given.
            affine_ras: The volume's ``(i, j, k)`` -> RAS affine: the volume is first
                turned to LPS order (:func:`ctpipe.io.geometry.reorient`), so a NIfTI
                file stored in RAS order scores as its DICOM series does.
        """
        stats = self.statistics(volume_hu, spacing, affine_ras=affine_ras)
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
