"""Train a VAE on normal-anatomy CT slices with MONAI engines.

:func:`build_vae_trainer` assembles, from a :class:`~ctpipe.training.vae.config.
VAETrainConfig`:

* the network (:class:`ctpipe.nets.vae.VAE`) on the configured slice grid;
* a MONAI ``SupervisedTrainer`` whose "label" is the input image itself and whose loss is
  the negative beta-ELBO (:class:`ctpipe.elbo.ELBOLoss`), with Adam, AMP on CUDA only and
  these handlers, in order: ``CheckpointLoader`` (resume), :class:`KLWarmup` (the KL weight
  for each iteration), the ELBO terms copied into the trainer's output, a non-finite-loss
  check, ``ValidationHandler``, :class:`~ctpipe.training.history.TrainingHistory` (loss,
  reconstruction NLL, KL and beta per iteration; JSON log and loss curve per epoch),
  ``LrScheduleHandler``, :class:`EpochImages` (a grid of prior samples and a latent
  interpolation, PNG, per epoch), ``CheckpointSaver`` (``checkpoint_latest.pt``),
  ``StatsHandler`` and a progress bar;
* a ``SupervisedEvaluator`` on the validation slices scoring the negative ELBO (beta = 1,
  one seeded posterior draw per slice, so every validation is comparable), its KL and the
  mean absolute reconstruction error in HU; a ``CheckpointSaver`` keeps the lowest
  negative ELBO as ``checkpoint_best.pt``.

Checkpoints are ctpipe checkpoints of format ``ctpipe.vae`` (:mod:`ctpipe.checkpoints.
file`) whose record also holds the slice grid (``record["grid"]``), so
:func:`ctpipe.nets.vae.load_vae` gives a model that anomaly scoring and generation use
as it was trained. Training runs in one process (no ``torchrun``).

Outputs in ``output_dir``: ``config.yaml``, ``checkpoint_latest.pt``,
``checkpoint_best.pt``, ``training_log.json``, ``loss_curve.png`` and
``images/samples_epoch_NNN.png``, ``images/interpolation_epoch_NNN.png``.

Example:
    >>> from ctpipe.training.vae.config import load_vae_config
    >>> config = load_vae_config("workflows/training/vae_ct128_cpu.yaml")  # doctest: +SKIP
    >>> result = train_vae(config)  # doctest: +SKIP
    >>> result.metrics  # doctest: +SKIP
    {'neg_elbo': -51234.0, 'kl': 61.2, 'mae_hu': 14.8}
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ctpipe.elbo import kl_warmup_beta
from ctpipe.errors import InputError
from ctpipe.provenance import versions
from ctpipe.training.common import attach_stats, seed_everything
from ctpipe.training.handlers import (
    attach_best_saver,
    attach_latest_saver,
    attach_loop_handlers,
    attach_progress,
    attach_resume,
    check_resume_progress,
)

if TYPE_CHECKING:
    import torch
    from monai.engines import SupervisedEvaluator, SupervisedTrainer

    from ctpipe.elbo import ELBOLoss
    from ctpipe.nets.vae import VAE
    from ctpipe.training.vae.config import VAETrainConfig

__all__ = [
    "BEST_NAME",
    "IMAGES_DIR",
    "KEY_METRIC",
    "LATEST_NAME",
    "EpochImages",
    "KLWarmup",
    "VAETrainResult",
    "build_vae_trainer",
    "train_vae",
]

#: Checkpoint of the end of the latest epoch, in ``output_dir``.
LATEST_NAME = "checkpoint_latest.pt"
#: Checkpoint with the lowest validation negative ELBO, in ``output_dir``.
BEST_NAME = "checkpoint_best.pt"
#: The configuration as run, in ``output_dir``.
CONFIG_NAME = "config.yaml"
#: Folder of the per-epoch sample and interpolation PNGs, in ``output_dir``.
IMAGES_DIR = "images"
#: The validation metric that picks the best checkpoint (lower is better).
KEY_METRIC = "neg_elbo"
#: The ELBO terms recorded per iteration besides the loss.
TERMS = ("reconstruction_nll", "kl", "beta")

logger = logging.getLogger("ctpipe.train")


@dataclass(frozen=True)
class VAETrainResult:
    """What a VAE training run produced.

    Args:
        output_dir: The output folder.
        checkpoint: ``checkpoint_latest.pt``.
        best_checkpoint: ``checkpoint_best.pt`` when validation ran, else ``None``.
        log: The JSON log.
        curve: The loss-curve PNG.
        images: The PNGs of the last epoch that wrote images.
        epoch: Epochs completed, counting those before a resume.
        iteration: Iterations completed, counting those before a resume.
        start_iteration: The iteration this run started from.
        last_loss: Loss of the last iteration.
        metrics: Latest validation metrics (``neg_elbo``, ``kl``, ``mae_hu``).
        seconds: Wall time of the run.
        model: The trained network, on its training device.
    """

    output_dir: Path
    checkpoint: Path
    best_checkpoint: Path | None
    log: Path
    curve: Path
    images: tuple[Path, ...]
    epoch: int
    iteration: int
    start_iteration: int
    last_loss: float
    metrics: dict[str, float]
    seconds: float
    model: VAE | None = field(default=None, repr=False, compare=False)


class KLWarmup:
    """Set the loss's KL weight before every iteration: linear warm-up to ``beta``.

    The weight is a function of the trainer's iteration (:func:`ctpipe.elbo.
    kl_warmup_beta`), so a resumed run continues the warm-up where it stopped.

    Args:
        loss: The :class:`~ctpipe.elbo.ELBOLoss` used by the trainer.
        beta: Final KL weight.
        warmup_iterations: Iterations to reach it (0: from the start).

    Example:
        >>> from types import SimpleNamespace
        >>> from ctpipe.elbo import ELBOLoss
        >>> loss = ELBOLoss(beta=0.0)
        >>> warmup = KLWarmup(loss, beta=2.0, warmup_iterations=10)
        >>> warmup(SimpleNamespace(state=SimpleNamespace(iteration=5)))
        >>> loss.beta
        1.0
    """

    def __init__(self, loss: ELBOLoss, *, beta: float, warmup_iterations: int) -> None:
        kl_warmup_beta(0, beta=beta, warmup_iterations=warmup_iterations)  # checks the values
        self.loss = loss
        self.beta = float(beta)
        self.warmup_iterations = int(warmup_iterations)

    def __call__(self, engine: Any) -> None:
        """Set ``loss.beta`` for the iteration about to run."""
        self.loss.beta = kl_warmup_beta(
            engine.state.iteration, beta=self.beta, warmup_iterations=self.warmup_iterations
        )

    def attach(self, engine: Any) -> None:
        """Run before every iteration of ``engine``."""
        from ignite.engine import Events

        engine.add_event_handler(Events.ITERATION_STARTED, self)


class EpochImages:
    """Write a grid of prior samples and a latent interpolation after every few epochs.

    The prior draws use a fixed seed, so the grids of successive epochs show how the same
    codes decode as training goes on. The interpolation runs between the posterior means of
    two fixed slices (the first and last of ``pair``), which are shown at its ends.

    Args:
        model: The VAE being trained.
        folder: Where the PNGs go (``samples_epoch_NNN.png``, ``interpolation_epoch_NNN.png``).
        pair: Two grid images ``(2, rows, columns)`` to interpolate between.
        samples: Prior samples per grid.
        columns: Images per row of the grid.
        steps: Interpolation steps.
        seed: Seed of the prior draws.
        interval: Epochs between two writes.
    """

    def __init__(
        self,
        model: VAE,
        folder: str | Path,
        pair: np.ndarray,
        *,
        samples: int = 32,
        columns: int = 8,
        steps: int = 10,
        seed: int = 0,
        interval: int = 1,
    ) -> None:
        self.model = model
        self.folder = Path(folder)
        self.pair = np.asarray(pair, dtype=np.float32)
        if self.pair.ndim != 3 or self.pair.shape[0] != 2:
            raise ValueError(f"pair must be shaped (2, rows, columns), got {self.pair.shape}")
        self.samples, self.columns, self.steps = samples, columns, steps
        self.seed, self.interval = seed, interval
        self.written: tuple[Path, ...] = ()

    def attach(self, engine: Any) -> None:
        """Write after every ``interval`` epochs of ``engine``."""
        from ignite.engine import Events

        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.interval), self)

    def __call__(self, engine: Any) -> None:
        """Write the two PNGs of the epoch just completed."""
        self.written = self.write(engine.state.epoch)

    def write(self, epoch: int) -> tuple[Path, Path]:
        """Write the sample grid and the interpolation strip for ``epoch``."""
        from ctpipe.vae_generate import interpolate, sample_images, write_image_grid

        samples = sample_images(self.model, self.samples, seed=self.seed)
        strip = interpolate(self.model, self.pair[0], self.pair[1], steps=self.steps)
        strip = np.concatenate([self.pair[:1], strip, self.pair[1:]])
        return (
            write_image_grid(
                samples, self.folder / f"samples_epoch_{epoch:03d}.png", columns=self.columns
            ),
            write_image_grid(strip, self.folder / f"interpolation_epoch_{epoch:03d}.png"),
        )


def build_vae_trainer(
    config: VAETrainConfig,
    *,
    train_loader: Iterable | None = None,
    val_loader: Iterable | None = None,
) -> tuple[SupervisedTrainer, SupervisedEvaluator | None]:
    """Build the MONAI trainer and evaluator of a configuration.

    Args:
        config: The training configuration.
        train_loader: Batches (dicts with ``"image"``) to train on instead of those of
            ``config.data``, e.g. a list of fixed batches.
        val_loader: Validation batches instead of those of ``config.data`` (used only with
            ``train_loader``).

    Returns:
        ``(trainer, evaluator)``; ``evaluator`` is ``None`` without validation. The trainer
        also carries ``trainer.history``, ``trainer.vae`` (the network) and
        ``trainer.images`` (the :class:`EpochImages` handler, or ``None``).

    Raises:
        InputError: Unusable data, or a ``resume`` checkpoint of another model.
    """
    import torch
    from ignite.engine import Events
    from monai.engines import SupervisedTrainer

    from ctpipe.checkpoints.file import CheckpointRecord
    from ctpipe.nets.vae import VAE, VAE_FORMAT
    from ctpipe.training.distributed import setup_distributed
    from ctpipe.training.history import TrainingHistory
    from ctpipe.training.schedule import build_scheduler
    from ctpipe.training.vae.data import build_vae_loaders

    context = setup_distributed(config.train.device)
    if context.distributed:
        context.close()
        raise InputError(config.output_dir, "VAE training runs in one process; not under torchrun")
    device = context.device
    output_dir = Path(config.output_dir)
    seed_everything(config.train.seed)
    network = VAE(**config.model_kwargs()).to(device)
    description: dict[str, Any] = {"train": "given loaders"}
    if train_loader is None:
        train_loader, val_loader, description = build_vae_loaders(config)
    epoch_length = config.train.iterations_per_epoch or len(train_loader)  # type: ignore[arg-type]
    total = config.train.epochs * epoch_length
    optimizer = torch.optim.Adam(
        network.parameters(),
        lr=config.optimizer.lr,
        betas=config.optimizer.betas,
        weight_decay=config.optimizer.weight_decay,
    )
    scheduler = build_scheduler(optimizer, config.schedule, total)
    loss = _loss(config, beta=config.loss.beta)
    amp = config.train.amp and device.type == "cuda"

    evaluator = None
    if val_loader is not None and config.train.validation_interval > 0:
        evaluator = _build_evaluator(network, val_loader, config, device, amp)
    trainer = SupervisedTrainer(
        device=device,
        max_epochs=config.train.epochs,
        train_data_loader=train_loader,
        network=network,
        optimizer=optimizer,
        loss_function=loss,
        epoch_length=epoch_length,
        prepare_batch=_image_as_target,
        amp=amp,
        decollate=False,
    )
    meta = {
        "model": {"name": "vae", "kwargs": network.config},
        "parameters": network.parameter_count(),
        "grid": config.grid.to_dict(),
        "data": description,
        "epoch_length": epoch_length,
        "batch_size": config.train.batch_size,
        "device": str(device),
        "versions": versions(),
    }
    history = TrainingHistory(
        output_dir,
        meta=meta,
        extra=TERMS,
        curve_metrics=(("mae_hu", "reconstruction MAE (HU)"), ("kl", "KL (nats)")),
    )
    record = CheckpointRecord(
        network,
        model_name="vae",
        config=config.to_dict(),
        trainer=trainer,
        metrics=(lambda: evaluator.state.metrics) if evaluator is not None else None,
        extra={"grid": config.grid.to_dict(), "device": str(device)},
        checkpoint_format=VAE_FORMAT,
    )
    save_dict = {
        "network": network,
        "optimizer": optimizer,
        "lr_scheduler": scheduler,
        "trainer": trainer,
        "history": history,
        "ctpipe": record,
    }
    best_saver = None
    if evaluator is not None:
        history.attach_evaluator(evaluator)
        attach_stats(evaluator, iteration_log=False)
        best_saver = attach_best_saver(
            evaluator,
            save_dict,
            output_dir,
            key_metric=KEY_METRIC,
            filename=BEST_NAME,
            lower_is_better=True,
        )
    if config.resume is not None:
        _check_resume(Path(config.resume), network, config)
        attach_resume(
            trainer,
            config.resume,
            save_dict,
            device,
            output_dir=output_dir,
            best_saver=best_saver,
            history=history,
            key_metric=KEY_METRIC,
            best_filename=BEST_NAME,
            lower_is_better=True,
        )
    KLWarmup(loss, beta=config.loss.beta, warmup_iterations=config.loss.warmup_iterations).attach(
        trainer
    )
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED, lambda e: e.state.output.update(loss.last_terms)
    )
    attach_loop_handlers(
        trainer,
        evaluator=evaluator,
        history=history,
        scheduler=scheduler,
        validation_interval=config.train.validation_interval,
    )
    images = None
    if config.train.image_interval > 0:
        images = EpochImages(
            network,
            output_dir / IMAGES_DIR,
            _interpolation_pair(val_loader if val_loader is not None else train_loader),
            seed=config.train.seed,
            interval=config.train.image_interval,
        )
        images.attach(trainer)
    attach_latest_saver(
        trainer,
        save_dict,
        output_dir,
        interval=config.train.checkpoint_interval,
        filename=LATEST_NAME,
    )
    attach_progress(
        trainer,
        log_interval=config.train.log_interval,
        progress=config.train.progress,
        bar_values=lambda o: {"loss": o["loss"].item(), "kl": o.get("kl", math.nan)},
    )
    trainer.history = history  # type: ignore[attr-defined]
    trainer.vae = network  # type: ignore[attr-defined]
    trainer.images = images  # type: ignore[attr-defined]
    return trainer, evaluator


def train_vae(config: VAETrainConfig) -> VAETrainResult:
    """Train a VAE as configured; the entry point of ``ctpipe train vae``.

    Returns:
        The paths written, the progress reached and the latest validation metrics.

    Raises:
        InputError: Unusable data or resume checkpoint.
        FloatingPointError: If the loss becomes NaN or infinite.
    """
    import yaml
    from ignite.engine import Events

    from ctpipe.io.atomic import atomic_path

    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(output_dir / CONFIG_NAME) as tmp:
        tmp.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")
    trainer, evaluator = build_vae_trainer(config)
    started = {"iteration": 0}
    trainer.add_event_handler(Events.STARTED, lambda e: started.update(iteration=e.state.iteration))
    logger.info(
        "training a VAE (%d parameters) for %d epochs of %d iterations on %s",
        trainer.vae.parameter_count(),  # type: ignore[attr-defined]
        config.train.epochs,
        trainer.state.epoch_length,
        trainer.vae.device,  # type: ignore[attr-defined]
    )
    start = time.perf_counter()
    trainer.run()
    seconds = time.perf_counter() - start
    history = trainer.history  # type: ignore[attr-defined]
    losses = history.iterations["loss"]
    metrics = (
        {k: float(v) for k, v in evaluator.state.metrics.items()}
        if evaluator is not None and evaluator.state.metrics
        else {}
    )
    images = trainer.images  # type: ignore[attr-defined]
    result = VAETrainResult(
        output_dir=output_dir,
        checkpoint=output_dir / LATEST_NAME,
        best_checkpoint=output_dir / BEST_NAME if (output_dir / BEST_NAME).exists() else None,
        log=history.log_path,
        curve=history.curve_path,
        images=images.written if images is not None else (),
        epoch=trainer.state.epoch,
        iteration=trainer.state.iteration,
        start_iteration=started["iteration"],
        last_loss=losses[-1] if losses else math.nan,
        metrics=metrics,
        seconds=seconds,
        model=trainer.vae,  # type: ignore[attr-defined]
    )
    logger.info(
        "finished at iteration %d in %.1f s, last loss %.4g%s",
        result.iteration,
        seconds,
        result.last_loss,
        "".join(f", {k} {v:.4g}" for k, v in metrics.items()),
    )
    return result


# --- pieces ----------------------------------------------------------------------------------


def _loss(config: VAETrainConfig, *, beta: float) -> ELBOLoss:
    from ctpipe.elbo import ELBOLoss

    return ELBOLoss(
        config.model.reconstruction,
        sigma=config.loss.sigma,
        min_sigma=config.loss.min_sigma,
        beta=beta,
    )


def _image_as_target(
    batchdata: dict[str, torch.Tensor],
    device: str | torch.device | None = None,
    non_blocking: bool = False,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MONAI ``prepare_batch``: the image is both the input and the target."""
    image = batchdata["image"].to(device=device, non_blocking=non_blocking, **kwargs)
    return image, image


def _build_evaluator(
    network: VAE,
    val_loader: Iterable,
    config: VAETrainConfig,
    device: torch.device,
    amp: bool,
) -> SupervisedEvaluator:
    """Validation: negative ELBO (beta 1), KL and MAE in HU, one seeded draw per slice."""
    from ignite.engine import Events
    from monai.engines import SupervisedEvaluator

    inferer = _SeededPosteriorInferer(config.train.seed)
    elbo = _loss(config, beta=1.0)
    width = config.grid.window_width

    def terms(output: dict[str, Any]) -> dict[str, Any]:
        pred, image = output["pred"], output["image"]
        values = elbo.terms(image, pred.x_mean, pred.mu, pred.logvar, pred.x_logvar)
        values["mae_hu"] = (pred.x_mean - image).abs().flatten(1).mean(1) * width
        return values

    evaluator = SupervisedEvaluator(
        device=device,
        val_data_loader=val_loader,
        network=network,
        inferer=inferer,
        key_val_metric={
            KEY_METRIC: _mean_over_images(lambda o: (t := terms(o))["reconstruction_nll"] + t["kl"])
        },
        additional_metrics={
            "kl": _mean_over_images(lambda o: terms(o)["kl"]),
            "mae_hu": _mean_over_images(lambda o: terms(o)["mae_hu"]),
        },
        metric_cmp_fn=lambda current, best: current < best,  # lower is better
        amp=amp,
        decollate=False,
    )
    evaluator.state.best_metric = math.inf
    evaluator.add_event_handler(Events.STARTED, lambda _: inferer.reset())
    return evaluator


class _SeededPosteriorInferer:
    """Run the VAE with its posterior draws taken from a generator reset per validation."""

    def __init__(self, seed: int) -> None:
        import torch

        self.seed = seed
        self.generator = torch.Generator()

    def reset(self) -> None:
        self.generator.manual_seed(self.seed)

    def __call__(self, inputs: torch.Tensor, network: Callable[..., Any]) -> Any:
        import torch

        from ctpipe.nets.vae import VAEOutput

        mu, logvar = network.encode(inputs)  # type: ignore[attr-defined]
        eps = torch.randn(mu.shape, generator=self.generator).to(mu.device, mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps
        x_mean, x_logvar = network.decode(z)  # type: ignore[attr-defined]
        return VAEOutput(x_mean, mu, logvar, z, x_logvar)


def _metric_class() -> type:
    from ignite.metrics import Metric

    class MeanOverImages(Metric):
        """Mean over every validation image of a per-image value."""

        def reset(self) -> None:
            self._sum, self._count = 0.0, 0

        def update(self, output: Any) -> None:
            values = output.detach().double().flatten()
            self._sum += float(values.sum())
            self._count += values.numel()

        def compute(self) -> float:
            return self._sum / self._count if self._count else math.nan

    return MeanOverImages


def _mean_over_images(transform: Callable[[Any], Any]) -> Any:
    """An ignite metric: the mean over all images of ``transform(output)`` (per image)."""
    return _metric_class()(output_transform=transform)


def _interpolation_pair(loader: Iterable) -> np.ndarray:
    """The first and last images of the loader's first batch."""
    for batch in loader:
        images = np.asarray(batch["image"], dtype=np.float32)
        return np.stack([images[0, 0], images[-1, 0]])
    raise ValueError("the loader yields no batch to take interpolation images from")


def _check_resume(path: Path, network: VAE, config: VAETrainConfig) -> None:
    """Refuse a resume checkpoint of another model, grid or without training state."""
    from ctpipe.checkpoints.file import read_checkpoint
    from ctpipe.nets.vae import VAE_FORMAT

    checkpoint = read_checkpoint(path, checkpoint_format=VAE_FORMAT)
    record = checkpoint["ctpipe"]
    saved = dict(record.get("model", {}).get("kwargs", {}))
    if saved != network.config or record.get("grid") != config.grid.to_dict():
        raise InputError(
            path,
            f"cannot resume: the checkpoint holds a VAE {saved} on grid {record.get('grid')} "
            f"but the config builds {network.config} on grid {config.grid.to_dict()}",
        )
    check_resume_progress(path, checkpoint, config.train.epochs)
