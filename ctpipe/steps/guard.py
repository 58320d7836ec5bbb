"""The ``guard`` step: is the study like the CT the models were trained on?

It scores the input (:class:`ctpipe.anomaly.guard.OODGuard`: the shipped VAE and the
calibration stored with it) before the models run. A study above the threshold gets a
warning in ``study.warnings`` (the runner copies it to the record, the report and the batch
summary; the ``segment`` step marks its volumes); with ``action: skip`` it also sets
``study.stop``, so no other step runs. The verdict goes to ``study.analyses["guard"]``.

Example:
    >>> GuardStep(action="stop")
    Traceback (most recent call last):
    ...
    ValueError: action must be 'warn' or 'skip', got 'stop'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from ctpipe.devices import check_device_setting, compute_device
from ctpipe.schema import require
from ctpipe.steps.base import LoadedModel, StudyState, file_sha256
from ctpipe.weights import DEFAULT_VAE

__all__ = ["GuardStep", "guard_flagged"]

#: ``study.stop`` of a study the guard skips.
OUT_OF_DISTRIBUTION = "out_of_distribution"


@dataclass(frozen=True)
class GuardStep:
    """The ``guard`` step (:class:`ctpipe.anomaly.guard.OODGuard`, a VAE) and its settings.

    Args:
        weights: ``default`` (the shipped VAE with its calibration) or a calibrated VAE
            checkpoint (``ctpipe vae calibrate``).
        device: The compute device (``auto``: CUDA when available; :mod:`ctpipe.devices`).
        action: What a study out of distribution gets: ``warn`` (run every step; the
            record, the report and the batch summary carry the warning and the segment
            volumes are marked) or ``skip`` (run no other step).
        threshold: Study score above which a study is out of distribution (``None``:
            the calibrated threshold stored with the weights).
        max_slices: Slices scored per study, spread evenly.
        batch_size: Slices per forward pass.
    """

    name: ClassVar[str] = "guard"
    shipped_weights: ClassVar[str | None] = DEFAULT_VAE

    weights: str = "default"
    device: str = "auto"
    action: Literal["warn", "skip"] = "warn"
    threshold: float | None = None
    max_slices: int = 64
    batch_size: int = 16

    def __post_init__(self) -> None:
        check_device_setting("device", self.device)
        require(self.action in ("warn", "skip"), "action must be 'warn' or 'skip'", self.action)
        if self.threshold is not None:
            require(self.threshold > 0, "threshold must be > 0", self.threshold)
        require(self.max_slices >= 1, "max_slices must be >= 1", self.max_slices)
        require(self.batch_size >= 1, "batch_size must be >= 1", self.batch_size)

    def load(self, weights: Path | None) -> LoadedModel:
        """The VAE with its guard calibration (refused, with what to do, when it has none)."""
        from ctpipe.anomaly.guard_calibration import GUARD_RECORD_KEY
        from ctpipe.checkpoints.vae import load_vae
        from ctpipe.errors import InputError

        model = load_vae(weights)
        if not model.checkpoint_record.get(GUARD_RECORD_KEY):
            raise InputError(
                weights,
                "this VAE holds no guard calibration; add one with `ctpipe vae calibrate` "
                "or use guard.weights: default",
            )
        return LoadedModel(model, "vae-guard", file_sha256(weights), weights)

    def run(self, study: StudyState, model: LoadedModel | None) -> dict[str, Any]:
        """Score the input volume; warn (and stop the study, with ``skip``) when flagged."""
        from ctpipe.anomaly.guard import OODGuard

        device = compute_device(self.device)
        model.module.to(device)
        guard = OODGuard(
            model.module,
            study_threshold=self.threshold,
            max_slices=self.max_slices,
            batch_size=self.batch_size,
        )
        volume = study.volume
        result = guard.score(volume.hu, volume.spacing, affine_ras=volume.affine_ras)
        study.analyses["guard"] = result
        warning = result.warning()
        if warning is not None:
            study.warnings.append(warning)
            if self.action == "skip":
                study.stop = OUT_OF_DISTRIBUTION
        return {
            "model": model.describe(),
            "settings": {"device": device, "action": self.action, **guard.settings()},
            "metrics": result.to_dict(),
            "warning": warning,
        }


def guard_flagged(study: StudyState) -> bool:
    """Whether the ``guard`` step found the study out of distribution."""
    result = study.analyses.get("guard")
    return bool(result is not None and result.flagged)
