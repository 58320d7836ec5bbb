"""Typed configuration of VAE training, loaded from YAML.

One YAML file (see ``workflows/training/vae_*.yaml``) loads into :class:`VAETrainConfig`, a
tree of frozen dataclasses parsed by :mod:`ctpipe.schema` (unknown keys, missing keys and
wrong types are refused with the key path). The ``optimizer`` and ``schedule`` sections are
those of denoiser training (:mod:`ctpipe.training.config`).

Sections (every key is optional unless marked required):

* ``data`` (required): ``train`` (required), ``validation``, ``holdout`` and
  ``calibration``: lists of series sources (:class:`SeriesSource`: a DICOM series folder or
  NIfTI ``path``, an optional ``[start, stop)`` range of ``slices`` and a ``step``).
  Held-out slices are those kept for the anomaly evaluation: a training or validation
  source that shares any of them, or comes within ``guard_slices`` of them, or lies in a
  folder above a held-out one, is refused. Calibration slices are held back from training
  the same way (validation slices may serve); ``ctpipe vae calibrate`` fits the
  out-of-distribution guard's calibration on them (:mod:`ctpipe.anomaly.guard`).
* ``grid``: the slice grid (:class:`ctpipe.slice_grid.SliceGrid`: ``size``, ``pixel_mm``,
  HU ``window``).
* ``model``: ``latent_dim``, ``channels``, ``reconstruction`` (``mse`` or
  ``gaussian_nll``), ``norm`` (:class:`ctpipe.nets.vae.VAE`).
* ``loss``: the decoder's fixed ``sigma`` (``mse``) or ``min_sigma`` (``gaussian_nll``),
  the KL weight ``beta`` and the linear KL ``warmup_iterations``.
* ``augment``: random rotation, scaling and translation (MONAI ``RandAffined``).
* ``optimizer``, ``schedule``: Adam and the learning-rate schedule.
* ``train``: ``batch_size``, ``epochs``, ``iterations_per_epoch``, the validation,
  checkpoint, image and log intervals, ``amp`` (CUDA only), ``device``, ``seed``.
* ``output_dir`` (required) and ``resume``.

Example:
    >>> config = VAETrainConfig.from_dict({
    ...     "data": {"train": [{"path": "/data/ct1"}],
    ...              "holdout": [{"path": "/data/ct2", "slices": [40, 70]}]},
    ...     "output_dir": "runs/vae",
    ... })
    >>> config.grid.size, config.model.latent_dim, config.loss.beta
    ((128, 128), 64, 1.0)
    >>> VAETrainConfig.from_dict({
    ...     "data": {"train": [{"path": "/d/ct", "slices": [0, 50]}],
    ...              "holdout": [{"path": "/d/ct", "slices": [52, 80]}]},
    ...     "output_dir": "o",
    ... })  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ctpipe.training.vae.config.VAEConfigError: <config>: data: train source /d/ct slices \
[0, 50) comes within guard_slices 3 of held-out slices [52, 80) of /d/ct...
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Literal

from ctpipe.errors import InputError
from ctpipe.slice_grid import SliceGrid
from ctpipe.training.config import (
    AffineAugmentConfig,
    OptimizerConfig,
    ScheduleConfig,
    TrainConfig,
    check_loop_settings,
    require,
)

__all__ = [
    "AugmentConfig",
    "ELBOConfig",
    "SeriesSource",
    "VAEConfigError",
    "VAEDataConfig",
    "VAELoopConfig",
    "VAEModelConfig",
    "VAETrainConfig",
    "load_vae_config",
]


class VAEConfigError(InputError):
    """A VAE training configuration is malformed (the message names the key path)."""


@dataclass(frozen=True)
class SeriesSource:
    """Slices of one CT series (a DICOM series folder or a NIfTI file).

    Args:
        path: The series folder or file (relative paths are taken from the working
            directory).
        slices: ``[start, stop)`` slice indices ``k`` to use; ``None``: all.
        step: Use every ``step``-th of them.
        name: A short name for logs (default: the folder or file name).

    Example:
        >>> SeriesSource("/data/pancreas", slices=[0, 42]).label
        'pancreas[0:42]'
    """

    path: str
    slices: tuple[int, int] | None = None
    step: int = 1
    name: str | None = None

    def __post_init__(self) -> None:
        if self.slices is not None:
            object.__setattr__(self, "slices", tuple(self.slices))
            start, stop = self.slices  # type: ignore[misc]
            require(
                0 <= start < stop,
                "slices must be [start, stop) with 0 <= start < stop",
                list(self.slices),
            )
        require(self.step >= 1, "step must be >= 1", self.step)
        require(bool(str(self.path).strip()), "path must not be empty", self.path)

    @property
    def label(self) -> str:
        """``name`` (or the path's last part) with the slice range."""
        base = self.name or Path(self.path).name
        if self.slices is None:
            return base
        return f"{base}[{self.slices[0]}:{self.slices[1]}]"

    def indices(self, count: int) -> list[int]:
        """The slice indices taken from a series of ``count`` slices.

        Example:
            >>> SeriesSource("/d", slices=[2, 9], step=3).indices(20)
            [2, 5, 8]
        """
        start, stop = self.slices if self.slices is not None else (0, count)
        return list(range(start, min(stop, count), self.step))

    def interval(self) -> tuple[float, float]:
        """``[start, stop)`` with an unlimited end for all slices."""
        return (
            (0.0, math.inf)
            if self.slices is None
            else (float(self.slices[0]), float(self.slices[1]))
        )


@dataclass(frozen=True)
class VAEDataConfig:
    """Where normal-anatomy training slices come from, and what is held out.

    Args:
        train: Sources of training slices.
        validation: Sources of validation slices (they pick ``checkpoint_best.pt``).
        holdout: Slices kept for the anomaly evaluation: never trained or validated on.
        calibration: In-distribution slices held back for the guard's calibration: never
            trained on (validation slices may serve).
        guard_slices: Slices next to a held-out range that training and validation may
            not use either (neighbouring slices are nearly the same image).
        allow_irregular: Read series with gaps (e.g. folders of scattered slices).

    Example:
        >>> VAEDataConfig(train=[SeriesSource("/d")]).guard_slices
        3
    """

    train: tuple[SeriesSource, ...]
    validation: tuple[SeriesSource, ...] = ()
    holdout: tuple[SeriesSource, ...] = ()
    calibration: tuple[SeriesSource, ...] = ()
    guard_slices: int = 3
    allow_irregular: bool = True

    def __post_init__(self) -> None:
        for key in ("train", "validation", "holdout", "calibration"):
            object.__setattr__(self, key, tuple(getattr(self, key)))
        require(len(self.train) > 0, "train must list at least one source", self.train)
        require(self.guard_slices >= 0, "guard_slices must be >= 0", self.guard_slices)
        for role, sources in (("train", self.train), ("validation", self.validation)):
            for source in sources:
                for held in self.holdout:
                    _check_apart(role, source, held, self.guard_slices)
        for source in self.train:
            for held in self.calibration:
                _check_apart("train", source, held, self.guard_slices, other_role="calibration")
        for source in self.validation:
            for trained in self.train:
                _check_apart("validation", source, trained, 0, other_role="training")


@dataclass(frozen=True)
class VAEModelConfig:
    """The network (:class:`ctpipe.nets.vae.VAE`); its input size is ``grid.size``.

    Example:
        >>> VAEModelConfig(channels=[8, 16]).channels
        (8, 16)
    """

    latent_dim: int = 64
    channels: tuple[int, ...] = (16, 32, 64, 128, 128)
    reconstruction: Literal["mse", "gaussian_nll"] = "mse"
    norm: Literal["batch", "instance", "none"] = "batch"

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
        require(self.latent_dim >= 1, "latent_dim must be >= 1", self.latent_dim)
        require(
            len(self.channels) >= 1 and all(c >= 1 for c in self.channels),
            "channels must list one or more positive integers",
            self.channels,
        )


@dataclass(frozen=True)
class ELBOConfig:
    """The loss: negative beta-ELBO (:class:`ctpipe.elbo.ELBOLoss`) with KL warm-up.

    Args:
        sigma: Fixed standard deviation of the ``mse`` decoder, in [0, 1] image units
            (0.05 is 20 HU for a 400 HU window).
        min_sigma: Floor of the predicted standard deviation of ``gaussian_nll``.
        beta: Final KL weight (1: the ELBO).
        warmup_iterations: Iterations over which the KL weight rises linearly from 0 to
            ``beta`` (0: no warm-up).

    Example:
        >>> ELBOConfig(warmup_iterations=1000).beta
        1.0
    """

    sigma: float = 0.05
    min_sigma: float = 0.01
    beta: float = 1.0
    warmup_iterations: int = 0

    def __post_init__(self) -> None:
        require(math.isfinite(self.sigma) and self.sigma > 0, "sigma must be > 0", self.sigma)
        require(
            math.isfinite(self.min_sigma) and self.min_sigma > 0,
            "min_sigma must be > 0",
            self.min_sigma,
        )
        require(math.isfinite(self.beta) and self.beta >= 0, "beta must be >= 0", self.beta)
        require(
            self.warmup_iterations >= 0, "warmup_iterations must be >= 0", self.warmup_iterations
        )


@dataclass(frozen=True)
class AugmentConfig(AffineAugmentConfig):
    """Random affine augmentation of training slices (MONAI ``RandAffined``).

    Args:
        prob: Probability of transforming a slice.
        rotate_deg: Largest rotation, degrees (either way).
        scale: Largest relative change of size (0.1: 90 % to 110 %).
        translate_mm: Largest shift in mm, along each axis.

    Example:
        >>> AugmentConfig(prob=0.0).rotate_deg
        10.0
    """

    prob: float = 0.8
    translate_mm: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.translate_mm >= 0, "translate_mm must be >= 0", self.translate_mm)


@dataclass(frozen=True)
class VAELoopConfig:
    """The training loop (section ``train``).

    Args:
        batch_size: Slices per iteration.
        epochs: Epochs to train (all of them, counting those before a resume).
        iterations_per_epoch: ``None``: one pass over the training slices.
        validation_interval: Epochs between validations (0: never).
        checkpoint_interval: Epochs between checkpoints (0: only at the end).
        image_interval: Epochs between sample-grid and interpolation PNGs (0: never).
        log_interval: Iterations between loss lines in the log (0: none).
        amp: Automatic mixed precision (CUDA only).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        seed: Seed of weights, batches, augmentation and posterior draws.
        progress: Show a progress bar.

    Example:
        >>> VAELoopConfig(batch_size=8).image_interval
        1
    """

    batch_size: int = 16
    epochs: int = 1
    iterations_per_epoch: int | None = None
    validation_interval: int = 1
    checkpoint_interval: int = 1
    image_interval: int = 1
    log_interval: int = 50
    amp: bool = False
    device: str = "auto"
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        intervals = ("validation_interval", "checkpoint_interval", "image_interval")
        check_loop_settings(self, (*intervals, "log_interval"))


@dataclass(frozen=True)
class VAETrainConfig(TrainConfig):
    """Everything a VAE training run needs; valid once built.

    Args:
        data: Training, validation and held-out slices.
        output_dir: Folder of checkpoints, logs and images.
        grid: The slice grid the model sees.
        model: The network.
        loss: The ELBO and its warm-up.
        augment: Training augmentation.
        optimizer: Adam.
        schedule: The learning-rate schedule.
        train: The training loop.
        resume: A checkpoint of this run to continue from.

    Example:
        >>> c = VAETrainConfig(VAEDataConfig([SeriesSource("/d")]), "o")
        >>> VAETrainConfig.from_dict(c.to_dict()) == c
        True
    """

    error = VAEConfigError

    data: VAEDataConfig
    output_dir: str
    grid: SliceGrid = field(default_factory=SliceGrid)
    model: VAEModelConfig = field(default_factory=VAEModelConfig)
    loss: ELBOConfig = field(default_factory=ELBOConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(lr=1e-3))
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: VAELoopConfig = field(default_factory=VAELoopConfig)
    resume: str | None = None

    def __post_init__(self) -> None:
        factor = 2 ** len(self.model.channels)
        require(
            all(s % factor == 0 for s in self.grid.size),
            f"grid.size must be multiples of 2 ** len(model.channels) = {factor}",
            list(self.grid.size),
        )
        super().__post_init__()

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`ctpipe.nets.vae.VAE` for this configuration.

        Example:
            >>> c = VAETrainConfig(VAEDataConfig([SeriesSource("/d")]), "o")
            >>> c.model_kwargs()["in_shape"]
            [128, 128]
        """
        return {
            "in_shape": list(self.grid.size),
            "latent_dim": self.model.latent_dim,
            "channels": list(self.model.channels),
            "in_channels": 1,
            "reconstruction": self.model.reconstruction,
            "norm": self.model.norm,
        }


def load_vae_config(path: str | PathLike[str]) -> VAETrainConfig:
    """Read and validate a VAE training configuration YAML file.

    Raises:
        VAEConfigError: The file cannot be read or is not a valid configuration (the
            message names the file and the key path).
    """
    return VAETrainConfig.load(path)


def _check_apart(
    role: str, source: SeriesSource, other: SeriesSource, guard: int, other_role: str = "held-out"
) -> None:
    """Refuse ``source`` when it shares (or comes within ``guard`` of) slices of ``other``."""
    mine, theirs = Path(source.path).resolve(), Path(other.path).resolve()
    if mine != theirs:
        if mine in theirs.parents:
            raise ValueError(
                f"{role} source {source.path} holds the {other_role} source {other.path}; "
                "list the series folders to use one by one"
            )
        if theirs in mine.parents:
            raise ValueError(
                f"{role} source {source.path} lies inside the {other_role} folder {other.path}"
            )
        return
    a0, a1 = source.interval()
    b0, b1 = other.interval()
    if a0 < b1 + guard and b0 - guard < a1:
        what = "shares" if (a0 < b1 and b0 < a1) else f"comes within guard_slices {guard} of"
        raise ValueError(
            f"{role} source {source.path} slices {_span(source)} {what} {other_role} slices "
            f"{_span(other)} of {other.path}"
        )


def _span(source: SeriesSource) -> str:
    return "all" if source.slices is None else f"[{source.slices[0]}, {source.slices[1]})"
