"""Typed configuration of segmenter training, loaded from YAML.

A segmentation training run is one YAML file (see ``workflows/training/segment_*.yaml``)
that loads into :class:`SegmentTrainConfig`, which derives from the base of every task's
configuration (:class:`ctpipe.training.config.TrainConfig`): :func:`load_segment_config`
refuses unknown keys (naming the key path, the allowed keys and the closest spelling),
missing keys and values of the wrong type, and each section checks its own rules when
built. The optimizer and schedule sections are the shared ones; the training loop is the
shared loop with a segmentation loss.

Relative paths (``data.train[*].image``, ``output_dir``, ...) are taken from the working
directory; the paths inside an MSD-style ``data.datalist`` are taken from the datalist's
folder (or ``data.base_dir``), as MONAI's ``load_decathlon_datalist`` does.

Sections (every key is optional unless marked required):

* ``model`` (required): a :class:`~ctpipe.nets.segmenters.SegmenterConfig`; its
  ``class_map`` (organ name -> label value ``1 .. N``) is the class map of the run.
* ``data`` (required): :class:`SegmentDataConfig`: an MSD-style ``datalist`` and/or
  ``train`` image/label pairs, the validation cases, and ``label_values``, the label
  values of the source data that make up each class (e.g. TotalSegmentator's vertebrae
  26-50 -> ``spine``).
* ``preprocess``: HU window, orientation and target spacing (the same at inference).
* ``patches``: ``RandCropByPosNegLabeld`` patch size and count; ``augment``: random
  rotation, zoom, intensity shift and noise.
* ``optimizer``, ``schedule``: as for the denoiser.
* ``train``: the loop (batch size, epochs, intervals, AMP on CUDA only, device, seed) and
  ``loss`` (the seed's Dice, cross-entropy or both, :mod:`ctpipe.losses`).
* ``inference``: sliding-window settings of validation, stored in the checkpoint as the
  model's defaults for ``ctpipe segment``.
* ``output_dir`` (required) and ``resume``.

Example:
    >>> config = SegmentTrainConfig.from_dict({
    ...     "model": {"spatial_dims": 2, "class_map": {"liver": 1, "spine": 2},
    ...               "channels": [8, 16, 32], "strides": [2, 2]},
    ...     "data": {"train": [{"image": "ct.nii.gz", "label": "seg.nii.gz"}],
    ...              "label_values": {"liver": 5, "spine": [26, 27, 28]}},
    ...     "patches": {"size": [64, 64]},
    ...     "inference": {"roi_size": [128, 128]},
    ...     "output_dir": "runs/demo",
    ... })
    >>> config.data.label_values["spine"], config.model.out_channels
    ((26, 27, 28), 3)
    >>> SegmentTrainConfig.from_dict({"model": {}, "data": {}, "output_dir": "o", "trian": {}})
    Traceback (most recent call last):
    ...
    ctpipe.training.config.TrainConfigError: <config>: unknown key 'trian'; allowed keys \
at the top level: model, data, output_dir, preprocess, patches, augment, optimizer, schedule, \
train, inference, resume; did you mean 'train'?
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from typing import Any, Literal

from ctpipe.nets.segmenters import SegmenterConfig
from ctpipe.schema import did_you_mean, require_at_least
from ctpipe.segment import AXCODES, ROI_SIZE, TARGET_SPACING
from ctpipe.training.config import (
    AffineAugmentConfig,
    OptimizerConfig,
    ScheduleConfig,
    TrainConfig,
    TrainLoopConfig,
    require,
)
from ctpipe.transforms import SEGMENT_HU_WINDOW

__all__ = [
    "AugmentConfig",
    "CaseConfig",
    "LossConfig",
    "PreprocessConfig",
    "SegmentDataConfig",
    "SegmentLoopConfig",
    "SegmentPatchConfig",
    "SegmentTrainConfig",
    "SlidingWindowConfig",
    "load_segment_config",
]


# --- sections --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseConfig:
    """One labelled case: a CT image and its label map on the same grid or not.

    Args:
        image: A DICOM series folder or file, or a NIfTI/NRRD volume in HU.
        label: The label map (NIfTI/NRRD); it is resampled onto the image's grid only
            through the shared target spacing, so both must cover the same place.

    Example:
        >>> CaseConfig("ct.nii.gz", "seg.nii.gz").label
        'seg.nii.gz'
    """

    image: str
    label: str

    def __post_init__(self) -> None:
        require(bool(self.image.strip()), "image must not be empty", self.image)
        require(bool(self.label.strip()), "label must not be empty", self.label)


@dataclass(frozen=True)
class SegmentDataConfig:
    """Where the labelled cases come from and how their label values map to classes.

    Training cases are those of ``datalist`` (its ``datalist_key`` list) and ``train``.
    Validation cases are those of ``validation``, of the datalist's ``validation_key``
    list, and the last ``validation_holdout`` training cases (held out of training).

    Args:
        datalist: An MSD-style ``dataset.json`` (``{"training": [{"image": ..., "label":
            ...}, ...]}``), read with MONAI's ``load_decathlon_datalist``.
        datalist_key: The datalist's list of training cases.
        validation_key: The datalist's list of validation cases, if it has one.
        base_dir: Folder the datalist's paths are relative to (default: its own folder).
        train: Training image/label pairs.
        validation: Validation image/label pairs (they pick ``checkpoint_best.pt``).
        validation_holdout: Training cases (the last ones listed) used for validation
            instead of training.
        label_values: Class name -> the source label value(s) making up that class, e.g.
            ``{liver: 5, spine: [26, 27]}``; every other value becomes background 0.
            ``None``: the source values already are the class map's (values outside
            ``0 .. N`` are refused when read).
        cache_rate: Fraction of the preprocessed cases ``CacheDataset`` keeps in memory.
        num_workers: Worker processes for caching and the data loaders.

    Example:
        >>> SegmentDataConfig(train=[{"image": "a", "label": "b"}]).train[0].image
        'a'
    """

    datalist: str | None = None
    datalist_key: str = "training"
    validation_key: str | None = None
    base_dir: str | None = None
    train: tuple[CaseConfig, ...] = ()
    validation: tuple[CaseConfig, ...] = ()
    validation_holdout: int = 0
    label_values: Mapping[str, Any] | None = None
    cache_rate: float = 1.0
    num_workers: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "train", tuple(_case(c) for c in self.train))
        object.__setattr__(self, "validation", tuple(_case(c) for c in self.validation))
        if self.datalist is None and not self.train:
            raise ValueError("datalist or train must be given: there would be no training data")
        require(self.validation_holdout >= 0, "validation_holdout must be >= 0", self.holdout)
        if self.validation_holdout and self.datalist is None:
            require(
                self.validation_holdout < len(self.train),
                f"validation_holdout must leave a training case of the {len(self.train)} in train",
                self.validation_holdout,
            )
        if self.label_values is not None:
            object.__setattr__(self, "label_values", _label_values(self.label_values))
        require(0 <= self.cache_rate <= 1, "cache_rate must be in [0, 1]", self.cache_rate)
        require(self.num_workers >= 0, "num_workers must be >= 0", self.num_workers)

    @property
    def holdout(self) -> int:
        """Training cases held out for validation."""
        return self.validation_holdout


def _case(case: object) -> CaseConfig:
    if isinstance(case, CaseConfig):
        return case
    if isinstance(case, Mapping):
        return CaseConfig(**case)
    raise ValueError(f"cases must be mappings with image and label, got {case!r}")


def _label_values(values: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """``{class: (value, ...)}`` after checking every value is a positive integer, used once."""
    table: dict[str, tuple[int, ...]] = {}
    owner: dict[int, str] = {}
    for name, given in values.items():
        items = list(given) if isinstance(given, list | tuple) else [given]
        if not items or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in items):
            raise ValueError(
                f"label_values[{name!r}] must be a positive integer label value or a list of "
                f"them (0 is the background), got {given!r}"
            )
        for value in items:
            if value in owner:
                raise ValueError(
                    f"label_values: value {value} is given to both {owner[value]!r} and {name!r}"
                )
            owner[value] = name
        table[name] = tuple(items)
    return table


@dataclass(frozen=True)
class PreprocessConfig:
    """How each case is brought to the network (the same steps run at inference).

    Args:
        hu_window: ``(low, high)`` HU mapped to [0, 1] and clipped.
        target_spacing: Spacing (mm) along ``(i, j, k)`` the network works at; ``null``
            entries keep the case's own spacing on that axis (e.g. ``[1.5, 1.5, null]``
            for a 2-D network); ``null`` keeps every axis.
        axcodes: Orientation the network works in (``LPS``: a DICOM axial series as
            stored); ``null`` keeps each case's.

    Example:
        >>> PreprocessConfig(target_spacing=[3, 3, None]).target_spacing
        (3.0, 3.0, None)
    """

    hu_window: tuple[float, float] = SEGMENT_HU_WINDOW
    target_spacing: tuple[float | None, float | None, float | None] | None = TARGET_SPACING
    axcodes: str | None = AXCODES

    def __post_init__(self) -> None:
        from ctpipe.segment import check_axcodes, check_target_spacing

        object.__setattr__(self, "hu_window", tuple(self.hu_window))
        require(self.hu_window[0] < self.hu_window[1], "hu_window must be (low, high)", "")
        object.__setattr__(self, "target_spacing", check_target_spacing(self.target_spacing))
        object.__setattr__(self, "axcodes", check_axcodes(self.axcodes))


@dataclass(frozen=True)
class SegmentPatchConfig:
    """Training patches drawn by MONAI ``RandCropByPosNegLabeld``.

    Args:
        size: Patch size along ``(i, j, k)`` for a 3-D network, ``(i, j)`` for a 2-D one
            (one axial slice per patch); multiples of the network's size divisor.
        per_volume: Patches drawn from each cached case each time it is visited.
        pos: Relative weight of patches centred on a labelled (foreground) voxel.
        neg: Relative weight of patches centred on background.

    Example:
        >>> SegmentPatchConfig(size=[96, 96], per_volume=4).size
        (96, 96)
    """

    size: tuple[int, ...] = (96, 96, 32)
    per_volume: int = 4
    pos: float = 1.0
    neg: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", tuple(self.size))
        require(
            len(self.size) in (2, 3) and all(s >= 1 for s in self.size),
            "size must be two or three positive integers",
            self.size,
        )
        require(self.per_volume >= 1, "per_volume must be >= 1", self.per_volume)
        require(self.pos >= 0 and self.neg >= 0, "pos and neg must be >= 0", (self.pos, self.neg))
        require(self.pos + self.neg > 0, "pos + neg must be > 0", (self.pos, self.neg))


@dataclass(frozen=True)
class AugmentConfig(AffineAugmentConfig):
    """Random augmentation of the training patches.

    There is no left-right flip: the liver, spleen and kidneys are on known sides.

    Args:
        prob: Probability of each random transform.
        rotate_deg: Largest in-plane rotation (degrees, either way).
        scale: Largest zoom in or out (fraction, e.g. 0.1 for 0.9 to 1.1).
        intensity_shift: Largest shift of the [0, 1] intensities.
        noise_std: Standard deviation of added Gaussian noise on the [0, 1] scale (0: none).

    Example:
        >>> AugmentConfig(prob=0.0).rotate_deg
        10.0
    """

    prob: float = 0.3
    intensity_shift: float = 0.05
    noise_std: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require_at_least(self, ("intensity_shift", "noise_std"), 0)


@dataclass(frozen=True)
class LossConfig:
    """The segmentation loss (:func:`ctpipe.losses.build_segmentation_loss`).

    Args:
        name: ``dice`` (the seed's Dice, summed over classes), ``ce`` (pixel-wise
            cross-entropy) or ``dice_ce`` (both).
        include_background: Whether Dice scores the background.
        class_weights: One weight per class, background first (``null``: all 1).
        smooth: Dice smoothing (0: the seed form).
        lambda_dice: Weight of the Dice term of ``dice_ce``.
        lambda_ce: Weight of the cross-entropy term of ``dice_ce``.

    Example:
        >>> LossConfig("dice", include_background=False).name
        'dice'
    """

    name: Literal["dice", "ce", "dice_ce"] = "dice_ce"
    include_background: bool = False
    class_weights: tuple[float, ...] | None = None
    smooth: float = 0.0
    lambda_dice: float = 1.0
    lambda_ce: float = 1.0

    def __post_init__(self) -> None:
        if self.class_weights is not None:
            object.__setattr__(self, "class_weights", tuple(self.class_weights))
            require(
                all(math.isfinite(w) and w >= 0 for w in self.class_weights),
                "class_weights must be finite and >= 0",
                self.class_weights,
            )
        require_at_least(self, ("smooth", "lambda_dice", "lambda_ce"), 0)
        require(
            not (self.name == "ce" and not self.include_background),
            "include_background must be true for name 'ce' (cross-entropy scores every class)",
            self.include_background,
        )


@dataclass(frozen=True)
class SegmentLoopConfig(TrainLoopConfig):
    """The training loop (section ``train``): the denoiser's, with a segmentation loss.

    ``batch_size`` counts patches per iteration (per process under ``torchrun``), a
    multiple of ``patches.per_volume``; ``loss`` is a :class:`LossConfig` section. The
    other keys are those of :class:`~ctpipe.training.config.TrainLoopConfig`.

    Example:
        >>> SegmentLoopConfig(batch_size=8, loss={"name": "dice"}).loss.name
        'dice'
    """

    loss: LossConfig = field(default_factory=LossConfig)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if isinstance(self.loss, Mapping):
            object.__setattr__(self, "loss", LossConfig(**self.loss))
        super().__post_init__()


@dataclass(frozen=True)
class SlidingWindowConfig:
    """Sliding-window inference (validation, and the defaults of ``ctpipe segment``).

    Args:
        roi_size: Window along ``(i, j, k)`` (``(i, j)`` for a 2-D network).
        overlap: Fraction of a window shared with its neighbour, in [0, 1).
        mode: ``gaussian`` or ``constant`` blending of overlapping windows.
        sw_batch_size: Windows per forward pass.
        hd_percentile: Percentile of the Hausdorff distance reported (95: HD95).

    Example:
        >>> SlidingWindowConfig(roi_size=[160, 160]).roi_size
        (160, 160)
    """

    roi_size: tuple[int, ...] = ROI_SIZE
    overlap: float = 0.25
    mode: Literal["gaussian", "constant"] = "gaussian"
    sw_batch_size: int = 4
    hd_percentile: float = 95.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "roi_size", tuple(self.roi_size))
        require(0 <= self.overlap < 1, "overlap must be in [0, 1)", self.overlap)
        require(self.sw_batch_size >= 1, "sw_batch_size must be >= 1", self.sw_batch_size)
        require(0 < self.hd_percentile <= 100, "hd_percentile must be in (0, 100]", 0)


@dataclass(frozen=True)
class SegmentTrainConfig(TrainConfig):
    """Everything a segmenter training run needs; valid once built.

    Args:
        model: The segmenter; its ``class_map`` is the run's class map.
        data: The labelled cases and their label values.
        output_dir: Folder for checkpoints, the log and the loss curve.
        preprocess: HU window, orientation and spacing.
        patches: Training patches.
        augment: Random augmentation.
        optimizer: The optimizer.
        schedule: The learning-rate schedule.
        train: The training loop and loss.
        inference: Sliding-window validation settings.
        resume: A checkpoint of this run to continue from.

    Example:
        >>> config = SegmentTrainConfig(SegmenterConfig(), SegmentDataConfig(datalist="d.json"),
        ...                             "o")
        >>> config.model.class_names[1], config.patches.size
        ('liver', (96, 96, 32))
        >>> SegmentTrainConfig.from_dict(config.to_dict()) == config
        True
    """

    model: SegmenterConfig
    data: SegmentDataConfig
    output_dir: str
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    patches: SegmentPatchConfig = field(default_factory=SegmentPatchConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: SegmentLoopConfig = field(default_factory=SegmentLoopConfig)
    inference: SlidingWindowConfig = field(default_factory=SlidingWindowConfig)
    resume: str | None = None

    def __post_init__(self) -> None:
        from ctpipe.segment import check_roi_size

        model = self.model
        dims, divisor = model.spatial_dims, model.size_divisor
        if len(self.patches.size) != dims or any(s % divisor for s in self.patches.size):
            raise ValueError(
                f"patches.size must be {dims} multiples of the model's size divisor "
                f"({divisor}) for a {dims}-D model, got {list(self.patches.size)}"
            )
        try:
            check_roi_size(self.inference.roi_size, model)
        except ValueError as err:
            raise ValueError(f"inference.{err}") from None
        if self.train.batch_size % self.patches.per_volume:
            raise ValueError(
                f"train.batch_size must be a multiple of patches.per_volume (each case gives "
                f"per_volume patches), got batch_size={self.train.batch_size} and "
                f"per_volume={self.patches.per_volume}"
            )
        weights = self.train.loss.class_weights
        if weights is not None and len(weights) != model.out_channels:
            raise ValueError(
                f"train.loss.class_weights must have one weight per class with the background "
                f"first ({model.out_channels}: {', '.join(model.class_names)}), got "
                f"{len(weights)}"
            )
        if self.data.label_values is not None:
            _check_label_classes(self.data.label_values, model.class_map)
        super().__post_init__()

    @property
    def volumes_per_batch(self) -> int:
        """Cases in each batch: ``train.batch_size // patches.per_volume``."""
        return self.train.batch_size // self.patches.per_volume


def _check_label_classes(values: Mapping[str, tuple[int, ...]], class_map: Mapping[str, int]):
    names = sorted(class_map)
    for name in values:
        if name not in class_map:
            raise ValueError(
                f"data.label_values names {name!r}, which is not a class of model.class_map "
                f"({', '.join(names)})" + did_you_mean(name, names)
            )
    missing = [n for n in names if n not in values]
    if missing:
        raise ValueError(
            f"data.label_values has no source values for {', '.join(missing)}: every class "
            "of model.class_map needs them (or drop the class from the class map)"
        )


def load_segment_config(path: str | PathLike[str]) -> SegmentTrainConfig:
    """Read and validate a segmentation training configuration YAML file.

    Args:
        path: The YAML file.

    Returns:
        The validated configuration.

    Raises:
        TrainConfigError: The file cannot be read, is not valid YAML, or breaks the schema
            (the message names the file and the key path).

    Example:
        >>> load_segment_config("workflows/training/segment_unet2d_cpu.yaml")  # doctest: +SKIP
    """
    return SegmentTrainConfig.load(path)
