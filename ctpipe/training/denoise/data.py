"""Training and validation data for denoisers: paired slices as MONAI datasets.

The pairs come from the AAPM layout (:func:`ctpipe.io.aapm.find_aapm_pairs`: quarter-dose
``"image"``, full-dose ``"label"``) and, optionally, from normal-dose series with simulated
low dose (:func:`simulated_pairs`). :func:`split_pairs` divides them by patient, never using
a patient of the manifest's ``test`` split, and can hold out slices of the training patients
for validation.

Each slice goes through one chain, the same for ``"image"`` and ``"label"``:

1. :func:`ctpipe.io.reader.ct_loader_dict` reads the ``.IMA`` file as HU, shaped
   ``(512, 512, 1)`` and indexed ``(i, j, k)`` = (column, row, slice), MONAI's order;
2. ``EnsureChannelFirstd`` gives ``(1, 512, 512, 1)``; ``SqueezeDimd`` drops the slice
   axis: ``(1, i, j)``. The image is thus the transpose of the DICOM pixel array (which is
   ``(row, column)``). Input and target are transposed alike, convolutions do not care
   and the flips and rotations below make orientation irrelevant to training, so nothing
   is transposed back; inference through ctpipe (:mod:`ctpipe.inference`) uses the same
   ``(i, j)`` order;
3. :func:`ctpipe.transforms.scale_hu_transform` maps HU to [0, 1] over [-1024, 3072];
4. ``EnsureTyped`` makes plain float32 tensors. ``CacheDataset`` keeps the result of
   steps 1-4 in memory;
5. training only, redrawn at every visit: ``RandSpatialCropSamplesd`` cuts
   ``patches.per_slice`` patches of ``patches.size``, then random flips (each axis,
   p = 0.5) and a random rotation by a multiple of 90 degrees (p = 0.5). These are
   dictionary transforms over both keys, so input and target get the same crop, flip and
   rotation.

Validation uses whole slices (steps 1-4 only).

Example:
    >>> from ctpipe.training.denoise.config import DataConfig
    >>> pairs = [{"image": f"q{z}", "label": f"f{z}", "patient": p, "z": float(z)}
    ...          for p in ("A", "B") for z in range(5)]
    >>> kept, held = holdout_slices(pairs, per_patient=1)
    >>> [(e["patient"], e["z"]) for e in held]
    [('A', 2.0), ('B', 2.0)]
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctpipe.errors import InputError
from ctpipe.kernels import SHARP, SMOOTH, kernel_family
from ctpipe.training.denoise.patches import KEYS, patch_transforms

if TYPE_CHECKING:
    from torch.utils.data import DataLoader, Dataset

    from ctpipe.training.denoise.config import (
        DataConfig,
        DenoiseTrainConfig,
        SimulatedPairsConfig,
    )

__all__ = [
    "KEYS",
    "DataSplit",
    "build_loaders",
    "holdout_slices",
    "patch_transforms",
    "simulated_pairs",
    "slice_transforms",
    "split_pairs",
]

#: Keys of a pair: the low-dose input and the normal-dose target (MONAI's defaults).

logger = logging.getLogger("ctpipe.train")


@dataclass(frozen=True)
class DataSplit:
    """Datalists of one run.

    Args:
        train: Training pairs of files (AAPM layout).
        validation: Validation pairs of files (whole slices).
        simulated: Training pairs held in memory (HU arrays shaped ``(1, H, W)``).
        test_patients: Patients of the manifest's ``test`` split (never used).
    """

    train: list[dict[str, Any]]
    validation: list[dict[str, Any]]
    simulated: list[dict[str, Any]]
    test_patients: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line: slices and patients of each part.

        Example:
            >>> DataSplit([{"patient": "A"}], [], []).describe()
            'train 1 slices (A); validation 0 slices (-); simulated 0 slices'
        """
        return (
            f"train {len(self.train)} slices ({_patients(self.train)}); "
            f"validation {len(self.validation)} slices ({_patients(self.validation)}); "
            f"simulated {len(self.simulated)} slices"
        )


def split_pairs(data: DataConfig) -> DataSplit:
    """Find the pairs of a data configuration and split them into training and validation.

    Args:
        data: The ``data`` section of a training configuration.

    Returns:
        The training, validation and simulated datalists.

    Raises:
        InputError: If a training or validation patient is in the manifest's ``test``
            split, the manifest has no ``train`` split when one is needed, a patient has
            too few slices for ``validation_holdout``, or the AAPM folder cannot be paired
            (see :func:`~ctpipe.io.aapm.find_aapm_pairs`).
    """
    simulated = simulated_pairs(data.simulated) if data.simulated is not None else []
    if data.root is None:
        return DataSplit([], [], simulated)
    from ctpipe.io.aapm import find_aapm_pairs
    from ctpipe.io.manifest import load_manifest

    manifest = load_manifest(data.manifest) if data.manifest is not None else None
    splits = dict(manifest.splits) if manifest is not None else {}
    test_patients = tuple(splits.get("test", ()))
    if data.train_patients is not None:
        train_patients = tuple(data.train_patients)
    elif "train" in splits:
        train_patients = tuple(splits["train"])
    else:
        raise InputError(
            data.manifest or "<config>",
            f"manifest has no 'train' split (splits: {sorted(splits)}); set data.train_patients",
        )
    train_patients = tuple(p for p in train_patients if p not in data.validation_patients)
    for role, patients in (("train", train_patients), ("validation", data.validation_patients)):
        leaked = sorted(set(patients) & set(test_patients))
        if leaked:
            raise InputError(
                data.manifest or "<config>",
                f"patients {leaked} are in the manifest's 'test' split and may not be used "
                f"for {role}: the test set is held out from training and model selection",
            )
    if not train_patients:
        raise InputError(data.root, "no training patient left after the validation patients")
    pairs = find_aapm_pairs(
        data.root,
        thickness=data.thickness,
        kernel=data.kernel,
        patients=[*train_patients, *data.validation_patients],
        manifest=manifest if data.verify else None,
    )
    train = [p for p in pairs if p["patient"] in train_patients]
    validation = [p for p in pairs if p["patient"] in data.validation_patients]
    if data.validation_holdout:
        train, held = holdout_slices(train, data.validation_holdout, by=data.validation_holdout_by)
        validation = validation + held
    simulated = drop_near_validation(simulated, validation)
    return DataSplit(train, validation, simulated, test_patients)


#: Simulated slices of a validation patient closer than this to a validation slice are dropped.
VALIDATION_MARGIN_MM = 10.0


def drop_near_validation(
    simulated: Sequence[dict[str, Any]],
    validation: Sequence[Mapping[str, Any]],
    margin_mm: float = VALIDATION_MARGIN_MM,
) -> list[dict[str, Any]]:
    """Drop simulated slices that show a validation slice's anatomy.

    A normal-dose series of a training patient (e.g. the rest of L096's series) holds the
    validation slices themselves and their neighbours. A simulated slice is dropped when
    its patient (its PatientName or series path contains the validation entry's patient
    name) has a validation slice within ``margin_mm`` along z.

    Example:
        >>> sim = [{"patient": "L096_FD", "series": "s", "z": z} for z in (0.0, 12.0, 30.0)]
        >>> [e["z"] for e in drop_near_validation(sim, [{"patient": "L096", "z": 4.0}])]
        [30.0]
    """
    kept = []
    for entry in simulated:
        where = f"{entry.get('patient', '')} {entry.get('series', '')}"
        near = any(
            str(v["patient"]) in where and abs(float(v["z"]) - float(entry["z"])) < margin_mm
            for v in validation
            if "z" in entry and "z" in v
        )
        if not near:
            kept.append(entry)
    if len(kept) < len(simulated):
        logger.info(
            "dropped %d simulated slices within %.0f mm of a validation slice of their patient",
            len(simulated) - len(kept),
            margin_mm,
        )
    return kept


def sampling_group(entry: Mapping[str, Any]) -> str:
    """The group of a training pair for balanced sampling: ``real|simulated`` / ``sharp|smooth``.

    Example:
        >>> sampling_group({"kernel": "B30"}), sampling_group({"filter": "ramp", "dose": 0.2})
        ('real/smooth', 'simulated/sharp')
    """
    if "dose" in entry:  # simulated
        return f"simulated/{'sharp' if entry.get('filter') == 'ramp' else 'smooth'}"
    return f"real/{kernel_class(entry.get('kernel'))}"


def holdout_slices(
    pairs: Sequence[Mapping[str, Any]], per_patient: int, by: str = "patient"
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Hold out ``per_patient`` slices of each patient (or patient and kernel), along z.

    The held-out slices split each group's z-sorted slices into ``per_patient + 1``
    nearly equal runs, so the first and last slices are never held out. With ``by =
    "patient"`` all kernels of a patient are sorted together, so a position is held out
    whatever its kernel, and a kernel may get no validation slice at all. With ``by =
    "kernel"`` each kernel of each patient is a group of its own, so every kernel of the
    training data is validated.

    Args:
        pairs: Datalist entries with ``"patient"`` and ``"z"`` (and ``"kernel"`` for
            ``by="kernel"``).
        per_patient: Slices to hold out of each group.
        by: ``"patient"`` or ``"kernel"`` (each patient's kernels apart).

    Returns:
        ``(kept, held_out)``, both in the order of ``pairs``.

    Raises:
        ValueError: If a group has no more than ``per_patient`` slices (none would be
            left for training), or ``by`` is neither ``"patient"`` nor ``"kernel"``.

    Example:
        >>> pairs = [{"patient": "A", "kernel": k, "z": float(z)}
        ...          for k in ("B30", "D45") for z in range(3)]
        >>> [(e["kernel"], e["z"]) for e in holdout_slices(pairs, 1, by="kernel")[1]]
        [('B30', 1.0), ('D45', 1.0)]
    """
    if by not in ("patient", "kernel"):
        raise ValueError(f"by must be 'patient' or 'kernel', got {by!r}")
    groups: dict[str, list[int]] = {}
    for index, entry in enumerate(pairs):
        group = f"patient {entry['patient']}"
        if by == "kernel":
            group += f" kernel {entry.get('kernel')}"
        groups.setdefault(group, []).append(index)
    held: set[int] = set()
    for group, indices in groups.items():
        if len(indices) <= per_patient:
            raise ValueError(
                f"validation_holdout must be smaller than each {by}'s slice count; "
                f"{group} has {len(indices)} slices, got {per_patient}"
            )
        ordered = sorted(indices, key=lambda i: float(pairs[i]["z"]))
        step = len(ordered) / (per_patient + 1)
        held.update(ordered[math.floor(step * (n + 1))] for n in range(per_patient))
    kept = [dict(e) for i, e in enumerate(pairs) if i not in held]
    return kept, [dict(e) for i, e in enumerate(pairs) if i in held]


def kernel_filter(kernel: str | None, smooth: str = "hann") -> str:
    """The simulator's FBP filter that matches a reconstruction kernel's noise texture.

    Sharp kernels (:func:`ctpipe.kernels.kernel_family`) get ``ramp``, everything else
    (smooth, or unknown) ``smooth`` (``hann`` by default).

    Example:
        >>> [kernel_filter(k) for k in ("D45f", "B30f", "STANDARD", "BONE", "B", None)]
        ['ramp', 'hann', 'hann', 'ramp', 'hann', 'hann']
        >>> kernel_filter("B30f", smooth="cosine")
        'cosine'
    """
    return "ramp" if kernel_family(kernel) == SHARP else smooth


def kernel_class(kernel: str | None) -> str:
    """``sharp`` or ``smooth``: the group of a kernel for balanced sampling (unknown: smooth).

    Example:
        >>> kernel_class("D45"), kernel_class("B30"), kernel_class(None)
        ('sharp', 'smooth', 'smooth')
    """
    return kernel_family(kernel) or SMOOTH


def simulated_pairs(spec: SimulatedPairsConfig) -> list[dict[str, Any]]:
    """Pairs made by simulating low dose on every slice of normal-dose series.

    Each series is read as HU (:func:`ctpipe.io.reader.load_ct`) and each kept slice passes
    through :meth:`ctpipe.simulate.LowDoseSimulator.simulate_slice` (projection-domain noise
    insertion, the simulator's defaults apart from the dose and, with
    ``spec.kernel_matched``, the FBP filter of :func:`kernel_filter`). Slice ``k`` of series
    ``n`` draws its dose (from ``spec.dose_range``) and its noise from
    ``SeedSequence([seed, n, k])``, so the pairs depend only on the seed and the order of
    the series. The simulator takes a few seconds per 512 x 512 slice; with
    ``spec.cache_dir`` the pairs of a series are kept in a ``.npz`` file named by a hash of
    its files and the settings, and read back instead of simulated again.

    Args:
        spec: The series, the dose, the noise seed, the kernel matching and the cache.

    Returns:
        One entry per slice: ``"image"`` (simulated low dose) and ``"label"`` (the
        original), float32 HU arrays shaped ``(1, i, j)``, plus ``"patient"`` (the series'
        PatientName, or the folder's name), ``"series"``, ``"k"`` (the slice index),
        ``"z"`` (the slice position, mm), ``"kernel"``, ``"filter"`` and ``"dose"``.

    Raises:
        ImportError: If :mod:`ctpipe.simulate` is not available.
        InputError: If a series cannot be read or is not a 3D volume.
    """
    try:
        from ctpipe.simulate import LowDoseSimulator  # noqa: F401
    except ImportError as err:
        raise ImportError(
            "data.simulated needs ctpipe.simulate.LowDoseSimulator, which this ctpipe "
            f"installation lacks ({err})"
        ) from err
    items: list[dict[str, Any]] = []
    for number, series in enumerate(spec.series):
        items += _simulated_series(spec, number, series)
    return items


def _simulated_series(spec: SimulatedPairsConfig, number: int, series: str) -> list[dict]:
    import numpy as np

    from ctpipe.io.reader import load_ct

    image = load_ct(series)
    hu = np.asarray(image, dtype=np.float32)
    if hu.ndim != 3:
        raise InputError(series, f"expected a 3D volume (i, j, k), got shape {hu.shape}")
    affine = np.asarray(image.affine, dtype=np.float64)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    meta = getattr(image, "meta", {}) or {}
    kernel = str(meta.get("ConvolutionKernel", "") or "")
    filter_name = kernel_filter(kernel, spec.smooth_filter) if spec.kernel_matched else "ramp"
    photon_scale = 1.0
    if spec.kernel_matched and kernel_class(kernel) == "smooth":
        photon_scale = spec.smooth_photon_scale
    patient = str(meta.get("PatientName", "") or "") or Path(series).name
    keep = list(range(0, hu.shape[2], spec.slice_step))
    cache = _cache_file(spec, number, series, keep, filter_name, photon_scale)
    if cache is not None and cache.exists():
        with np.load(cache) as stored:
            low, doses = stored["low"], stored["dose"]
        logger.info("simulated pairs of %s read from %s", series, cache)
    else:
        low, doses = _simulate(
            spec, number, hu[:, :, keep], float(spacing[0]), filter_name, photon_scale
        )
        if cache is not None:
            _save_cache(cache, low, doses)
    return [
        {
            "image": low[None, :, :, n].copy(),
            "label": hu[None, :, :, k].copy(),
            "patient": patient,
            "series": str(series),
            "k": k,
            "z": float((affine @ np.array([0.0, 0.0, k, 1.0]))[2]),
            "kernel": kernel,
            "filter": filter_name,
            "dose": float(doses[n]),
        }
        for n, k in enumerate(keep)
    ]


def _simulate(
    spec: SimulatedPairsConfig,
    number: int,
    hu: Any,
    pixel_mm: float,
    filter_name: str,
    photon_scale: float = 1.0,
) -> tuple[Any, Any]:
    import numpy as np

    from ctpipe.simulate import DEFAULT_INCIDENT_PHOTONS, LowDoseSimulator

    low = np.empty_like(hu)
    doses = np.empty(hu.shape[2])
    logger.info(
        "simulating %s of the dose (%s filter) for %d slices of series %d",
        spec.dose_range or spec.dose_fraction,
        filter_name,
        hu.shape[2],
        number,
    )
    for n in range(hu.shape[2]):
        rng = np.random.default_rng(np.random.SeedSequence([spec.seed, number, n]))
        dose = float(rng.uniform(*spec.dose_range)) if spec.dose_range else spec.dose_fraction
        simulator = LowDoseSimulator(
            dose_fraction=dose,
            incident_photons=DEFAULT_INCIDENT_PHOTONS * photon_scale,
            filter_name=filter_name,
        )
        low[:, :, n] = simulator.simulate_slice(hu[:, :, n], pixel_mm, rng)
        doses[n] = dose
    return low, doses


def _cache_file(
    spec: SimulatedPairsConfig,
    number: int,
    series: str,
    keep: list[int],
    filter_name: str,
    photon_scale: float = 1.0,
) -> Path | None:
    """``cache_dir/<hash>.npz``: the hash covers the files (names, sizes) and settings.

    A photon scale of 1 is left out of the hash, so caches written before the setting
    existed are still found.
    """
    if spec.cache_dir is None:
        return None
    import hashlib
    import json

    root = Path(series)
    files = sorted(root.rglob("*")) if root.is_dir() else [root]
    listing = [(str(f.relative_to(root.parent)), f.stat().st_size) for f in files if f.is_file()]
    settings: dict[str, Any] = {
        "files": listing,
        "seed": spec.seed,
        "number": number,
        "dose": spec.dose_range or spec.dose_fraction,
        "keep": keep,
        "filter": filter_name,
        "version": 1,
    }
    if photon_scale != 1.0:
        settings["photon_scale"] = photon_scale
    key = json.dumps(settings, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(spec.cache_dir) / f"{root.name}-{digest}.npz"


def _save_cache(path: Path, low: Any, doses: Any) -> None:
    import numpy as np

    from ctpipe.io.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, low=low, dose=doses)


def slice_transforms(*, from_files: bool = True) -> Any:
    """The cached, deterministic part: whole unit-scale slices ``(1, i, j)`` (steps 1-4).

    Args:
        from_files: Start by reading the files (AAPM pairs); ``False`` for pairs already
            in memory as HU arrays ``(1, i, j)`` (simulated pairs).

    Example:
        >>> import numpy as np
        >>> item = {"image": np.full((1, 4, 4), -1024.0), "label": np.full((1, 4, 4), 3072.0)}
        >>> out = slice_transforms(from_files=False)(item)
        >>> float(out["image"].max()), float(out["label"].min()), tuple(out["image"].shape)
        (0.0, 1.0, (1, 4, 4))
    """
    import torch
    from monai.transforms import (
        Compose,
        EnsureChannelFirstd,
        EnsureTyped,
        SelectItemsd,
        SqueezeDimd,
    )

    from ctpipe.io.reader import ct_loader_dict
    from ctpipe.transforms import scale_hu_transform

    steps: list[Any] = []
    if from_files:
        steps += [
            ct_loader_dict(list(KEYS)),  # (i, j, 1) HU
            EnsureChannelFirstd(KEYS, channel_dim="no_channel"),  # (1, i, j, 1)
            SqueezeDimd(KEYS, dim=3),  # (1, i, j)
        ]
    steps += [
        scale_hu_transform(list(KEYS)),
        EnsureTyped(KEYS, dtype=torch.float32, track_meta=False),
        # Only the tensors travel on: AAPM and simulated pairs carry different bookkeeping
        # keys, and one batch may mix both.
        SelectItemsd(KEYS),
    ]
    return Compose(steps)


def build_datasets(config: DenoiseTrainConfig, split: DataSplit) -> tuple[Dataset, Dataset | None]:
    """``CacheDataset`` objects of the training pairs (with patches) and whole validation slices.

    Args:
        config: The training configuration (cache rate, workers, patches).
        split: The datalists, from :func:`split_pairs`.

    Returns:
        ``(train, validation)``; ``validation`` is ``None`` when there are no validation
        slices.
    """
    from monai.data import CacheDataset
    from monai.transforms import Compose
    from torch.utils.data import ConcatDataset

    data = config.data
    cache = {"cache_rate": data.cache_rate, "num_workers": data.num_workers or 1, "progress": False}
    patches = patch_transforms(config.patches)
    parts = []
    # Flattened: CacheDataset caches up to the first random transform, and a nested
    # Compose counts as random, so an unflattened chain would cache nothing.
    if split.train:
        chain = Compose([slice_transforms(), patches]).flatten()
        parts.append(CacheDataset(split.train, chain, **cache))
    if split.simulated:
        chain = Compose([slice_transforms(from_files=False), patches]).flatten()
        parts.append(CacheDataset(split.simulated, chain, **cache))
    train = parts[0] if len(parts) == 1 else ConcatDataset(parts)
    validation = (
        CacheDataset(split.validation, slice_transforms(), **cache) if split.validation else None
    )
    return train, validation


def build_loaders(
    config: DenoiseTrainConfig,
    split: DataSplit | None = None,
    *,
    rank: int = 0,
    world_size: int = 1,
) -> tuple[DataLoader, DataLoader | None]:
    """Data loaders of a training configuration.

    The training loader yields batches of ``train.batch_size`` patches, each from
    ``train.batch_size / patches.per_slice`` slices, shuffled anew each epoch. Under
    ``torchrun`` a ``DistributedSampler`` gives each process its share of the slices (every
    process caches all of them). The validation loader yields whole slices, one at a time.
    Under ``torchrun`` each process validates its share of them (MONAI's metrics gather
    the scores of all processes), or all of them when there are fewer slices than
    processes.

    Args:
        config: The training configuration.
        split: The datalists; by default :func:`split_pairs` of ``config.data``.
        rank: This process's rank.
        world_size: The number of processes.

    Returns:
        ``(train_loader, validation_loader)``; the latter is ``None`` without validation
        slices.

    Raises:
        InputError: If there are fewer training slices per process than one batch needs.
    """
    from ctpipe.training.distributed import sharded_loaders

    split = split if split is not None else split_pairs(config.data)
    if config.data.sampling == "balanced":
        return balanced_loaders(config, split, rank=rank, world_size=world_size)
    train_set, val_set = build_datasets(config, split)
    slices = config.slices_per_batch
    if len(train_set) // world_size < slices:
        raise InputError(
            config.data.root or "<simulated pairs>",
            f"{len(train_set)} training slices over {world_size} process(es) is fewer than "
            f"the {slices} slices one batch needs (train.batch_size {config.train.batch_size}"
            f" / patches.per_slice {config.patches.per_slice}); lower train.batch_size or "
            "raise patches.per_slice",
        )
    return sharded_loaders(
        train_set,
        val_set,
        batch_size=slices,
        num_workers=config.data.num_workers,
        seed=config.train.seed,
        rank=rank,
        world_size=world_size,
    )


def balanced_loaders(
    config: DenoiseTrainConfig, split: DataSplit, *, rank: int = 0, world_size: int = 1
) -> tuple[Any, DataLoader | None]:
    """A :class:`~ctpipe.training.denoise.patch_stream.PatchStream` of batches, and validation.

    Every process caches all slices and draws its own batches (seeded with its rank). The
    stream starts at iteration 0; the trainer points ``stream.start`` at its own iteration
    so that a resumed run continues the stream where it stopped.
    """
    from monai.data import CacheDataset

    from ctpipe.training.denoise.patch_stream import PatchStream, group_weights
    from ctpipe.training.distributed import validation_loader

    cache = {"cache_rate": 1.0, "num_workers": config.data.num_workers or 1, "progress": False}
    slices: list[Any] = []
    entries = [*split.train, *split.simulated]
    if split.train:
        slices += list(CacheDataset(split.train, slice_transforms(), **cache))
    if split.simulated:
        slices += list(CacheDataset(split.simulated, slice_transforms(from_files=False), **cache))
    if not slices:
        raise InputError(config.data.root or "<simulated pairs>", "no training slices")
    groups = [sampling_group(e) for e in entries]
    try:
        weights = group_weights(groups, config.data.shares)
    except ValueError as err:
        raise InputError(config.data.root or "<simulated pairs>", f"data.shares: {err}") from None
    counts = {g: groups.count(g) for g in sorted(set(groups))}
    logger.info("balanced sampling over groups %s", counts)
    stream = PatchStream(
        slices,
        weights,
        config.patches,
        batch_size=config.train.batch_size,
        seed=config.train.seed,
        rank=rank,
    )
    stream.groups = counts  # type: ignore[attr-defined]
    val_set = (
        CacheDataset(split.validation, slice_transforms(), **cache) if split.validation else None
    )
    val_loader = validation_loader(val_set, 0, rank, world_size) if val_set is not None else None
    return stream, val_loader


def _patients(entries: Sequence[Mapping[str, Any]]) -> str:
    names = sorted({str(e.get("patient", "?")) for e in entries})
    return ", ".join(names) if names else "-"
