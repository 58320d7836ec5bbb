"""Typed workflow files: what a run does to each study, checked before any work starts.

A workflow file (``workflows/*.yaml``) loads into :class:`Workflow`, a tree of frozen
dataclasses (through :mod:`ctpipe.schema`): unknown keys, wrong types and values outside
their rules are refused with the file, the key path, the allowed keys or values and the
closest spelling. :func:`load_workflow` also checks that every weights file it names
exists, so a batch never starts on a workflow it cannot finish.

Keys (all optional except ``name``):

* ``name``, ``description``.
* ``steps``: the steps in order, from ``denoise``, ``segment``, ``anomaly``, ``inpaint``.
  Image steps (``denoise``, ``inpaint``) replace the image the next steps see;
  ``segment`` labels the current image and ``anomaly`` maps its VAE reconstruction error.
* ``input``: ``series_uid`` (which series when a folder holds several),
  ``allow_irregular`` (read series with gaps or a tilted gantry, with a warning).
* ``denoise``: ``weights`` (``default``: the shipped RED-CNN; or a checkpoint path),
  ``device``, ``batch_size``, ``amp``.
* ``segment``: ``weights`` (``default``: the shipped segmenter) or ``bundle`` (a local
  MONAI bundle folder, relative to the workflow file like ``weights``; ``bundle_model``
  picks ``model.pt`` or ``model.ts``), ``device``, ``sw_device``, ``amp``, ``roi_size``,
  ``overlap``, ``blend``, ``sw_batch_size`` (a bundle keeps its own window settings).
* ``anomaly``: ``weights`` (``default``: the shipped VAE), ``device``, ``samples``,
  ``seed``, ``smooth_mm``, ``batch_size``.
* ``inpaint``: ``weights`` (``default``: the shipped DCGAN), ``device``, the mask source
  (``mask``: ``generated``, ``file`` or ``labels``, with ``mask_kind``, ``mask_path``,
  ``mask_classes``, ``mask_slices``, ``seed``) and the search ``settings``.
* ``export``: ``nifti``, ``dicom`` (a derived CT series of the final image), ``seg``
  (DICOM-SEG of the labels), ``rtstruct`` (the labels as an RT Structure Set),
  ``statistics`` (``statistics.csv``: each class's volume and HU), ``previews``,
  ``report`` (HTML), ``series_description``.

Example:
    >>> wf = Workflow.from_dict({"name": "demo", "steps": ["denoise"]})
    >>> wf.steps, wf.denoise.weights, wf.export.dicom
    (('denoise',), 'default', True)
    >>> Workflow.from_dict({"name": "demo", "steps": ["denoise", "segmnet"]})
    Traceback (most recent call last):
    ...
    ctpipe.workflow.config.WorkflowError: <workflow>: steps[1] must be one of denoise, \
segment, anomaly, inpaint, got str 'segmnet'; did you mean 'segment'?
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Literal

from ctpipe.devices import check_device_setting
from ctpipe.errors import InputError
from ctpipe.inpaint.volume import InpaintSettings
from ctpipe.schema import dataclass_to_dict, load_yaml_dataclass, parse_dataclass

__all__ = [
    "DEFAULT_WEIGHTS",
    "AnomalyStep",
    "DenoiseStep",
    "ExportConfig",
    "InpaintStep",
    "InputConfig",
    "SegmentStep",
    "Workflow",
    "WorkflowError",
    "bundle_folder",
    "check_bundle",
    "load_workflow",
]

#: ``weights`` value naming the weights shipped with ctpipe.
DEFAULT_WEIGHTS = "default"

StepName = Literal["denoise", "segment", "anomaly", "inpaint"]


class WorkflowError(InputError):
    """A workflow file is malformed or names something missing (the message says what)."""


@dataclass(frozen=True)
class InputConfig:
    """How the input series is read.

    Args:
        series_uid: SeriesInstanceUID to read when the input folder holds several series
            (``None``: the input must hold exactly one CT series).
        allow_irregular: Read series with missing slices, uneven spacing or a tilted
            gantry anyway (with a warning).

    Example:
        >>> InputConfig().allow_irregular
        False
    """

    series_uid: str | None = None
    allow_irregular: bool = False


@dataclass(frozen=True)
class DenoiseStep:
    """Settings of the ``denoise`` step (:func:`ctpipe.inference.denoise_volume`).

    Args:
        weights: ``default`` (the shipped RED-CNN) or a ctpipe checkpoint path.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
        batch_size: Slices per forward pass.
        amp: Mixed precision on CUDA (ignored on CPU).

    Example:
        >>> DenoiseStep(batch_size=0)
        Traceback (most recent call last):
        ...
        ValueError: batch_size must be >= 1, got 0
    """

    weights: str = DEFAULT_WEIGHTS
    device: str = "auto"
    batch_size: int = 4
    amp: bool = True

    def __post_init__(self) -> None:
        check_device_setting("device", self.device)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class SegmentStep:
    """Settings of the ``segment`` step (:func:`ctpipe.segment.segment_volume`, or a bundle).

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
        amp: Mixed precision for a bundle's network on CUDA (ignored on the CPU).
        roi_size: Sliding-window size in voxels ``(i, j, k)``; ``None``: the model's.
        overlap: Fraction shared by neighbouring windows, in [0, 1).
        blend: ``gaussian`` or ``constant`` weighting of overlapping windows.
        sw_batch_size: Windows per forward pass.

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

    weights: str = DEFAULT_WEIGHTS
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
        if self.bundle is not None and self.weights != DEFAULT_WEIGHTS:
            raise ValueError("give weights or bundle, not both (a bundle brings its own weights)")
        if self.bundle is not None and not self.bundle.strip():
            raise ValueError("bundle must name a bundle folder, got an empty string")
        if self.bundle_model is not None and self.bundle is None:
            raise ValueError("bundle_model needs a bundle")
        if not 0 <= self.overlap < 1:
            raise ValueError(f"overlap must be >= 0 and < 1, got {self.overlap}")
        if self.sw_batch_size < 1:
            raise ValueError(f"sw_batch_size must be >= 1, got {self.sw_batch_size}")
        if self.roi_size is not None and (
            len(self.roi_size) not in (2, 3) or min(self.roi_size) < 1
        ):
            raise ValueError(f"roi_size must be 2 or 3 positive integers, got {self.roi_size}")


@dataclass(frozen=True)
class AnomalyStep:
    """Settings of the ``anomaly`` step (:func:`ctpipe.anomaly.anomaly_volume`, a VAE).

    Args:
        weights: ``default`` (the shipped VAE) or a ctpipe VAE checkpoint.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
        samples: Posterior draws averaged per slice.
        seed: Seed of the draws (the same seed gives the same map).
        smooth_mm: Gaussian smoothing of the map (mm; 0: none).
        batch_size: Slices per forward pass.

    Example:
        >>> AnomalyStep(samples=0)
        Traceback (most recent call last):
        ...
        ValueError: samples must be >= 1, got 0
    """

    weights: str = DEFAULT_WEIGHTS
    device: str = "auto"
    samples: int = 4
    seed: int = 0
    smooth_mm: float = 0.0
    batch_size: int = 16

    def __post_init__(self) -> None:
        check_device_setting("device", self.device)
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.smooth_mm < 0:
            raise ValueError(f"smooth_mm must be >= 0, got {self.smooth_mm}")


@dataclass(frozen=True)
class InpaintStep:
    """Settings of the ``inpaint`` step (:func:`ctpipe.inpaint.inpaint_volume`, a DCGAN).

    Args:
        weights: ``default`` (the shipped DCGAN) or a ctpipe GAN checkpoint.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
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

    Example:
        >>> InpaintStep(mask="file")
        Traceback (most recent call last):
        ...
        ValueError: mask_path must be given for mask 'file'
    """

    weights: str = DEFAULT_WEIGHTS
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


@dataclass(frozen=True)
class ExportConfig:
    """What each study writes besides its run record.

    Args:
        nifti: The input image, the final image and the labels as NIfTI.
        dicom: The final (e.g. denoised) image as a derived CT series in the input's
            patient and study (DICOM inputs; NIfTI inputs get a new study).
        seg: The labels as a DICOM Segmentation referencing the source series.
        rtstruct: The labels as a DICOM RT Structure Set referencing the source series
            (read by treatment-planning systems and viewers that do not read SEG).
        statistics: ``statistics.csv``: each class's voxels, volume (mL) and
            mean/median/std HU of the input (also in ``run.json`` and the report).
        previews: PNG previews (input, result, labels) in the display window.
        report: An HTML report of the study.
        series_description: SeriesDescription of the derived CT series.

    Example:
        >>> ExportConfig(series_description="").series_description
        Traceback (most recent call last):
        ...
        ValueError: series_description must not be empty
    """

    nifti: bool = True
    dicom: bool = True
    seg: bool = True
    rtstruct: bool = False
    statistics: bool = True
    previews: bool = True
    report: bool = True
    series_description: str = "ctpipe denoised"

    def __post_init__(self) -> None:
        if not self.series_description.strip():
            raise ValueError("series_description must not be empty")


@dataclass(frozen=True)
class Workflow:
    """A workflow: the steps run on every study and what is exported; valid once built.

    Args:
        name: Short name (letters, digits, ``_``, ``-``, ``.``), used in records.
        steps: Step names in the order they run, each at most once.
        description: Free text shown in reports.
        input: How inputs are read.
        denoise: Settings of the ``denoise`` step.
        segment: Settings of the ``segment`` step.
        anomaly: Settings of the ``anomaly`` step.
        inpaint: Settings of the ``inpaint`` step.
        export: What is written.

    Example:
        >>> Workflow(name="x", steps=("segment", "segment"))
        Traceback (most recent call last):
        ...
        ValueError: steps must each appear once, got ('segment', 'segment')
    """

    name: str
    steps: tuple[StepName, ...] = ("denoise", "segment")
    description: str = ""
    input: InputConfig = field(default_factory=InputConfig)
    denoise: DenoiseStep = field(default_factory=DenoiseStep)
    segment: SegmentStep = field(default_factory=SegmentStep)
    anomaly: AnomalyStep = field(default_factory=AnomalyStep)
    inpaint: InpaintStep = field(default_factory=InpaintStep)
    export: ExportConfig = field(default_factory=ExportConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            raise ValueError(f"name must be letters, digits, '_', '-' or '.', got {self.name!r}")
        if not self.steps:
            raise ValueError("steps must name at least one step")
        if len(set(self.steps)) != len(self.steps):
            raise ValueError(f"steps must each appear once, got {self.steps}")
        if "inpaint" in self.steps and self.inpaint.mask == "labels":
            steps = list(self.steps)
            if "segment" not in steps or steps.index("segment") > steps.index("inpaint"):
                raise ValueError("inpaint.mask 'labels' needs a segment step before inpaint")
        if "segment" not in self.steps:
            labels_exports = {"seg": False, "rtstruct": False, "statistics": False}
            object.__setattr__(self, "export", _replace(self.export, **labels_exports))

    @classmethod
    def from_dict(cls, data: object, *, source: str | PathLike[str] = "<workflow>") -> Workflow:
        """Build a workflow from parsed YAML, naming the key path of any problem."""
        return parse_dataclass(cls, data, source=source, error=WorkflowError)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for YAML, JSON and run records.

        Example:
            >>> wf = Workflow(name="x")
            >>> Workflow.from_dict(wf.to_dict()) == wf
            True
        """
        return dataclass_to_dict(self)

    @property
    def sha256(self) -> str:
        """Hash of the settings; a study done under other settings is redone on resume.

        Example:
            >>> Workflow(name="x").sha256 == Workflow(name="x", description="y").sha256
            True
        """
        settings = self.to_dict()
        settings.pop("description")
        text = json.dumps(settings, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def load_workflow(path: str | PathLike[str], *, check_weights: bool = True) -> Workflow:
    """Read and check a workflow file before any work starts.

    Args:
        path: The YAML file.
        check_weights: Check that every weights file the steps name exists (the shipped
            ``default`` ones included).

    Returns:
        The workflow.

    Raises:
        WorkflowError: The file is missing, not YAML, not a valid workflow (key path,
            allowed keys or values), or names weights that do not exist.

    Example:
        >>> wf = load_workflow("workflows/denoise_only.yaml")  # doctest: +SKIP
        >>> wf.steps  # doctest: +SKIP
        ('denoise',)
    """
    workflow = load_yaml_dataclass(Workflow, path, error=WorkflowError, what="workflow")
    if check_weights:
        for step in workflow.steps:
            if step == "segment" and workflow.segment.bundle is not None:
                check_bundle(workflow, source=path)
            else:
                weights_file(workflow, step, source=path)
    return workflow


def bundle_folder(workflow: Workflow, *, source: str | PathLike[str]) -> Path:
    """The segment step's bundle folder, relative to the workflow file or the working folder.

    A path that exists nowhere is returned as given, for the bundle's own message (which
    says how to download a bundle given by its name).
    """
    name = str(workflow.segment.bundle)
    if Path(name).is_absolute():
        return Path(name)
    for candidate in (Path(source).parent / name, Path(name)):
        if candidate.is_dir():
            return candidate.resolve()
    return Path(name)


def check_bundle(workflow: Workflow, *, source: str | PathLike[str]) -> Path:
    """Check the segment step's bundle folder before any work starts; return it.

    Raises:
        WorkflowError: The bundle is missing or not a usable segmentation bundle (the
            bundle's own one-line problem, under ``segment.bundle``).
    """
    from ctpipe.bundle import find_bundle

    folder = bundle_folder(workflow, source=source)
    try:
        find_bundle(folder, model=workflow.segment.bundle_model)
    except InputError as err:
        raise WorkflowError(source, f"segment.bundle: {err}") from None
    return folder


def weights_file(workflow: Workflow, step: str, *, source: str | PathLike[str]) -> Path:
    """The weights file a step uses; refuses one that does not exist.

    Relative paths are taken from the workflow file's folder first, then from the
    working directory.
    """
    from ctpipe import weights

    name = getattr(workflow, step).weights
    if name == DEFAULT_WEIGHTS:
        shipped = weights.DEFAULT_WEIGHTS_BY_STEP.get(step)
        if shipped is None:
            raise WorkflowError(
                source, f"{step}.weights: ctpipe ships no default weights for this step"
            )
        try:
            return weights.weights_path(shipped)
        except InputError as err:
            raise WorkflowError(source, f"{step}.weights: {err.problem}") from None
    candidates = (
        [Path(name)] if Path(name).is_absolute() else [Path(source).parent / name, Path(name)]
    )
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise WorkflowError(
        source,
        f"{step}.weights: no such file {name!r} (looked in "
        f"{', '.join(str(c) for c in candidates)}); use 'default' for the shipped weights",
    )


def _replace(obj: Any, **changes: Any) -> Any:
    from dataclasses import replace

    return replace(obj, **changes)
