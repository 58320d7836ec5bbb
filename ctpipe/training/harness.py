"""The one training harness: what every ctpipe trainer shares, built in one place.

A task (denoiser, segmenter, VAE, and the GAN for the parts it shares) builds only what
is its own, its network, data, loss and metrics, and hands them to the harness, as
MONAI composes a ``SupervisedTrainer`` from handlers:

* :class:`SupervisedTask`: the base of a supervised task. A task overrides the hooks that
  build its network, its loaders and its :class:`Supervised` parts; the base's
  :meth:`~SupervisedTask.build` does the rest (``context``, threads, seeding, placing,
  trainer) and :meth:`~SupervisedTask.train` runs it. Each task's ``build_*_trainer`` and
  ``train_*`` are these two of its task.
* :func:`place_network`: seeds, the network on the run's device, wrapped in
  ``DistributedDataParallel`` under ``torchrun``.
* :func:`build_supervised`: from a :class:`Supervised` description, Adam, the learning-rate
  schedule, AMP on CUDA only, the ``SupervisedTrainer`` and its evaluator, the
  :class:`~ctpipe.training.history.TrainingHistory`, the checkpoint record, the best and
  latest savers, resume, the loop handlers, statistics and the progress bar
  (:mod:`ctpipe.training.handlers`).
* :func:`run_training`: the run itself: ``config.yaml``, the process group, timings, the
  log lines and the :class:`TrainResult` (``ctpipe train TASK`` and ``torchrun``).

Only rank 0 writes (checkpoints, log, curve, progress bar, statistics).

Example:
    >>> from types import SimpleNamespace
    >>> config = SimpleNamespace(train=SimpleNamespace(epochs=3, iterations_per_epoch=None))
    >>> epoch_length(config, [1, 2, 3, 4])
    4
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ctpipe.checkpoints.file import CHECKPOINT_FORMAT
from ctpipe.errors import InputError
from ctpipe.provenance import versions
from ctpipe.training.common import attach_stats, seed_everything, time_engine
from ctpipe.training.handlers import (
    attach_best_saver,
    attach_latest_saver,
    attach_loop_handlers,
    attach_progress,
    attach_resume,
)

if TYPE_CHECKING:
    import torch
    from monai.engines import SupervisedEvaluator, SupervisedTrainer

    from ctpipe.training.distributed import DistributedContext

__all__ = [
    "BEST_NAME",
    "CONFIG_NAME",
    "LATEST_NAME",
    "Placed",
    "Supervised",
    "SupervisedTask",
    "TrainResult",
    "adam",
    "attach_outputs",
    "build_supervised",
    "epoch_length",
    "place_network",
    "run_training",
    "write_config",
]

#: Checkpoint of the end of the latest epoch (and of the run), in ``output_dir``.
LATEST_NAME = "checkpoint_latest.pt"
#: Checkpoint with the best validation metric, in ``output_dir``.
BEST_NAME = "checkpoint_best.pt"
#: The configuration as run, in ``output_dir``.
CONFIG_NAME = "config.yaml"

logger = logging.getLogger("ctpipe.train")


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced (as seen by this process).

    Args:
        output_dir: The output folder.
        checkpoint: ``checkpoint_latest.pt`` (``None`` on ranks other than 0).
        best_checkpoint: ``checkpoint_best.pt`` when validation ran (rank 0), else ``None``.
        log: The JSON log (rank 0).
        curve: The loss-curve PNG (rank 0).
        epoch: Epochs completed, counting those before a resume.
        iteration: Iterations completed, counting those before a resume.
        start_iteration: The iteration this run started from (0, or a resumed one).
        last_loss: Loss of the last iteration (this process's share of the batch).
        metrics: Latest validation metrics; empty without validation.
        seconds: Wall time of the run, validation included.
        seconds_per_iteration: Training time per iteration, validation excluded.
        rank: This process's rank.
        world_size: The number of processes.
        model: The trained network (unwrapped), on its training device.
        images: Images of the last epoch that wrote some (``trainer.images``, e.g. the
            VAE's sample grids), else empty.
    """

    output_dir: Path
    checkpoint: Path | None
    best_checkpoint: Path | None
    log: Path | None
    curve: Path | None
    epoch: int
    iteration: int
    start_iteration: int
    last_loss: float
    metrics: dict[str, float]
    seconds: float
    seconds_per_iteration: float
    rank: int = 0
    world_size: int = 1
    model: Any = field(default=None, repr=False, compare=False)
    images: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Placed:
    """What the harness builds for every supervised task before the task adds its parts.

    Args:
        network: The network (unwrapped), on the run's device.
        model: What the trainer calls: ``network`` (or the task's wrapper of it), under
            ``torchrun`` in a ``DistributedDataParallel``.
        train_loader: Training batches (dicts).
        val_loader: Validation batches, or ``None``.
        data: What the loaders hold, for the log (``SupervisedTask.given_data`` for
            loaders given by the caller).
        context: Rank, world size and device.
    """

    network: torch.nn.Module
    model: torch.nn.Module
    train_loader: Iterable
    val_loader: Iterable | None
    data: Any
    context: DistributedContext


@dataclass
class Supervised:
    """What a supervised task gives the harness: the parts that are its own.

    Args:
        loss: The loss function of ``SupervisedTrainer``.
        evaluator: ``(network, val_loader, device, amp) -> SupervisedEvaluator`` whose key
            metric is ``key_metric``; ``None`` without validation.
        model_name: The record's model name.
        key_metric: The validation metric that picks ``checkpoint_best.pt``.
        meta: Facts of the run for the log (model, data, ...); the harness adds the
            parameter count, epoch length, batch size, world size, device and versions.
        record_extra: More facts for the checkpoint record (e.g. inference settings).
        checkpoint_format: The record's ``format``.
        lower_is_better: Whether the key metric improves downwards (a loss).
        curve_metrics: The validation metrics of the loss curve's second panel.
        history_extra: More per-iteration values of the trainer's output to record.
        prepare_batch: ``SupervisedTrainer``'s ``prepare_batch`` (``None``: MONAI's).
        trainer_options: More keyword arguments of ``SupervisedTrainer`` (``compile``).
        baseline: ``val_loader -> metrics`` of the inputs themselves, drawn in the curve.
        check_resume: Refuses a ``resume`` checkpoint of another model (names the file).
        iteration_handlers: Attached before the loop handlers (e.g. a KL warm-up).
        epoch_handlers: Attached after the loop handlers (e.g. sample images).
        bar_values: Output -> values on the progress bar (default: the loss).
    """

    loss: Callable[..., Any]
    evaluator: Callable[..., SupervisedEvaluator] | None
    model_name: str
    key_metric: str
    meta: dict[str, Any] = field(default_factory=dict)
    record_extra: dict[str, Any] = field(default_factory=dict)
    checkpoint_format: str = CHECKPOINT_FORMAT
    lower_is_better: bool = False
    curve_metrics: tuple[tuple[str, str], ...] = (("psnr", "PSNR (dB)"), ("ssim", "SSIM"))
    history_extra: tuple[str, ...] = ()
    prepare_batch: Callable[..., Any] | None = None
    trainer_options: dict[str, Any] = field(default_factory=dict)
    baseline: Callable[[Iterable], dict[str, float]] | None = None
    check_resume: Callable[[Path], None] | None = None
    iteration_handlers: Sequence[Callable[[Any], None]] = ()
    epoch_handlers: Sequence[Callable[[Any], None]] = ()
    bar_values: Callable[[Any], dict[str, float]] | None = None


class SupervisedTask:
    """The base of a supervised task: the harness builds and runs it.

    A task says only what is its own, by overriding the hooks :meth:`network`,
    :meth:`loaders`, :meth:`parts` and :meth:`what` (and, where it has them, :meth:`wrap`
    and :meth:`summary`).

    Attributes:
        name: The task's model, in messages (e.g. ``VAE``).
        attribute: The trainer attribute that carries the unwrapped network (e.g.
            ``denoiser``: ``trainer.denoiser``); :attr:`TrainResult.model` is read from it.
        one_process: Refuse to run under ``torchrun`` with several processes.
        seed_per_rank: Seed with ``train.seed + rank`` before building the loaders, so
            that each rank draws its own patches.
        given_data: What the log says of loaders given by the caller.
    """

    name: ClassVar[str]
    attribute: ClassVar[str]
    one_process: ClassVar[bool] = False
    seed_per_rank: ClassVar[bool] = True
    given_data: ClassVar[Any] = "given loaders"

    def network(self, config: Any) -> torch.nn.Module:
        """The network to train, built after seeding with ``train.seed``."""
        raise NotImplementedError

    def loaders(
        self, config: Any, context: DistributedContext
    ) -> tuple[Iterable, Iterable | None, Any]:
        """``(train_loader, val_loader, data)`` of ``config.data``; ``data`` describes them."""
        raise NotImplementedError

    def parts(self, config: Any, placed: Placed) -> Supervised:
        """The task's own parts of the trainer: loss, metrics and the rest."""
        raise NotImplementedError

    def what(self, config: Any) -> str:
        """What is trained, for the log."""
        raise NotImplementedError

    def wrap(
        self, config: Any, context: DistributedContext
    ) -> Callable[[torch.nn.Module], Any] | None:
        """``network -> model``, what the trainer calls instead of the network (``None``)."""
        return None

    def summary(self, metrics: Mapping[str, float]) -> Mapping[str, float]:
        """The metrics to show in the last log line (all of them)."""
        return dict(metrics)

    def build(
        self,
        config: Any,
        *,
        context: DistributedContext | None = None,
        train_loader: Iterable | None = None,
        val_loader: Iterable | None = None,
    ) -> tuple[SupervisedTrainer, SupervisedEvaluator | None]:
        """Build the MONAI trainer and evaluator of a configuration of this task.

        In order: the context, ``train.threads`` (when the loop has it), the seeded network
        on the run's device (:func:`place_network`), the loaders, the task's parts and
        :func:`build_supervised`.

        Args:
            config: The training configuration.
            context: Rank, world size and device; by default :func:`~ctpipe.training.
                distributed.setup_distributed` of ``config.train.device`` (which joins the
                ``torchrun`` process group when there is one).
            train_loader: Batches (dicts with ``"image"``, and ``"label"`` where the task
                has one) to train on instead of those of ``config.data``, e.g. a list
                holding one fixed batch.
            val_loader: Validation batches instead of those of ``config.data`` (used only
                with ``train_loader``).

        Returns:
            ``(trainer, evaluator)`` (:func:`build_supervised`); ``evaluator`` is ``None``
            without validation data or with ``train.validation_interval`` 0.
            ``trainer.run()`` trains. The trainer also carries ``trainer.history``,
            ``trainer.context`` and the unwrapped network as ``trainer.<attribute>``.

        Raises:
            InputError: On unusable data, a ``resume`` checkpoint that is not a ctpipe
                training checkpoint of this model, or several processes for a
                one-process task.
            ValueError: If the configured model cannot be built.
        """
        from ctpipe.training.distributed import setup_distributed

        context = context if context is not None else setup_distributed(config.train.device)
        if self.one_process and context.distributed:
            context.close()
            raise InputError(
                config.output_dir, f"{self.name} training runs in one process; not under torchrun"
            )
        threads = getattr(config.train, "threads", 0)
        if threads:
            import torch

            torch.set_num_threads(threads)
        network, model = place_network(
            functools.partial(self.network, config),
            config.train.seed,
            context,
            wrap=self.wrap(config, context),
        )
        data = copy.deepcopy(self.given_data)
        if train_loader is None:
            if self.seed_per_rank:
                seed_everything(config.train.seed + context.rank)  # each rank its own patches
            train_loader, val_loader, data = self.loaders(config, context)
        placed = Placed(network, model, train_loader, val_loader, data, context)
        trainer, evaluator = build_supervised(config, self.parts(config, placed), placed)
        setattr(trainer, self.attribute, network)
        return trainer, evaluator

    def train(self, config: Any) -> TrainResult:
        """Train as configured: :func:`run_training` of :meth:`build`."""
        return run_training(
            config,
            lambda config, context: self.build(config, context=context),
            what=self.what(config),
            summary=self.summary,
            model_attribute=self.attribute,
        )


def place_network(
    build: Callable[[], torch.nn.Module],
    seed: int,
    context: DistributedContext,
    *,
    wrap: Callable[[torch.nn.Module], torch.nn.Module] | None = None,
) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Seed, build the network on the run's device; ``(network, model)``.

    ``model`` is what the trainer calls: the network (or ``wrap(network)``, e.g. under
    autocast), under ``torchrun`` in a ``DistributedDataParallel`` wrapper.
    """
    seed_everything(seed)
    network = build().to(context.device)
    model = wrap(network) if wrap is not None else network
    if context.distributed:
        from torch.nn.parallel import DistributedDataParallel

        device = context.device
        model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    return network, model


def epoch_length(config: Any, train_loader: Iterable) -> int:
    """Iterations per epoch: ``train.iterations_per_epoch``, else one pass over the loader."""
    return config.train.iterations_per_epoch or len(train_loader)  # type: ignore[arg-type]


def adam(network: torch.nn.Module, settings: Any) -> torch.optim.Adam:
    """Adam over ``network``'s parameters with an optimizer section's settings."""
    import torch

    return torch.optim.Adam(
        network.parameters(),
        lr=settings.lr,
        betas=settings.betas,
        weight_decay=settings.weight_decay,
    )


def build_supervised(
    config: Any, task: Supervised, placed: Placed
) -> tuple[SupervisedTrainer, SupervisedEvaluator | None]:
    """MONAI's trainer and evaluator for ``task`` on ``placed``, with every shared handler.

    The handlers, in order: ``CheckpointLoader`` (resume), the task's iteration handlers,
    a non-finite-loss check, ``ValidationHandler``, the history, ``LrScheduleHandler``, the
    task's epoch handlers, an atomic ``CheckpointSaver`` (``checkpoint_latest.pt``),
    ``StatsHandler`` and a progress bar; on the evaluator, the best-checkpoint saver.

    Returns:
        ``(trainer, evaluator)``; ``evaluator`` is ``None`` without validation data or
        with ``train.validation_interval`` 0. The trainer carries ``trainer.history`` and
        ``trainer.context``.
    """
    from monai.engines import SupervisedTrainer

    from ctpipe.training.history import TrainingHistory
    from ctpipe.training.savers import CheckpointRecord
    from ctpipe.training.schedule import build_scheduler

    context, network = placed.context, placed.network
    train_loader, val_loader = placed.train_loader, placed.val_loader
    device, output_dir = context.device, Path(config.output_dir)
    length = epoch_length(config, train_loader)
    optimizer = adam(network, config.optimizer)
    scheduler = build_scheduler(optimizer, config.schedule, config.train.epochs * length)
    amp = config.train.amp and device.type == "cuda"
    if config.train.amp and not amp and context.is_main:
        logger.info("AMP is used on CUDA only; training in float32 on %s", device)
    evaluator = None
    validate = val_loader is not None and config.train.validation_interval > 0
    if task.evaluator is not None and validate:
        evaluator = task.evaluator(network, val_loader, device, amp)
    options = dict(task.trainer_options)
    if task.prepare_batch is not None:
        options["prepare_batch"] = task.prepare_batch
    trainer = SupervisedTrainer(
        device=device,
        max_epochs=config.train.epochs,
        train_data_loader=train_loader,
        network=placed.model,
        optimizer=optimizer,
        loss_function=task.loss,
        epoch_length=length,
        amp=amp,
        decollate=False,
        **options,
    )
    if hasattr(train_loader, "start"):  # a PatchStream: batches follow the iteration
        train_loader.start = lambda: trainer.state.iteration  # type: ignore[union-attr]
    meta = {
        **task.meta,
        "parameters": sum(p.numel() for p in network.parameters()),
        "epoch_length": length,
        "batch_size": config.train.batch_size,
        "world_size": context.world_size,
        "device": str(device),
        "versions": versions(),
    }
    if evaluator is not None and task.baseline is not None:  # every rank: metrics gather
        meta["input_validation"] = task.baseline(val_loader)
    history = TrainingHistory(
        output_dir if context.is_main else None,
        meta=meta,
        extra=task.history_extra,
        curve_metrics=task.curve_metrics,
        key_metric=task.key_metric,
    )
    record = CheckpointRecord(
        network,
        model_name=task.model_name,
        config=config.to_dict(),
        trainer=trainer,
        metrics=(lambda: evaluator.state.metrics) if evaluator is not None else None,
        extra={"world_size": context.world_size, "device": str(device), **task.record_extra},
        checkpoint_format=task.checkpoint_format,
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
        if context.is_main:
            attach_stats(evaluator, iteration_log=False)
            best_saver = attach_best_saver(
                evaluator,
                save_dict,
                output_dir,
                key_metric=task.key_metric,
                filename=BEST_NAME,
                lower_is_better=task.lower_is_better,
            )
    if config.resume is not None:
        if task.check_resume is not None:
            task.check_resume(Path(config.resume))
        attach_resume(
            trainer,
            config.resume,
            save_dict,
            device,
            output_dir=output_dir,
            best_saver=best_saver,
            history=history,
            key_metric=task.key_metric,
            best_filename=BEST_NAME,
            lower_is_better=task.lower_is_better,
        )
    for handler in task.iteration_handlers:
        handler(trainer)
    attach_loop_handlers(
        trainer,
        evaluator=evaluator,
        history=history,
        scheduler=scheduler,
        validation_interval=config.train.validation_interval,
    )
    for handler in task.epoch_handlers:
        handler(trainer)
    if context.is_main:
        attach_outputs(trainer, save_dict, config, bar_values=task.bar_values)
    trainer.history = history  # type: ignore[attr-defined]
    trainer.context = context  # type: ignore[attr-defined]
    return trainer, evaluator


def attach_outputs(
    trainer: Any,
    save_dict: Mapping[str, Any],
    config: Any,
    *,
    bar_values: Callable[[Any], dict[str, float]] | None = None,
    log_values: Callable[[Any], Any] | None = None,
) -> None:
    """``checkpoint_latest.pt`` every ``train.checkpoint_interval`` epochs, log lines, bar.

    Attached on rank 0 only (:func:`~ctpipe.training.handlers.attach_latest_saver`,
    :func:`~ctpipe.training.handlers.attach_progress`).
    """
    interval = config.train.checkpoint_interval
    output_dir = Path(config.output_dir)
    attach_latest_saver(trainer, save_dict, output_dir, interval=interval, filename=LATEST_NAME)
    attach_progress(
        trainer,
        log_interval=config.train.log_interval,
        progress=config.train.progress,
        bar_values=bar_values,
        log_values=log_values,
    )


def write_config(config: Any, output_dir: Path) -> None:
    """Write the configuration as run to ``output_dir/config.yaml`` (atomically)."""
    import yaml

    from ctpipe.io.atomic import atomic_path

    output_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(output_dir / CONFIG_NAME) as tmp:
        tmp.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")


def run_training(
    config: Any,
    build: Callable[[Any, DistributedContext], tuple[Any, Any]],
    *,
    what: str,
    summary: Callable[[Mapping[str, float]], Mapping[str, float]] = dict,
    model_attribute: str = "network",
) -> TrainResult:
    """Run a supervised task: the entry point behind ``ctpipe train TASK``.

    Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) every process calls this; they join
    one process group and train one model with ``DistributedDataParallel``; rank 0 writes
    ``config.yaml`` and the outputs.

    Args:
        config: The task's configuration.
        build: ``(config, context) -> (trainer, evaluator)`` of the task.
        what: What is trained, for the log (e.g. ``redcnn``).
        summary: The metrics to show in the last log line.
        model_attribute: The trainer attribute holding the unwrapped network.

    Returns:
        The paths written, the progress reached, the latest metrics and timings.

    Raises:
        InputError: On unusable data or resume checkpoint.
        FloatingPointError: If the loss becomes NaN or infinite.
    """
    from ignite.engine import Events

    from ctpipe.training.distributed import setup_distributed

    context = setup_distributed(config.train.device)
    try:
        output_dir = Path(config.output_dir)
        if context.is_main:
            write_config(config, output_dir)
        trainer, evaluator = build(config, context)
        timing = {"validation": 0.0, "start_iteration": 0}
        trainer.add_event_handler(
            Events.STARTED, lambda e: timing.update(start_iteration=e.state.iteration)
        )
        if evaluator is not None:
            time_engine(evaluator, timing)
        logger.info(
            "rank %d of %d on %s: training %s for %d epochs of %s iterations",
            context.rank,
            context.world_size,
            context.device,
            what,
            config.train.epochs,
            trainer.state.epoch_length,
        )
        start = time.perf_counter()
        trainer.run()
        seconds = time.perf_counter() - start
        if context.distributed:
            import torch.distributed as dist

            dist.barrier()
        ran = trainer.state.iteration - timing["start_iteration"]
        per_iteration = (seconds - timing["validation"]) / ran if ran else math.nan
        history = trainer.history
        losses = history.iterations["loss"]
        metrics = float_metrics(evaluator.state.metrics if evaluator is not None else {})
        best = output_dir / BEST_NAME
        result = TrainResult(
            output_dir=output_dir,
            checkpoint=output_dir / LATEST_NAME if context.is_main else None,
            best_checkpoint=best if context.is_main and best.exists() else None,
            log=history.log_path if context.is_main else None,
            curve=history.curve_path if context.is_main else None,
            epoch=trainer.state.epoch,
            iteration=trainer.state.iteration,
            start_iteration=timing["start_iteration"],
            last_loss=losses[-1] if losses else math.nan,
            metrics=metrics,
            seconds=seconds,
            seconds_per_iteration=per_iteration,
            rank=context.rank,
            world_size=context.world_size,
            model=getattr(trainer, model_attribute),
            images=tuple(getattr(getattr(trainer, "images", None), "written", ())),
        )
        logger.info(
            "rank %d of %d: finished at iteration %d (%d this run) in %.1f s, %.3f s/iteration, "
            "last loss %.3g%s",
            context.rank,
            context.world_size,
            result.iteration,
            ran,
            seconds,
            per_iteration,
            result.last_loss,
            "".join(f", {k} {v:.4g}" for k, v in summary(metrics).items()),
        )
        return result
    finally:
        context.close()


def float_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The numeric metrics as floats (tensors and numbers; others left out).

    Example:
        >>> float_metrics({"psnr": 30, "note": "x", "ok": True})
        {'psnr': 30.0}
    """
    out = {}
    for key, value in metrics.items():
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = float(value)
    return out
