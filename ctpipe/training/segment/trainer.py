"""Train a segmenter with MONAI engines: ``SupervisedTrainer`` + ``SupervisedEvaluator``.

:func:`build_segment_trainer` (:meth:`~ctpipe.training.harness.SupervisedTask.build` of
this module's :data:`TASK`) assembles, from a :class:`~ctpipe.training.segment.config.
SegmentTrainConfig`, the same machinery as the denoiser's trainer:

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

import functools
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctpipe.errors import InputError
from ctpipe.training import harness
from ctpipe.training.handlers import check_resume_progress

if TYPE_CHECKING:
    import torch
    from monai.engines import SupervisedEvaluator

    from ctpipe.training.distributed import DistributedContext
    from ctpipe.training.segment.config import SegmentTrainConfig

__all__ = [
    "KEY_METRIC",
    "TASK",
    "SegmentTask",
    "build_segment_trainer",
    "inference_settings",
    "train_segmenter",
]

#: The validation metric that picks the best checkpoint (mean Dice over the classes).
KEY_METRIC = "mean_dice"


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


class SegmentTask(harness.SupervisedTask):
    """The segmenter as a task of the training harness: what is its own.

    The network of ``model`` (tagged with its config), the patch and case loaders, the
    Dice and/or cross-entropy loss, sliding-window validation with Dice and HD95 per class,
    the inference settings in the record, the model check on resume.
    """

    name = "segmenter"
    attribute = "segmenter"

    def network(self, config: SegmentTrainConfig) -> torch.nn.Module:
        """MONAI's ``UNet`` or ``SegResNet`` of ``model``, carrying its config."""
        from ctpipe.checkpoints.segmenter import tag_segmenter
        from ctpipe.nets.segmenters import build_segmenter

        return tag_segmenter(build_segmenter(config.model), config.model)

    def loaders(
        self, config: SegmentTrainConfig, context: DistributedContext
    ) -> tuple[Iterable, Iterable | None, str]:
        """Labelled patch batches and whole validation cases, and the cases they hold."""
        from ctpipe.training.segment.data import build_segment_loaders, split_cases

        split = split_cases(config.data)
        train, val = build_segment_loaders(
            config, split, rank=context.rank, world_size=context.world_size
        )
        return train, val, split.describe()

    def parts(self, config: SegmentTrainConfig, placed: harness.Placed) -> harness.Supervised:
        """The loss, Dice and HD95 per class, inference settings, the check on resume."""
        from ctpipe.checkpoints.segmenter import SEGMENTER_FORMAT

        kwargs = dict(placed.network.config)  # type: ignore[arg-type]
        return harness.Supervised(
            loss=_build_loss(config),
            evaluator=functools.partial(_build_evaluator, config=config),
            model_name=config.model.architecture,
            key_metric=KEY_METRIC,
            meta={
                "model": {"name": config.model.architecture, "kwargs": kwargs},
                "class_names": list(config.model.class_names),
                "data": placed.data,
                "key_metric": KEY_METRIC,
            },
            record_extra={"inference": inference_settings(config)},
            checkpoint_format=SEGMENTER_FORMAT,
            curve_metrics=((KEY_METRIC, "mean Dice"),),
            check_resume=functools.partial(_check_resume, config=config),
        )

    def what(self, config: SegmentTrainConfig) -> str:
        """Architecture, dimensions and classes."""
        model = config.model
        classes = ", ".join(model.class_names[1:])
        return f"{model.architecture} {model.spatial_dims}-D segmenter ({classes})"

    def summary(self, metrics: Mapping[str, float]) -> dict[str, float]:
        """The mean Dice only."""
        return {k: v for k, v in metrics.items() if k == KEY_METRIC}


#: The segmenter task.
TASK = SegmentTask()
#: :meth:`~ctpipe.training.harness.SupervisedTask.build` of :data:`TASK`: the trainer (with
#: ``trainer.segmenter``, the unwrapped network) and evaluator of a configuration.
build_segment_trainer = TASK.build


def train_segmenter(config: SegmentTrainConfig) -> harness.TrainResult:
    """Train a segmenter as configured; the entry point of ``ctpipe train segment``.

    Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) every process calls this; they train
    one model with ``DistributedDataParallel`` and rank 0 writes the outputs
    (:func:`ctpipe.training.harness.run_training`).

    Args:
        config: The training configuration.

    Returns:
        The paths written, the progress reached, the latest validation metrics
        (``mean_dice``, ``dice_<class>``, ``hd95_<class>``) and timings.

    Raises:
        InputError: On unusable data or resume checkpoint.
        FloatingPointError: If the loss becomes NaN or infinite.
    """
    return TASK.train(config)


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
    *,
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


def _check_resume(path: Path, *, config: SegmentTrainConfig) -> None:
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
