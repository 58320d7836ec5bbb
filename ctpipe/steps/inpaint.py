"""The ``inpaint`` step: fill a hole in the image with a DCGAN's latent search.

The hole comes from a mask file, from the ``segment`` step's labels or from a seeded
generator; the filled image replaces ``study.image`` (the ``inpainted`` output) and the
mask goes to ``study.analyses["inpaint_mask"]``.

Example:
    >>> InpaintStep(mask="file")
    Traceback (most recent call last):
    ...
    ValueError: mask_path must be given for mask 'file'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from ctpipe.devices import check_device_setting, compute_device
from ctpipe.inpaint.volume import InpaintSettings
from ctpipe.steps.base import LoadedModel, StudyState, file_sha256, plain
from ctpipe.transforms import BODY_THRESHOLD_HU
from ctpipe.weights import DEFAULT_GAN

__all__ = ["InpaintStep"]


@dataclass(frozen=True)
class InpaintStep:
    """The ``inpaint`` step (:func:`ctpipe.inpaint.inpaint_volume`, a DCGAN) and its settings.

    Args:
        weights: ``default`` (the shipped DCGAN) or a ctpipe GAN checkpoint.
        device: The compute device (``auto``: CUDA when available; :mod:`ctpipe.devices`).
        mask: Where the hole comes from: ``file`` (``mask_path``, NIfTI on the CT's grid
            or a PNG repeated on every slice), ``labels`` (the voxels the ``segment``
            step gave ``mask_classes``) or ``generated`` (a seeded ``mask_kind`` shape).
        mask_path: The mask file for ``file``; ``{series}`` is replaced by the input's
            folder or file name (one mask per study of a batch).
        mask_classes: Class names for ``labels``.
        mask_kind: ``box``, ``strokes`` or ``streaks`` (metal-like) for ``generated``.
        mask_slices: ``[start, stop)`` slices a generated mask covers (``None``: all).
        seed: Seed of a generated mask.
        settings: The search, initialisation, sequence and blending settings.
    """

    name: ClassVar[str] = "inpaint"
    shipped_weights: ClassVar[str | None] = DEFAULT_GAN

    weights: str = "default"
    device: str = "auto"
    mask: Literal["generated", "file", "labels"] = "generated"
    mask_path: str | None = None
    mask_classes: tuple[str, ...] = ()
    mask_kind: Literal["box", "strokes", "streaks"] = "streaks"
    mask_slices: tuple[int, int] | None = None
    seed: int = 0
    settings: InpaintSettings = field(default_factory=InpaintSettings)

    def __post_init__(self) -> None:
        check_device_setting("device", self.device)
        object.__setattr__(self, "mask_classes", tuple(self.mask_classes))
        if self.mask == "file" and not self.mask_path:
            raise ValueError("mask_path must be given for mask 'file'")
        if self.mask == "labels" and not self.mask_classes:
            raise ValueError("mask_classes must name at least one class for mask 'labels'")

    def load(self, weights: Path | None) -> LoadedModel:
        """Generator and discriminator of a DCGAN checkpoint (:mod:`ctpipe.checkpoints.gan`)."""
        from ctpipe.checkpoints.gan import load_gan

        return LoadedModel(load_gan(weights), "dcgan", file_sha256(weights), weights)

    def run(self, study: StudyState, model: LoadedModel | None) -> dict[str, Any]:
        """Fill the hole of ``study.image`` (it becomes the ``inpainted`` output)."""
        from ctpipe.inpaint import inpaint_volume

        gan = model.module
        device = compute_device(self.device)
        gan.generator.to(device)
        gan.discriminator.to(device)
        mask, source = self.hole(study)
        result = inpaint_volume(
            np.ascontiguousarray(study.image, dtype=np.float32),
            mask,
            gan.generator,
            gan.discriminator,
            window=gan.window,
            settings=self.settings,
        )
        study.image = np.asarray(result.hu, dtype=np.float32)
        study.outputs["inpainted"] = study.image
        study.analyses["inpaint_mask"] = mask
        iterations = [s.iterations for s in result.slices]
        return {
            "output": "inpainted",
            "model": model.describe(),
            "settings": {"device": device, "mask": source, **plain(self.settings)},
            "metrics": {
                "hole_voxels": int(mask.sum()),
                "slices_inpainted": len(result.slices),
                "mean_iterations": round(float(np.mean(iterations)), 1) if iterations else 0.0,
                "mean_context_mae_hu": round(
                    float(np.mean([s.context_mae_hu for s in result.slices])), 2
                )
                if result.slices
                else 0.0,
            },
        }

    def hole(self, study: StudyState) -> tuple[np.ndarray, dict[str, Any]]:
        """The hole as a bool ``(i, j, k)`` mask, and a record of where it came from."""
        from ctpipe.inpaint import generate_mask, read_mask

        shape = study.image.shape
        if self.mask == "file":
            path = Path(self.mask_path.replace("{series}", _series_name(study)))
            mask = read_mask(path, shape, study.volume.affine_ras)
            return mask, {"source": "file", "path": str(path)}
        if self.mask == "labels":
            class_map = study.analyses.get("class_map", {})
            unknown = sorted(set(self.mask_classes) - set(class_map))
            if unknown:
                raise ValueError(
                    f"inpaint.mask_classes {unknown} are not classes of the segmenter "
                    f"({', '.join(class_map)})"
                )
            values = [class_map[name] for name in self.mask_classes]
            mask = np.isin(study.labels, values)
            if not mask.any():
                raise ValueError(f"the segmenter found none of {list(self.mask_classes)}")
            return mask, {"source": "labels", "classes": list(self.mask_classes)}
        body = study.image > BODY_THRESHOLD_HU
        mask, parameters = generate_mask(
            self.mask_kind,
            shape,
            seed=self.seed,
            slices=self.mask_slices,
            region=body.any(axis=2) if body.any() else None,
        )
        return mask, {"source": "generated", **parameters}


def _series_name(study: StudyState) -> str:
    files = (study.volume.meta or {}).get("ctpipe_source_files") or [""]
    first = Path(str(files[0]))
    return first.parent.name if study.volume.series is not None else first.name
