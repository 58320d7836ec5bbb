"""Typed configuration of denoiser training, loaded from YAML.

A training run is described by one YAML file (see ``workflows/training/``) that loads into
:class:`DenoiseTrainConfig`, a tree of frozen dataclasses deriving from the base of every
task's configuration (:class:`ctpipe.training.config.TrainConfig`): :func:`load_train_config`
refuses unknown keys (naming the key path, the allowed keys and the closest spelling),
missing required keys and values of the wrong type, and each dataclass checks its own value
rules when built, so a built config is valid. The ``optimizer``, ``schedule`` and ``train``
sections are the shared ones of :mod:`ctpipe.training.config`.

Relative paths in a config (``data.root``, ``data.manifest``, ``output_dir``, ...) are taken
from the working directory, like every ``ctpipe`` command's paths: run from the repository
root, ``../shared/data/aapm_ldct_pairs`` is the project's shared data.

Sections (every key is optional unless marked required):

* ``model`` (required): ``name`` (``redcnn``, ``rednet``) and ``kwargs`` for
  :func:`ctpipe.nets.build_denoiser`.
* ``data`` (required): the AAPM ``root``, an optional data ``manifest`` (its ``train`` and
  ``test`` splits; ``verify`` checks every file's sha256 against it), ``thickness`` and
  ``kernel`` filters, ``train_patients``, validation by whole ``validation_patients`` or by
  ``validation_holdout`` slices held out of each training patient, optional ``simulated``
  pairs, and the ``CacheDataset`` settings.
* ``patches``: ``size`` (55 x 55 in the RED-CNN paper), ``per_slice`` random patches drawn
  from each cached slice, ``flip`` and ``rot90`` augmentation.
* ``optimizer``: Adam ``lr`` (1e-4 in the paper), ``betas``, ``weight_decay``.
* ``schedule``: ``constant``, ``cosine`` (to ``min_lr``) or ``step`` (``gamma`` every
  ``step_size`` iterations).
* ``train``: ``batch_size`` (patches), ``epochs``, ``iterations_per_epoch``, ``loss``,
  the validation, checkpoint and log intervals, ``amp`` (CUDA only), ``device``, ``seed``.
* ``output_dir`` (required) and ``resume`` (a checkpoint to continue from).

Example:
    >>> config = DenoiseTrainConfig.from_dict({
    ...     "model": {"name": "redcnn", "kwargs": {"filters": 8}},
    ...     "data": {"root": "/data/aapm", "train_patients": ["L096"], "validation_holdout": 1},
    ...     "train": {"batch_size": 8, "epochs": 2},
    ...     "output_dir": "runs/demo",
    ... })
    >>> config.patches.size, config.train.batch_size // config.patches.per_slice
    ((55, 55), 1)
    >>> DenoiseTrainConfig.from_dict({"model": {}, "data": {}, "output_dir": "o", "trian": {}})
    Traceback (most recent call last):
    ...
    ctpipe.training.config.TrainConfigError: <config>: unknown key 'trian'; allowed keys \
at the top level: model, data, output_dir, patches, optimizer, schedule, train, resume; did you \
mean 'train'?
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from typing import Any, Literal

from ctpipe.schema import did_you_mean
from ctpipe.training.config import (
    OptimizerConfig,
    ScheduleConfig,
    TrainConfig,
    TrainConfigError,
    TrainLoopConfig,
    require,
)

__all__ = [
    "DataConfig",
    "DenoiseTrainConfig",
    "ModelConfig",
    "PatchConfig",
    "SimulatedPairsConfig",
    "TrainConfigError",
    "load_train_config",
]

_THICKNESS = re.compile(r"\d+(\.\d+)?mm")


# --- sections --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelConfig:
    """The network to train.

    Args:
        name: A denoiser of :data:`ctpipe.nets.DENOISERS` (``redcnn``, ``rednet``).
        kwargs: Keyword arguments of that network, e.g. ``{"filters": 96}``; they are
            checked against its signature when the network is built.

    Example:
        >>> ModelConfig("redcnn", {"filters": 96}).kwargs["filters"]
        96
    """

    name: str = "redcnn"
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from ctpipe.nets import DENOISERS

        require(isinstance(self.name, str), "name must be a string", self.name)
        if self.name.lower() not in DENOISERS:
            raise ValueError(
                f"name must be one of {', '.join(sorted(DENOISERS))}, got {self.name!r}"
                + did_you_mean(self.name.lower(), sorted(DENOISERS))
            )
        require(isinstance(self.kwargs, Mapping), "kwargs must be a mapping", self.kwargs)
        object.__setattr__(self, "kwargs", dict(self.kwargs))


@dataclass(frozen=True)
class SimulatedPairsConfig:
    """Training pairs made by simulating low dose from normal-dose series.

    Each slice of each series becomes a pair: the simulated low-dose slice is the input,
    the original slice the target (:class:`ctpipe.simulate.LowDoseSimulator`).

    Args:
        series: Normal-dose DICOM series folders (or NIfTI files), HU.
        dose_fraction: Simulated dose as a fraction of the original, in (0, 1].
        seed: Seed of the simulated noise (the same seed gives the same pairs).
        slice_step: Use every ``slice_step``-th slice of each series (the simulator takes
            seconds per slice; neighbouring slices add little variety).
        dose_range: ``[low, high]``: each slice gets its own dose fraction, drawn uniformly
            from this range (seeded), so the model sees a range of noise levels;
            ``None`` uses ``dose_fraction`` for every slice.
        kernel_matched: Choose the simulator's FBP filter from each series' reconstruction
            kernel (``ramp`` for sharp kernels such as Siemens D45, ``hann`` for smooth
            ones; :func:`ctpipe.training.denoise.data.kernel_filter`); ``False`` uses ``ramp``.
        smooth_filter: With ``kernel_matched``, the FBP filter of smooth kernels, one of
            :data:`ctpipe.simulate.FILTERS`. ``hann`` (the default) has the noise level of
            the simulator's calibration but a coarser grain than real B30 quarter-dose
            noise; ``cosine`` matches B30's noise power spectrum (``benchmarks/
            bench_noise_texture.py``) and passes 1.4 times hann's noise std.
        smooth_photon_scale: With ``kernel_matched``, the smooth kernels' photon count as
            a multiple of the default (noise std scales as ``1 / sqrt`` of it); 2.0 brings
            ``cosine`` back to hann's calibrated noise level.
        cache_dir: Folder for the simulated pairs (``.npz`` named by a hash of the series
            files and these settings), so a resumed or repeated run does not simulate again;
            ``None``: no cache.

    Example:
        >>> SimulatedPairsConfig(["/data/ct1"], dose_fraction=0.25).series
        ('/data/ct1',)
        >>> SimulatedPairsConfig(["/data/ct1"], dose_range=[0.3, 0.1])
        Traceback (most recent call last):
        ...
        ValueError: dose_range must be [low, high] with 0 < low <= high <= 1, got (0.3, 0.1)
    """

    series: tuple[str, ...]
    dose_fraction: float = 0.25
    seed: int = 0
    slice_step: int = 1
    dose_range: tuple[float, float] | None = None
    kernel_matched: bool = False
    smooth_filter: str = "hann"
    smooth_photon_scale: float = 1.0
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "series", tuple(self.series))
        require(self.slice_step >= 1, "slice_step must be 1 or more", self.slice_step)
        require(len(self.series) > 0, "series must list at least one folder", self.series)
        require(0 < self.dose_fraction <= 1, "dose_fraction must be in (0, 1]", self.dose_fraction)
        try:
            from ctpipe.simulate import FILTERS
        except ImportError:  # simulated_pairs says so when the pairs are made
            FILTERS = (self.smooth_filter,)
        require(
            self.smooth_filter in FILTERS,
            f"smooth_filter must be one of {', '.join(FILTERS)}",
            self.smooth_filter,
        )
        require(
            self.smooth_photon_scale > 0,
            "smooth_photon_scale must be > 0",
            self.smooth_photon_scale,
        )
        if self.dose_range is not None:
            low_high = tuple(float(v) for v in self.dose_range)
            object.__setattr__(self, "dose_range", low_high)
            require(
                len(low_high) == 2 and 0 < low_high[0] <= low_high[1] <= 1,
                "dose_range must be [low, high] with 0 < low <= high <= 1",
                low_high,
            )


@dataclass(frozen=True)
class DataConfig:
    """Where the training and validation pairs come from.

    Training patients are ``train_patients`` (or, when absent, the ``train`` split of
    ``manifest``) less the ``validation_patients``. A patient in the manifest's ``test``
    split is refused for training and validation: the test set is never used for model
    selection. With few patients (the shared data has two training patients), validate on
    ``validation_holdout`` slices held out of each training patient instead.

    Args:
        root: Folder of the AAPM layout (:func:`ctpipe.io.aapm.find_aapm_pairs`).
        manifest: A data manifest of ``root``: its ``train``/``test`` splits are used, and
            with ``verify`` every paired file is checked against its size and sha256.
        verify: Check the files against ``manifest`` before training.
        thickness: Keep only this slice thickness, e.g. ``"3mm"``; ``None`` keeps all.
        kernel: Keep only this reconstruction kernel, e.g. ``"D45"``; ``None`` keeps all.
        train_patients: Patient folders to train on; ``None`` takes the manifest's
            ``train`` split.
        validation_patients: Whole patients used for validation only.
        validation_holdout: Slices of each training patient held out for validation
            (evenly spaced along z, never the first or last slice).
        validation_holdout_by: ``patient``: ``validation_holdout`` slices of each
            patient, whatever their kernels (a kernel may go unvalidated); ``kernel``: of
            each kernel of each patient, so every kernel trained on is also validated.
        simulated: Extra training pairs simulated from normal-dose series.
        cache_rate: Fraction of the slices kept in memory by ``CacheDataset``.
        num_workers: Worker processes for caching and for the data loaders.
        sampling: ``epochs``: shuffled passes over the slices (each slice once per pass).
            ``balanced``: every batch is drawn afresh as a function of the iteration
            (:class:`ctpipe.training.denoise.patch_stream.PatchStream`), so a resumed run sees
            exactly the batches of an uninterrupted one, and each group of slices
            (``real`` or ``simulated`` pairs, by sharp or smooth kernel) takes its share.
        shares: With ``balanced`` sampling, the relative share of each group, e.g.
            ``{real/smooth: 2}``; a group not named weighs 1, so ``None`` gives every group
            present an equal share.

    Example:
        >>> DataConfig(root="/data/aapm", train_patients=["L096"]).train_patients
        ('L096',)
    """

    root: str | None = None
    manifest: str | None = None
    verify: bool = False
    thickness: str | None = None
    kernel: str | None = None
    train_patients: tuple[str, ...] | None = None
    validation_patients: tuple[str, ...] = ()
    validation_holdout: int = 0
    validation_holdout_by: Literal["patient", "kernel"] = "patient"
    simulated: SimulatedPairsConfig | None = None
    cache_rate: float = 1.0
    num_workers: int = 0
    sampling: Literal["epochs", "balanced"] = "epochs"
    shares: dict[str, float] | None = None

    def __post_init__(self) -> None:
        if self.shares is not None:
            require(
                all(v >= 0 for v in self.shares.values()) and sum(self.shares.values()) > 0,
                "shares must be >= 0 with a positive sum",
                self.shares,
            )
            require(self.sampling == "balanced", "shares need sampling: balanced", self.sampling)
        if self.train_patients is not None:
            object.__setattr__(self, "train_patients", tuple(self.train_patients))
        object.__setattr__(self, "validation_patients", tuple(self.validation_patients))
        if self.root is None and self.simulated is None:
            raise ValueError("root or simulated must be given: there would be no training data")
        if self.root is None and (self.train_patients or self.validation_patients):
            raise ValueError("train_patients and validation_patients need root")
        if self.root is not None and self.train_patients is None and self.manifest is None:
            raise ValueError(
                "train_patients must be given when there is no manifest to take the "
                "'train' split from"
            )
        require(not self.verify or self.manifest, "verify needs a manifest", self.verify)
        if self.thickness is not None:
            require(
                bool(_THICKNESS.fullmatch(self.thickness)),
                "thickness must be a number followed by 'mm', e.g. '3mm'",
                self.thickness,
            )
        both = sorted(set(self.train_patients or ()) & set(self.validation_patients))
        require(
            not both, "a patient may not be in both train_patients and validation_patients", both
        )
        require(
            self.validation_holdout >= 0, "validation_holdout must be >= 0", self.validation_holdout
        )
        require(0 <= self.cache_rate <= 1, "cache_rate must be in [0, 1]", self.cache_rate)
        require(self.num_workers >= 0, "num_workers must be >= 0", self.num_workers)


@dataclass(frozen=True)
class PatchConfig:
    """Random training patches and their augmentation (the same for input and target).

    Args:
        size: Patch height and width in pixels (55 x 55 in the RED-CNN paper).
        per_slice: Patches drawn from each slice each time it is visited.
        flip: Random flips along each axis (probability 0.5 each).
        rot90: Random rotation by 0, 90, 180 or 270 degrees (probability 0.5).
        structure_share: The share of patch centres drawn in proportion to the target's
            edge strength, in [0, 1); the rest are uniform. 0 (the default) draws every
            centre uniformly, as the RED-CNN paper does; above 0 the centres follow
            :func:`ctpipe.training.denoise.patches.structure_weight`, so that edges, where
            a denoiser's error concentrates, are seen more often.
        loss_margin: Pixels at each edge of a patch left out of the loss
            (:class:`~ctpipe.training.denoise.margin_loss.MarginLoss`). 0 (the default, as
            in the paper) scores every pixel; RED-CNN's ``receptive_radius`` (20) scores
            only the pixels that see their whole receptive field, as every pixel of a
            whole slice does at inference. It must leave at least one pixel.

    Example:
        >>> PatchConfig(size=[64, 64]).size
        (64, 64)
    """

    size: tuple[int, int] = (55, 55)
    per_slice: int = 8
    flip: bool = True
    rot90: bool = True
    structure_share: float = 0.0
    loss_margin: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", tuple(self.size))
        require(
            len(self.size) == 2 and all(s >= 1 for s in self.size),
            "size must be two positive integers (height, width)",
            self.size,
        )
        require(self.per_slice >= 1, "per_slice must be >= 1", self.per_slice)
        require(
            0 <= self.structure_share < 1,
            "structure_share must be in [0, 1)",
            self.structure_share,
        )
        require(
            0 <= 2 * self.loss_margin < min(self.size),
            "loss_margin must be >= 0 and leave at least one pixel of the patch",
            self.loss_margin,
        )


@dataclass(frozen=True)
class DenoiseTrainConfig(TrainConfig):
    """Everything a denoiser training run needs; valid once built.

    Args:
        model: The network.
        data: The training and validation data.
        output_dir: Folder for checkpoints, the loss log and the loss curve.
        patches: Patch sampling and augmentation.
        optimizer: The optimizer.
        schedule: The learning-rate schedule.
        train: The training loop.
        resume: A checkpoint of this run to continue from (``None``: start afresh).

    Example:
        >>> import dataclasses
        >>> c = DenoiseTrainConfig(ModelConfig(), DataConfig(root="/d", train_patients=["A"]), "o")
        >>> dataclasses.replace(c, resume="o/checkpoint_latest.pt").resume
        'o/checkpoint_latest.pt'
        >>> DenoiseTrainConfig.from_dict(c.to_dict()) == c
        True
        >>> DenoiseTrainConfig.from_dict({"model": {}, "data": {}, "output_dir": "o"})
        Traceback (most recent call last):
        ...
        ctpipe.training.config.TrainConfigError: <config>: data: root or simulated must be \
given: there would be no training data
    """

    model: ModelConfig
    data: DataConfig
    output_dir: str
    patches: PatchConfig = field(default_factory=PatchConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainLoopConfig = field(default_factory=TrainLoopConfig)
    resume: str | None = None

    def __post_init__(self) -> None:
        if self.train.batch_size % self.patches.per_slice:
            raise ValueError(
                f"train.batch_size must be a multiple of patches.per_slice (each slice gives "
                f"per_slice patches), got batch_size={self.train.batch_size} and "
                f"per_slice={self.patches.per_slice}"
            )
        super().__post_init__()

    @property
    def slices_per_batch(self) -> int:
        """Slices in each batch: ``train.batch_size // patches.per_slice``."""
        return self.train.batch_size // self.patches.per_slice


def load_train_config(path: str | PathLike[str]) -> DenoiseTrainConfig:
    r"""Read and validate a denoiser training configuration YAML file.

    Raises:
        TrainConfigError: When the file cannot be read, is not YAML or is not a valid
            configuration (the message names the file and the key path).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "train.yaml"
        >>> _ = path.write_text(
        ...     "model: {name: redcnn}\ndata: {root: /d, train_patients: [L096]}\n"
        ...     "train: {batch_szie: 16}\noutput_dir: runs/x\n"
        ... )
        >>> load_train_config(path)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ctpipe.training.config.TrainConfigError: ...unknown key 'train.batch_szie'...'batch_size'?
    """
    return DenoiseTrainConfig.load(path)
