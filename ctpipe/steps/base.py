"""What every workflow step is and shares: the :class:`Step` protocol, the study, the model.

A step is a frozen dataclass: its fields are the settings a workflow file gives it (under
the step's ``name``, checked when built), :meth:`Step.load` turns a weights file into the
:class:`LoadedModel` it runs (once per batch), and :meth:`Step.run` runs it on one
:class:`StudyState` and returns its record (model, settings, metrics) for ``run.json``.

Image steps (``denoise``, ``inpaint``) replace ``study.image``; analysis steps add to
``study.labels`` or ``study.analyses``. Devices follow :mod:`ctpipe.devices`.

Example:
    >>> import numpy as np
    >>> from ctpipe.io.dicom_volume import CTVolume
    >>> study = StudyState(CTVolume(np.zeros((4, 4, 2), np.float32), np.eye(4)))
    >>> study.image.shape, study.labels is None
    ((4, 4, 2), True)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from ctpipe.io.dicom_volume import CTVolume

__all__ = ["LoadedModel", "Step", "StudyState", "file_sha256", "plain", "rms"]


@dataclass
class StudyState:
    """What the steps of one study share.

    Args:
        volume: The input volume (HU, geometry, source series and its headers).
        image: The current image (HU); starts as the input's.
        labels: The label volume once ``segment`` ran.
        outputs: Named intermediate volumes for export (``denoised``, ...).
        analyses: Results of analysis steps by name (the ``anomaly`` result, the class map).
        warnings: Warnings for the record, the report and the batch summary (the guard's).
        stop: Why the remaining steps must not run (``None``: run them).
    """

    volume: CTVolume
    image: np.ndarray | None = None
    labels: np.ndarray | None = None
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    analyses: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    stop: str | None = None

    def __post_init__(self) -> None:
        if self.image is None:
            self.image = self.volume.hu


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to run, with where it came from.

    Args:
        module: The network (or networks), in eval mode.
        name: What it is (e.g. ``redcnn``), for records.
        sha256: The weights file's sha256.
        path: The weights file (``None`` for a model built in memory).
        config: Its configuration (e.g. a ``SegmenterConfig``), when a step needs it.
        settings: Recommended inference settings stored with the weights.
    """

    module: Any
    name: str
    sha256: str
    path: Path | None = None
    config: Any = None
    settings: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """Name, file and sha256 for run records."""
        return {
            "name": self.name,
            "path": str(self.path) if self.path else None,
            "sha256": self.sha256,
        }


@runtime_checkable
class Step(Protocol):
    """A workflow step: settings (the dataclass fields), a model loader and a run.

    Attributes:
        name: The step's name in workflow files, ``steps`` lists and run records.
        shipped_weights: The file in :mod:`ctpipe.weights` that ``weights: default``
            names, or ``None`` when ctpipe ships none for the step.
    """

    name: ClassVar[str]
    shipped_weights: ClassVar[str | None]

    def load(self, weights: Path | None) -> LoadedModel | None:
        """The model of the weights file (``None``: the step has no ``weights``)."""

    def run(self, study: StudyState, model: LoadedModel | None) -> dict[str, Any]:
        """Run on ``study`` (changing it in place); return the step's record."""


def file_sha256(path: str | PathLike[str]) -> str:
    """sha256 of a file, read in 1 MiB blocks.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "empty"
        >>> _ = path.write_bytes(b"")
        >>> file_sha256(path)[:12]
        'e3b0c44298fc'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def rms(values: np.ndarray) -> float:
    """Root mean square, rounded to 3 decimals (0 for no values), for records.

    Example:
        >>> rms(np.array([3.0, -3.0])), rms(np.array([]))
        (3.0, 0.0)
    """
    if not values.size:
        return 0.0
    return round(float(np.sqrt(np.mean(values.astype(np.float64) ** 2))), 3)


def plain(value: Any) -> Any:
    """A settings value as JSON data: dataclasses as dicts, tuples as lists.

    Example:
        >>> plain((1, 2)), plain("x")
        ([1, 2], 'x')
    """
    from dataclasses import is_dataclass

    from ctpipe.schema import dataclass_to_dict

    if is_dataclass(value) or isinstance(value, tuple | list | Mapping):
        return dataclass_to_dict(value)
    return value
