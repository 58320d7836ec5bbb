"""Segment a CT volume with a trained segmenter; labels come back on the input grid.

:func:`segment_volume` windows HU to [0, 1] (MONAI ``ScaleIntensityRange``, clipped),
reorients the volume to ``axcodes`` (MONAI ``Orientation``; ``"LPS"`` leaves a DICOM axial
series as it is), resamples it to ``target_spacing`` (MONAI ``Spacing``, bilinear), runs the
network with :class:`SegmenterInferer` (MONAI's ``SlidingWindowInferer``; 3-D configs on
the volume, 2-D configs on its axial slices) under :func:`torch.inference_mode`, takes the
arg-max, and resamples the label map back onto the input grid with nearest-neighbour
interpolation (axis by axis, as reorienting and respacing keep the axes; MONAI
``SpatialResample`` otherwise). The result has the input's shape and affine exactly.
Training (:mod:`ctpipe.training.segment.trainer`) uses the same steps and the same inferer, so a
model sees at inference what it saw in training.

Orientation. Volumes are indexed ``(i, j, k)``; ``roi_size`` is given in that order.
A 2-D network sees slice ``k`` as an image with height = rows ``j`` and width =
columns ``i``, as :class:`ctpipe.inference.SliceInferer` feeds it.

Memory. ``sw_device`` is where the network and its windows run, ``device`` where the
windows are stitched and the labels returned: ``sw_device="cuda", device="cpu"`` keeps
only the windows on the GPU, so the size of the volume is bounded by host memory
(``benchmarks/bench_segment_memory.py`` measures a 512 x 512 x 300 volume).

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
from monai.inferers import Inferer
from torch import nn

from ctpipe.inference import DeviceLike, check_device, eval_mode, model_device
from ctpipe.nets.segmenters import SegmenterConfig
from ctpipe.transforms import SEGMENT_HU_WINDOW

__all__ = [
    "AXCODES",
    "BLEND_MODES",
    "RAS_LABELS",
    "RECORD_KEY",
    "ROI_SIZE",
    "TARGET_SPACING",
    "SegmenterInferer",
    "check_axcodes",
    "check_roi_size",
    "check_target_spacing",
    "class_volumes",
    "segment_volume",
]

#: How overlapping windows are weighted (MONAI blend modes).
BLEND_MODES = ("constant", "gaussian")
#: Key of the record that :func:`segment_volume` adds to the output's ``meta``.
RECORD_KEY = "segmentation"
#: Default orientation of the network's input: a DICOM axial series as stored
#: (``i`` to the patient's left, ``j`` to posterior, ``k`` to superior).
AXCODES = "LPS"
#: Default spacing (mm) along ``(i, j, k)`` the network works at (checkpoints record theirs).
TARGET_SPACING = (1.5, 1.5, 3.0)
#: Default sliding window in voxels ``(i, j, k)`` (checkpoints record theirs).
ROI_SIZE = (96, 96, 32)
#: Axis labels of MONAI ``Orientation`` in the RAS frame of ``MetaTensor`` affines.
RAS_LABELS = (("L", "R"), ("P", "A"), ("I", "S"))
#: The logits of the windows may hold this many times the voxel limit of
#: :mod:`ctpipe.io.limits` (float32 values): 8 x 2**30 by default, 32 GiB.
WINDOW_VOXELS_PER_LIMIT = 8

Spacing3 = tuple[float | None, float | None, float | None]


class SegmenterInferer(Inferer):
    """Sliding-window logits of a segmenter over whole volumes ``(B, C, I, J, K)``.

    A 3-D segmenter gets 3-D windows of the volume. A 2-D segmenter gets 2-D windows of
    each axial slice, fed as images of height ``J`` (rows) and width ``I`` (columns); the
    logits come back as ``(B, out, I, J, K)`` either way. The windows are blended with
    MONAI's ``SlidingWindowInferer``.

    Args:
        config: The segmenter's configuration (``spatial_dims``, ``size_divisor``).
        roi_size: Window size along ``(i, j, k)`` (a 2-D config uses ``(i, j)``; two or
            three values), multiples of ``config.size_divisor``.
        overlap: Fraction of a window shared with its neighbour, in [0, 1).
        mode: ``"gaussian"`` or ``"constant"`` blending.
        sw_batch_size: Windows per forward pass.
        sw_device: Device the windows run on (``None``: the input's).
        device: Device the logits are stitched on (``None``: the input's).

    Raises:
        ValueError: A setting outside its rule (named in the message).

    Example:
        >>> from ctpipe.nets.segmenters import SegmenterConfig, build_segmenter
        >>> config = SegmenterConfig(spatial_dims=2, class_map={"liver": 1},
        ...                          channels=(4, 8), strides=(2,), num_res_units=0)
        >>> inferer = SegmenterInferer(config, roi_size=(16, 8))
        >>> inferer(torch.zeros(1, 1, 20, 12, 3), build_segmenter(config)).shape
        torch.Size([1, 2, 20, 12, 3])
    """

    def __init__(
        self,
        config: SegmenterConfig,
        roi_size: Sequence[int],
        *,
        overlap: float = 0.25,
        mode: str = "gaussian",
        sw_batch_size: int = 1,
        sw_device: DeviceLike = None,
        device: DeviceLike = None,
    ) -> None:
        super().__init__()
        if not isinstance(config, SegmenterConfig):
            raise TypeError(f"config must be a SegmenterConfig, got {type(config).__name__}")
        self.config = config
        self.roi_size = check_roi_size(roi_size, config)
        if isinstance(overlap, bool) or not (
            isinstance(overlap, (int, float)) and 0 <= overlap < 1
        ):
            raise ValueError(f"overlap must be >= 0 and < 1, got {overlap!r}")
        if mode not in BLEND_MODES:
            raise ValueError(f"mode must be one of {', '.join(BLEND_MODES)}; got {mode!r}")
        if not _is_int(sw_batch_size) or sw_batch_size < 1:
            raise ValueError(f"sw_batch_size must be a positive integer, got {sw_batch_size!r}")
        self.overlap = float(overlap)
        self.mode = mode
        self.sw_batch_size = int(sw_batch_size)
        self.sw_device = check_device("sw_device", sw_device)
        self.device = check_device("device", device)

    def __call__(self, inputs: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> Any:
        """Logits ``(B, out, I, J, K)`` of ``network`` for volumes ``(B, C, I, J, K)``."""
        from monai.inferers import SlidingWindowInferer

        if inputs.ndim != 5:
            raise ValueError(f"inputs must be (B, C, I, J, K), got shape {tuple(inputs.shape)}")
        window = self.roi_size if self.config.spatial_dims == 3 else self.roi_size[1::-1]
        inferer = SlidingWindowInferer(
            roi_size=window,
            sw_batch_size=self.sw_batch_size,
            overlap=self.overlap,
            mode=self.mode,
            sw_device=self.sw_device or inputs.device,
            device=self.device or inputs.device,
        )
        if self.config.spatial_dims == 3:
            return self._checked(inferer(inputs, network, *args, **kwargs))
        batch, channels, size_i, size_j, slices = inputs.shape
        images = inputs.permute(0, 4, 1, 3, 2).reshape(batch * slices, channels, size_j, size_i)
        logits = self._checked(inferer(images, network, *args, **kwargs))  # (B K, out, J, I)
        logits = logits.reshape(batch, slices, logits.shape[1], size_j, size_i)
        return logits.permute(0, 2, 4, 3, 1)  # (B, out, I, J, K)

    def check_size(self, shape: Sequence[int]) -> None:
        """Refuse windows whose logits would not fit: before anything is allocated.

        MONAI pads a volume smaller than the window up to it and keeps the logits of the
        padded volume, so an absurd ``roi_size`` asks for terabytes. The estimate (padded
        logits plus one batch of windows, float32) must stay within
        :data:`WINDOW_VOXELS_PER_LIMIT` times the voxel limit of :mod:`ctpipe.io.limits`.

        Raises:
            ValueError: The windows would need more (the message names ``roi_size``).

        Example:
            >>> from ctpipe.nets.segmenters import SegmenterConfig
            >>> config = SegmenterConfig(spatial_dims=2, class_map={"liver": 1},
            ...                          channels=(4, 8), strides=(2,))
            >>> SegmenterInferer(config, roi_size=(200000, 200000)).check_size((64, 64, 4))
            Traceback (most recent call last):
            ...
            ValueError: roi_size [200000, 200000] needs about 1490 GiB of logits ...
        """
        from ctpipe.io.limits import max_voxels

        roi = list(self.roi_size)
        shape = [int(v) for v in shape]
        channels = self.config.out_channels
        if self.config.spatial_dims == 3:
            padded = math.prod(max(r, s) for r, s in zip(roi, shape, strict=True))
            windows = math.prod(roi)
        else:
            padded = shape[2] * max(roi[0], shape[0]) * max(roi[1], shape[1])
            windows = math.prod(roi)
        needed = channels * (padded + self.sw_batch_size * windows)
        allowed = WINDOW_VOXELS_PER_LIMIT * max_voxels()
        if needed > allowed:
            raise ValueError(
                f"roi_size {roi} needs about {needed * 4 / 2**30:.0f} GiB of logits for a "
                f"{' x '.join(map(str, shape))} volume, more than the "
                f"{allowed * 4 / 2**30:.0f} GiB allowed ({WINDOW_VOXELS_PER_LIMIT} x "
                "--max-voxels float32 values); give a roi_size close to the volume's size"
            )

    def settings(self) -> dict[str, Any]:
        """The inferer's settings as plain data (for records)."""
        return {
            "roi_size": list(self.roi_size),
            "overlap": self.overlap,
            "mode": self.mode,
            "sw_batch_size": self.sw_batch_size,
        }

    def _checked(self, logits: Any) -> torch.Tensor:
        if not isinstance(logits, torch.Tensor):
            raise ValueError(f"model must return one tensor of logits, got {type(logits).__name__}")
        if logits.shape[1] != self.config.out_channels:
            raise ValueError(
                f"model must return config.out_channels = {self.config.out_channels} channels, "
                f"got {logits.shape[1]} (output shape {tuple(logits.shape)})"
            )
        return logits


def segment_volume(
    image: MetaTensor,
    model: nn.Module,
    *,
    config: SegmenterConfig,
    target_spacing: Spacing3 | None = TARGET_SPACING,
    hu_window: tuple[float, float] = SEGMENT_HU_WINDOW,
    axcodes: str | None = AXCODES,
    roi_size: Sequence[int] = ROI_SIZE,
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
            an entry ``None`` keeps the input's spacing along that axis (e.g.
            ``(1.5, 1.5, None)`` for a 2-D network); ``None`` runs at the input spacing.
        hu_window: ``(low, high)`` HU mapped to [0, 1] and clipped, ``low < high``.
        axcodes: Orientation the network runs in (MONAI/nibabel axis codes such as
            ``"LPS"``: axis ``i`` runs to the patient's left, ...); ``None`` keeps the
            input's.
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
    spacing = check_target_spacing(target_spacing)
    low, high = _check_window(hu_window)
    codes = check_axcodes(axcodes)
    compute_device = check_device("sw_device", sw_device) or model_device(model)
    out_device = check_device("device", device) or image.device
    inferer = SegmenterInferer(
        config,
        roi_size,
        overlap=overlap,
        mode=mode,
        sw_batch_size=sw_batch_size,
        sw_device=compute_device,
        device=out_device,
    )

    from monai.transforms import Orientation, ScaleIntensityRange, Spacing

    volume = MetaTensor(
        image.as_tensor().float()[None], affine=image.affine.clone(), meta={}
    )  # (1, I, J, K)
    volume = ScaleIntensityRange(low, high, 0.0, 1.0, clip=True)(volume)
    if codes is not None:
        volume = Orientation(axcodes=codes, labels=RAS_LABELS)(volume)
    if spacing is not None:
        pixdim = [-1.0 if s is None else s for s in spacing]  # MONAI: <= 0 keeps the axis
        volume = Spacing(pixdim=pixdim, mode="bilinear", padding_mode="border")(volume)

    inferer.check_size(volume.shape[1:])
    model.to(compute_device)
    data = volume.as_tensor()
    with eval_mode(model), torch.inference_mode():
        logits = inferer(data[None], model)  # (1, C, I', J', K')
        labels = logits.argmax(dim=1).to(torch.uint8)[0]
    labels = labels.clone().to(out_device)  # out of inference mode
    del logits

    moved = not torch.equal(volume.affine.to(image.affine), image.affine) or tuple(
        labels.shape
    ) != tuple(image.shape)
    if moved:
        labels = _labels_on_grid(labels, volume.affine, image.affine, tuple(image.shape))
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
        axcodes=codes,
        **inferer.settings(),
        sw_device=str(compute_device),
        device=str(out_device),
    )
    return result


def _labels_on_grid(
    labels: torch.Tensor,
    source_affine: torch.Tensor,
    target_affine: torch.Tensor,
    target_shape: tuple[int, ...],
) -> torch.Tensor:
    """Nearest-neighbour labels of grid ``source_affine`` at the voxels of ``target_affine``.

    Reorienting and respacing keep the grid's axes along the input's, so each target axis
    reads one source axis at ``a * index + b``: the labels are gathered axis by axis
    (rounded to the nearest source voxel, clamped at the border), which needs no
    coordinate grid. MONAI's ``SpatialResample`` builds three floats per output voxel: with
    its intermediates, segmenting a 512 x 512 x 300 volume took 4.2 GB above the input
    with it. Other grids go through ``SpatialResample``.
    """
    from monai.transforms import SpatialResample

    to_source = torch.linalg.inv(source_affine.double().cpu()) @ target_affine.double().cpu()
    matrix = to_source[:3, :3]
    axes = matrix.abs().argmax(dim=0)  # source axis read by each target axis
    off_axis = matrix.abs().sum() - matrix.abs().max(dim=0).values.sum()
    if sorted(axes.tolist()) != [0, 1, 2] or float(off_axis) > 1e-6:
        resampled = MetaTensor(labels.float()[None], affine=source_affine.clone(), meta={})
        back = SpatialResample(mode="nearest", padding_mode="border")(
            resampled, dst_affine=target_affine.clone(), spatial_size=target_shape
        )
        return back.as_tensor()[0].round()
    indices = []
    for target_axis, size in enumerate(target_shape):
        source_axis = int(axes[target_axis])
        scale = float(to_source[source_axis, target_axis])
        position = scale * torch.arange(size, dtype=torch.float64) + float(
            to_source[source_axis, 3]
        )
        top = labels.shape[source_axis] - 1
        indices.append(torch.round(position).clamp(0, top).long().to(labels.device))
    permuted = labels.permute(*[int(a) for a in axes])  # source axes in target order
    return permuted[indices[0][:, None, None], indices[1][None, :, None], indices[2][None, None]]


def _record(model: nn.Module, config: SegmenterConfig, **settings: Any) -> dict[str, Any]:
    kind = type(model)
    return {
        "model": f"{kind.__module__}.{kind.__qualname__}",
        "class_names": list(config.class_names),
        "spatial_dims": config.spatial_dims,
        **settings,
    }


def check_target_spacing(spacing: Sequence[float | None] | None) -> Spacing3 | None:
    """``spacing`` as three floats or ``None`` entries, after checking each is positive.

    Example:
        >>> check_target_spacing([3, 3, None])
        (3.0, 3.0, None)
    """
    if spacing is None:
        return None
    values = tuple(spacing)
    if len(values) != 3 or not all(
        v is None
        or (
            isinstance(v, (int, float, np.number))
            and not isinstance(v, bool)
            and math.isfinite(v)
            and v > 0
        )
        for v in values
    ):
        raise ValueError(
            f"target_spacing must be None or three positive numbers (mm along i, j, k; "
            f"None keeps an axis), got {spacing!r}"
        )
    return tuple(None if v is None else float(v) for v in values)  # type: ignore[return-value]


def check_axcodes(axcodes: str | None) -> str | None:
    """``axcodes`` upper-cased after checking it names each of L/R, P/A, I/S once.

    Example:
        >>> check_axcodes("lps")
        'LPS'
    """
    if axcodes is None:
        return None
    codes = axcodes.upper() if isinstance(axcodes, str) else ""
    axes = [next((n for n, pair in enumerate(RAS_LABELS) if c in pair), -1) for c in codes]
    if len(codes) != 3 or sorted(axes) != [0, 1, 2]:
        raise ValueError(
            f"axcodes must be three letters naming each axis once (one of L/R, P/A, I/S), "
            f"e.g. 'LPS' or 'RAS', got {axcodes!r}"
        )
    return codes


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


def check_roi_size(roi_size: Sequence[int], config: SegmenterConfig) -> tuple[int, ...]:
    """The window along ``(i, j, k)`` (3-D) or ``(i, j)`` (2-D), after checking it.

    Example:
        >>> from ctpipe.nets.segmenters import SegmenterConfig
        >>> config = SegmenterConfig(spatial_dims=2, class_map={"liver": 1},
        ...                          channels=(4, 8), strides=(2,))
        >>> check_roi_size((96, 64, 1), config)
        (96, 64)
    """
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
    return tuple(int(v) for v in used)


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def class_volumes(
    labels: Any, affine: Any, class_names: tuple[str, ...]
) -> list[tuple[str, int, float]]:
    """``(name, voxels, millilitres)`` of each class except the background.

    Example:
        >>> import numpy as np
        >>> labels = np.zeros((10, 10, 10), np.uint8)
        >>> labels[:5] = 1
        >>> [(name, n, round(ml, 6)) for name, n, ml in class_volumes(
        ...     labels, np.diag([-2.0, -2.0, 2.5, 1.0]), ("background", "liver"))]
        [('liver', 500, 5.0)]
    """
    voxel_ml = abs(float(np.linalg.det(np.asarray(affine, dtype=np.float64)[:3, :3]))) / 1000.0
    counts = np.bincount(np.asarray(labels).ravel(), minlength=len(class_names))
    return [
        (name, int(counts[value]), float(counts[value] * voxel_ml))
        for value, name in enumerate(class_names)
        if value > 0
    ]
