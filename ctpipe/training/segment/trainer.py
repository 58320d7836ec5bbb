"""Train a segmenter with MONAI engines: ``SupervisedTrainer`` + ``SupervisedEvaluator``.

:func:`build_segment_trainer` assembles, from a :class:`~ctpipe.training.segment.config.
SegmentTrainConfig`, the same machinery as the denoiser's trainer
(:mod:`ctpipe.training.denoise.trainer`):

* the network (:func:`ctpipe.nets.build_segmenter`, MONAI ``UNet`` or ``SegResNet``),
  wrapped in ``DistributedDataParallel`` under ``torchrun``;
* a ``SupervisedTrainer`` over ``RandCropByPosNegLabeld`` patches of cached, preprocessed
  cases (:mod:`ctpipe.training.segment.data`) with Adam, the seed's Dice loss and/or
  cross-entropy (:mod:`ctpipe.losses`), AMP on CUDA only, and these handlers, in order:
  ``CheckpointLoader`` (resume), a non-finite-loss check, ``ValidationHandler``,
  :class:`~ctpipe.training.history.TrainingHistory`, ``LrScheduleHandler``, an atomic
  ``CheckpointSaver`` (``checkpoint_latest.pt``), ``StatsHandler`` and a progress bar;
* a ``SupervisedEvaluator`` running :class:`ctpipe.segment.SegmenterInferer` (MONAI's
  sliding window, the same as ``ctpipe segment``) over whole validation cases, with
  MONAI's ``MeanDice`` over all classes (``mean_dice``, the key metric that picks
  ``checkpoint_best.pt``) and, per class, ``MeanDice`` (``dice_<class>``) and
  ``HausdorffDistance`` at the 95th percentile in millimetres (``hd95_<class>``).

Only rank 0 writes. Checkpoints are self-describing (:mod:`ctpipe.checkpoints.
segmenter`): the class map, preprocessing and sliding-window settings travel with
the weights. :func:`train_segmenter` is the entry point (also ``ctpipe train segment
CONFIG`` and ``torchrun --nproc_per_node 2 -m ctpipe.training segment CONFIG``).

Example:
    >>> from ctpipe.training.segment.config import load_segment_config
    >>> config = load_segment_config("workflows/training/segment_unet2d_cpu.yaml")  # doctest: +SKIP
    >>> result = train_segmenter(config)  # doctest: +SKIP
    >>> result.metrics["dice_liver"]  # doctest: +SKIP
    0.91
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctpipe.errors import InputError
from ctpipe.provenance import versions
from ctpipe.training.common import attach_stats, seed_everything, time_engine
from ctpipe.training.denoise.trainer import BEST_NAME, CONFIG_NAME, LATEST_NAME, TrainResult
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

    from ctpipe.training.distributed import DistributedContext
    from ctpipe.training.segment.config import SegmentTrainConfig

__all__ = [
    "KEY_METRIC",
    "build_segment_trainer",
    "inference_settings",
    "train_segmenter",
]

#: The validation metric that picks the best checkpoint (mean Dice over the classes).
KEY_METRIC = "mean_dice"

logger = logging.getLogger("ctpipe.train")


def inference_settings(config: SegmentTrainConfig) -> dict[str, Any]:
    """Preprocessing and sliding-window settings recorded in the checkpoint.

    They are the keyword arguments of :func:`ctpipe.segment.segment_volume` for this
    model (except ``sw_batch_size``, a property of the machine).

    Example:
        >>> from ctpipe.training.segment.config import SegmentDataConfig, SegmentTrainConfig
        >>> from ctpipe.nets.segmenters import SegmenterConfig
        >>> c = SegmentTrainConfig(SegmenterConfig(), SegmentDataConfig(datalist="d"), "o")
        >>> inference_settings(c)["target_spacing"], inference_settings(c)["axcodes"]
        ([1.5, 1.5, 3.0], 'LPS')
    """
    pre, window = config.preprocess, config.inference
    return {
        "hu_window": list(pre.hu_window),
        "target_spacing": None if pre.target_spacing is None else list(pre.target_spacing),
        "axcodes": pre.axcodes,
        "roi_size": list(window.roi_size),
        "overlap": window.overlap,
        "mode": window.mode,
    }


def build_segment_trainer(
    config: SegmentTrainConfig,
    *,
    context: DistributedContext | None = None,
    train_loader: Iterable | None = None,
    val_loader: Iterable | None = None,
) -> tuple[SupervisedTrainer, SupervisedEvaluator | None]:
    """Build the MONAI trainer and evaluator of a segmentation configuration.

    Args:
        config: The training configuration.
        context: Rank, world size and device; by default :func:`~ctpipe.training.
            distributed.setup_distributed` of ``config.train.device``.
        train_loader: Batches (dicts with ``"image"`` and ``"label"``) to train on instead
            of those of ``config.data``, e.g. a list holding one fixed batch.
        val_loader: Validation cases instead of those of ``config.data`` (used only with
            ``train_loader``).

    Returns:
        ``(trainer, evaluator)``; ``evaluator`` is ``None`` without validation cases or
        with ``train.validation_interval`` 0. The trainer carries ``trainer.history``,
        ``trainer.context`` and ``trainer.segmenter`` (the unwrapped network).

    Raises:
        InputError: On unusable data, or a ``resume`` checkpoint that is not a ctpipe
            segmenter training checkpoint of this model.
    """
    import torch
    from monai.engines import SupervisedTrainer

    from ctpipe.checkpoints.file import CheckpointRecord
    from ctpipe.checkpoints.segmenter import SEGMENTER_FORMAT, tag_segmenter
    from ctpipe.nets.segmenters import build_segmenter
    from ctpipe.training.distributed import setup_distributed
    from ctpipe.training.history import TrainingHistory
    from ctpipe.training.schedule import build_scheduler
    from ctpipe.training.segment.data import build_segment_loaders, split_cases

    context = context if context is not None else setup_distributed(config.train.device)
    device = context.device
    output_dir = Path(config.output_dir)
    seed_everything(config.train.seed)
    network = tag_segmenter(build_segmenter(config.model), config.model).to(device)
    model: torch.nn.Module = network
    if context.distributed:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(
            network, device_ids=[device.index] if device.type == "cuda" else None
        )

    split = None
    if train_loader is None:
        seed_everything(config.train.seed + context.rank)  # each rank draws its own patches
        split = split_cases(config.data)
        train_loader, val_loader = build_segment_loaders(
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
    amp = config.train.amp and device.type == "cuda"
    if config.train.amp and not amp and context.is_main:
        logger.info("AMP is used on CUDA only; training in float32 on %s", device)

    evaluator = None
    if val_loader is not None and config.train.validation_interval > 0:
        evaluator = _build_evaluator(network, val_loader, device, amp, config)
    trainer = SupervisedTrainer(
        device=device,
        max_epochs=config.train.epochs,
        train_data_loader=train_loader,
        network=model,
        optimizer=optimizer,
        loss_function=_build_loss(config),
        epoch_length=epoch_length,
        amp=amp,
        decollate=False,
    )

    meta = _run_meta(config, context, network, split, epoch_length)
    history = TrainingHistory(
        output_dir if context.is_main else None,
        meta=meta,
        curve_metrics=((KEY_METRIC, "mean Dice"),),
        key_metric=KEY_METRIC,
    )
    record = CheckpointRecord(
        network,
        model_name=config.model.architecture,
        config=config.to_dict(),
        trainer=trainer,
        metrics=(lambda: evaluator.state.metrics) if evaluator is not None else None,
        extra={
            "world_size": context.world_size,
            "device": str(device),
            "inference": inference_settings(config),
        },
        checkpoint_format=SEGMENTER_FORMAT,
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
                evaluator, save_dict, output_dir, key_metric=KEY_METRIC, filename=BEST_NAME
            )

    if config.resume is not None:
        _check_resume(Path(config.resume), config)
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
    trainer.segmenter = network  # type: ignore[attr-defined]
    return trainer, evaluator


def train_segmenter(config: SegmentTrainConfig) -> TrainResult:
    """Train a segmenter as configured; the entry point of ``ctpipe train segment``.

    Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) every process calls this; they train
    one model with ``DistributedDataParallel`` and rank 0 writes the outputs.

    Args:
        config: The training configuration.

    Returns:
        The paths written, the progress reached, the latest validation metrics
        (``mean_dice``, ``dice_<class>``, ``hd95_<class>``) and timings.

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
        trainer, evaluator = build_segment_trainer(config, context=context)
        timing = {"validation": 0.0, "start_iteration": 0}
        trainer.add_event_handler(
            Events.STARTED, lambda e: timing.update(start_iteration=e.state.iteration)
        )
        if evaluator is not None:
            time_engine(evaluator, timing)
        logger.info(
            "rank %d of %d on %s: training %s %d-D segmenter (%s) for %d epochs of %s iterations",
            context.rank,
            context.world_size,
            context.device,
            config.model.architecture,
            config.model.spatial_dims,
            ", ".join(config.model.class_names[1:]),
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
        losses = trainer.history.iterations["loss"]  # type: ignore[attr-defined]
        metrics = _float_metrics(evaluator.state.metrics if evaluator is not None else {})
        result = TrainResult(
            output_dir=output_dir,
            checkpoint=output_dir / LATEST_NAME if context.is_main else None,
            best_checkpoint=(
                output_dir / BEST_NAME
                if context.is_main and (output_dir / BEST_NAME).exists()
                else None
            ),
            log=trainer.history.log_path if context.is_main else None,  # type: ignore[attr-defined]
            curve=trainer.history.curve_path if context.is_main else None,  # type: ignore[attr-defined]
            epoch=trainer.state.epoch,
            iteration=trainer.state.iteration,
            start_iteration=timing["start_iteration"],
            last_loss=losses[-1] if losses else math.nan,
            metrics=metrics,
            seconds=seconds,
            seconds_per_iteration=per_iteration,
            rank=context.rank,
            world_size=context.world_size,
            model=trainer.segmenter,  # type: ignore[attr-defined]
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
            f", {KEY_METRIC} {metrics[KEY_METRIC]:.4f}" if KEY_METRIC in metrics else "",
        )
        return result
    finally:
        context.close()


# --- pieces ----------------------------------------------------------------------------------


def _build_loss(config: SegmentTrainConfig) -> torch.nn.Module:
    from ctpipe.losses import build_segmentation_loss

    spec = config.train.loss
    options: dict[str, Any] = {
        "num_classes": config.model.out_channels,
        "include_background": spec.include_background,
        "class_weights": spec.class_weights,
    }
    if spec.name != "ce":
        options["smooth"] = spec.smooth
    if spec.name == "dice_ce":
        options.update(lambda_dice=spec.lambda_dice, lambda_ce=spec.lambda_ce)
    return build_segmentation_loss(spec.name, **options)


def _build_evaluator(
    network: torch.nn.Module,
    val_loader: Iterable,
    device: torch.device,
    amp: bool,
    config: SegmentTrainConfig,
) -> SupervisedEvaluator:
    """Sliding-window validation on whole cases: mean Dice, Dice and HD95 per class."""
    from monai.engines import SupervisedEvaluator
    from monai.handlers import IgniteMetricHandler, MeanDice, from_engine
    from monai.transforms import AsDiscreted, Compose

    from ctpipe.segment import SegmenterInferer

    window = config.inference
    classes = config.model.out_channels
    inferer = SegmenterInferer(
        config.model,
        window.roi_size,
        overlap=window.overlap,
        mode=window.mode,
        sw_batch_size=window.sw_batch_size,
    )
    post = Compose(
        [
            AsDiscreted("pred", argmax=True, to_onehot=classes),
            AsDiscreted("label", to_onehot=classes),
        ]
    )
    metrics: dict[str, Any] = {}
    for channel, name in enumerate(config.model.class_names):
        if channel == 0:
            continue
        pick = _channel(channel)
        metrics[f"dice_{name}"] = IgniteMetricHandler(
            metric_fn=_class_dice(), output_transform=pick
        )
        metrics[f"hd95_{name}"] = IgniteMetricHandler(
            metric_fn=_hausdorff_mm(window.hd_percentile), output_transform=pick
        )
    return SupervisedEvaluator(
        device=device,
        val_data_loader=val_loader,
        network=network,
        inferer=inferer,
        postprocessing=post,
        key_val_metric={
            KEY_METRIC: MeanDice(
                include_background=False, output_transform=from_engine(["pred", "label"])
            )
        },
        additional_metrics=metrics,
        amp=amp,
    )


def _channel(channel: int) -> Callable[[Any], tuple[list[Any], list[Any]]]:
    """Output transform picking one one-hot channel of each decollated case."""

    def pick(output: Any) -> tuple[list[Any], list[Any]]:
        items = output if isinstance(output, list) else [output]
        return (
            [item["pred"][channel : channel + 1] for item in items],
            [item["label"][channel : channel + 1] for item in items],
        )

    return pick


def _class_dice() -> Any:
    """MONAI's ``DiceMetric`` of one class; NaN (not MONAI's 0) when no case has it."""
    from monai.metrics import DiceMetric

    class ClassDice(DiceMetric):
        def aggregate(self, reduction: Any = None) -> Any:
            return _nan_mean(self.get_buffer())

    return ClassDice(include_background=True)


def _hausdorff_mm(percentile: float) -> Any:
    """MONAI's ``HausdorffDistanceMetric`` in millimetres, per class.

    MONAI's handler measures in voxels; validation cases are at the target spacing, which
    may differ per axis (and per case along a kept axis), so the spacing is read from each
    label's affine. A class missing from the prediction but present in the reference
    scores infinity (MONAI gives NaN, which its mean would drop); a class absent from the
    reference is not scored; with no scored case the result is NaN (MONAI's mean gives 0).
    """
    import warnings

    import numpy as np
    import torch
    from monai.metrics import HausdorffDistanceMetric

    class HausdorffDistanceMM(HausdorffDistanceMetric):
        def _compute_tensor(self, y_pred: Any, y: Any, **kwargs: Any) -> Any:
            affine = getattr(y, "affine", None)
            if affine is not None:
                matrix = np.asarray(affine.detach().cpu(), dtype=np.float64)
                matrix = matrix[0] if matrix.ndim == 3 else matrix
                kwargs["spacing"] = [float(v) for v in np.linalg.norm(matrix[:3, :3], axis=0)]
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*(all 0|nan/inf distance).*")
                warnings.filterwarnings("ignore", message=".*always_return_as_numpy.*")
                values = super()._compute_tensor(y_pred, y, **kwargs)
            dims = tuple(range(2, y.ndim))
            missed = (y_pred.sum(dim=dims) == 0) & (y.sum(dim=dims) > 0)
            absent = y.sum(dim=dims) == 0
            values = torch.where(missed.to(values.device), torch.inf, values)
            return torch.where(absent.to(values.device), torch.nan, values)

        def aggregate(self, reduction: Any = None) -> Any:
            return _nan_mean(self.get_buffer())

    return HausdorffDistanceMM(include_background=True, percentile=percentile)


def _nan_mean(values: Any) -> Any:
    """Mean over the finite-or-infinite entries, NaN when every entry is NaN."""
    import torch

    kept = values[~torch.isnan(values)]
    return kept.float().mean() if kept.numel() else torch.tensor(float("nan"))


def _float_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = float(value)
    return out


def _check_resume(path: Path, config: SegmentTrainConfig) -> None:
    """Refuse a resume checkpoint of another model or one without training state."""
    from ctpipe.checkpoints.file import read_checkpoint
    from ctpipe.checkpoints.segmenter import SEGMENTER_FORMAT, segmenter_kwargs

    checkpoint = read_checkpoint(path, checkpoint_format=SEGMENTER_FORMAT)
    record = checkpoint["ctpipe"]
    saved = dict(record.get("model", {}).get("kwargs", {}))
    current = segmenter_kwargs(config.model)
    if saved != current:
        changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        raise InputError(
            path,
            f"cannot resume: the checkpoint holds another segmenter (model keys that differ: "
            f"{', '.join(changed)}; checkpoint {[saved.get(k) for k in changed]}, config "
            f"{[current.get(k) for k in changed]})",
        )
    check_resume_progress(path, checkpoint, config.train.epochs)


def _run_meta(
    config: SegmentTrainConfig,
    context: DistributedContext,
    network: torch.nn.Module,
    split: Any,
    epoch_length: int,
) -> dict[str, Any]:
    return {
        "model": {"name": config.model.architecture, "kwargs": dict(network.config)},  # type: ignore[arg-type]
        "class_names": list(config.model.class_names),
        "parameters": sum(p.numel() for p in network.parameters()),
        "data": split.describe() if split is not None else "given loaders",
        "epoch_length": epoch_length,
        "batch_size": config.train.batch_size,
        "world_size": context.world_size,
        "device": str(context.device),
        "key_metric": KEY_METRIC,
        "versions": versions(),
    }
