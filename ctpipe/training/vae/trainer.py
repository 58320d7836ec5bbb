"""Train a VAE on normal-anatomy CT slices with MONAI engines.

:func:`build_vae_trainer` (:meth:`~ctpipe.training.harness.SupervisedTask.build` of
this module's :data:`TASK`) assembles, from a :class:`~ctpipe.training.vae.config.
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
:func:`ctpipe.checkpoints.vae.load_vae` gives a model that anomaly scoring and generation use
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

import functools
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ctpipe.elbo import kl_warmup_beta
from ctpipe.errors import InputError
from ctpipe.training import harness
from ctpipe.training.handlers import check_resume_progress

if TYPE_CHECKING:
    import torch
    from monai.engines import SupervisedEvaluator

    from ctpipe.elbo import ELBOLoss
    from ctpipe.nets.vae import VAE
    from ctpipe.training.distributed import DistributedContext
    from ctpipe.training.vae.config import VAETrainConfig

__all__ = [
    "IMAGES_DIR",
    "KEY_METRIC",
    "TASK",
    "EpochImages",
    "KLWarmup",
    "VAETask",
    "build_vae_trainer",
    "train_vae",
]

#: Folder of the per-epoch sample and interpolation PNGs, in ``output_dir``.
IMAGES_DIR = "images"
#: The validation metric that picks the best checkpoint (lower is better).
KEY_METRIC = "neg_elbo"
#: The ELBO terms recorded per iteration besides the loss.
TERMS = ("reconstruction_nll", "kl", "beta")


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


class VAETask(harness.SupervisedTask):
    """The VAE as a task of the training harness (one process): what is its own.

    The network on the slice grid, the slice loaders, the negative beta-ELBO with KL
    warm-up and its terms per iteration, validation of the negative ELBO, KL and MAE in HU
    (lower is better), sample and interpolation images, the grid in the record, the model
    and grid check on resume.
    """

    name = "VAE"
    attribute = "vae"
    one_process = True
    seed_per_rank = False
    given_data: ClassVar[Any] = {"train": "given loaders"}

    def network(self, config: VAETrainConfig) -> VAE:
        """The VAE of ``model`` on ``grid``."""
        from ctpipe.nets.vae import VAE

        return VAE(**config.model_kwargs())

    def loaders(
        self, config: VAETrainConfig, context: DistributedContext
    ) -> tuple[Iterable, Iterable | None, dict[str, Any]]:
        """Slice batches of the training and validation sources, and what they hold."""
        from ctpipe.training.vae.data import build_vae_loaders

        return build_vae_loaders(config)

    def parts(self, config: VAETrainConfig, placed: harness.Placed) -> harness.Supervised:
        """The ELBO loss and handlers; also sets ``trainer.images`` (:class:`EpochImages`)."""
        from ignite.engine import Events

        from ctpipe.checkpoints.vae import VAE_FORMAT

        network = placed.network
        loss = _loss(config, beta=config.loss.beta)
        beta, warmup = config.loss.beta, config.loss.warmup_iterations

        def copy_terms(trainer: Any) -> None:  # the ELBO terms into the output, for the history
            trainer.add_event_handler(
                Events.ITERATION_COMPLETED, lambda e: e.state.output.update(loss.last_terms)
            )

        def attach_images(trainer: Any) -> None:
            trainer.images = None
            if config.train.image_interval > 0:
                given = placed.val_loader if placed.val_loader is not None else placed.train_loader
                trainer.images = EpochImages(
                    network,
                    Path(config.output_dir) / IMAGES_DIR,
                    _interpolation_pair(given),
                    seed=config.train.seed,
                    interval=config.train.image_interval,
                )
                trainer.images.attach(trainer)

        return harness.Supervised(
            loss=loss,
            evaluator=functools.partial(_build_evaluator, config=config),
            model_name="vae",
            key_metric=KEY_METRIC,
            meta={
                "model": {"name": "vae", "kwargs": network.config},
                "grid": config.grid.to_dict(),
                "data": placed.data,
            },
            record_extra={"grid": config.grid.to_dict()},
            checkpoint_format=VAE_FORMAT,
            lower_is_better=True,
            curve_metrics=(("mae_hu", "reconstruction MAE (HU)"), ("kl", "KL (nats)")),
            history_extra=TERMS,
            prepare_batch=_image_as_target,
            check_resume=functools.partial(_check_resume, network=network, config=config),
            iteration_handlers=(
                KLWarmup(loss, beta=beta, warmup_iterations=warmup).attach,
                copy_terms,
            ),
            epoch_handlers=(attach_images,),
            bar_values=lambda o: {"loss": o["loss"].item(), "kl": o.get("kl", math.nan)},
        )

    def what(self, config: VAETrainConfig) -> str:
        """The latent size."""
        return f"a VAE ({config.model.latent_dim}-D latent)"


#: The VAE task.
TASK = VAETask()
#: :meth:`~ctpipe.training.harness.SupervisedTask.build` of :data:`TASK`: the trainer (with
#: ``trainer.vae``, the network, and ``trainer.images``, the :class:`EpochImages` handler or
#: ``None``) and evaluator of a configuration; several processes (``torchrun``) are refused.
build_vae_trainer = TASK.build


def train_vae(config: VAETrainConfig) -> harness.TrainResult:
    """Train a VAE as configured; the entry point of ``ctpipe train vae``.

    Returns:
        The paths written (``images``: the PNGs of the last epoch that wrote images), the
        progress reached and the latest validation metrics
        (:func:`ctpipe.training.harness.run_training`).

    Raises:
        InputError: Unusable data or resume checkpoint.
        FloatingPointError: If the loss becomes NaN or infinite.
    """
    return TASK.train(config)


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
    device: torch.device,
    amp: bool,
    *,
    config: VAETrainConfig,
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


def _check_resume(path: Path, *, network: VAE, config: VAETrainConfig) -> None:
    """Refuse a resume checkpoint of another model, grid or without training state."""
    from ctpipe.checkpoints.file import read_checkpoint
    from ctpipe.checkpoints.vae import VAE_FORMAT

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
