"""Run a MONAI bundle's own inference pipeline on a CT volume; labels on the input's grid.

:class:`BundleSegmenter` builds, with ``monai.bundle.ConfigParser``, the bundle's
``network_def`` (weights from ``models/model.pt``; or the TorchScript module
``models/model.ts``), its ``preprocessing`` without the file loader (``LoadImage(d)``),
its ``inferer`` and its ``postprocessing`` without the file writer (``SaveImage(d)``).
It then does what MONAI's ``SupervisedEvaluator`` does with one item of the bundle's
data loader, except that the item is ctpipe's HU volume, given as a ``MetaTensor`` with
its RAS affine exactly as MONAI's ``LoadImage`` would give it: collate, infer (windows
on ``sw_device``, stitched on ``device``; mixed precision only on CUDA), decollate, and
apply the postprocessing to the item with the prediction.

Geometry. The bundle's spatial preprocessing (``Orientationd``, ``Spacingd``, ...) is
inverted by the bundle's own ``Invertd``, or, when its postprocessing has none, by a
MONAI ``Invertd`` of the preprocessing added after it (nearest neighbour). The result is
then checked against the input's grid and, where it is not on it exactly (same shape,
affine within 1e-4 mm), resampled onto it by nearest neighbour (MONAI
``SpatialResample``). The labels therefore have the input's shape and affine whatever
orientation the bundle works in: an LPS DICOM series and a RAS NIfTI of the same scan
give the same labels.

A bundle's configs may run code (``$`` expressions, any ``_target_``): run bundles you
trust, as with ``python -m monai.bundle run``.

Example:
    >>> from ctpipe.bundle import find_bundle
    >>> segmenter = BundleSegmenter(find_bundle("bundles/spleen_ct_segmentation"))  # doctest: +SKIP
    >>> labels = segmenter(load_ct("ct/"))  # doctest: +SKIP
    >>> labels.shape == ct.shape, segmenter.bundle.class_map  # doctest: +SKIP
    (True, {'spleen': 1})
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor

from ctpipe.bundle.layout import BundleError, SegmentationBundle
from ctpipe.io.reader import quiet_optional_readers

__all__ = ["GRID_TOLERANCE_MM", "WINDOW_SETTINGS", "BundleSegmenter"]

#: Largest affine difference (mm) taken as "on the input's grid" without resampling.
GRID_TOLERANCE_MM = 1e-4
#: ``SlidingWindowInferer`` settings a caller may override.
WINDOW_SETTINGS = ("roi_size", "overlap", "mode", "sw_batch_size")


class BundleSegmenter:
    """A bundle's network and transforms, ready to segment HU volumes.

    Args:
        bundle: The checked bundle folder (:func:`ctpipe.bundle.find_bundle`).
        device: Device the windows are stitched on and the postprocessing runs on.
        sw_device: Device the network runs on (``None``: ``device``); also the bundle's
            ``device`` config entry.
        amp: Mixed precision (``torch.autocast``) when ``sw_device`` is CUDA; ignored on
            the CPU.
        window: Settings that replace the bundle's ``SlidingWindowInferer``'s
            (``roi_size``, ``overlap``, ``mode``, ``sw_batch_size``); ``None`` entries
            keep the bundle's.

    Raises:
        BundleError: A part of the config cannot be built, the weights do not load into
            ``network_def``, or the preprocessing or inferer is not usable.
    """

    def __init__(
        self,
        bundle: SegmentationBundle,
        *,
        device: str | torch.device = "cpu",
        sw_device: str | torch.device | None = None,
        amp: bool = True,
        window: Mapping[str, Any] | None = None,
    ) -> None:
        self.bundle = bundle
        self.window = {k: v for k, v in (window or {}).items() if v is not None}
        self.device = torch.device(device)
        self.sw_device = torch.device(sw_device) if sw_device is not None else self.device
        self.amp = bool(amp) and self.sw_device.type == "cuda"
        parser = self._parser()
        self.network = self._network(parser)
        self.preprocessing, self.image_key, self.channel_first = self._preprocessing(parser)
        self.inferer = self._inferer(parser)
        self.postprocessing, self.has_invert = self._postprocessing(parser)
        self.weights_sha256 = _sha256(bundle.model_file)

    def __call__(self, image: MetaTensor) -> MetaTensor:
        """Labels of ``image`` (HU, ``(i, j, k)``, RAS affine) on its grid (uint8; int16 past 256).

        Raises:
            BundleError: The network's channels or the postprocessed labels do not match
                the bundle's ``channel_def``.
        """
        if not isinstance(image, MetaTensor) or image.ndim != 3:
            raise TypeError("image must be a 3-D monai.data.MetaTensor (i, j, k) with its affine")
        data = self._run(self._as_loaded(image))
        labels = self._on_grid(data["pred"], image)
        values = labels.unique().tolist()
        unknown = sorted(int(v) for v in values if not 0 <= v < len(self.bundle.class_names))
        if unknown:
            raise BundleError(
                self.bundle.metadata_file,
                f"the bundle's labels hold values {unknown} that channel_def does not name",
            )
        dtype = torch.uint8 if len(self.bundle.class_names) <= 256 else torch.int16
        result = MetaTensor(labels.to(dtype), affine=image.affine.clone(), meta={})
        result.meta["segmentation"] = self.record()
        return result

    def record(self) -> dict[str, Any]:
        """The bundle, weights, devices and inference settings, for run records."""
        return {
            "bundle": self.bundle.describe(),
            "weights_sha256": self.weights_sha256,
            "class_names": list(self.bundle.class_names),
            "device": str(self.device),
            "sw_device": str(self.sw_device),
            "amp": self.amp,
            "inferer": _inferer_settings(self.inferer),
            "preprocessing": [type(t).__name__ for t in self.preprocessing.transforms],
            "postprocessing": [type(t).__name__ for t in self.postprocessing.transforms],
        }

    # building

    def _parser(self):
        from monai.bundle import ConfigParser

        parser = ConfigParser()
        with self._building("the configs"):
            parser.read_meta(str(self.bundle.metadata_file))
            parser.read_config(str(self.bundle.config_file))
        parser["bundle_root"] = str(self.bundle.root)
        parser["device"] = f"$torch.device({str(self.sw_device)!r})"
        return parser

    def _network(self, parser) -> torch.nn.Module:
        file = self.bundle.model_file
        if self.bundle.is_torchscript:
            try:
                network = torch.jit.load(str(file), map_location="cpu")
            except Exception as err:  # torch raises RuntimeError, ValueError, ...
                raise BundleError(file, f"cannot be loaded as TorchScript: {_first(err)}") from None
            return network.to(self.sw_device).eval()
        if "network_def" not in parser:
            raise BundleError(self.bundle.config_file, "has no network_def for models/model.pt")
        with self._building("network_def"):
            network = parser.get_parsed_content("network_def", instantiate=True)
        if not isinstance(network, torch.nn.Module):
            raise BundleError(
                self.bundle.config_file,
                f"network_def must build a torch.nn.Module, got {type(network).__name__}",
            )
        try:
            state = torch.load(str(file), map_location="cpu", weights_only=True)
        except Exception as err:  # pickles, truncated files, ...
            raise BundleError(file, f"cannot be loaded as weights: {_first(err)}") from None
        if isinstance(state, dict) and isinstance(state.get("model"), dict):
            state = state["model"]  # a CheckpointSaver checkpoint
        if not isinstance(state, dict):
            raise BundleError(file, f"must hold a state dict, got {type(state).__name__}")
        try:
            missing, unexpected = network.load_state_dict(state, strict=False)
        except RuntimeError as err:  # shape mismatches
            raise BundleError(
                file, f"does not fit the bundle's network_def: {_mismatch(err)}"
            ) from None
        if missing or unexpected:
            raise BundleError(
                file,
                f"does not fit the bundle's network_def ({type(network).__name__}): "
                f"{len(missing)} missing keys {_few(missing)}, {len(unexpected)} unexpected "
                f"keys {_few(unexpected)}",
            )
        return network.to(self.sw_device).eval()

    def _preprocessing(self, parser) -> tuple[Any, str, bool]:
        from monai.transforms import LoadImage, LoadImaged

        chain = self._compose(parser, "preprocessing")
        flat = chain.flatten()
        loaders = [t for t in flat.transforms if isinstance(t, (LoadImage, LoadImaged))]
        inputs = (self.bundle.metadata.get("network_data_format") or {}).get("inputs") or {}
        key = next(iter(inputs), "image")
        channel_first = False
        for loader in loaders:
            if isinstance(loader, LoadImaged):
                key = str(loader.keys[0])
                channel_first = bool(loader._loader.ensure_channel_first)
            else:
                channel_first = bool(loader.ensure_channel_first)
        preprocessing = copy.copy(flat)
        preprocessing.transforms = [t for t in flat.transforms if t not in loaders]
        self._bundle_preprocessing = chain
        return preprocessing, key, channel_first

    def _inferer(self, parser) -> Any:
        from monai.inferers import Inferer, SlidingWindowInferer

        if "inferer" not in parser:
            raise BundleError(self.bundle.config_file, "has no inferer")
        with self._building("inferer"):
            inferer = parser.get_parsed_content("inferer", instantiate=True)
        if not isinstance(inferer, Inferer):
            raise BundleError(
                self.bundle.config_file,
                f"inferer must be a monai.inferers.Inferer, got {type(inferer).__name__}",
            )
        if isinstance(inferer, SlidingWindowInferer):
            inferer.sw_device = self.sw_device
            inferer.device = self.device
            for name, value in self.window.items():
                if name not in WINDOW_SETTINGS:
                    raise ValueError(
                        f"window settings are {', '.join(WINDOW_SETTINGS)}, got {name!r}"
                    )
                setattr(inferer, name, tuple(value) if name == "roi_size" else value)
        elif self.window:
            raise BundleError(
                self.bundle.config_file,
                f"the window settings {sorted(self.window)} need a SlidingWindowInferer; the "
                f"bundle's inferer is a {type(inferer).__name__}",
            )
        return inferer

    def _postprocessing(self, parser) -> tuple[Any, bool]:
        from monai.transforms import Compose, Invertd, SaveImage, SaveImaged

        if "postprocessing" not in parser:
            return Compose([]), False
        flat = self._compose(parser, "postprocessing").flatten()
        kept = [t for t in flat.transforms if not isinstance(t, (SaveImage, SaveImaged))]
        postprocessing = copy.copy(flat)
        postprocessing.transforms = kept
        return postprocessing, any(isinstance(t, Invertd) for t in kept)

    def _compose(self, parser, section: str) -> Any:
        """The bundle's ``section`` built, refused unless it is a MONAI ``Compose``."""
        from monai.transforms import Compose

        with self._building(section):
            chain = parser.get_parsed_content(section, instantiate=True)
        if not isinstance(chain, Compose):
            raise BundleError(
                self.bundle.config_file,
                f"{section} must be a monai.transforms.Compose, got {type(chain).__name__}",
            )
        return chain

    @contextlib.contextmanager
    def _building(self, what: str) -> Iterator[None]:
        try:
            # building LoadImaged makes every MONAI reader, one of which notes that the
            # optional nvImageCodec is absent; MONAI's own transforms note changed
            # defaults (FutureWarning). Neither says anything about the bundle.
            with quiet_optional_readers(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=FutureWarning, module="monai")
                yield
        except BundleError:
            raise
        except Exception as err:  # a bundle config can raise anything
            raise BundleError(
                self.bundle.config_file, f"cannot build {what}: {type(err).__name__}: {_first(err)}"
            ) from None

    # running

    def _as_loaded(self, image: MetaTensor) -> dict[str, Any]:
        """The item as the bundle's ``LoadImaged`` would give it: HU, RAS affine, meta."""
        from monai.utils import ImageMetaKey, MetaKeys, SpaceKeys

        affine = image.affine.detach().to(torch.float64).cpu().clone()
        meta = {
            MetaKeys.AFFINE: affine,
            MetaKeys.ORIGINAL_AFFINE: affine.clone(),
            MetaKeys.SPATIAL_SHAPE: np.asarray(image.shape),
            MetaKeys.ORIGINAL_CHANNEL_DIM: "no_channel",
            MetaKeys.SPACE: SpaceKeys.RAS,
            ImageMetaKey.FILENAME_OR_OBJ: str(image.meta.get(ImageMetaKey.FILENAME_OR_OBJ, "")),
        }
        volume = MetaTensor(image.as_tensor().detach().to(torch.float32).cpu(), meta=meta)
        if self.channel_first:
            from monai.transforms import EnsureChannelFirst

            volume = EnsureChannelFirst()(volume)
        return {self.image_key: volume}

    def _run(self, item: dict[str, Any]) -> dict[str, Any]:
        """Preprocess, infer and postprocess one item, as MONAI's evaluator does."""
        from monai.data import decollate_batch, list_data_collate
        from monai.networks import eval_mode

        with self._running("preprocessing"):
            data = self.preprocessing(item)
        batch = list_data_collate([data])
        inputs = batch[self.image_key].to(self.device)
        with self._running("inference"), eval_mode(self.network):
            autocast = torch.autocast("cuda") if self.amp else contextlib.nullcontext()
            with autocast:
                pred = self.inferer(inputs, self.network)
        if isinstance(pred, torch.Tensor) and pred.dtype in (torch.float16, torch.bfloat16):
            pred = pred.float()
        if not isinstance(pred, torch.Tensor) or pred.ndim != inputs.ndim:
            raise BundleError(
                self.bundle.config_file,
                f"the network must give one tensor of channels (B, C, ...), got "
                f"{type(pred).__name__} {tuple(getattr(pred, 'shape', ()))}",
            )
        if pred.shape[1] != len(self.bundle.class_names):
            raise BundleError(
                self.bundle.metadata_file,
                f"the network gives {pred.shape[1]} channels but channel_def names "
                f"{len(self.bundle.class_names)}: ctpipe cannot map the labels to classes",
            )
        items = decollate_batch(batch, detach=True)
        outputs = decollate_batch({self.image_key: inputs, "pred": pred}, detach=True)
        data = dict(items[0])
        data.update(outputs[0])
        with self._running("postprocessing"):
            data = self.postprocessing(data)
            if not self.has_invert:
                from monai.transforms import Invertd

                invert = Invertd(
                    keys="pred",
                    transform=self._bundle_preprocessing,
                    orig_keys=self.image_key,
                    nearest_interp=True,
                )
                data = invert(data)
        return data

    @contextlib.contextmanager
    def _running(self, what: str) -> Iterator[None]:
        try:
            yield
        except BundleError:
            raise
        except (RuntimeError, ValueError, TypeError, KeyError, IndexError) as err:
            raise BundleError(
                self.bundle.root,
                f"the bundle's {what} failed: {type(err).__name__}: {_first(err)}",
            ) from None

    def _on_grid(self, pred: Any, image: MetaTensor) -> torch.Tensor:
        """The postprocessed labels ``(1, I, J, K)`` as ``(I, J, K)`` on ``image``'s grid."""
        if not isinstance(pred, torch.Tensor) or pred.ndim != 4 or pred.shape[0] != 1:
            raise BundleError(
                self.bundle.config_file,
                f"postprocessing must give one label map (1, I, J, K) (e.g. AsDiscreted "
                f"argmax); got shape {tuple(getattr(pred, 'shape', ()))}: multi-channel "
                "outputs cannot be written as one label map",
            )
        labels = pred.detach().to(self.device)
        target = image.affine.detach().to(torch.float64).cpu()
        source = (
            labels.affine.detach().to(torch.float64).cpu()
            if isinstance(labels, MetaTensor)
            else target
        )
        same = tuple(labels.shape[1:]) == tuple(image.shape) and bool(
            (source - target).abs().max() <= GRID_TOLERANCE_MM
        )
        if not same:
            from monai.transforms import SpatialResample

            moved = MetaTensor(labels.as_tensor().float(), affine=source.clone(), meta={})
            labels = SpatialResample(mode="nearest", padding_mode="zeros")(
                moved, dst_affine=target.clone(), spatial_size=tuple(image.shape)
            )
        values = labels.as_tensor() if isinstance(labels, MetaTensor) else labels
        return torch.round(values[0].float()).to(torch.int64).cpu()


def _inferer_settings(inferer: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {"type": type(inferer).__name__}
    for name in ("roi_size", "sw_batch_size", "overlap", "mode", "padding_mode"):
        if hasattr(inferer, name):
            value = getattr(inferer, name)
            settings[name] = list(value) if isinstance(value, (tuple, list)) else _plain(value)
    return settings


def _plain(value: Any) -> Any:
    if hasattr(value, "value"):  # an enum (MONAI's BlendMode, PytorchPadMode)
        return _plain(value.value)
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)


def _sha256(path: Any) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _first(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _mismatch(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if "size mismatch" in line]
    return lines[0] if lines else _first(err)


def _few(keys: list[str], count: int = 3) -> str:
    shown = ", ".join(keys[:count]) + (", ..." if len(keys) > count else "")
    return f"({shown})" if keys else ""
