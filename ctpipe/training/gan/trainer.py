"""Train a DCGAN on CT patches with MONAI's ``GanTrainer``.

:func:`build_gan_trainer` assembles, from a :class:`~ctpipe.training.gan.config.
GanTrainConfig`:

* the generator and discriminator of :mod:`ctpipe.nets.dcgan`, each with its own Adam;
* a ``monai.engines.GanTrainer`` with ``d_train_steps = train.d_steps``: each iteration
  draws ``batch_size`` latents, takes ``k = d_steps`` discriminator steps on
  :func:`~ctpipe.gan_losses.discriminator_loss` and then one generator step on the
  non-saturating loss :func:`~ctpipe.gan_losses.generator_loss_non_saturating` with fresh
  latents. Optional instance noise (:class:`InstanceNoise`, ``train.instance_noise``) is
  added to every image the discriminator sees, in both steps. (MONAI's trainer repeats the
  ``k`` discriminator steps on the same real batch and the same fakes, where Goodfellow et
  al.'s Algorithm 1 draws new minibatches at each step.) The fakes reach the
  discriminator detached, so its steps never update the generator;
* handlers, in order: ``CheckpointLoader`` (resume), non-finite-loss checks of both
  losses, :class:`~ctpipe.training.gan.history.GanHistory` (JSON log and curve after each
  epoch), a sample grid per epoch (``samples/epoch_NNNN.png``: the same latents every
  epoch, generator in eval mode as inference uses it), an atomic ``CheckpointSaver``
  (``checkpoint_latest.pt``), ``StatsHandler`` and a progress bar.

:func:`train_gan` is the entry point (``ctpipe train gan CONFIG``). It trains in one
process, on the configured device. Outputs in ``output_dir``: ``config.yaml``,
``checkpoint_latest.pt`` (both networks, both optimizers, trainer and history),
``training_log.json``, ``loss_curve.png``, ``samples/real.png`` and
``samples/epoch_NNNN.png``.

Example:
    >>> from ctpipe.training.gan.config import load_gan_config
    >>> config = load_gan_config("workflows/training/gan_dcgan_cpu.yaml")  # doctest: +SKIP
    >>> result = train_gan(config)  # doctest: +SKIP
    >>> result.checkpoint  # doctest: +SKIP
    PosixPath('runs/gan_dcgan_cpu/checkpoint_latest.pt')
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctpipe.errors import InputError
from ctpipe.provenance import versions
from ctpipe.training.common import check_finite_loss, seed_everything
from ctpipe.training.handlers import (
    attach_resume,
    check_resume_progress,
)
from ctpipe.training.harness import CONFIG_NAME, LATEST_NAME, adam, attach_outputs, write_config

if TYPE_CHECKING:
    import numpy as np
    import torch
    from monai.engines import GanTrainer

    from ctpipe.training.gan.config import GanTrainConfig

__all__ = [
    "CONFIG_NAME",
    "LATEST_NAME",
    "DiscriminatorLoss",
    "GanTrainResult",
    "GeneratorLoss",
    "InstanceNoise",
    "build_gan_trainer",
    "sample_grid",
    "train_gan",
]

#: Folder of the sample grids, in ``output_dir``.
SAMPLES_DIR = "samples"

logger = logging.getLogger("ctpipe.train")


class InstanceNoise:
    """Gaussian noise added to the discriminator's inputs, its std linear over the run.

    Args:
        start: Standard deviation at iteration 0.
        end: Standard deviation at iteration ``total`` and after.
        total: Iterations of the whole run.

    Example:
        >>> noise = InstanceNoise(0.2, 0.0, total=10)
        >>> noise.at(0), noise.at(5), noise.at(20)
        (0.2, 0.1, 0.0)
    """

    def __init__(self, start: float = 0.0, end: float | None = None, *, total: int = 1) -> None:
        self.start = float(start)
        self.end = self.start if end is None else float(end)
        self.total = max(int(total), 1)
        self.sigma = self.start

    def at(self, iteration: int) -> float:
        """The standard deviation at ``iteration``."""
        progress = min(max(iteration, 0), self.total) / self.total
        return round(self.start + (self.end - self.start) * progress, 12)

    def update(self, engine: Any) -> None:
        """``ITERATION_STARTED`` handler: set :attr:`sigma` for this iteration."""
        self.sigma = self.at(engine.state.iteration - 1)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` plus N(0, sigma^2) noise (unchanged when sigma is 0)."""
        import torch

        return images + self.sigma * torch.randn_like(images) if self.sigma > 0 else images


class DiscriminatorLoss:
    """The discriminator's loss for ``GanTrainer``: ``(fakes, reals) -> L_D``.

    The fakes are detached, so the discriminator's steps leave the generator alone.
    After each call, :attr:`last` holds the mean ``D(x)`` and ``D(G(z))`` (probabilities)
    and :attr:`calls` counts the calls (one per discriminator step).

    Args:
        discriminator: The discriminator (logits).
        noise: Instance noise added to both inputs (none by default).

    Example:
        >>> import torch
        >>> loss = DiscriminatorLoss(lambda x: torch.zeros(x.shape[0]))
        >>> value = loss(torch.zeros(2, 1, 4, 4), torch.ones(2, 1, 4, 4))
        >>> round(float(value), 4), loss.last, loss.calls
        (1.3863, {'d_real': 0.5, 'd_fake': 0.5}, 1)
    """

    def __init__(self, discriminator: Any, noise: InstanceNoise | None = None) -> None:
        self.discriminator = discriminator
        self.noise = noise if noise is not None else InstanceNoise()
        self.last: dict[str, float] = {}
        self.calls = 0

    def __call__(self, fakes: torch.Tensor, reals: torch.Tensor) -> torch.Tensor:
        """``softplus(-D(reals)).mean() + softplus(D(fakes)).mean()`` on logits."""
        import torch

        from ctpipe.gan_losses import discriminator_loss

        real_logits = self.discriminator(self.noise(reals))
        fake_logits = self.discriminator(self.noise(fakes.detach()))
        self.calls += 1
        with torch.no_grad():
            self.last = {
                "d_real": float(torch.sigmoid(real_logits).mean()),
                "d_fake": float(torch.sigmoid(fake_logits).mean()),
            }
        return discriminator_loss(real_logits, fake_logits)


class GeneratorLoss:
    """The generator's non-saturating loss for ``GanTrainer``: ``fakes -> -mean log D(G(z))``.

    Args:
        discriminator: The discriminator (logits).
        noise: Instance noise added to the fakes (the same as the discriminator's).

    Example:
        >>> import torch
        >>> loss = GeneratorLoss(lambda x: torch.zeros(x.shape[0]))
        >>> round(float(loss(torch.zeros(3, 1, 4, 4))), 4)  # log 2
        0.6931
    """

    def __init__(self, discriminator: Any, noise: InstanceNoise | None = None) -> None:
        self.discriminator = discriminator
        self.noise = noise if noise is not None else InstanceNoise()
        self.calls = 0

    def __call__(self, fakes: torch.Tensor) -> torch.Tensor:
        """``softplus(-D(fakes)).mean()``."""
        from ctpipe.gan_losses import generator_loss_non_saturating

        self.calls += 1
        return generator_loss_non_saturating(self.discriminator(self.noise(fakes)))


@dataclass(frozen=True)
class GanTrainResult:
    """What a DCGAN training run produced.

    Args:
        output_dir: The output folder.
        checkpoint: ``checkpoint_latest.pt``.
        log: The JSON log.
        curve: The loss-curve PNG.
        samples: The sample grid of the last epoch.
        epoch: Epochs completed, counting those before a resume.
        iteration: Generator steps completed, counting those before a resume.
        start_iteration: The iteration this run started from.
        g_loss: Generator loss of the last iteration.
        d_loss: Discriminator loss of the last iteration (summed over its ``k`` steps).
        seconds: Wall time of the run.
        seconds_per_iteration: Wall time per iteration of this run.
        generator: The trained generator.
        discriminator: The trained discriminator.
    """

    output_dir: Path
    checkpoint: Path
    log: Path
    curve: Path
    samples: Path | None
    epoch: int
    iteration: int
    start_iteration: int
    g_loss: float
    d_loss: float
    seconds: float
    seconds_per_iteration: float
    generator: Any = field(default=None, repr=False, compare=False)
    discriminator: Any = field(default=None, repr=False, compare=False)


def build_gan_trainer(
    config: GanTrainConfig, *, train_loader: Iterable | None = None
) -> GanTrainer:
    """Build MONAI's ``GanTrainer`` for a configuration, with its handlers attached.

    Args:
        config: The training configuration.
        train_loader: A ``torch.utils.data.DataLoader`` of dicts with ``"image"`` to train
            on instead of the patches of ``config.data`` (tests).

    Returns:
        The trainer; ``trainer.run()`` trains. It also carries ``trainer.history``,
        ``trainer.d_loss`` (:class:`DiscriminatorLoss`) and ``trainer.g_loss``
        (:class:`GeneratorLoss`), whose ``calls`` count the steps taken.

    Raises:
        InputError: On unusable data or a ``resume`` checkpoint of another model.
        ValueError: Under ``torchrun`` with several processes (GAN training runs in one).
    """
    import torch
    from ignite.engine import Events
    from monai.engines import GanTrainer

    from ctpipe.checkpoints.gan import DISCRIMINATOR_KEY
    from ctpipe.nets.dcgan import DCGANDiscriminator, DCGANGenerator
    from ctpipe.training.distributed import setup_distributed
    from ctpipe.training.gan.data import build_gan_loader
    from ctpipe.training.gan.history import GanHistory
    from ctpipe.training.savers import GanCheckpointRecord

    context = setup_distributed(config.train.device)
    if context.distributed:
        context.close()
        raise ValueError("GAN training runs in one process; start it without torchrun")
    device = context.device
    output_dir = Path(config.output_dir)
    seed_everything(config.train.seed)
    generator = DCGANGenerator(**config.model.generator_kwargs()).to(device)
    discriminator = DCGANDiscriminator(**config.model.discriminator_kwargs()).to(device)
    loader = train_loader if train_loader is not None else build_gan_loader(config)
    g_optimizer = adam(generator, config.generator_optimizer)
    d_optimizer = adam(discriminator, config.discriminator_optimizer)
    noise = InstanceNoise(
        config.train.instance_noise,
        config.train.instance_noise_end,
        total=config.train.epochs * config.train.iterations_per_epoch,
    )
    d_loss, g_loss = DiscriminatorLoss(discriminator, noise), GeneratorLoss(discriminator, noise)

    trainer = GanTrainer(
        device=device,
        max_epochs=config.train.epochs,
        train_data_loader=loader,  # type: ignore[arg-type]
        g_network=generator,
        g_optimizer=g_optimizer,
        g_loss_function=g_loss,
        d_network=discriminator,
        d_optimizer=d_optimizer,
        d_loss_function=d_loss,
        epoch_length=config.train.iterations_per_epoch,
        d_train_steps=config.train.d_steps,
        latent_shape=config.model.latent_size,
        d_prepare_batch=_prepare_reals,
        decollate=False,
    )
    history = GanHistory(
        output_dir,
        meta=_run_meta(config, generator, discriminator, device),
        verdicts=lambda: d_loss.last,
    )
    record = GanCheckpointRecord(
        generator,
        discriminator,
        window=config.data.window,
        config=config.to_dict(),
        trainer=trainer,
    )
    save_dict = {
        "network": generator,
        DISCRIMINATOR_KEY: discriminator,
        "g_optimizer": g_optimizer,
        "d_optimizer": d_optimizer,
        "trainer": trainer,
        "history": history,
        "ctpipe": record,
    }
    if config.resume is not None:
        _check_resume(Path(config.resume), config)
        attach_resume(trainer, config.resume, save_dict, device)
    trainer.add_event_handler(Events.ITERATION_STARTED, noise.update)
    for key in ("g_loss", "d_loss"):
        trainer.add_event_handler(Events.ITERATION_COMPLETED, check_finite_loss, key)
    history.attach(trainer)
    latents = torch.randn(
        config.train.sample_grid,
        config.model.latent_size,
        generator=torch.Generator().manual_seed(config.train.seed + 1),
    )
    trainer.add_event_handler(
        Events.EPOCH_COMPLETED, lambda e: _write_samples(e, generator, latents, output_dir)
    )
    attach_outputs(
        trainer,
        save_dict,
        config,
        bar_values=lambda out: {"g": out["g_loss"], "d": out["d_loss"]},
        log_values=lambda out: {"g_loss": out["g_loss"], "d_loss": out["d_loss"]},
    )
    trainer.history = history  # type: ignore[attr-defined]
    trainer.d_loss = d_loss  # type: ignore[attr-defined]
    trainer.g_loss = g_loss  # type: ignore[attr-defined]
    return trainer


def train_gan(config: GanTrainConfig) -> GanTrainResult:
    """Train a DCGAN as configured; the entry point of ``ctpipe train gan``.

    Args:
        config: The training configuration.

    Returns:
        The paths written, the progress reached, the last losses and timings.

    Raises:
        InputError: On unusable data or resume checkpoint.
        FloatingPointError: If a loss becomes NaN or infinite.
    """
    from ignite.engine import Events

    output_dir = Path(config.output_dir)
    write_config(config, output_dir)
    trainer = build_gan_trainer(config)
    start = {"iteration": 0}
    trainer.add_event_handler(Events.STARTED, lambda e: start.update(iteration=e.state.iteration))
    first = next(iter(trainer.data_loader))  # type: ignore[call-overload]
    _write_grid(
        _prepare_reals(first)[: config.train.sample_grid], output_dir / SAMPLES_DIR / "real.png"
    )
    logger.info(
        "training DCGAN on %s for %d epochs of %d iterations (k = %d discriminator steps)",
        trainer.state.device if hasattr(trainer.state, "device") else config.train.device,
        config.train.epochs,
        config.train.iterations_per_epoch,
        config.train.d_steps,
    )
    began = time.perf_counter()
    trainer.run()
    seconds = time.perf_counter() - began
    history = trainer.history  # type: ignore[attr-defined]
    ran = trainer.state.iteration - start["iteration"]
    grids = sorted((output_dir / SAMPLES_DIR).glob("epoch_*.png"))
    result = GanTrainResult(
        output_dir=output_dir,
        checkpoint=output_dir / LATEST_NAME,
        log=history.log_path,
        curve=history.curve_path,
        samples=grids[-1] if grids else None,
        epoch=trainer.state.epoch,
        iteration=trainer.state.iteration,
        start_iteration=start["iteration"],
        g_loss=history.iterations["loss"][-1] if history.iterations["loss"] else math.nan,
        d_loss=history.iterations["d_loss"][-1] if history.iterations["d_loss"] else math.nan,
        seconds=seconds,
        seconds_per_iteration=seconds / ran if ran else math.nan,
        generator=trainer.g_network,
        discriminator=trainer.d_network,
    )
    logger.info(
        "finished at iteration %d (%d this run) in %.1f s, %.3f s/iteration; "
        "G loss %.3g, D loss %.3g",
        result.iteration,
        ran,
        seconds,
        result.seconds_per_iteration,
        result.g_loss,
        result.d_loss,
    )
    return result


def sample_grid(images: Any, *, border: int = 2) -> np.ndarray:
    """Tile images ``(N, 1, S, S)`` in [-1, 1] into a square uint8 grid (N a square number).

    Example:
        >>> import torch
        >>> grid = sample_grid(torch.zeros(4, 1, 8, 8), border=1)
        >>> grid.shape, int(grid[1, 1]), int(grid[0, 0])
        ((19, 19), 128, 0)
    """
    import numpy as np

    array = np.asarray(images.detach().cpu() if hasattr(images, "detach") else images)[:, 0]
    count, size = array.shape[0], array.shape[-1]
    side = round(count**0.5)
    if side * side != count:
        raise ValueError(f"images must be a square number, got {count}")
    step = size + border
    grid = np.zeros((side * step + border,) * 2, np.uint8)
    pixels = np.clip(np.round((array + 1.0) * 127.5), 0, 255).astype(np.uint8)
    for n in range(count):
        row, col = divmod(n, side)
        top, left = border + row * step, border + col * step
        grid[top : top + size, left : left + size] = pixels[n].T  # (i, j) -> rows are j
    return grid


# --- pieces ----------------------------------------------------------------------------------


def _prepare_reals(
    batchdata: Any, device: Any = None, non_blocking: bool = False, **kwargs: Any
) -> Any:
    """The real patches of a batch as a plain tensor (``GanTrainer``'s ``d_prepare_batch``)."""
    from monai.utils import convert_to_tensor

    reals = convert_to_tensor(batchdata["image"], track_meta=False)
    return reals.to(device=device, non_blocking=non_blocking, **kwargs)


def _write_samples(engine: Any, generator: Any, latents: Any, output_dir: Path) -> None:
    """Sample grid of the fixed latents, generator in eval mode (as inference uses it)."""
    import torch

    was_training = generator.training
    generator.eval()
    with torch.no_grad():
        images = generator(latents.to(next(generator.parameters()).device))
    generator.train(was_training)
    _write_grid(images, output_dir / SAMPLES_DIR / f"epoch_{engine.state.epoch:04d}.png")


def _write_grid(images: Any, path: Path) -> None:
    from PIL import Image

    from ctpipe.io.atomic import atomic_path

    count = images.shape[0]
    side = math.isqrt(count)
    with atomic_path(path) as tmp:
        Image.fromarray(sample_grid(images[: side * side])).save(tmp, format="PNG")


def _check_resume(path: Path, config: GanTrainConfig) -> None:
    """Refuse a resume checkpoint of another architecture or one without training state."""
    from ctpipe.checkpoints.gan import DISCRIMINATOR_KEY, read_gan_checkpoint

    checkpoint = read_gan_checkpoint(path)
    record = checkpoint["ctpipe"]
    saved = (
        dict(record.get("model", {}).get("kwargs", {})),
        dict(record.get(DISCRIMINATOR_KEY, {}).get("kwargs", {})),
    )
    wanted = (
        {**config.model.generator_kwargs(), "channels": 1},
        {**config.model.discriminator_kwargs(), "channels": 1},
    )
    if saved != wanted:
        raise InputError(
            path,
            f"cannot resume: the checkpoint holds generator {saved[0]} and discriminator "
            f"{saved[1]} but the config builds {wanted[0]} and {wanted[1]}",
        )
    check_resume_progress(
        path,
        checkpoint,
        config.train.epochs,
        state_keys=("g_optimizer", "d_optimizer", "trainer", "history"),
        hint="exported weights hold the networks only; resume needs checkpoint_latest.pt of a run",
    )


def _run_meta(
    config: GanTrainConfig, generator: Any, discriminator: Any, device: Any
) -> dict[str, Any]:
    return {
        "model": {
            "generator": dict(generator.config),
            "discriminator": dict(discriminator.config),
        },
        "parameters": {
            "generator": sum(p.numel() for p in generator.parameters()),
            "discriminator": sum(p.numel() for p in discriminator.parameters()),
        },
        "data": [_describe_source(s) for s in config.data.sources],
        "window": list(config.data.window),
        "batch_size": config.train.batch_size,
        "d_steps": config.train.d_steps,
        "device": str(device),
        "versions": versions(),
    }


def _describe_source(source: Any) -> str:
    """``path[start:stop:step]`` of a slice source, for the log."""
    start, stop = source.slices if source.slices is not None else (0, None)
    return f"{source.path}[{start}:{'' if stop is None else stop}:{source.step}]"
