"""The steps a workflow runs on a study, and the models they use (loaded once per batch).

Each step takes the :class:`StudyState` (the input volume, the current image, the labels)
and returns its record (settings, timings, metrics). Image steps (``denoise``) replace
``state.image``; ``segment`` sets ``state.labels`` from the current image.

:class:`Models` loads every model a workflow needs once, so a batch of many series does
not reload weights per series; each model's file and sha256 go into the run records.

Example:
    >>> import numpy as np, torch
    >>> from ctpipe.io.dicom_volume import CTVolume
    >>> from ctpipe.workflow.config import Workflow
    >>> volume = CTVolume(np.zeros((16, 16, 2), np.float32), np.eye(4))
    >>> state = StudyState(volume)
    >>> models = Models({"denoise": LoadedModel(torch.nn.Identity(), "identity", "0" * 64)})
    >>> record = run_step("denoise", state, Workflow(name="x", steps=("denoise",)), models)
    >>> record["model"]["name"], state.image.shape
    ('identity', (16, 16, 2))
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from ctpipe.devices import compute_device, output_device
from ctpipe.io.dicom_volume import CTVolume
from ctpipe.organ_statistics import organ_statistics
from ctpipe.workflow.config import Workflow, weights_file

__all__ = ["PADDING_BELOW_HU", "STEPS", "LoadedModel", "Models", "StudyState", "run_step"]

#: Voxels below this HU (air is -1000; scanners pad outside the field of view with
#: -2000 or -3024) are padding: the denoiser leaves them as they are.
PADDING_BELOW_HU = -1024.0


@dataclass
class StudyState:
    """What the steps of one study share.

    Args:
        volume: The input volume (HU, geometry, source series).
        image: The current image (HU); starts as the input's.
        labels: The label volume once ``segment`` ran.
        outputs: Named intermediate volumes for export (``denoised``, ...).
        analyses: Results of analysis steps by step name (the ``anomaly`` result).
    """

    volume: CTVolume
    image: np.ndarray | None = None
    labels: np.ndarray | None = None
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    analyses: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.image is None:
            self.image = self.volume.hu


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to run, with where it came from.

    Args:
        module: The network, in eval mode.
        name: What it is (e.g. ``redcnn``), for records.
        sha256: The weights file's sha256.
        path: The weights file (``None`` for a model built in memory).
        config: Its configuration (e.g. a ``SegmenterConfig``), when a step needs it.
        settings: Recommended inference settings stored with the weights.
    """

    module: Any
    name: str
    sha256: str
    path: Path | None = None
    config: Any = None
    settings: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """Name, file and sha256 for run records."""
        return {
            "name": self.name,
            "path": str(self.path) if self.path else None,
            "sha256": self.sha256,
        }


class Models:
    """The models of a workflow's steps, by step name.

    Example:
        >>> Models({})["segment"]
        Traceback (most recent call last):
        ...
        KeyError: 'no model loaded for step segment'
    """

    def __init__(self, models: Mapping[str, LoadedModel]) -> None:
        self._models = dict(models)

    def __getitem__(self, step: str) -> LoadedModel:
        if step not in self._models:
            raise KeyError(f"no model loaded for step {step}")
        return self._models[step]

    def describe(self) -> dict[str, dict[str, Any]]:
        """Each step's model name, file and sha256."""
        return {step: model.describe() for step, model in self._models.items()}

    @classmethod
    def load(cls, workflow: Workflow, *, source: str | PathLike[str] = "<workflow>") -> Models:
        """Load the model of every step of ``workflow`` (weights found as in the file)."""
        loaded = {}
        for step in workflow.steps:
            if step == "segment" and workflow.segment.bundle is not None:
                loaded[step] = _load_bundle(workflow, source)
            elif step in LOADERS:
                path = weights_file(workflow, step, source=source)
                loaded[step] = LOADERS[step](path)
        return cls(loaded)


def file_sha256(path: str | PathLike[str]) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_denoiser(path: Path) -> LoadedModel:
    from ctpipe.checkpoints.file import load_denoiser

    model = load_denoiser(path)
    name = type(model).__name__.lower()
    return LoadedModel(model, name, file_sha256(path), path, config=getattr(model, "config", None))


def _load_segmenter(path: Path) -> LoadedModel:
    """A segmenter checkpoint, with the inference settings it was validated with."""
    import inspect

    from ctpipe.checkpoints.segmenter import load_segmenter
    from ctpipe.segment import segment_volume

    model, config = load_segmenter(path)
    stored = dict(getattr(model, "checkpoint_record", {}).get("inference", {}))
    accepted = set(inspect.signature(segment_volume).parameters)
    settings = {
        k: tuple(v) if isinstance(v, list) else v for k, v in stored.items() if k in accepted
    }
    return LoadedModel(
        model, config.architecture, file_sha256(path), path, config=config, settings=settings
    )


def _load_bundle(workflow: Workflow, source: str | PathLike[str]) -> LoadedModel:
    """The segment step's MONAI bundle, built for the step's devices."""
    from ctpipe.bundle import BundleSegmenter, find_bundle
    from ctpipe.workflow.config import check_bundle

    settings = workflow.segment
    bundle = find_bundle(check_bundle(workflow, source=source), model=settings.bundle_model)
    segmenter = BundleSegmenter(
        bundle,
        device=output_device(settings.device),
        sw_device=compute_device(settings.sw_device),
        amp=settings.amp,
    )
    name = f"bundle {bundle.name} {bundle.version}".strip()
    return LoadedModel(segmenter, name, segmenter.weights_sha256, bundle.model_file, config=bundle)


def _load_vae(path: Path) -> LoadedModel:
    from ctpipe.nets.vae import load_vae

    model = load_vae(path)
    return LoadedModel(model, "vae", file_sha256(path), path)


def _load_gan(path: Path) -> LoadedModel:
    from ctpipe.checkpoints.gan import load_gan

    gan = load_gan(path)
    return LoadedModel(gan, "dcgan", file_sha256(path), path)


#: How each step's weights are loaded: ``path -> LoadedModel``.
LOADERS: dict[str, Callable[[Path], LoadedModel]] = {
    "denoise": _load_denoiser,
    "segment": _load_segmenter,
    "anomaly": _load_vae,
    "inpaint": _load_gan,
}


def run_step(step: str, state: StudyState, workflow: Workflow, models: Models) -> dict[str, Any]:
    """Run one step on ``state``; return its record (model, settings, seconds, metrics)."""
    start = time.perf_counter()
    record = STEPS[step](state, workflow, models)
    record["seconds"] = round(time.perf_counter() - start, 3)
    return record


def _denoise(state: StudyState, workflow: Workflow, models: Models) -> dict[str, Any]:
    from ctpipe.inference import denoise_volume

    settings = workflow.denoise
    model = models["denoise"]
    device = compute_device(settings.device)
    before = state.image
    denoised = denoise_volume(
        np.ascontiguousarray(before, dtype=np.float32),
        model.module,
        batch_size=settings.batch_size,
        sw_device=device,
        device="cpu",
        amp=settings.amp if device.startswith("cuda") else False,
    )
    result = np.asarray(denoised, dtype=np.float32)
    padding = before < PADDING_BELOW_HU  # outside the scan's field of view: keep as is
    result[padding] = before[padding]
    state.image = result
    state.outputs["denoised"] = result
    change = (result - before)[~padding]
    return {
        "output": "denoised",
        "model": model.describe(),
        "settings": {"device": device, "batch_size": settings.batch_size, "amp": settings.amp},
        "metrics": {
            "mean_change_hu": round(float(change.mean()), 3) if change.size else 0.0,
            "rms_change_hu": _rms(change),
            "padding_voxels_kept": int(padding.sum()),
        },
    }


def _segment(state: StudyState, workflow: Workflow, models: Models) -> dict[str, Any]:
    import torch
    from monai.data import MetaTensor

    from ctpipe.segment import class_volumes

    model = models["segment"]
    image = MetaTensor(
        torch.from_numpy(np.ascontiguousarray(state.image, dtype=np.float32)),
        affine=torch.from_numpy(state.volume.affine_ras),
    )
    if _is_bundle(model):
        labels = model.module(image)
        class_map = model.config.class_map
        settings = model.module.record()
    else:
        labels, settings = _segment_with_model(image, workflow, model)
        class_map = dict(model.config.class_map)
    state.labels = np.asarray(labels.cpu().numpy())
    state.analyses["class_map"] = dict(class_map)
    names = ("background", *sorted(class_map, key=class_map.get))
    rows = class_volumes(state.labels, state.volume.affine_lps, names)
    volumes = {name: round(millilitres, 2) for name, _, millilitres in rows}
    statistics = organ_statistics(state.labels, state.volume.hu, state.volume.affine_lps, class_map)
    state.analyses["statistics"] = statistics
    return {
        "model": model.describe(),
        "settings": settings,
        "class_map": dict(class_map),
        "metrics": {"volume_ml": volumes},
        "statistics": {"hu_of": "input", "classes": [row.to_dict() for row in statistics]},
    }


def _is_bundle(model: LoadedModel) -> bool:
    from ctpipe.bundle import SegmentationBundle

    return isinstance(model.config, SegmentationBundle)


def _segment_with_model(
    image: Any, workflow: Workflow, model: LoadedModel
) -> tuple[Any, dict[str, Any]]:
    """Labels of a ctpipe segmenter checkpoint, and the settings used."""
    from ctpipe.segment import segment_volume

    settings = workflow.segment
    options = dict(model.settings)
    if settings.roi_size is not None:
        options["roi_size"] = settings.roi_size
    options.update(
        overlap=settings.overlap,
        mode=settings.blend,
        sw_batch_size=settings.sw_batch_size,
        sw_device=compute_device(settings.sw_device),
        device=output_device(settings.device),
    )
    labels = segment_volume(image, model.module, config=model.config, **options)
    return labels, {k: _plain(v) for k, v in options.items()}


def _anomaly(state: StudyState, workflow: Workflow, models: Models) -> dict[str, Any]:
    from ctpipe.anomaly import anomaly_volume

    settings = workflow.anomaly
    model = models["anomaly"]
    device = compute_device(settings.device)
    model.module.to(device)
    result = anomaly_volume(
        np.ascontiguousarray(state.image, dtype=np.float32),
        model.module,
        spacing=state.volume.spacing,
        samples=settings.samples,
        seed=settings.seed,
        smooth_mm=settings.smooth_mm,
        batch_size=settings.batch_size,
    )
    state.analyses["anomaly"] = result
    order = np.argsort(result.neg_elbo)[::-1][:3]
    return {
        "model": model.describe(),
        "settings": {
            "device": device,
            "samples": settings.samples,
            "seed": settings.seed,
            "smooth_mm": settings.smooth_mm,
        },
        "metrics": {
            "max_neg_elbo_nats": round(float(result.neg_elbo.max()), 1),
            "median_neg_elbo_nats": round(float(np.median(result.neg_elbo)), 1),
            "top_slices": [int(k) for k in order],
            "map_p99_hu": round(float(np.percentile(result.map_hu[result.body], 99)), 1)
            if result.body.any()
            else 0.0,
        },
    }


def _inpaint(state: StudyState, workflow: Workflow, models: Models) -> dict[str, Any]:
    from ctpipe.inpaint import inpaint_volume

    settings = workflow.inpaint
    gan = models["inpaint"].module
    device = compute_device(settings.device)
    gan.generator.to(device)
    gan.discriminator.to(device)
    mask, source = _inpaint_mask(state, settings)
    result = inpaint_volume(
        np.ascontiguousarray(state.image, dtype=np.float32),
        mask,
        gan.generator,
        gan.discriminator,
        window=gan.window,
        settings=settings.settings,
    )
    state.image = np.asarray(result.hu, dtype=np.float32)
    state.outputs["inpainted"] = state.image
    state.analyses["inpaint_mask"] = mask
    iterations = [s.iterations for s in result.slices]
    return {
        "output": "inpainted",
        "model": models["inpaint"].describe(),
        "settings": {"device": device, "mask": source, **_plain_dict(settings.settings)},
        "metrics": {
            "hole_voxels": int(mask.sum()),
            "slices_inpainted": len(result.slices),
            "mean_iterations": round(float(np.mean(iterations)), 1) if iterations else 0.0,
            "mean_context_mae_hu": round(
                float(np.mean([s.context_mae_hu for s in result.slices])), 2
            )
            if result.slices
            else 0.0,
        },
    }


def _inpaint_mask(state: StudyState, settings: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """The hole as a bool ``(i, j, k)`` mask, and a record of where it came from."""
    from ctpipe.inpaint import generate_mask, read_mask

    shape = state.image.shape
    if settings.mask == "file":
        path = Path(settings.mask_path.replace("{series}", _series_name(state)))
        mask = read_mask(path, shape, state.volume.affine_ras)
        return mask, {"source": "file", "path": str(path)}
    if settings.mask == "labels":
        class_map = state.analyses.get("class_map", {})
        unknown = sorted(set(settings.mask_classes) - set(class_map))
        if unknown:
            raise ValueError(
                f"inpaint.mask_classes {unknown} are not classes of the segmenter "
                f"({', '.join(class_map)})"
            )
        values = [class_map[name] for name in settings.mask_classes]
        mask = np.isin(state.labels, values)
        if not mask.any():
            raise ValueError(f"the segmenter found none of {list(settings.mask_classes)}")
        return mask, {"source": "labels", "classes": list(settings.mask_classes)}
    body = state.image > -500
    mask, parameters = generate_mask(
        settings.mask_kind,
        shape,
        seed=settings.seed,
        slices=settings.mask_slices,
        region=body.any(axis=2) if body.any() else None,
    )
    return mask, {"source": "generated", **parameters}


def _series_name(state: StudyState) -> str:
    files = (state.volume.meta or {}).get("ctpipe_source_files") or [""]
    first = Path(str(files[0]))
    return first.parent.name if state.volume.series is not None else first.name


def _plain_dict(obj: Any) -> dict[str, Any]:
    from ctpipe.schema import dataclass_to_dict

    return dataclass_to_dict(obj)


def _rms(values: np.ndarray) -> float:
    if not values.size:
        return 0.0
    return round(float(np.sqrt(np.mean(values.astype(np.float64) ** 2))), 3)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value


#: Step name -> function ``(state, workflow, models) -> record``.
STEPS: dict[str, Callable[[StudyState, Workflow, Models], dict[str, Any]]] = {
    "denoise": _denoise,
    "segment": _segment,
    "anomaly": _anomaly,
    "inpaint": _inpaint,
}
