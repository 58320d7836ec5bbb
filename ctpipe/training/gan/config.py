"""Typed configuration of DCGAN training on CT patches, loaded from YAML.

A run is one YAML file (see ``workflows/training/gan_*.yaml``) that loads into
:class:`GanTrainConfig`, a tree of frozen dataclasses parsed by :mod:`ctpipe.schema`
(unknown keys, missing keys and wrong types are refused with the key path). Each section
checks its own rules when built, so a built config is valid.

Sections (every key is optional unless marked required):

* ``model``: the DCGAN (:mod:`ctpipe.nets.dcgan`): ``latent_size``, ``generator_features``,
  ``discriminator_features`` and ``image_size`` (the patch side).
* ``data`` (required): ``sources``, a list of CT volumes (DICOM folder or file, NIfTI) with
  an optional ``slices: [start, stop]`` range and ``step`` (hold out slices of a series by
  leaving them out of the range); the HU ``window`` mapped to [-1, 1]; ``body_threshold``
  (HU) whose pixels may centre a patch; ``flip`` and ``rot90`` augmentation.
* ``generator_optimizer``, ``discriminator_optimizer``: Adam (:class:`~ctpipe.training.
  config.OptimizerConfig`); the DCGAN paper's lr 2e-4 and betas (0.5, 0.999) by default.
* ``train``: ``batch_size``, ``epochs``, ``iterations_per_epoch``, ``d_steps`` (the ``k``
  discriminator steps per generator step of Goodfellow et al.), checkpoint and log
  intervals, ``instance_noise`` (its start and end standard deviation), ``sample_grid``
  (images in each epoch's sample grid), ``device``, ``seed``.
* ``output_dir`` (required) and ``resume``.

Example:
    >>> config = GanTrainConfig.from_dict({
    ...     "data": {"sources": [{"path": "/data/ct", "slices": [0, 96]}]},
    ...     "train": {"d_steps": 2},
    ...     "output_dir": "runs/gan",
    ... })
    >>> config.train.d_steps, config.data.window, config.generator_optimizer.betas
    (2, (-1024.0, 1024.0), (0.5, 0.999))
    >>> GanTrainConfig.from_dict({"data": {"sources": []}, "output_dir": "o"})
    Traceback (most recent call last):
    ...
    ctpipe.training.config.TrainConfigError: <config>: data: sources must list at least \
one CT volume, got ()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike

from ctpipe.devices import check_device_setting
from ctpipe.schema import require_at_least
from ctpipe.training.config import (
    OptimizerConfig,
    TrainConfig,
    require,
)
from ctpipe.transforms import BODY_THRESHOLD_HU, GAN_HU_WINDOW

__all__ = [
    "DCGANConfig",
    "GanDataConfig",
    "GanLoopConfig",
    "GanTrainConfig",
    "SliceSourceConfig",
    "load_gan_config",
]


def _dcgan_optimizer() -> OptimizerConfig:
    return OptimizerConfig(lr=2e-4, betas=(0.5, 0.999))


@dataclass(frozen=True)
class DCGANConfig:
    """The generator and discriminator (:mod:`ctpipe.nets.dcgan`).

    Args:
        latent_size: Length of the latent vector (100 in the DCGAN paper).
        generator_features: Channels of the generator's last hidden layer.
        discriminator_features: Channels of the discriminator's first layer.
        image_size: Patch side in pixels, a power of two >= 16.

    Example:
        >>> DCGANConfig(image_size=128).generator_kwargs()["image_size"]
        128
    """

    latent_size: int = 100
    generator_features: int = 16
    discriminator_features: int = 16
    image_size: int = 64

    def __post_init__(self) -> None:
        require_at_least(self, ("latent_size", "generator_features", "discriminator_features"), 1)
        size = self.image_size
        require(
            size >= 16 and size & (size - 1) == 0, "image_size must be a power of 2 >= 16", size
        )

    def generator_kwargs(self) -> dict[str, int]:
        """Keyword arguments of :class:`~ctpipe.nets.dcgan.DCGANGenerator`."""
        return {
            "latent_size": self.latent_size,
            "features": self.generator_features,
            "image_size": self.image_size,
        }

    def discriminator_kwargs(self) -> dict[str, int]:
        """Keyword arguments of :class:`~ctpipe.nets.dcgan.DCGANDiscriminator`."""
        return {"features": self.discriminator_features, "image_size": self.image_size}


@dataclass(frozen=True)
class SliceSourceConfig:
    """One CT volume whose axial slices are training images.

    Args:
        path: DICOM folder or file, or NIfTI, in HU.
        slices: ``[start, stop)`` slice indices to use (Python range rules; ``stop`` may be
            null for "to the end"); ``None`` uses every slice.
        step: Use every ``step``-th slice of the range.
        allow_irregular: Read DICOM slices with gaps between them (separate slices such as
            the AAPM pairs; each slice is used on its own).
        series_uid: SeriesInstanceUID when the folder holds several series.

    Example:
        >>> SliceSourceConfig("/data/ct", slices=(0, 96)).slice_range(134)
        range(0, 96)
    """

    path: str
    slices: tuple[int, int | None] | None = None
    step: int = 1
    allow_irregular: bool = False
    series_uid: str | None = None

    def __post_init__(self) -> None:
        require(bool(str(self.path).strip()), "path must not be empty", self.path)
        require(self.step >= 1, "step must be >= 1", self.step)
        if self.slices is not None:
            object.__setattr__(self, "slices", tuple(self.slices))
            start, stop = self.slices
            require(start >= 0, "slices start must be >= 0", self.slices)
            require(
                stop is None or stop > start,
                "slices must be [start, stop) with stop > start",
                self.slices,
            )

    def slice_range(self, depth: int) -> range:
        """The slice indices used from a volume of ``depth`` slices."""
        start, stop = self.slices if self.slices is not None else (0, None)
        return range(start, depth if stop is None else min(stop, depth), self.step)


@dataclass(frozen=True)
class GanDataConfig:
    """Where the training patches come from.

    Args:
        sources: The CT volumes (at least one).
        window: HU range ``(low, high)`` clipped and mapped to [-1, 1] (the generator's
            ``tanh`` range). Stored with the weights: inpainting uses the same window.
        body_threshold: Patches are centred on pixels above this HU (the body, not air).
        flip: Random flips along each axis (p = 0.5 each).
        rot90: Random rotation by a multiple of 90 degrees (p = 0.5).
        num_workers: Data loader worker processes.

    Example:
        >>> GanDataConfig(sources=[SliceSourceConfig("/d")], window=[-160, 240]).window
        (-160.0, 240.0)
    """

    sources: tuple[SliceSourceConfig, ...]
    window: tuple[float, float] = GAN_HU_WINDOW
    body_threshold: float = BODY_THRESHOLD_HU
    flip: bool = True
    rot90: bool = True
    num_workers: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(self.sources))
        object.__setattr__(self, "window", tuple(float(w) for w in self.window))
        require(len(self.sources) > 0, "sources must list at least one CT volume", self.sources)
        require(
            len(self.window) == 2 and self.window[1] > self.window[0],
            "window must be [low, high] HU with high > low",
            self.window,
        )
        require(self.num_workers >= 0, "num_workers must be >= 0", self.num_workers)


@dataclass(frozen=True)
class GanLoopConfig:
    """The adversarial training loop (section ``train``).

    Args:
        batch_size: Real patches (and generated ones) per iteration.
        epochs: Epochs to train, counting those of a resumed run.
        iterations_per_epoch: Generator steps per epoch.
        d_steps: Discriminator steps per generator step (``k`` in Goodfellow et al.,
            MONAI ``GanTrainer``'s ``d_train_steps``).
        instance_noise: Standard deviation of the Gaussian noise added to every image the
            discriminator sees, real or generated, at the first iteration (instance noise,
            Sønderby et al. 2016; Arjovsky and Bottou 2017). It hides the generator's early
            high-frequency artefacts, which otherwise let the discriminator win before the
            generator has learnt any anatomy. 0 switches it off.
        instance_noise_end: The standard deviation at the last iteration (linear in
            between); ``None`` keeps ``instance_noise`` throughout.
        checkpoint_interval: Epochs between checkpoints (0: only at the end).
        log_interval: Iterations between two loss lines in the log (0: none).
        sample_grid: Generated images in each epoch's sample grid (a square number).
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
        seed: Seed of the weights, the patches and the latents.
        progress: Show a progress bar.

    Example:
        >>> GanLoopConfig(d_steps=2).batch_size
        64
    """

    batch_size: int = 64
    epochs: int = 1
    iterations_per_epoch: int = 100
    d_steps: int = 1
    instance_noise: float = 0.0
    instance_noise_end: float | None = None
    checkpoint_interval: int = 1
    log_interval: int = 50
    sample_grid: int = 64
    device: str = "auto"
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        require_at_least(self, ("batch_size", "epochs", "iterations_per_epoch", "d_steps"), 1)
        require_at_least(self, ("checkpoint_interval", "log_interval", "instance_noise"), 0)
        if self.instance_noise_end is not None:
            require(
                self.instance_noise_end >= 0,
                "instance_noise_end must be >= 0",
                self.instance_noise_end,
            )
        side = round(self.sample_grid**0.5)
        require(
            self.sample_grid >= 1 and side * side == self.sample_grid,
            "sample_grid must be a square number (4, 16, 64, ...)",
            self.sample_grid,
        )
        check_device_setting("device", self.device)


@dataclass(frozen=True)
class GanTrainConfig(TrainConfig):
    """Everything a DCGAN training run needs; valid once built.

    Args:
        data: The training slices.
        output_dir: Folder of checkpoints, sample grids, the log and the loss curve.
        model: The generator and discriminator.
        generator_optimizer: Adam for the generator.
        discriminator_optimizer: Adam for the discriminator.
        train: The training loop.
        resume: A checkpoint of this run to continue from.

    Example:
        >>> c = GanTrainConfig(GanDataConfig([SliceSourceConfig("/d")]), "runs/g")
        >>> GanTrainConfig.from_dict(c.to_dict()) == c
        True
    """

    data: GanDataConfig
    output_dir: str
    model: DCGANConfig = field(default_factory=DCGANConfig)
    generator_optimizer: OptimizerConfig = field(default_factory=_dcgan_optimizer)
    discriminator_optimizer: OptimizerConfig = field(default_factory=_dcgan_optimizer)
    train: GanLoopConfig = field(default_factory=GanLoopConfig)
    resume: str | None = None

    what = "GAN training config"


def load_gan_config(path: str | PathLike[str]) -> GanTrainConfig:
    """Read and validate a DCGAN training configuration YAML file.

    Raises:
        TrainConfigError: The file cannot be read or is not a valid configuration (the
            message names the file and the key path).

    Example:
        >>> load_gan_config("workflows/training/gan_dcgan_cpu.yaml").train.d_steps  # doctest: +SKIP
        1
    """
    return GanTrainConfig.load(path)
