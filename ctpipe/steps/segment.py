"""The ``segment`` step: label the current image with a segmenter or a MONAI bundle.

The labels go to ``study.labels``, the class map to ``study.analyses["class_map"]`` and
each class's statistics (volume, HU of the input) to ``study.analyses["statistics"]``;
the record holds them too. For a ctpipe segmenter, preprocessing and window defaults come
from the checkpoint (what the network was validated with) and the step's settings override
them; a bundle (:mod:`ctpipe.bundle`) keeps its own.

Example:
    >>> SegmentStep(sw_device="cpu").run  # doctest: +ELLIPSIS
    <bound method SegmentStep.run of SegmentStep(...)>
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from ctpipe.devices import check_device_setting, compute_device, output_device
from ctpipe.schema import require
from ctpipe.steps.base import LoadedModel, StudyState, file_sha256, plain
from ctpipe.steps.guard import guard_flagged
from ctpipe.weights import DEFAULT_SEGMENTER

__all__ = ["SegmentStep"]


@dataclass(frozen=True)
class SegmentStep:
    """The ``segment`` step (:func:`ctpipe.segment.segment_volume`) and its settings.

    Args:
        weights: ``default`` (the shipped segmenter) or a ctpipe segmenter checkpoint.
        bundle: A local MONAI bundle folder to segment with instead (its own network,
            transforms and window settings; :mod:`ctpipe.bundle`).
        bundle_model: The bundle's weights, ``model.pt`` or ``model.ts`` (``None``:
            ``model.pt`` when present).
        device: The output device, where the labels are assembled (``auto``: the CPU;
            :mod:`ctpipe.devices`).
        sw_device: The compute device, where the network runs (``auto``: CUDA when
            available).
        roi_size: Sliding-window size in voxels ``(i, j, k)``; ``None``: the model's.
        overlap: Fraction shared by neighbouring windows, in [0, 1).
        blend: ``gaussian`` or ``constant`` weighting of overlapping windows.
        sw_batch_size: Windows per forward pass.
        amp: Mixed precision for a bundle's network on CUDA (ignored on the CPU).

    Example:
        >>> SegmentStep(overlap=1.0)
        Traceback (most recent call last):
        ...
        ValueError: overlap must be >= 0 and < 1, got 1.0
        >>> SegmentStep(weights="mine.pt", bundle="bundles/spleen_ct_segmentation")
        Traceback (most recent call last):
        ...
        ValueError: give weights or bundle, not both (a bundle brings its own weights)
    """

    name: ClassVar[str] = "segment"
    shipped_weights: ClassVar[str | None] = DEFAULT_SEGMENTER

    weights: str = "default"
    bundle: str | None = None
    bundle_model: Literal["model.pt", "model.ts"] | None = None
    device: str = "auto"
    sw_device: str = "auto"
    roi_size: tuple[int, ...] | None = None
    overlap: float = 0.25
    blend: Literal["gaussian", "constant"] = "gaussian"
    sw_batch_size: int = 2
    amp: bool = True

    def __post_init__(self) -> None:
        check_device_setting("device", self.device)
        check_device_setting("sw_device", self.sw_device)
        if self.bundle is not None and self.weights != "default":
            raise ValueError("give weights or bundle, not both (a bundle brings its own weights)")
        if self.bundle is not None and not self.bundle.strip():
            raise ValueError("bundle must name a bundle folder, got an empty string")
        if self.bundle_model is not None and self.bundle is None:
            raise ValueError("bundle_model needs a bundle")
        require(0 <= self.overlap < 1, "overlap must be >= 0 and < 1", self.overlap)
        require(self.sw_batch_size >= 1, "sw_batch_size must be >= 1", self.sw_batch_size)
        if self.roi_size is not None and (
            len(self.roi_size) not in (2, 3) or min(self.roi_size) < 1
        ):
            raise ValueError(f"roi_size must be 2 or 3 positive integers, got {self.roi_size}")

    def load(self, weights: Path | None) -> LoadedModel:
        """The model: a checkpoint with its validated inference settings, or a bundle.

        ``weights`` is the segmenter checkpoint, or the bundle's folder when ``bundle`` is
        set (built for the step's devices).
        """
        if self.bundle is not None:
            return self._load_bundle(weights)
        import inspect

        from ctpipe.checkpoints.segmenter import load_segmenter
        from ctpipe.segment import segment_volume

        model, config = load_segmenter(weights)
        stored = dict(getattr(model, "checkpoint_record", {}).get("inference", {}))
        accepted = set(inspect.signature(segment_volume).parameters)
        settings = {
            k: tuple(v) if isinstance(v, list) else v for k, v in stored.items() if k in accepted
        }
        return LoadedModel(
            model, config.architecture, file_sha256(weights), weights, config, settings
        )

    def _load_bundle(self, folder: Path) -> LoadedModel:
        from ctpipe.bundle import BundleSegmenter, find_bundle

        bundle = find_bundle(folder, model=self.bundle_model)
        segmenter = BundleSegmenter(
            bundle,
            device=output_device(self.device),
            sw_device=compute_device(self.sw_device),
            amp=self.amp,
        )
        name = f"bundle {bundle.name} {bundle.version}".strip()
        return LoadedModel(segmenter, name, segmenter.weights_sha256, bundle.model_file, bundle)

    def run(self, study: StudyState, model: LoadedModel | None) -> dict[str, Any]:
        """Label ``study.image``; record the settings used and each class's statistics."""
        import torch
        from monai.data import MetaTensor

        from ctpipe.organ_statistics import organ_statistics
        from ctpipe.segment import class_volumes

        image = MetaTensor(
            torch.from_numpy(np.ascontiguousarray(study.image, dtype=np.float32)),
            affine=torch.from_numpy(study.volume.affine_ras),
        )
        if _is_bundle(model):
            labels = model.module(image)
            class_map = dict(model.config.class_map)
            settings = model.module.record()
        else:
            labels, settings = self._segment_with_model(image, model)
            class_map = dict(model.config.class_map)
        study.labels = np.asarray(labels.cpu().numpy())
        study.analyses["class_map"] = dict(class_map)
        names = ("background", *sorted(class_map, key=class_map.get))
        rows = class_volumes(study.labels, study.volume.affine_lps, names)
        volumes = {name: round(millilitres, 2) for name, _, millilitres in rows}
        volume = study.volume
        statistics = organ_statistics(study.labels, volume.hu, volume.affine_lps, class_map)
        study.analyses["statistics"] = statistics
        metrics: dict[str, Any] = {"volume_ml": volumes}
        if guard_flagged(study):
            metrics["volume_warning"] = (
                "UNRELIABLE: the guard found this study out of distribution; the segmenter "
                "was not trained on data like it, so these volumes are not measurements"
            )
        return {
            "model": model.describe(),
            "settings": settings,
            "class_map": dict(class_map),
            "metrics": metrics,
            "statistics": {"hu_of": "input", "classes": [row.to_dict() for row in statistics]},
        }

    def _segment_with_model(self, image: Any, model: LoadedModel) -> tuple[Any, dict[str, Any]]:
        """Labels of a ctpipe segmenter checkpoint, and the settings used."""
        from ctpipe.segment import segment_volume

        options = dict(model.settings)
        if self.roi_size is not None:
            options["roi_size"] = self.roi_size
        options.update(
            overlap=self.overlap,
            mode=self.blend,
            sw_batch_size=self.sw_batch_size,
            sw_device=compute_device(self.sw_device),
            device=output_device(self.device),
        )
        labels = segment_volume(image, model.module, config=model.config, **options)
        return labels, {k: plain(v) for k, v in options.items()}


def _is_bundle(model: LoadedModel) -> bool:
    from ctpipe.bundle import SegmentationBundle

    return isinstance(model.config, SegmentationBundle)
