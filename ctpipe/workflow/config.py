"""Typed workflow files: what a run does to each study, checked before any work starts.

A workflow file (``workflows/*.yaml``) loads into :class:`Workflow`, a tree of frozen
dataclasses (through :mod:`ctpipe.schema`): unknown keys, wrong types and values outside
their rules are refused with the file, the key path, the allowed keys or values and the
closest spelling. :func:`load_workflow` also checks that every weights file it names
exists, so a batch never starts on a workflow it cannot finish.

Keys (all optional except ``name``):

* ``name``, ``description``.
* ``steps``: the steps in order, from those of :data:`ctpipe.steps.STEPS` (``guard``,
  ``denoise``, ``segment``, ``anomaly``, ``inpaint``). ``guard`` (first when present)
  scores how far the input is from the CT the models were trained on and warns, or skips
  the study, when it is out of distribution. Image steps (``denoise``, ``inpaint``)
  replace the image the next steps see; ``segment`` labels the current image and
  ``anomaly`` maps its VAE reconstruction error.
* ``input``: ``series_uid`` (which series when a folder holds several),
  ``allow_irregular`` (read series with gaps or a tilted gantry, with a warning),
  ``allow_non_hu`` (read input that does not look like CT in Hounsfield units).
* ``select``: which series of a study the workflow takes
  (:class:`~ctpipe.io.series_selection.SeriesSelection`: modality, SOP class, ImageType,
  slice thickness, slice count, kernel / description / body-part patterns, one series per
  study by a tie-break). A batch records every series it leaves out and why; ``ctpipe run``
  on a folder of several series runs the one the rules pick.
* a section per step, named after it, holding that step's settings (the fields of its
  class in :mod:`ctpipe.steps`): ``weights`` (``default``: the weights ctpipe ships for
  the step; or a checkpoint path) and the step's own keys, e.g. ``denoise``: ``device``,
  ``batch_size``, ``amp``; ``guard``: ``device``, ``action`` (``warn`` or ``skip``),
  ``threshold`` (``null``: the calibrated one), ``max_slices``, ``batch_size``;
  ``segment``: ``bundle`` (a local MONAI bundle folder instead of ``weights``, relative
  to the workflow file like ``weights``; ``bundle_model`` picks ``model.pt`` or
  ``model.ts``), ``device``, ``sw_device``, ``amp``, ``roi_size``,
  ``overlap``, ``blend``, ``sw_batch_size`` (a bundle keeps its own window settings);
  ``anomaly``: ``device``, ``samples``,
  ``seed``, ``smooth_mm``, ``batch_size``; ``inpaint``: ``device``, the mask source
  (``mask``: ``generated``, ``file`` or ``labels``, with ``mask_kind``, ``mask_path``,
  ``mask_classes``, ``mask_slices``, ``seed``) and the search ``settings``. Devices are
  those of :mod:`ctpipe.devices`.
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
    ctpipe.workflow.config.WorkflowError: <workflow>: steps[1] must be one of guard, \
denoise, segment, anomaly, inpaint, got str 'segmnet'; did you mean 'segment'?
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Literal

from ctpipe.errors import InputError
from ctpipe.io.series_selection import SeriesSelection
from ctpipe.schema import dataclass_to_dict, did_you_mean, parse_dataclass, read_yaml
from ctpipe.steps import STEPS, Step

__all__ = [
    "DEFAULT_WEIGHTS",
    "ExportConfig",
    "InputConfig",
    "Workflow",
    "WorkflowError",
    "bundle_folder",
    "check_bundle",
    "load_workflow",
]

#: ``weights`` value naming the weights shipped with ctpipe.
DEFAULT_WEIGHTS = "default"
#: The steps a workflow runs when its file names none.
DEFAULT_STEPS = ("guard", "denoise", "segment")


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
        allow_non_hu: Read input that does not look like CT in Hounsfield units (a
            missing or invalid DICOM rescale, no air in the volume) instead of failing.

    Example:
        >>> InputConfig().allow_irregular, InputConfig().allow_non_hu
        (False, False)
    """

    series_uid: str | None = None
    allow_irregular: bool = False
    allow_non_hu: bool = False


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


@dataclass(frozen=True, init=False)
class Workflow:
    """A workflow: the steps run on every study and what is exported; valid once built.

    Every step of :data:`ctpipe.steps.STEPS` has settings here (its defaults unless
    given), reached as an attribute named after the step (``workflow.denoise``) or with
    :meth:`step`; only those listed in ``steps`` run.

    Args:
        name: Short name (letters, digits, ``_``, ``-``, ``.``), used in records.
        steps: Step names in the order they run, each at most once.
        description: Free text shown in reports.
        input: How inputs are read.
        select: Which series of a study the workflow takes.
        export: What is written.
        step_settings: Settings of the steps (instances of their classes), any order.
        **settings: Settings of single steps by name, e.g. ``denoise=DenoiseStep(...)``;
            they replace those of ``step_settings``.

    Example:
        >>> Workflow(name="x", steps=("segment", "segment"))
        Traceback (most recent call last):
        ...
        ValueError: steps must each appear once, got ('segment', 'segment')
        >>> Workflow(name="x").segment.overlap
        0.25
    """

    name: str
    steps: tuple[str, ...]
    description: str
    input: InputConfig
    select: SeriesSelection
    export: ExportConfig
    step_settings: tuple[Step, ...]

    def __init__(
        self,
        name: str,
        steps: tuple[str, ...] = DEFAULT_STEPS,
        description: str = "",
        input: InputConfig | None = None,
        select: SeriesSelection | None = None,
        export: ExportConfig | None = None,
        step_settings: tuple[Step, ...] = (),
        **settings: Step,
    ) -> None:
        given = {type(step).name: step for step in step_settings}
        for key, step in settings.items():
            if key not in STEPS:
                raise TypeError(
                    f"Workflow got an unknown step {key!r}{did_you_mean(key, list(STEPS))}"
                )
            given[key] = step
        for key, step in given.items():
            if not isinstance(step, STEPS[key]):
                raise TypeError(f"{key} must be a {STEPS[key].__name__}, got {type(step).__name__}")
        put = object.__setattr__
        put(self, "name", name)
        put(self, "steps", tuple(steps))
        put(self, "description", description)
        put(self, "input", input if input is not None else InputConfig())
        put(self, "select", select if select is not None else SeriesSelection())
        put(self, "export", export if export is not None else ExportConfig())
        put(self, "step_settings", tuple(given.get(key) or cls() for key, cls in STEPS.items()))
        self._check()

    def _check(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            raise ValueError(f"name must be letters, digits, '_', '-' or '.', got {self.name!r}")
        if not self.steps:
            raise ValueError("steps must name at least one step")
        for index, step in enumerate(self.steps):
            if step not in STEPS:
                names = list(STEPS)
                raise ValueError(
                    f"steps[{index}] must be one of {', '.join(names)}, got "
                    f"{type(step).__name__} {step!r}" + did_you_mean(str(step), names)
                )
        if len(set(self.steps)) != len(self.steps):
            raise ValueError(f"steps must each appear once, got {self.steps}")
        if "guard" in self.steps and self.steps[0] != "guard":
            raise ValueError(
                f"guard must be the first step (it scores the input before the models run), "
                f"got {self.steps}"
            )
        if "inpaint" in self.steps and self.inpaint.mask == "labels":
            steps = list(self.steps)
            if "segment" not in steps or steps.index("segment") > steps.index("inpaint"):
                raise ValueError("inpaint.mask 'labels' needs a segment step before inpaint")
        if "segment" not in self.steps:
            labels_exports = {"seg": False, "rtstruct": False, "statistics": False}
            object.__setattr__(self, "export", dataclasses.replace(self.export, **labels_exports))

    def step(self, name: str) -> Step:
        """The settings (and behaviour) of step ``name``.

        Raises:
            KeyError: No such step is registered.
        """
        for step in self.step_settings:
            if type(step).name == name:
                return step
        raise KeyError(f"no step {name!r}; the steps are {', '.join(STEPS)}")

    def __getattr__(self, name: str) -> Step:
        if name.startswith("_") or name in ("step_settings", "name"):
            raise AttributeError(name)
        try:
            return self.step(name)
        except KeyError:
            raise AttributeError(f"'Workflow' object has no attribute {name!r}") from None

    @classmethod
    def from_dict(cls, data: object, *, source: str | PathLike[str] = "<workflow>") -> Workflow:
        """Build a workflow from parsed YAML, naming the key path of any problem."""
        parsed = parse_dataclass(_schema(), data, source=source, error=WorkflowError)
        values = {f.name: getattr(parsed, f.name) for f in dataclasses.fields(parsed)}
        try:
            return cls(**values)
        except (TypeError, ValueError) as err:
            raise WorkflowError(source, str(err)) from None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for YAML, JSON and run records: a section per step, as in the file.

        Example:
            >>> wf = Workflow(name="x")
            >>> Workflow.from_dict(wf.to_dict()) == wf
            True
        """
        return {
            "name": self.name,
            "steps": list(self.steps),
            "description": self.description,
            "input": dataclass_to_dict(self.input),
            "select": dataclass_to_dict(self.select),
            **{type(step).name: dataclass_to_dict(step) for step in self.step_settings},
            "export": dataclass_to_dict(self.export),
        }

    @property
    def sha256(self) -> str:
        """Hash of the settings; a study done under other settings is redone on resume.

        The description and the series selection rules are left out: they change no
        study's result.

        Example:
            >>> Workflow(name="x").sha256 == Workflow(name="x", description="y").sha256
            True
            >>> Workflow(name="x").sha256 == Workflow(
            ...     name="x", select=SeriesSelection(per_study="one")
            ... ).sha256
            True
        """
        settings = self.to_dict()
        settings.pop("description")
        settings.pop("select")
        text = json.dumps(settings, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def _schema() -> type:
    """The workflow file's schema: the fixed sections and one per registered step."""
    names = tuple(STEPS)
    return dataclasses.make_dataclass(
        "Workflow",
        [
            ("name", str),
            ("steps", tuple[Literal[names], ...], field(default=DEFAULT_STEPS)),
            ("description", str, field(default="")),
            ("input", InputConfig, field(default_factory=InputConfig)),
            ("select", SeriesSelection, field(default_factory=SeriesSelection)),
            *[(name, step, field(default_factory=step)) for name, step in STEPS.items()],
            ("export", ExportConfig, field(default_factory=ExportConfig)),
        ],
        frozen=True,
    )


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
    data = read_yaml(path, error=WorkflowError, what="workflow")
    workflow = Workflow.from_dict(data, source=Path(path))
    if check_weights:
        for step in workflow.steps:
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


def weights_file(workflow: Workflow, step: str, *, source: str | PathLike[str]) -> Path | None:
    """The weights a step uses (``None`` for a step without weights).

    A step that names a MONAI ``bundle`` (the segmenter) uses the bundle's folder, checked
    by :func:`check_bundle`. Relative paths are taken from the workflow file's folder first,
    then from the working directory. Refuses a file that does not exist.
    """
    from ctpipe import weights

    settings = workflow.step(step)
    if getattr(settings, "bundle", None) is not None:
        return check_bundle(workflow, source=source)
    name = getattr(settings, "weights", None)
    if name is None:
        return None
    if name == DEFAULT_WEIGHTS:
        shipped = type(settings).shipped_weights
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
