"""The ``denoise`` step: a 2-D denoiser (RED-CNN) over every slice, padding kept as it was.

Example:
    >>> import numpy as np, torch
    >>> from ctpipe.io.dicom_volume import CTVolume
    >>> from ctpipe.steps.base import LoadedModel, StudyState
    >>> study = StudyState(CTVolume(np.zeros((16, 16, 2), np.float32), np.eye(4)))
    >>> model = LoadedModel(torch.nn.Identity(), "identity", "0" * 64)
    >>> record = DenoiseStep(device="cpu").run(study, model)
    >>> record["model"]["name"], record["output"], study.image.shape
    ('identity', 'denoised', (16, 16, 2))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ctpipe.devices import check_device_setting, compute_device
from ctpipe.schema import require
from ctpipe.steps.base import LoadedModel, StudyState, file_sha256, rms
from ctpipe.weights import DEFAULT_DENOISER

__all__ = ["PADDING_BELOW_HU", "DenoiseStep"]

#: Voxels below this HU (air is -1000; scanners pad outside the field of view with
#: -2000 or -3024) are padding: the denoiser leaves them as they are.
PADDING_BELOW_HU = -1024.0


@dataclass(frozen=True)
class DenoiseStep:
    """The ``denoise`` step (:func:`ctpipe.inference.denoise_volume`) and its settings.

    Args:
        weights: ``default`` (the shipped RED-CNN) or a ctpipe checkpoint path.
        device: The compute device (``auto``: CUDA when available; :mod:`ctpipe.devices`).
        batch_size: Slices per forward pass.
        amp: bfloat16 autocast on CUDA (ignored on CPU). Off by default: it cost the
            shipped RED-CNN 0.5-0.7 dB PSNR (``benchmarks/RESULTS.md``).
        self_ensemble: Average over the 8 flips and 90° rotations of each slice (8x the
            time; :class:`ctpipe.inference.SliceInferer`). Off by default.

    Example:
        >>> DenoiseStep(batch_size=0)
        Traceback (most recent call last):
        ...
        ValueError: batch_size must be >= 1, got 0
    """

    name: ClassVar[str] = "denoise"
    shipped_weights: ClassVar[str | None] = DEFAULT_DENOISER

    weights: str = "default"
    device: str = "auto"
    batch_size: int = 4
    amp: bool = False
    self_ensemble: bool = False

    def __post_init__(self) -> None:
        check_device_setting("device", self.device)
        require(self.batch_size >= 1, "batch_size must be >= 1", self.batch_size)
        require(
            isinstance(self.self_ensemble, bool),
            "self_ensemble must be true or false",
            self.self_ensemble,
        )

    def load(self, weights: Path | None) -> LoadedModel:
        """The denoiser of a ctpipe checkpoint (:mod:`ctpipe.checkpoints.denoiser`)."""
        from ctpipe.checkpoints.denoiser import load_denoiser

        model = load_denoiser(weights)
        name = type(model).__name__.lower()
        config = getattr(model, "config", None)
        return LoadedModel(model, name, file_sha256(weights), weights, config=config)

    def run(self, study: StudyState, model: LoadedModel | None) -> dict[str, Any]:
        """Denoise ``study.image`` (it becomes the ``denoised`` output).

        A kernel-matched model runs the network of the series' ConvolutionKernel family;
        the record's ``kernel`` says which.
        """
        from ctpipe.inference import denoise_volume, route_denoiser

        device = compute_device(self.device)
        before = study.image
        network, routing = route_denoiser(
            model.module, study.volume.meta.get("ConvolutionKernel") or None
        )
        denoised = denoise_volume(
            np.ascontiguousarray(before, dtype=np.float32),
            network,
            batch_size=self.batch_size,
            sw_device=device,
            device="cpu",
            amp=self.amp if device.startswith("cuda") else False,
            self_ensemble=self.self_ensemble,
        )
        result = np.asarray(denoised, dtype=np.float32)
        padding = before < PADDING_BELOW_HU  # outside the scan's field of view: keep as is
        result[padding] = before[padding]
        study.image = result
        study.outputs["denoised"] = result
        change = (result - before)[~padding]
        return {
            "output": "denoised",
            "model": model.describe(),
            **({"kernel": routing} if routing else {}),
            "settings": {
                "device": device,
                "batch_size": self.batch_size,
                "amp": self.amp,
                "self_ensemble": self.self_ensemble,
            },
            "metrics": {
                "mean_change_hu": round(float(change.mean()), 3) if change.size else 0.0,
                "rms_change_hu": rms(change),
                "padding_voxels_kept": int(padding.sum()),
            },
        }
