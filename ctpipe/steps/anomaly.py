"""The ``anomaly`` step: a VAE's reconstruction error as a per-voxel map and slice scores.

The result (:class:`ctpipe.anomaly.AnomalyResult`) goes to ``study.analyses["anomaly"]``,
where the export writes the map and the overlay; the record holds the slice scores.

Example:
    >>> AnomalyStep(samples=0)
    Traceback (most recent call last):
    ...
    ValueError: samples must be >= 1, got 0
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ctpipe.devices import check_device_setting, compute_device
from ctpipe.schema import require, require_at_least
from ctpipe.steps.base import LoadedModel, StudyState, file_sha256
from ctpipe.weights import DEFAULT_VAE

__all__ = ["AnomalyStep"]


@dataclass(frozen=True)
class AnomalyStep:
    """The ``anomaly`` step (:func:`ctpipe.anomaly.anomaly_volume`, a VAE) and its settings.

    Args:
        weights: ``default`` (the shipped VAE) or a ctpipe VAE checkpoint.
        device: The compute device (``auto``: CUDA when available; :mod:`ctpipe.devices`).
        samples: Posterior draws averaged per slice.
        seed: Seed of the draws (the same seed gives the same map).
        smooth_mm: Gaussian smoothing of the map (mm; 0: none).
        batch_size: Slices per forward pass.
    """

    name: ClassVar[str] = "anomaly"
    shipped_weights: ClassVar[str | None] = DEFAULT_VAE

    weights: str = "default"
    device: str = "auto"
    samples: int = 4
    seed: int = 0
    smooth_mm: float = 0.0
    batch_size: int = 16

    def __post_init__(self) -> None:
        check_device_setting("device", self.device)
        require_at_least(self, ("samples", "batch_size"), 1)
        require(self.smooth_mm >= 0, "smooth_mm must be >= 0", self.smooth_mm)

    def load(self, weights: Path | None) -> LoadedModel:
        """The VAE of a ctpipe checkpoint (:func:`ctpipe.checkpoints.vae.load_vae`)."""
        from ctpipe.checkpoints.vae import load_vae

        return LoadedModel(load_vae(weights), "vae", file_sha256(weights), weights)

    def run(self, study: StudyState, model: LoadedModel | None) -> dict[str, Any]:
        """Score every slice of ``study.image``; keep the result for the export."""
        from ctpipe.anomaly import anomaly_volume

        device = compute_device(self.device)
        model.module.to(device)
        result = anomaly_volume(
            np.ascontiguousarray(study.image, dtype=np.float32),
            model.module,
            spacing=study.volume.spacing,
            samples=self.samples,
            seed=self.seed,
            smooth_mm=self.smooth_mm,
            batch_size=self.batch_size,
        )
        study.analyses["anomaly"] = result
        order = np.argsort(result.neg_elbo)[::-1][:3]
        return {
            "model": model.describe(),
            "settings": {
                "device": device,
                "samples": self.samples,
                "seed": self.seed,
                "smooth_mm": self.smooth_mm,
            },
            "metrics": {
                "max_neg_elbo_nats": round(float(result.neg_elbo.max()), 1),
                "median_neg_elbo_nats": round(float(np.median(result.neg_elbo)), 1),
                "top_slices": [int(k) for k in order],
                "map_p99_hu": round(float(np.percentile(result.map_hu[result.body], 99)), 1)
                if result.body.any()
                else 0.0,
            },
        }
