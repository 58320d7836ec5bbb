"""One inferer for every slice-wise network: slice batches, tiles, devices and AMP.

:class:`SliceInferer` runs a 2-D network over the axial slices of a volume, ``batch_size``
slices per forward pass, under :func:`torch.inference_mode` and in eval mode. It can
split each slice into overlapping tiles with MONAI's sliding-window inference, move the
model and the windows to a compute device (``sw_device``) while stitching on another
(``device``), and use automatic mixed precision (on by default on CUDA only).
:func:`denoise_volume` and :func:`denoise_slice` wrap it for denoisers: HU in, HU out.

Orientation. Volumes are indexed ``(i, j, k)`` (column, row, slice). Networks see slice
``k`` as an image with ``height`` = rows (``j``) and ``width`` = columns (``i``), i.e. the
transpose of ``volume[:, :, k]``, as it is displayed; the result is transposed back.

Tiling is exact. A model that declares ``receptive_radius`` (RED-CNN, REDNet) is run on
each slice padded by that many pixels (``pad_mode``, mirrored by default) and only tile
centres at least that far from a tile edge are kept (the blending weight is zero in that
margin), so tiled and whole-slice results agree to float rounding, with no seams. Set
``margin=0`` for the plain network on the unpadded slice; tiles then blend with MONAI's
Gaussian weights and show small differences near tile edges.

Example:
    >>> import numpy as np
    >>> from ctpipe.nets import build_denoiser
    >>> model = build_denoiser("rednet", depth=4, filters=4)
    >>> hu = np.full((40, 32, 3), 40.0, dtype=np.float32)
    >>> denoise_volume(hu, model, roi_size=(24, 24), overlap=0.5, batch_size=2).shape
    (40, 32, 3)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ctpipe.transforms import HU_RANGE, hu_to_unit, unit_to_hu

#: How overlapping tiles are weighted (MONAI blend modes).
BLEND_MODES = ("constant", "gaussian")
#: How slices are padded by the margin (:func:`torch.nn.functional.pad` modes).
PAD_MODES = ("reflect", "replicate", "constant")
#: Mixed-precision types by name.
AMP_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}
#: Memory formats of the model and its input (``auto``: channels_last on the CPU).
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
#: Key of the record that :func:`denoise_volume` adds to a MetaTensor's ``meta``.
RECORD_KEY = "denoising"

DeviceLike = str | torch.device | None
ImageT = TypeVar("ImageT", np.ndarray, torch.Tensor)


class SliceInferer:
    """Run a 2-D network over batches of slices, whole or in overlapping tiles.

    Args:
        roi_size: Tile ``(height, width)`` in pixels, or ``None`` to run whole slices.
            A tile larger than the (padded) slice is clipped to it.
        overlap: Fraction of a tile shared with its neighbour, in [0, 1). With a margin
            ``m`` it must leave tile centres touching: ``int(roi * (1 - overlap)) <=
            roi - 2 * m`` along each tiled axis (checked when the margin is known).
        mode: Blending of overlapping tiles: ``"gaussian"`` or ``"constant"``.
        sw_batch_size: Tiles per forward pass.
        batch_size: Slices per batch (per forward pass when not tiling).
        margin: Pixels each slice is padded by and each tile edge discards. ``None``:
            the model's ``receptive_radius`` when it has one, else 0.
        pad_mode: ``"reflect"``, ``"replicate"`` or ``"constant"`` (zeros: -1024 HU for
            unit-normalised CT).
        sw_device: Device the model and tiles run on. ``None``: where the model's
            parameters are. A model elsewhere is moved there (``model.to``).
        device: Device the tiles are stitched on; ``None``: ``sw_device``.
        amp: Autocast to ``amp_dtype``. ``None``: on for CUDA, off otherwise.
        amp_dtype: ``"bfloat16"`` or ``"float16"``. Results come back as float32.
        progress: Show a tqdm bar over slice batches.
        memory_format: ``"channels_last"`` or ``"contiguous"`` for the model and its
            input; ``"auto"``: ``channels_last`` on the CPU, where oneDNN's convolutions
            run about 1.3x faster in it with the same results (``benchmarks/
            bench_denoise.py``), and ``contiguous`` elsewhere.
        self_ensemble: Average the model's output over the 8 flips and 90° rotations of
            each input (test-time self-ensemble), each mapped back first: 8x the compute.
            Off by default; ``benchmarks/RESULTS.md`` has its gain and cost.

    Raises:
        ValueError: A setting outside its rule (named in the message).

    Example:
        >>> import torch
        >>> inferer = SliceInferer(roi_size=(16, 16), overlap=0.5, margin=2)
        >>> smooth = torch.nn.AvgPool2d(5, stride=1, padding=2, count_include_pad=False)
        >>> inferer(torch.rand(3, 1, 40, 30), smooth).shape
        torch.Size([3, 1, 40, 30])
    """

    def __init__(
        self,
        roi_size: tuple[int, int] | None = None,
        *,
        overlap: float = 0.25,
        mode: str = "gaussian",
        sw_batch_size: int = 4,
        batch_size: int = 8,
        margin: int | None = None,
        pad_mode: str = "reflect",
        sw_device: DeviceLike = None,
        device: DeviceLike = None,
        amp: bool | None = None,
        amp_dtype: str = "bfloat16",
        progress: bool = False,
        memory_format: str = "auto",
        self_ensemble: bool = False,
    ) -> None:
        self.roi_size = _check_roi_size(roi_size)
        if not 0 <= overlap < 1:
            raise ValueError(f"overlap must be >= 0 and < 1, got {overlap!r}")
        self.overlap = float(overlap)
        self.mode = _check_choice("mode", mode, BLEND_MODES)
        self.sw_batch_size = _check_positive("sw_batch_size", sw_batch_size)
        self.batch_size = _check_positive("batch_size", batch_size)
        if margin is not None and (not _is_int(margin) or margin < 0):
            raise ValueError(f"margin must be None or an integer >= 0, got {margin!r}")
        self.margin = margin
        self.pad_mode = _check_choice("pad_mode", pad_mode, PAD_MODES)
        self.sw_device = check_device("sw_device", sw_device)
        self.device = check_device("device", device)
        if amp is not None and not isinstance(amp, bool):
            raise ValueError(f"amp must be True, False or None (auto: CUDA only), got {amp!r}")
        self.amp = amp
        self.amp_dtype = _check_choice("amp_dtype", amp_dtype, tuple(AMP_DTYPES))
        self.progress = bool(progress)
        self.memory_format = _check_choice("memory_format", memory_format, MEMORY_FORMATS)
        if not isinstance(self_ensemble, bool):
            raise ValueError(f"self_ensemble must be True or False, got {self_ensemble!r}")
        self.self_ensemble = self_ensemble
        if self.roi_size is not None and margin is not None:  # as if the slice were larger
            for size in self.roi_size:
                _check_halo(size, size + 1, self.overlap, margin)

    def margin_for(self, model: nn.Module) -> int:
        """The margin used with ``model``: :attr:`margin`, else its ``receptive_radius``."""
        if self.margin is not None:
            return self.margin
        return int(getattr(model, "receptive_radius", 0) or 0)

    def settings(self, model: nn.Module) -> dict[str, Any]:
        """The settings as used with ``model`` (resolved margin, devices, AMP), JSON-ready.

        Example:
            >>> SliceInferer().settings(torch.nn.Identity())["sw_device"]
            'cpu'
        """
        sw_device = self._compute_device(model)
        return {
            "roi_size": None if self.roi_size is None else list(self.roi_size),
            "overlap": self.overlap,
            "mode": self.mode,
            "sw_batch_size": self.sw_batch_size,
            "batch_size": self.batch_size,
            "margin": self.margin_for(model),
            "pad_mode": self.pad_mode,
            "sw_device": str(sw_device),
            "device": str(self.device or sw_device),
            "amp": self._amp_enabled(sw_device),
            "amp_dtype": self.amp_dtype,
            "memory_format": self._memory_format(sw_device),
            "self_ensemble": self.self_ensemble,
        }

    def __call__(self, images: torch.Tensor, model: nn.Module) -> torch.Tensor:
        """Run ``model`` on a batch of slices ``(B, C, H, W)``; returns ``(B, C', H, W)``.

        The result is a float32 inference tensor (no autograd) on :attr:`device`
        (``sw_device`` when unset).

        Raises:
            ValueError: ``images`` is not 4-D, or the slice is too small for the margin
                with ``pad_mode="reflect"``, or the overlap leaves gaps between tile centres.
        """
        if images.ndim != 4:
            raise ValueError(
                f"images must be a (batch, channel, height, width) tensor, "
                f"got shape {tuple(images.shape)}"
            )
        sw_device = self._compute_device(model)
        model.to(sw_device)
        out_device = self.device or sw_device
        margin = self.margin_for(model)
        predictor = self._predictor(model, sw_device)
        with eval_mode(model), torch.inference_mode():
            padded = self._pad(images.float(), margin)
            result = self._run(padded, predictor, margin, sw_device, out_device)
            height, width = images.shape[-2:]
            return result[..., margin : margin + height, margin : margin + width].to(out_device)

    def infer_volume(self, volume: torch.Tensor, model: nn.Module) -> torch.Tensor:
        """Run ``model`` on every axial slice of ``volume`` ``(C, I, J, K)``.

        Slices go through in batches of :attr:`batch_size` as ``(B, C, J, I)`` images
        (height = rows ``j``, width = columns ``i``). Returns float32 ``(C', I, J, K)`` on
        ``volume``'s device.

        Raises:
            ValueError: ``volume`` is not 4-D or has no slices.

        Example:
            >>> SliceInferer(batch_size=2).infer_volume(torch.ones(1, 5, 4, 3), nn.Identity()).shape
            torch.Size([1, 5, 4, 3])
        """
        if volume.ndim != 4 or volume.shape[-1] == 0:
            raise ValueError(
                f"volume must be a (channel, i, j, k) tensor with at least one slice, "
                f"got shape {tuple(volume.shape)}"
            )
        out: torch.Tensor | None = None
        for start in self._batch_starts(volume.shape[-1]):
            stop = start + self.batch_size
            images = volume[..., start:stop].permute(3, 0, 2, 1).contiguous()  # (B, C, J, I)
            result = self(images, model).permute(1, 3, 2, 0)  # (C', I, J, B)
            if out is None:
                out = torch.empty(
                    (*result.shape[:3], volume.shape[-1]), dtype=torch.float32, device=volume.device
                )
            out[..., start:stop] = result.to(volume.device)
        return out  # type: ignore[return-value]  # set: there is at least one slice

    def _batch_starts(self, slices: int) -> Iterator[int]:
        starts = range(0, slices, self.batch_size)
        if not self.progress:
            return iter(starts)
        from tqdm.auto import tqdm

        return iter(tqdm(starts, desc="slice batches", unit="batch"))

    def _compute_device(self, model: nn.Module) -> torch.device:
        return self.sw_device if self.sw_device is not None else model_device(model)

    def _memory_format(self, device: torch.device) -> str:
        if self.memory_format != "auto":
            return self.memory_format
        return "channels_last" if device.type == "cpu" else "contiguous"

    def _amp_enabled(self, device: torch.device) -> bool:
        return self.amp if self.amp is not None else device.type == "cuda"

    def _predictor(
        self, model: nn.Module, device: torch.device
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        enabled, dtype = self._amp_enabled(device), AMP_DTYPES[self.amp_dtype]
        fmt = (
            torch.channels_last
            if self._memory_format(device) == "channels_last"
            else torch.contiguous_format
        )
        model.to(memory_format=fmt)

        def predict(x: torch.Tensor) -> torch.Tensor:
            x = x.to(device)
            if x.ndim == 4:
                x = x.contiguous(memory_format=fmt)
            with torch.autocast(device.type, dtype=dtype, enabled=enabled):
                return model(x).float().contiguous()

        return dihedral_mean(predict) if self.self_ensemble else predict

    def _pad(self, images: torch.Tensor, margin: int) -> torch.Tensor:
        if margin == 0:
            return images
        if self.pad_mode == "reflect" and margin >= min(images.shape[-2:]):
            raise ValueError(
                f"pad_mode='reflect' needs slices larger than the margin ({margin} pixels), "
                f"got {tuple(images.shape[-2:])}; use pad_mode='replicate' or 'constant'"
            )
        return F.pad(images, (margin, margin, margin, margin), mode=self.pad_mode)

    def _run(
        self,
        padded: torch.Tensor,
        predictor: Callable[[torch.Tensor], torch.Tensor],
        margin: int,
        sw_device: torch.device,
        out_device: torch.device,
    ) -> torch.Tensor:
        size = tuple(padded.shape[-2:])
        roi = size if self.roi_size is None else tuple(map(min, self.roi_size, size))
        if roi == size:
            return predictor(padded)
        from monai.inferers import sliding_window_inference

        for tile, length in zip(roi, size, strict=True):
            _check_halo(tile, length, self.overlap, margin)
        return sliding_window_inference(  # type: ignore[return-value]
            padded,
            roi,
            self.sw_batch_size,
            predictor,
            overlap=self.overlap,
            mode=self.mode,
            sw_device=sw_device,
            device=out_device,
            roi_weight_map=_tile_weights(roi, margin, self.mode, sw_device),
        )


def dihedral_mean(
    predict: Callable[[torch.Tensor], torch.Tensor],
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``predict`` averaged over the 8 flips and 90° rotations of ``(B, C, H, W)`` input.

    Each transformed input is predicted and the prediction transformed back before the
    mean (test-time self-ensemble). A ``predict`` that commutes with those transforms is
    returned unchanged in value.

    Example:
        >>> x = torch.arange(12.0).reshape(1, 1, 3, 4)
        >>> bool(torch.equal(dihedral_mean(lambda t: 2 * t)(x), 2 * x))
        True
        >>> corner = lambda t: t * (torch.arange(t.shape[-1]) == 0)  # not symmetric
        >>> dihedral_mean(corner)(torch.ones(1, 1, 2, 2)).tolist()
        [[[[0.5, 0.5], [0.5, 0.5]]]]
    """

    def predict_mean(x: torch.Tensor) -> torch.Tensor:
        total = None
        for flip in (False, True):
            flipped = x.flip(-1) if flip else x
            for turns in range(4):
                y = predict(torch.rot90(flipped, turns, dims=(-2, -1)))
                y = torch.rot90(y, -turns, dims=(-2, -1))
                y = y.flip(-1) if flip else y
                total = y if total is None else total + y
        return (total / 8).contiguous()

    return predict_mean


def denoise_volume(
    hu: ImageT,
    model: nn.Module,
    *,
    kernel: str | None = None,
    inferer: SliceInferer | None = None,
    **settings: Any,
) -> ImageT:
    """Denoise a CT volume ``(i, j, k)`` in HU, axial slice by axial slice.

    HU are mapped to [0, 1] with :func:`ctpipe.transforms.hu_to_unit`, denoised in
    batches of slices by ``inferer`` (or a :class:`SliceInferer` built from
    ``settings``), and mapped back with :func:`ctpipe.transforms.unit_to_hu`.

    Args:
        hu: HU volume: numpy array, tensor or MONAI ``MetaTensor``.
        model: A :class:`ctpipe.nets.Denoiser` (any ``(B, 1, H, W)`` to same-shape module).
            A kernel-matched one (:mod:`ctpipe.nets.kernel_matched`) runs the network of
            the image's kernel family (:func:`route_denoiser`).
        kernel: The image's ConvolutionKernel, for a kernel-matched ``model``; ``None``
            reads ``hu.meta["ConvolutionKernel"]`` of a MetaTensor (else: unknown).
        inferer: The inferer to use; give either this or ``settings``.
        **settings: Keyword arguments of :class:`SliceInferer`. ``amp`` defaults to
            ``False`` here: bfloat16 cost the shipped RED-CNN 0.5-0.7 dB PSNR
            (``benchmarks/RESULTS.md``), beyond the 0.05 dB a faster path may cost.

    Returns:
        Float32 HU of the same shape and type: a numpy array, a tensor on ``hu``'s
        device, or a ``MetaTensor`` with ``hu``'s affine, meta and applied operations
        plus ``meta["denoising"]`` recording the model class, its config, the inferer
        settings and, for a kernel-matched model, the kernel and the network that ran.

    Raises:
        ValueError: ``hu`` is not 3-D, or both ``inferer`` and ``settings`` are given.

    Example:
        >>> import torch
        >>> from monai.data import MetaTensor
        >>> affine = torch.diag(torch.tensor([0.75, 0.75, 2.5, 1.0]))
        >>> hu = MetaTensor(torch.zeros(30, 24, 2), affine=affine)
        >>> out = denoise_volume(hu, torch.nn.Identity(), batch_size=1)
        >>> out.affine.diagonal().tolist(), out.meta["denoising"]["model"]
        ([0.75, 0.75, 2.5, 1.0], 'torch.nn.modules.linear.Identity')
    """
    if inferer is None:
        settings.setdefault("amp", False)
    return _denoise(hu, model, _resolve_inferer(inferer, settings), ndim=3, kernel=kernel)


def denoise_slice(
    hu: ImageT,
    model: nn.Module,
    *,
    kernel: str | None = None,
    inferer: SliceInferer | None = None,
    **settings: Any,
) -> ImageT:
    """Denoise one axial slice ``(i, j)`` in HU; as :func:`denoise_volume`, for 2-D input.

    Example:
        >>> import numpy as np
        >>> hu = np.arange(12.0, dtype=np.float32).reshape(4, 3)
        >>> bool((denoise_slice(hu, torch.nn.Identity()) == hu).all())
        True
    """
    if inferer is None:
        settings.setdefault("amp", False)  # as denoise_volume
    return _denoise(hu, model, _resolve_inferer(inferer, settings), ndim=2, kernel=kernel)


def route_denoiser(model: nn.Module, kernel: str | None) -> tuple[nn.Module, dict[str, str]]:
    """The network that denoises an image of ``kernel``, and what was chosen.

    A kernel-matched model (one with ``select(kernel)``, :mod:`ctpipe.nets.kernel_matched`)
    gives the network of the kernel's family, or its fallback; any other model is returned
    as it is, with an empty record.

    Returns:
        ``(network, record)``; the record has ``ConvolutionKernel`` (``""`` when unknown)
        and ``network`` (the family whose network runs) for a kernel-matched model.

    Example:
        >>> from ctpipe.nets import build_denoiser
        >>> spec = {"name": "redcnn", "kwargs": {"filters": 2}}
        >>> model = build_denoiser("kernel_matched", networks={"sharp": spec, "smooth": spec},
        ...                        fallback="sharp")
        >>> route_denoiser(model, "B30f")[1]
        {'ConvolutionKernel': 'B30f', 'network': 'smooth'}
        >>> route_denoiser(torch.nn.Identity(), "B30f")[1]
        {}
    """
    select = getattr(model, "select", None)
    if select is None:
        return model, {}
    family, network = select(kernel)
    return network, {"ConvolutionKernel": str(kernel or ""), "network": family}


def _denoise(
    hu: ImageT, model: nn.Module, inferer: SliceInferer, ndim: int, kernel: str | None = None
) -> ImageT:
    if hu.ndim != ndim:
        axes = "(i, j, k)" if ndim == 3 else "(i, j)"
        raise ValueError(f"hu must be {ndim}-D {axes}, got shape {tuple(hu.shape)}")
    if isinstance(hu, np.ndarray):
        data = torch.from_numpy(np.asarray(hu, dtype=np.float32))
    else:
        data = torch.as_tensor(hu).as_subclass(torch.Tensor).float()
    volume = data if ndim == 3 else data[..., None]
    if kernel is None:
        kernel = (getattr(hu, "meta", None) or {}).get("ConvolutionKernel")
    network, routing = route_denoiser(model, kernel)
    unit = inferer.infer_volume(hu_to_unit(volume)[None], network)[0]
    result = unit_to_hu(unit if ndim == 3 else unit[..., 0])
    record = _record(model, inferer, network)
    if routing:
        record["kernel"] = routing
    return _like(hu, result, record)


def _like(template: ImageT, result: torch.Tensor, record: dict[str, Any]) -> ImageT:
    """``result`` as ``template``'s type; a MetaTensor gets its meta plus ``record``."""
    if isinstance(template, np.ndarray):
        return result.numpy()
    from monai.data import MetaTensor

    if isinstance(template, MetaTensor):
        out = MetaTensor(
            result,
            meta=copy.deepcopy(template.meta),
            applied_operations=copy.deepcopy(template.applied_operations),
        )
        out.meta[RECORD_KEY] = record
        return out
    return result


def _record(model: nn.Module, inferer: SliceInferer, network: nn.Module) -> dict[str, Any]:
    """The model (as given), its config, and the inferer's settings for the ``network`` run."""
    kind = type(model)
    return {
        "model": f"{kind.__module__}.{kind.__qualname__}",
        "config": copy.deepcopy(getattr(model, "config", {})),
        "inferer": inferer.settings(network),
        "hu_range": list(HU_RANGE),
    }


def _resolve_inferer(inferer: SliceInferer | None, settings: dict[str, Any]) -> SliceInferer:
    if inferer is not None and settings:
        raise ValueError(
            f"give either inferer or inferer settings, not both; got inferer and "
            f"{', '.join(sorted(settings))}"
        )
    return inferer if inferer is not None else SliceInferer(**settings)


def _tile_weights(
    roi: tuple[int, ...], margin: int, mode: str, device: torch.device
) -> torch.Tensor:
    """Blend weights of one tile: ``mode``-shaped in the centre, zero in the margin."""
    from monai.data.utils import compute_importance_map

    centre = tuple(size - 2 * margin for size in roi)
    weights = compute_importance_map(centre, mode=mode, device=device)
    return F.pad(weights, (margin, margin, margin, margin))


def _check_halo(tile: int, length: int, overlap: float, margin: int) -> None:
    """Tiles shorter than the axis must step no further than their kept centre."""
    if tile >= length:
        return
    step = max(int(tile * (1 - overlap)), 1)  # as MONAI's sliding window
    if step > tile - 2 * margin:
        needed = 2 * margin / tile
        raise ValueError(
            f"tiles of {tile} pixels with overlap={overlap} step {step} pixels, more than "
            f"their centre of {tile} - 2 * margin({margin}) = {tile - 2 * margin}; "
            f"use overlap >= {needed:.3f} or a larger roi_size"
        )


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's parameters (CPU for a model without any)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Put ``model`` in eval mode, then back in the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _check_roi_size(roi_size: tuple[int, int] | None) -> tuple[int, int] | None:
    if roi_size is None:
        return None
    values = tuple(roi_size)
    if len(values) != 2 or not all(_is_int(v) and v > 0 for v in values):
        raise ValueError(
            f"roi_size must be None or two positive integers (height, width), got {roi_size!r}"
        )
    return values  # type: ignore[return-value]


def _check_positive(name: str, value: int) -> int:
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def check_device(name: str, device: DeviceLike) -> torch.device | None:
    """``torch.device(device)``, or None for None; a ValueError naming ``name`` otherwise."""
    if device is None:
        return None
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"{name} must be a torch device such as 'cpu' or 'cuda:0', got {device!r}"
        ) from error


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
