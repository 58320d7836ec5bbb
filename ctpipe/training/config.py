"""What every task's training configuration shares: the base class and the common sections.

Each task (denoiser, segmenter, VAE, GAN) describes a run in one YAML file that loads into
its own frozen dataclass deriving from :class:`TrainConfig`: the dataclass annotations are
the schema, :meth:`TrainConfig.load` (through :mod:`ctpipe.schema`) refuses unknown keys
(naming the key path, the allowed keys and the closest spelling), missing required keys
and values of the wrong type, and each section checks its own value rules when built, so
a built config is valid. Every task has ``output_dir`` and ``resume``; the sections here
(``optimizer``, ``schedule``, ``train``) are shared by the tasks that use them.

Example:
    >>> OptimizerConfig(lr=0.0)
    Traceback (most recent call last):
    ...
    ValueError: lr must be > 0, got 0.0
    >>> ScheduleConfig("step", step_size=100).gamma
    0.1
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from os import PathLike
from typing import Any, ClassVar, Literal, TypeVar

from ctpipe.devices import check_device_setting
from ctpipe.errors import InputError
from ctpipe.schema import (
    dataclass_to_dict,
    load_yaml_dataclass,
    parse_dataclass,
    require,
    require_at_least,
)

__all__ = [
    "AffineAugmentConfig",
    "OptimizerConfig",
    "ScheduleConfig",
    "TrainConfig",
    "TrainConfigError",
    "TrainLoopConfig",
    "check_loop_settings",
    "config_to_dict",
    "require",
]

_Config = TypeVar("_Config", bound="TrainConfig")


class TrainConfigError(InputError):
    """A training configuration file is malformed (the message names the key path)."""


class TrainConfig:
    """The base of every task's training configuration (each a frozen dataclass).

    A task's dataclass declares its sections; every one has ``output_dir`` (the run's
    folder) and ``resume`` (a checkpoint of the run to continue from, or ``None``). This
    base gives them one way to be read, checked and written.

    Attributes:
        error: The error raised for a bad file (names the file and the key path).
        what: What the file is, in the message when it cannot be read.
    """

    error: ClassVar[type[InputError]] = TrainConfigError
    what: ClassVar[str] = "training config"

    def __post_init__(self) -> None:
        """The rules every run shares: an output folder, a cosine floor below the rate."""
        schedule, optimizer = getattr(self, "schedule", None), getattr(self, "optimizer", None)
        cosine = schedule is not None and schedule.name in ("cosine", "stable_decay")
        if cosine and optimizer is not None and schedule.min_lr > optimizer.lr:
            raise ValueError(
                f"schedule.min_lr must be <= optimizer.lr for a cosine schedule, got "
                f"min_lr={schedule.min_lr} and lr={optimizer.lr}"
            )
        require(bool(str(self.output_dir).strip()), "output_dir must not be empty", "")  # type: ignore[attr-defined]

    @classmethod
    def from_dict(
        cls: type[_Config], data: object, *, source: str | PathLike[str] = "<config>"
    ) -> _Config:
        """Build a config from parsed YAML, naming the key path of any problem.

        Raises:
            InputError: The class's :attr:`error`, on an unknown or missing key, a value of
                the wrong type or a value that breaks a rule.
        """
        return parse_dataclass(cls, data, source=source, error=cls.error)

    @classmethod
    def load(cls: type[_Config], path: str | PathLike[str]) -> _Config:
        """Read and validate a YAML file (the error names the file and the key path)."""
        return load_yaml_dataclass(cls, path, error=cls.error, what=cls.what)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, dicts, scalars) for YAML, JSON and checkpoints."""
        return dataclass_to_dict(self)


# --- sections shared by the tasks -------------------------------------------------------------


@dataclass(frozen=True)
class OptimizerConfig:
    """The Adam optimizer.

    Args:
        name: ``adam`` (the only optimizer for now).
        lr: Learning rate (1e-4 in the RED-CNN paper).
        betas: Adam's moment decay rates.
        weight_decay: L2 penalty.

    Example:
        >>> OptimizerConfig(lr=1e-4).betas
        (0.9, 0.999)
    """

    name: Literal["adam"] = "adam"
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))
        require(math.isfinite(self.lr) and self.lr > 0, "lr must be > 0", self.lr)
        require(
            len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
            "betas must be two numbers in [0, 1)",
            self.betas,
        )
        require(self.weight_decay >= 0, "weight_decay must be >= 0", self.weight_decay)


@dataclass(frozen=True)
class ScheduleConfig:
    """How the learning rate changes, stepped every iteration.

    Args:
        name: ``constant``; ``cosine``: half a cosine from the optimizer's ``lr`` down to
            ``min_lr`` over the whole run; ``step``: multiply by ``gamma`` every
            ``step_size`` iterations; ``stable_decay``: constant, then half a cosine down
            to ``min_lr`` over the last ``decay_fraction`` of the run (a long run can be
            extended on resume while it is still constant, with no schedule jump).
        min_lr: The final learning rate of ``cosine`` and ``stable_decay``.
        step_size: Iterations between two decays of ``step``.
        gamma: Decay factor of ``step``.
        decay_fraction: The decaying part of ``stable_decay``, in (0, 1].

    Example:
        >>> ScheduleConfig("cosine", min_lr=1e-5).name
        'cosine'
    """

    name: Literal["constant", "cosine", "step", "stable_decay"] = "constant"
    min_lr: float = 0.0
    step_size: int = 0
    gamma: float = 0.1
    decay_fraction: float = 0.2

    def __post_init__(self) -> None:
        require(self.min_lr >= 0, "min_lr must be >= 0", self.min_lr)
        require(0 < self.gamma <= 1, "gamma must be in (0, 1]", self.gamma)
        require(self.step_size >= 0, "step_size must be >= 0", self.step_size)
        require(
            0 < self.decay_fraction <= 1, "decay_fraction must be in (0, 1]", self.decay_fraction
        )
        if self.name == "step":
            require(self.step_size >= 1, "step_size must be >= 1 for name 'step'", 0)


@dataclass(frozen=True)
class AffineAugmentConfig:
    """Random rotation and zoom of training images: what every task's augmentation shares.

    A task's section derives from it, sets its own ``prob`` default and adds its own
    transforms.

    Args:
        prob: Probability of each random transform.
        rotate_deg: Largest in-plane rotation (degrees, either way).
        scale: Largest zoom in or out (fraction, e.g. 0.1 for 0.9 to 1.1).

    Example:
        >>> AffineAugmentConfig(rotate_deg=200.0)
        Traceback (most recent call last):
        ...
        ValueError: rotate_deg must be in [0, 180], got 200.0
    """

    prob: float = 0.5
    rotate_deg: float = 10.0
    scale: float = 0.1

    def __post_init__(self) -> None:
        require(0 <= self.prob <= 1, "prob must be in [0, 1]", self.prob)
        require(0 <= self.rotate_deg <= 180, "rotate_deg must be in [0, 180]", self.rotate_deg)
        require(0 <= self.scale < 1, "scale must be in [0, 1)", self.scale)


@dataclass(frozen=True)
class TrainLoopConfig:
    """The training loop (section ``train``).

    Args:
        batch_size: Patches per iteration (per process under ``torchrun``); a multiple of
            ``patches.per_slice``, as each slice gives ``per_slice`` patches.
        epochs: Epochs to train (all of them, counting those of a resumed run).
        iterations_per_epoch: Iterations per epoch; ``None`` is one pass over the training
            slices. The data loader restarts when it runs out within an epoch.
        loss: ``mse`` (the paper) or ``l1``.
        validation_interval: Epochs between validations (0: never).
        checkpoint_interval: Epochs between checkpoints (0: only at the end).
        log_interval: Iterations between two loss lines in the log (0: none).
        amp: Automatic mixed precision; used on CUDA only.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``. Under
            ``torchrun`` on CUDA each process takes ``cuda:LOCAL_RANK``.
        seed: Seed of weights, patch sampling and augmentation.
        progress: Show a progress bar (rank 0).
        precision: ``fp32``, or ``bf16`` autocast (CUDA, and CPUs with native bfloat16;
            on a CPU without it bf16 is emulated and about 10x slower: see
            ``benchmarks/RESULTS.md``).
        channels_last: Network and batches in the ``channels_last`` memory format.
        compile: ``torch.compile`` the network for training.
        threads: ``torch.set_num_threads`` for the run; 0 keeps PyTorch's default.
        key_metric: Validation metric that picks ``checkpoint_best.pt``: ``psnr`` (full
            range [-1024, 3072] HU) or ``psnr_window`` ([-160, 240] HU).

    Example:
        >>> TrainLoopConfig(batch_size=16, epochs=10).loss
        'mse'
    """

    batch_size: int = 16
    epochs: int = 1
    iterations_per_epoch: int | None = None
    loss: Literal["mse", "l1"] = "mse"
    validation_interval: int = 1
    checkpoint_interval: int = 1
    log_interval: int = 50
    amp: bool = True
    device: str = "auto"
    seed: int = 0
    progress: bool = True
    precision: Literal["fp32", "bf16"] = "fp32"
    channels_last: bool = False
    compile: bool = False
    threads: int = 0
    key_metric: Literal["psnr", "psnr_window"] = "psnr"

    def __post_init__(self) -> None:
        check_loop_settings(self, ("validation_interval", "checkpoint_interval", "log_interval"))
        require(self.threads >= 0, "threads must be >= 0", self.threads)


def config_to_dict(config: object) -> Any:
    """Turn a config dataclass tree into plain data (tuples become lists).

    Example:
        >>> config_to_dict(OptimizerConfig())
        {'name': 'adam', 'lr': 0.0001, 'betas': [0.9, 0.999], 'weight_decay': 0.0}
    """
    return dataclass_to_dict(config)


# --- value rules ---------------------------------------------------------------------------


def check_loop_settings(loop: Any, intervals: tuple[str, ...]) -> None:
    """The rules every training loop section shares.

    ``batch_size`` and ``epochs`` >= 1, ``iterations_per_epoch`` >= 1 or ``None`` (when
    the section has it), each of ``intervals`` >= 0, and a valid ``device``.
    """
    require_at_least(loop, ("batch_size", "epochs"), 1)
    per_epoch = getattr(loop, "iterations_per_epoch", None)
    if per_epoch is not None:
        require(per_epoch >= 1, "iterations_per_epoch must be >= 1 (or null)", per_epoch)
    require_at_least(loop, intervals, 0)
    check_device_setting("device", loop.device)
