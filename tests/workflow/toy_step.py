"""A toy workflow step, written as a new step would be: one file, one class.

``offset`` adds a constant read from its weights file (JSON ``{"offset_hu": N}``) to every
voxel above ``threshold_hu``; it ships no weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ctpipe.steps.base import LoadedModel, StudyState, file_sha256


@dataclass(frozen=True)
class OffsetStep:
    """Add the weights file's ``offset_hu`` to voxels above ``threshold_hu``."""

    name: ClassVar[str] = "offset"
    shipped_weights: ClassVar[str | None] = None

    weights: str = "default"
    threshold_hu: float = -500.0

    def __post_init__(self) -> None:
        if not -1024 <= self.threshold_hu <= 3071:
            raise ValueError(f"threshold_hu must be in [-1024, 3071], got {self.threshold_hu}")

    def load(self, weights: Path | None) -> LoadedModel:
        offset = json.loads(Path(weights).read_text(encoding="utf-8"))["offset_hu"]
        return LoadedModel(float(offset), "offset", file_sha256(weights), weights)

    def run(self, study: StudyState, model: LoadedModel | None) -> dict[str, Any]:
        inside = study.image > self.threshold_hu
        study.image = np.where(inside, study.image + model.module, study.image).astype(np.float32)
        study.outputs["offset"] = study.image
        return {
            "output": "offset",
            "model": model.describe(),
            "settings": {"threshold_hu": self.threshold_hu},
            "metrics": {"voxels_changed": int(inside.sum())},
        }
