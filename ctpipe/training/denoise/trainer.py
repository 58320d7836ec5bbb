"""Train a denoiser with MONAI engines: ``SupervisedTrainer`` + ``SupervisedEvaluator``.

:func:`build_denoise_trainer` (:meth:`~ctpipe.training.harness.SupervisedTask.build` of
this module's :data:`TASK`) assembles, from a :class:`~ctpipe.training.denoise.config.
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

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctpipe.errors import InputError
from ctpipe.training import harness
from ctpipe.training.handlers import check_resume_progress

if TYPE_CHECKING:
    import torch
    from monai.engines import SupervisedEvaluator

    from ctpipe.nets.base import Denoiser
    from ctpipe.training.denoise.config import DenoiseTrainConfig
    from ctpipe.training.distributed import DistributedContext

__all__ = ["KEY_METRIC", "TASK", "DenoiseTask", "build_denoise_trainer", "train_denoiser"]

#: The validation metric that picks the best checkpoint by default (``train.key_metric``).
KEY_METRIC = "psnr"


class DenoiseTask(harness.SupervisedTask):
    """The denoiser as a task of the training harness: what is its own.

    The network (``model``, in ``channels_last`` and under bfloat16 autocast as
    configured), the patch and slice loaders, MSE or L1 loss, PSNR and SSIM over the full
    range and the display window, the inputs' own scores as the baseline, the model check
    on resume.
    """

    name = "denoiser"
    attribute = "denoiser"

    def network(self, config: DenoiseTrainConfig) -> Denoiser:
        """The configured denoiser, in ``channels_last`` when ``train.channels_last``."""
        import torch

        from ctpipe.nets import build_denoiser

        try:
            network = build_denoiser(config.model.name, **config.model.kwargs)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"model.kwargs {dict(config.model.kwargs)} do not fit {config.model.name!r}: {err}"
            ) from None
        if config.train.channels_last:
            network = network.to(memory_format=torch.channels_last)
        return network

    def wrap(self, config: DenoiseTrainConfig, context: DistributedContext) -> Any:
        """The network as trained: in float32, or under bfloat16 autocast (``precision``)."""
        return functools.partial(
            _with_precision, precision=config.train.precision, device=context.device
        )

    def loaders(
        self, config: DenoiseTrainConfig, context: DistributedContext
    ) -> tuple[Iterable, Iterable | None, str]:
        """Random patch batches and whole validation slices of ``data``, and what they hold."""
        from ctpipe.training.denoise.data import build_loaders, split_pairs

        split = split_pairs(config.data)
        rank, world_size = context.rank, context.world_size
        train, val = build_loaders(config, split, rank=rank, world_size=world_size)
        return train, val, split.describe()

    def parts(self, config: DenoiseTrainConfig, placed: harness.Placed) -> harness.Supervised:
        """MSE or L1 loss, PSNR and SSIM, the inputs' own scores, the model check on resume."""
        import torch

        from ctpipe.training.denoise.margin_loss import MarginLoss

        network = placed.network
        kwargs = dict(getattr(network, "config", {}))
        loss = torch.nn.MSELoss() if config.train.loss == "mse" else torch.nn.L1Loss()
        return harness.Supervised(
            loss=MarginLoss(loss, config.patches.loss_margin),
            evaluator=_build_evaluator,
            model_name=config.model.name.lower(),
            key_metric=config.train.key_metric,
            meta={"model": {"name": config.model.name, "kwargs": kwargs}, "data": placed.data},
            prepare_batch=_batch_preparer(config.train.channels_last),
            trainer_options={"compile": config.train.compile},
            baseline=_input_metrics,
            check_resume=functools.partial(_check_resume, network=network, config=config),
        )

    def what(self, config: DenoiseTrainConfig) -> str:
        """The model's name."""
        return config.model.name


#: The denoiser task.
TASK = DenoiseTask()
#: :meth:`~ctpipe.training.harness.SupervisedTask.build` of :data:`TASK`: the trainer (with
#: ``trainer.denoiser``, the unwrapped network) and evaluator of a configuration.
build_denoise_trainer = TASK.build


def train_denoiser(config: DenoiseTrainConfig) -> harness.TrainResult:
    """Train a denoiser as configured; the entry point of ``ctpipe train denoise``.

    Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) every process calls this; they join
    one process group and train one model with ``DistributedDataParallel``; rank 0 writes
    the outputs (:func:`ctpipe.training.harness.run_training`).

    Args:
        config: The training configuration.

    Returns:
        The paths written, the progress reached, the latest metrics (``psnr``, ``ssim``)
        and timings.

    Raises:
        InputError: On unusable data or resume checkpoint.
        FloatingPointError: If the loss becomes NaN or infinite.
    """
    return TASK.train(config)


# --- pieces ----------------------------------------------------------------------------------


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


def _with_precision(network: torch.nn.Module, *, precision: str, device: torch.device) -> Any:
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


def _check_resume(path: Path, *, network: torch.nn.Module, config: DenoiseTrainConfig) -> None:
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
