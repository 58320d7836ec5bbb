"""Segment a CT volume with a trained segmenter; labels come back on the input grid.

:func:`segment_volume` windows HU to [0, 1] (MONAI ``ScaleIntensityRange``, clipped),
resamples to ``target_spacing`` (MONAI ``Spacing``, bilinear; the orientation is kept),
runs the network with MONAI's ``SlidingWindowInferer`` under :func:`torch.inference_mode`
(3-D configs on the volume, 2-D configs on its axial slices), takes the arg-max, and
resamples the label map back onto the input grid with nearest-neighbour interpolation
(MONAI ``ResampleToMatch``). The result has the input's shape and affine exactly.

Orientation. Volumes are indexed ``(i, j, k)``; ``roi_size`` is given in that order.
A 2-D network sees slice ``k`` as an image with height = rows ``j`` and width =
columns ``i``, as :class:`ctpipe.inference.SliceInferer` feeds it.

Example:
    >>> import torch
    >>> from monai.data import MetaTensor
    >>> from ctpipe.nets.segmenters import SegmenterConfig, build_segmenter
    >>> config = SegmenterConfig(class_map={"liver": 1}, channels=(4, 8), strides=(2,),
    ...                          num_res_units=0)
    >>> image = MetaTensor(torch.zeros(20, 18, 6), affine=torch.diag(torch.tensor(
    ...     [-1.0, -1.0, 2.0, 1.0], dtype=torch.float64)))
    >>> labels = segment_volume(image, build_segmenter(config), config=config,
    ...                         roi_size=(16, 16, 8))
    >>> labels.shape, labels.dtype, bool((labels.affine == image.affine).all())
    (torch.Size([20, 18, 6]), torch.uint8, True)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from torch import nn

from ctpipe.inference import DeviceLike, check_device, eval_mode, model_device
from ctpipe.nets.segmenters import SegmenterConfig

__all__ = ["BLEND_MODES", "RECORD_KEY", "segment_volume"]

#: How overlapping windows are weighted (MONAI blend modes).
BLEND_MODES = ("constant", "gaussian")
#: Key of the record that :func:`segment_volume` adds to the output's ``meta``.
RECORD_KEY = "segmentation"


def segment_volume(
    image: MetaTensor,
    model: nn.Module,
    *,
    config: SegmenterConfig,
    target_spacing: tuple[float, float, float] | None = (1.5, 1.5, 3.0),
    hu_window: tuple[float, float] = (-200.0, 300.0),
    roi_size: Sequence[int] = (96, 96, 32),
    overlap: float = 0.25,
    mode: str = "gaussian",
    sw_batch_size: int = 1,
    sw_device: DeviceLike = None,
    device: DeviceLike = None,
) -> MetaTensor:
    """Segment ``image`` (HU, ``(i, j, k)``) with ``model``; uint8 labels on its grid.

    Args:
        image: HU volume ``(i, j, k)`` as a MONAI ``MetaTensor`` with its RAS ``affine``.
        model: A network mapping ``(B, 1, *S)`` to ``config.out_channels`` logits
            (see :func:`ctpipe.nets.build_segmenter`). It is put in eval mode for the
            call (its mode is restored after) and moved to ``sw_device``.
        config: The segmenter's configuration: ``spatial_dims`` picks volume (3) or
            slice-by-slice (2) inference, ``out_channels`` and ``size_divisor`` are checked.
        target_spacing: Spacing (mm) along ``(i, j, k)`` the network runs at, positive;
            ``None`` runs at the input spacing (no resampling).
        hu_window: ``(low, high)`` HU mapped to [0, 1] and clipped, ``low < high``.
        roi_size: Window size in voxels along ``(i, j, k)``, positive multiples of
            ``config.size_divisor``. A 2-D config uses the ``(i, j)`` entries (two or
            three may be given). Smaller images are padded up to a window.
        overlap: Fraction of a window shared with its neighbour, in [0, 1).
        mode: Blending of overlapping windows: ``"gaussian"`` or ``"constant"``.
        sw_batch_size: Windows per forward pass, positive.
        sw_device: Device the model and windows run on; ``None``: where the model's
            parameters are (CPU for a parameter-free model).
        device: Device the windows are stitched on and the labels are returned on;
            ``None``: ``image``'s device. E.g. ``sw_device="cuda"``, ``device="cpu"``.

    Returns:
        A uint8 ``MetaTensor`` of labels ``0 .. N`` (channel ``k`` of the network is label
        ``k``) with ``image``'s shape, affine, meta and applied operations, plus
        ``meta["segmentation"]`` recording the model class and the settings.

    Raises:
        TypeError: ``image`` is not a ``MetaTensor`` or ``config`` not a
            :class:`SegmenterConfig`.
        ValueError: A setting outside its rule (named in the message), or the model's
            output does not have ``config.out_channels`` channels.
    """
    if not isinstance(image, MetaTensor):
        raise TypeError(f"image must be a monai.data.MetaTensor, got {type(image).__name__}")
    if image.ndim != 3:
        raise ValueError(f"image must be 3-D (i, j, k), got shape {tuple(image.shape)}")
    if not isinstance(config, SegmenterConfig):
        raise TypeError(f"config must be a SegmenterConfig, got {type(config).__name__}")
    spacing = _check_spacing(target_spacing)
    low, high = _check_window(hu_window)
    roi = _check_roi_size(roi_size, config)
    if isinstance(overlap, bool) or not (isinstance(overlap, (int, float)) and 0 <= overlap < 1):
        raise ValueError(f"overlap must be >= 0 and < 1, got {overlap!r}")
    if mode not in BLEND_MODES:
        raise ValueError(f"mode must be one of {', '.join(BLEND_MODES)}; got {mode!r}")
    if not _is_int(sw_batch_size) or sw_batch_size < 1:
        raise ValueError(f"sw_batch_size must be a positive integer, got {sw_batch_size!r}")
    compute_device = check_device("sw_device", sw_device) or model_device(model)
    out_device = check_device("device", device) or image.device

    from monai.transforms import ResampleToMatch, ScaleIntensityRange, Spacing

    volume = MetaTensor(
        image.as_tensor().float()[None], affine=image.affine.clone(), meta={}
    )  # (1, I, J, K)
    volume = ScaleIntensityRange(low, high, 0.0, 1.0, clip=True)(volume)
    if spacing is not None:
        volume = Spacing(pixdim=spacing, mode="bilinear", padding_mode="border")(volume)

    from monai.inferers import SlidingWindowInferer

    inferer = SlidingWindowInferer(
        roi_size=roi,
        sw_batch_size=int(sw_batch_size),
        overlap=float(overlap),
        mode=mode,
        sw_device=compute_device,
        device=out_device,
    )
    model.to(compute_device)
    data = volume.as_tensor()
    with eval_mode(model), torch.inference_mode():
        if config.spatial_dims == 3:
            logits = inferer(data[None], model)  # (1, C, I, J, K)
            labels = _argmax(logits, config)[0]
        else:
            slices = data.permute(3, 0, 2, 1)  # (K, 1, J, I)
            logits = inferer(slices, model)  # (K, C, J, I)
            labels = _argmax(logits, config).permute(2, 1, 0)  # (I, J, K)
    labels = labels.clone().to(out_device)  # out of inference mode

    if spacing is not None:
        resampled = MetaTensor(labels.float()[None], affine=volume.affine.clone(), meta={})
        target = MetaTensor(
            torch.zeros((1, *image.shape), device=out_device),
            affine=image.affine.clone(),
            meta={},
        )
        back = ResampleToMatch(mode="nearest", padding_mode="border")(resampled, target)
        labels = back.as_tensor()[0].round()
    result = MetaTensor(
        labels.to(torch.uint8),
        meta=copy.deepcopy(image.meta),
        applied_operations=copy.deepcopy(image.applied_operations),
    )
    result.affine = image.affine.clone()
    result.meta[RECORD_KEY] = _record(
        model,
        config,
        target_spacing=None if spacing is None else list(spacing),
        hu_window=[low, high],
        roi_size=list(roi),
        overlap=float(overlap),
        mode=mode,
        sw_batch_size=int(sw_batch_size),
        sw_device=str(compute_device),
        device=str(out_device),
    )
    return result


def _argmax(logits: Any, config: SegmenterConfig) -> torch.Tensor:
    """Label per voxel of ``(B, C, *S)`` logits, after checking ``C``."""
    if not isinstance(logits, torch.Tensor):
        raise ValueError(f"model must return one tensor of logits, got {type(logits).__name__}")
    if logits.shape[1] != config.out_channels:
        raise ValueError(
            f"model must return config.out_channels = {config.out_channels} channels, "
            f"got {logits.shape[1]} (output shape {tuple(logits.shape)})"
        )
    return logits.argmax(dim=1).to(torch.uint8)


def _record(model: nn.Module, config: SegmenterConfig, **settings: Any) -> dict[str, Any]:
    kind = type(model)
    return {
        "model": f"{kind.__module__}.{kind.__qualname__}",
        "class_names": list(config.class_names),
        "spatial_dims": config.spatial_dims,
        **settings,
    }


def _check_spacing(spacing: Sequence[float] | None) -> tuple[float, float, float] | None:
    if spacing is None:
        return None
    values = tuple(spacing)
    if len(values) != 3 or not all(
        isinstance(v, (int, float, np.number))
        and not isinstance(v, bool)
        and math.isfinite(v)
        and v > 0
        for v in values
    ):
        raise ValueError(
            f"target_spacing must be None or three positive numbers (mm along i, j, k), "
            f"got {spacing!r}"
        )
    return tuple(float(v) for v in values)  # type: ignore[return-value]


def _check_window(window: Sequence[float]) -> tuple[float, float]:
    values = tuple(window)
    if (
        len(values) != 2
        or not all(
            isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and math.isfinite(v)
            for v in values
        )
        or not values[0] < values[1]
    ):
        raise ValueError(
            f"hu_window must be two finite numbers (low, high) with low < high, got {window!r}"
        )
    return float(values[0]), float(values[1])


def _check_roi_size(roi_size: Sequence[int], config: SegmenterConfig) -> tuple[int, ...]:
    """The window in the network's axis order: ``(i, j, k)`` in 3-D, ``(j, i)`` in 2-D."""
    values = tuple(roi_size)
    lengths = (3,) if config.spatial_dims == 3 else (2, 3)
    if len(values) not in lengths or not all(_is_int(v) and v > 0 for v in values):
        count = "three" if config.spatial_dims == 3 else "two or three"
        raise ValueError(
            f"roi_size must be {count} positive integers (i, j, k) for a "
            f"{config.spatial_dims}-D segmenter, got {roi_size!r}"
        )
    divisor = config.size_divisor
    used = values if config.spatial_dims == 3 else values[:2]
    if any(v % divisor for v in used):
        raise ValueError(
            f"roi_size must be multiples of the segmenter's size_divisor ({divisor}), "
            f"got {roi_size!r}"
        )
    window = tuple(int(v) for v in used)
    return window if config.spatial_dims == 3 else (window[1], window[0])


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
