"""Train a denoiser with MONAI engines: ``SupervisedTrainer`` + ``SupervisedEvaluator``.

:func:`build_denoise_trainer` assembles, from a :class:`~ctpipe.training.denoise.config.
DenoiseTrainConfig`:

* the network (:func:`ctpipe.nets.build_denoiser`), wrapped in ``DistributedDataParallel``
  under ``torchrun``;
* a ``SupervisedTrainer`` over random patch batches (:mod:`ctpipe.training.denoise.data`) with Adam,
  MSE (or L1) loss, AMP on CUDA only, and these handlers, in order:
  ``CheckpointLoader`` (resume), a non-finite-loss check, ``ValidationHandler``,
  :class:`~ctpipe.training.history.TrainingHistory` (JSON log and loss-curve PNG after each
  epoch), ``LrScheduleHandler`` (stepped every iteration), ``CheckpointSaver``
  (``checkpoint_latest.pt``), ``StatsHandler`` and a progress bar;
* a ``SupervisedEvaluator`` on whole validation slices with PSNR (MONAI's
  ``PeakSignalToNoiseRatio`` handler) and SSIM (``IgniteMetricHandler`` over
  ``SSIMMetric``), both with a data range of 1 on unit-scale images clipped to [0, 1], and a
  ``CheckpointSaver`` keeping the best PSNR as ``checkpoint_best.pt``.

Only rank 0 writes (checkpoints, log, curve, progress bar, stats). Under ``torchrun`` each
rank validates its share of the slices and MONAI's metrics gather the scores of all ranks,
so every rank gets the metrics over all validation slices. :func:`train_denoiser` is the entry
point (also ``ctpipe train denoise CONFIG`` and ``torchrun --nproc_per_node 2 -m
ctpipe.training denoise CONFIG``). Outputs in ``output_dir``: ``config.yaml`` (the config
as run), ``checkpoint_latest.pt``, ``checkpoint_best.pt``, ``training_log.json`` and
``loss_curve.png``.

Example:
    >>> from ctpipe.training.denoise.config import load_train_config
    >>> config = load_train_config("workflows/training/denoise_redcnn_cpu.yaml")  # doctest: +SKIP
    >>> result = train_denoiser(config)  # doctest: +SKIP
    >>> result.best_checkpoint, result.metrics  # doctest: +SKIP
    (PosixPath('runs/denoise_redcnn_cpu/checkpoint_best.pt'), {'psnr': 41.3, 'ssim': 0.96})
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
from ctpipe.training.common import attach_stats, seed_everything, time_engine
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

    from ctpipe.nets.base import Denoiser
    from ctpipe.training.denoise.config import DenoiseTrainConfig
    from ctpipe.training.distributed import DistributedContext

__all__ = [
    "BEST_NAME",
    "CONFIG_NAME",
    "LATEST_NAME",
    "TrainResult",
    "build_denoise_trainer",
    "train_denoiser",
]

#: Checkpoint of the end of the latest epoch (and of the run), in ``output_dir``.
LATEST_NAME = "checkpoint_latest.pt"
#: Checkpoint with the best validation PSNR, in ``output_dir``.
BEST_NAME = "checkpoint_best.pt"
#: The configuration as run, in ``output_dir``.
CONFIG_NAME = "config.yaml"
#: The validation metric that picks the best checkpoint by default.
KEY_METRIC = "psnr"

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
        metrics: Latest validation metrics (``psnr``, ``ssim``); empty without validation.
        seconds: Wall time of the run, validation included.
        seconds_per_iteration: Training time per iteration, validation excluded.
        rank: This process's rank.
        world_size: The number of processes.
        model: The trained network (unwrapped), on its training device.
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
    model: Denoiser | None = field(default=None, repr=False, compare=False)


def build_denoise_trainer(
    config: DenoiseTrainConfig,
    *,
    context: DistributedContext | None = None,
    train_loader: Iterable | None = None,
    val_loader: Iterable | None = None,
) -> tuple[SupervisedTrainer, SupervisedEvaluator | None]:
    """Build the MONAI trainer and evaluator of a configuration.

    Args:
        config: The training configuration.
        context: Rank, world size and device; by default :func:`~ctpipe.training.
            distributed.setup_distributed` of ``config.train.device`` (which joins the
            ``torchrun`` process group when there is one).
        train_loader: Batches (dicts with ``"image"`` and ``"label"``) to train on instead
            of those of ``config.data``, e.g. a list holding one fixed batch.
        val_loader: Validation batches instead of those of ``config.data`` (used only
            with ``train_loader``).

    Returns:
        ``(trainer, evaluator)``; ``evaluator`` is ``None`` without validation slices or
        with ``train.validation_interval`` 0. ``trainer.run()`` trains. The trainer also
        carries ``trainer.history`` (:class:`~ctpipe.training.history.TrainingHistory`),
        ``trainer.context`` and ``trainer.denoiser`` (the unwrapped network).

    Raises:
        InputError: On unusable data, or a ``resume`` checkpoint that is not a ctpipe
            training checkpoint of this model.
        ValueError: If ``model.kwargs`` do not fit the model.
    """
    import torch
    from monai.engines import SupervisedTrainer

    from ctpipe.checkpoints.file import CheckpointRecord
    from ctpipe.training.denoise.data import build_loaders, split_pairs
    from ctpipe.training.distributed import setup_distributed
    from ctpipe.training.history import TrainingHistory
    from ctpipe.training.schedule import build_scheduler

    context = context if context is not None else setup_distributed(config.train.device)
    device = context.device
    output_dir = Path(config.output_dir)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    seed_everything(config.train.seed)
    network = _build_network(config).to(device)
    if config.train.channels_last:
        network = network.to(memory_format=torch.channels_last)
    model: torch.nn.Module = _with_precision(network, config.train.precision, device)
    if context.distributed:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    split = None
    if train_loader is None:
        seed_everything(config.train.seed + context.rank)  # each rank draws its own patches
        split = split_pairs(config.data)
        train_loader, val_loader = build_loaders(
            config, split, rank=context.rank, world_size=context.world_size
        )
    epoch_length = config.train.iterations_per_epoch or len(train_loader)  # type: ignore[arg-type]
    total = config.train.epochs * epoch_length
    optimizer = torch.optim.Adam(
        network.parameters(),
        lr=config.optimizer.lr,
        betas=config.optimizer.betas,
        weight_decay=config.optimizer.weight_decay,
    )
    scheduler = build_scheduler(optimizer, config.schedule, total)
    loss = torch.nn.MSELoss() if config.train.loss == "mse" else torch.nn.L1Loss()
    amp = config.train.amp and device.type == "cuda"
    if config.train.amp and not amp and context.is_main:
        logger.info("AMP is used on CUDA only; training in float32 on %s", device)

    evaluator = None
    if val_loader is not None and config.train.validation_interval > 0:
        evaluator = _build_evaluator(network, val_loader, device, amp)
    trainer = SupervisedTrainer(
        device=device,
        max_epochs=config.train.epochs,
        train_data_loader=train_loader,
        network=model,
        optimizer=optimizer,
        loss_function=loss,
        epoch_length=epoch_length,
        amp=amp,
        decollate=False,
        prepare_batch=_batch_preparer(config.train.channels_last),
        compile=config.train.compile,
    )
    if hasattr(train_loader, "start"):  # a PatchStream: batches follow the trainer's iteration
        train_loader.start = lambda: trainer.state.iteration  # type: ignore[union-attr]

    meta = _run_meta(config, context, network, split, epoch_length)
    if evaluator is not None:  # on every rank: MONAI metrics gather across ranks
        meta["input_validation"] = _input_metrics(val_loader)  # type: ignore[arg-type]
    history = TrainingHistory(output_dir if context.is_main else None, meta=meta)
    record = CheckpointRecord(
        network,
        model_name=config.model.name.lower(),
        config=config.to_dict(),
        trainer=trainer,
        metrics=(lambda: evaluator.state.metrics) if evaluator is not None else None,
        extra={"world_size": context.world_size, "device": str(device)},
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
    key_metric = config.train.key_metric
    if evaluator is not None:
        history.attach_evaluator(evaluator)
        if context.is_main:
            attach_stats(evaluator, iteration_log=False)
            best_saver = attach_best_saver(
                evaluator, save_dict, output_dir, key_metric=key_metric, filename=BEST_NAME
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
            key_metric=key_metric,
            best_filename=BEST_NAME,
        )
    attach_loop_handlers(
        trainer,
        evaluator=evaluator,
        history=history,
        scheduler=scheduler,
        validation_interval=config.train.validation_interval,
    )
    if context.is_main:
        attach_latest_saver(
            trainer,
            save_dict,
            output_dir,
            interval=config.train.checkpoint_interval,
            filename=LATEST_NAME,
        )
        attach_progress(
            trainer, log_interval=config.train.log_interval, progress=config.train.progress
        )
    trainer.history = history  # type: ignore[attr-defined]
    trainer.context = context  # type: ignore[attr-defined]
    trainer.denoiser = network  # type: ignore[attr-defined]
    return trainer, evaluator


def train_denoiser(config: DenoiseTrainConfig) -> TrainResult:
    """Train a denoiser as configured; the entry point of ``ctpipe train denoise``.

    Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) every process calls this; they join
    one process group and train one model with ``DistributedDataParallel``; rank 0 writes
    the outputs.

    Args:
        config: The training configuration.

    Returns:
        The paths written, the progress reached, the latest metrics and timings.

    Raises:
        InputError: On unusable data or resume checkpoint.
        FloatingPointError: If the loss becomes NaN or infinite.
    """
    from ignite.engine import Events

    from ctpipe.io.atomic import atomic_path
    from ctpipe.training.distributed import setup_distributed

    context = setup_distributed(config.train.device)
    try:
        output_dir = Path(config.output_dir)
        if context.is_main:
            import yaml

            output_dir.mkdir(parents=True, exist_ok=True)
            with atomic_path(output_dir / CONFIG_NAME) as tmp:
                tmp.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")
        trainer, evaluator = build_denoise_trainer(config, context=context)
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
            config.model.name,
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
        history = trainer.history  # type: ignore[attr-defined]
        losses = history.iterations["loss"]
        metrics = (
            {k: float(v) for k, v in evaluator.state.metrics.items()}
            if evaluator is not None and evaluator.state.metrics
            else {}
        )
        result = TrainResult(
            output_dir=output_dir,
            checkpoint=output_dir / LATEST_NAME if context.is_main else None,
            best_checkpoint=(
                output_dir / BEST_NAME
                if context.is_main and (output_dir / BEST_NAME).exists()
                else None
            ),
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
            model=trainer.denoiser,  # type: ignore[attr-defined]
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
            "".join(f", {k} {v:.4g}" for k, v in metrics.items()),
        )
        return result
    finally:
        context.close()


# --- pieces ----------------------------------------------------------------------------------


def _build_network(config: DenoiseTrainConfig) -> Denoiser:
    from ctpipe.nets import build_denoiser

    try:
        return build_denoiser(config.model.name, **config.model.kwargs)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"model.kwargs {dict(config.model.kwargs)} do not fit {config.model.name!r}: {err}"
        ) from None


def _build_evaluator(
    network: torch.nn.Module, val_loader: Iterable, device: torch.device, amp: bool
) -> SupervisedEvaluator:
    """Whole-slice validation: PSNR and SSIM with data range 1, full range and window.

    ``psnr``/``ssim``: images clipped to [0, 1] (HU [-1024, 3072]); ``psnr_window``/
    ``ssim_window``: HU [-160, 240] mapped to [0, 1] (:data:`ctpipe.metrics` conventions).
    """
    from monai.engines import SupervisedEvaluator
    from monai.handlers import IgniteMetricHandler, PeakSignalToNoiseRatio
    from monai.metrics import SSIMMetric

    return SupervisedEvaluator(
        device=device,
        val_data_loader=val_loader,
        network=network,
        key_val_metric={
            KEY_METRIC: PeakSignalToNoiseRatio(max_val=1.0, output_transform=_clipped_pair)
        },
        additional_metrics={
            "ssim": IgniteMetricHandler(
                metric_fn=SSIMMetric(spatial_dims=2, data_range=1.0),
                output_transform=_clipped_pair,
            ),
            "psnr_window": PeakSignalToNoiseRatio(max_val=1.0, output_transform=_window_pair),
            "ssim_window": IgniteMetricHandler(
                metric_fn=SSIMMetric(spatial_dims=2, data_range=1.0),
                output_transform=_window_pair,
            ),
        },
        amp=amp,
        decollate=False,
    )


def _input_metrics(val_loader: Iterable) -> dict[str, float]:
    """PSNR and SSIM of the low-dose inputs themselves: the baseline a model must beat."""
    from monai.metrics import PSNRMetric, SSIMMetric

    psnr, ssim = PSNRMetric(max_val=1.0), SSIMMetric(spatial_dims=2, data_range=1.0)
    for batch in val_loader:
        low, full = _clipped_pair({"pred": batch["image"], "label": batch["label"]})
        psnr(low, full)
        ssim(low, full)
    return {"psnr": float(psnr.aggregate().item()), "ssim": float(ssim.aggregate().item())}


def _clipped_pair(output: dict[str, Any]) -> tuple[Any, Any]:
    """(prediction, target) clipped to [0, 1], the HU range [-1024, 3072] (as ctpipe.metrics)."""
    return output["pred"].float().clamp(0, 1), output["label"].float().clamp(0, 1)


def _window_pair(output: dict[str, Any]) -> tuple[Any, Any]:
    """(prediction, target) in the display window [-160, 240] HU, mapped to [0, 1]."""
    from ctpipe.transforms import DISPLAY_WINDOW, hu_to_unit

    low, high = (hu_to_unit(w) for w in DISPLAY_WINDOW)

    def scale(x: Any) -> Any:
        return ((x.float() - low) / (high - low)).clamp(0, 1)

    return scale(output["pred"]), scale(output["label"])


def _with_precision(network: torch.nn.Module, precision: str, device: torch.device) -> Any:
    """The network to train: itself, or wrapped in bfloat16 autocast (output in float32)."""
    import torch

    if precision == "fp32":
        return network

    class Autocast(torch.nn.Module):
        """Run the network under ``torch.autocast(bfloat16)``; return float32."""

        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            with torch.autocast(device.type, dtype=torch.bfloat16):
                return self.network(x).float()

    return Autocast()


def _batch_preparer(channels_last: bool) -> Any:
    """MONAI's ``default_prepare_batch``, giving ``channels_last`` tensors when asked."""
    import torch
    from monai.engines.utils import default_prepare_batch

    if not channels_last:
        return default_prepare_batch

    def prepare(batchdata: Any, device: Any = None, non_blocking: bool = False, **kwargs: Any):
        image, label = default_prepare_batch(batchdata, device, non_blocking, **kwargs)
        fmt = torch.channels_last
        return image.contiguous(memory_format=fmt), label.contiguous(memory_format=fmt)

    return prepare


def _check_resume(path: Path, network: torch.nn.Module, config: DenoiseTrainConfig) -> None:
    """Refuse a resume checkpoint of another model or one without training state."""
    from ctpipe.checkpoints.file import read_checkpoint

    checkpoint = read_checkpoint(path)
    record = checkpoint["ctpipe"]
    saved = record.get("model", {})
    current = {"name": config.model.name.lower(), "kwargs": dict(getattr(network, "config", {}))}
    if saved.get("name") != current["name"] or dict(saved.get("kwargs", {})) != current["kwargs"]:
        raise InputError(
            path,
            f"cannot resume: the checkpoint holds {saved.get('name')!r} {saved.get('kwargs')} "
            f"but the config builds {current['name']!r} {current['kwargs']}",
        )
    check_resume_progress(path, checkpoint, config.train.epochs)


def _run_meta(
    config: DenoiseTrainConfig,
    context: DistributedContext,
    network: torch.nn.Module,
    split: Any,
    epoch_length: int,
) -> dict[str, Any]:
    return {
        "model": {"name": config.model.name, "kwargs": dict(getattr(network, "config", {}))},
        "parameters": sum(p.numel() for p in network.parameters()),
        "data": split.describe() if split is not None else "given loaders",
        "epoch_length": epoch_length,
        "batch_size": config.train.batch_size,
        "world_size": context.world_size,
        "device": str(context.device),
        "versions": versions(),
    }
