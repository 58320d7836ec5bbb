"""Labelled CT cases for segmenter training: datalists, label values, MONAI transforms.

:func:`split_cases` gathers the training and validation cases of a
:class:`~ctpipe.training.segment.config.SegmentDataConfig` (an MSD-style datalist read by
MONAI's ``load_decathlon_datalist`` and/or image/label pairs) and checks that every file
exists. Each case then goes through two MONAI chains:

1. :func:`case_transforms`, deterministic and cached by ``CacheDataset``: read the image
   (DICOM through :class:`ctpipe.io.reader.CTSeriesReader`, NIfTI/NRRD through MONAI) and
   the label map; resample the label map onto the image's grid by their affines
   (``ResampleToMatchd``, nearest neighbour: label files need not share the image's
   orientation); map source label values to the class map (:class:`RemapLabelsd`);
   reorient (``Orientationd``) and resample (``Spacingd``) both to the configured
   orientation and spacing; window HU to [0, 1] (``ScaleIntensityRanged``); and find the
   foreground and background voxels once (``FgBgToIndicesd``).
2. :func:`patch_transforms`, random: ``RandCropByPosNegLabeld`` patches (one axial slice
   each for a 2-D network, fed as height ``j`` x width ``i`` like
   :func:`ctpipe.segment.segment_volume`), then rotation and zoom (``RandAffined``) and
   intensity shift and noise.

Validation cases keep the whole volume after step 1; the evaluator runs the sliding
window of :class:`ctpipe.segment.SegmenterInferer` over it.

Example:
    >>> import torch
    >>> remap = RemapLabelsd("label", {"liver": (5,), "spleen": (1, 9)}, {"liver": 1, "spleen": 2})
    >>> remap({"label": torch.tensor([[0, 1, 5, 9, 7]])})["label"].tolist()
    [[0, 2, 1, 2, 0]]
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monai.transforms import MapTransform

from ctpipe.errors import CTPipeError, InputError

if TYPE_CHECKING:
    from monai.data import Dataset
    from torch.utils.data import DataLoader

    from ctpipe.training.segment.config import SegmentDataConfig, SegmentTrainConfig

__all__ = [
    "KEYS",
    "CaseSplit",
    "RemapLabelsd",
    "build_segment_loaders",
    "case_transforms",
    "patch_transforms",
    "split_cases",
]

#: Keys of the image and label in each case's dict.
KEYS = ("image", "label")
_INDEX_KEYS = ("label_fg", "label_bg")


@dataclass(frozen=True)
class CaseSplit:
    """Training and validation cases as MONAI datalist entries (``image``, ``label``)."""

    train: list[dict[str, Any]]
    validation: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> str:
        """One line naming the cases, for logs.

        Example:
            >>> CaseSplit([{"image": "/d/a.nii.gz", "label": "l"}]).describe()
            'train 1 cases (a.nii.gz); validation 0 cases (-)'
        """
        return (
            f"train {len(self.train)} cases ({_names(self.train)}); "
            f"validation {len(self.validation)} cases ({_names(self.validation)})"
        )


def _names(entries: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(Path(str(e["image"])).name for e in entries) or "-"


def split_cases(data: SegmentDataConfig) -> CaseSplit:
    """Gather the training and validation cases and check that their files exist.

    Args:
        data: The data section of a segmentation training config.

    Returns:
        The cases; the last ``validation_holdout`` training cases move to validation.

    Raises:
        InputError: The datalist cannot be read or lacks a key, a listed file does not
            exist, or the holdout leaves no training case.

    Example:
        >>> from ctpipe.training.segment.config import SegmentDataConfig
        >>> split_cases(SegmentDataConfig(train=[{"image": "/no/ct.nii", "label": "/no/s.nii"}]))
        Traceback (most recent call last):
        ...
        ctpipe.errors.InputError: /no/ct.nii: image of a training case does not exist
    """
    train: list[dict[str, Any]] = []
    validation: list[dict[str, Any]] = []
    if data.datalist is not None:
        train += _read_datalist(data, data.datalist_key)
        if data.validation_key is not None:
            validation += _read_datalist(data, data.validation_key)
    train += [{"image": c.image, "label": c.label} for c in data.train]
    validation += [{"image": c.image, "label": c.label} for c in data.validation]
    if data.validation_holdout:
        if data.validation_holdout >= len(train):
            raise InputError(
                data.datalist or "<config>",
                f"validation_holdout {data.validation_holdout} leaves no training case of "
                f"the {len(train)} listed",
            )
        validation += train[-data.validation_holdout :]
        train = train[: -data.validation_holdout]
    for role, entries in (("training", train), ("validation", validation)):
        for entry in entries:
            for key in KEYS:
                if not Path(entry[key]).exists():
                    raise InputError(entry[key], f"{key} of a {role} case does not exist")
    return CaseSplit(train, validation)


def _read_datalist(data: SegmentDataConfig, key: str) -> list[dict[str, Any]]:
    from monai.data import load_decathlon_datalist

    path = Path(str(data.datalist))
    if not path.is_file():
        raise InputError(path, "datalist file does not exist")
    try:
        entries = load_decathlon_datalist(
            path, is_segmentation=True, data_list_key=key, base_dir=data.base_dir
        )
    except ValueError as err:  # a missing key, or JSON that does not parse
        raise InputError(path, f"not a usable datalist: {err}") from None
    for n, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or not all(k in entry for k in KEYS):
            raise InputError(path, f"entry {n} of {key!r} must have 'image' and 'label': {entry}")
    return [{k: str(entry[k]) for k in KEYS} for entry in entries]


class RemapLabelsd(MapTransform):
    """Map source label values to the class map; every other value becomes 0.

    Args:
        keys: The label key(s).
        label_values: Class name -> source values of that class; ``None`` keeps the values
            and checks they lie in ``0 .. N``.
        class_map: Class name -> label value ``1 .. N`` (the network's channels).

    Raises:
        InputError: (when called) a label map with fractional values, or, without
            ``label_values``, values outside ``0 .. N``; the message names the file.

    Example:
        >>> import torch
        >>> RemapLabelsd("label", None, {"liver": 1})({"label": torch.tensor([0, 3])})
        Traceback (most recent call last):
        ...
        ctpipe.errors.InputError: <label>: label values must lie in 0 .. 1 (the class map \
liver=1), got values up to 3; give data.label_values to map the source values
    """

    def __init__(
        self,
        keys: str | Sequence[str],
        label_values: Mapping[str, Sequence[int]] | None,
        class_map: Mapping[str, int],
    ) -> None:
        super().__init__(keys)
        import torch

        self.class_map = dict(class_map)
        self.table: torch.Tensor | None = None
        if label_values is not None:
            top = max(v for values in label_values.values() for v in values)
            table = torch.zeros(top + 1, dtype=torch.long)
            for name, values in label_values.items():
                table[list(values)] = int(class_map[name])
            self.table = table

    def __call__(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Map the label key(s) of ``data``; other keys pass through."""
        import torch

        d = dict(data)
        for key in self.key_iterator(d):
            label = d[key]
            source = getattr(label, "meta", {}).get("filename_or_obj", f"<{key}>")
            values = torch.as_tensor(label)
            rounded = values.round()
            if values.is_floating_point() and not torch.equal(values, rounded):
                raise InputError(source, "label map has fractional values; labels are integers")
            values = rounded.long()
            if self.table is None:
                top = len(self.class_map)
                if values.numel() and (values.min() < 0 or values.max() > top):
                    names = ", ".join(f"{n}={v}" for n, v in self.class_map.items())
                    raise InputError(
                        source,
                        f"label values must lie in 0 .. {top} (the class map {names}), got "
                        f"values up to {int(values.max())}; give data.label_values to map the "
                        "source values",
                    )
                mapped = values
            else:
                inside = (values >= 0) & (values < len(self.table))
                mapped = torch.where(inside, self.table[values.clamp(0, len(self.table) - 1)], 0)
            result = label.clone() if isinstance(label, torch.Tensor) else torch.as_tensor(label)
            result[...] = mapped.to(result.dtype)
            d[key] = result
        return d


def case_transforms(config: SegmentTrainConfig) -> Any:
    """The deterministic, cached chain: one whole case, preprocessed (step 1).

    Returns a ``Compose`` mapping ``{"image": path, "label": path}`` to the image in
    [0, 1] and the label map, both ``(1, I, J, K)`` at the target orientation and spacing,
    plus the foreground and background voxel indices.
    """
    import torch
    from monai.transforms import (
        Compose,
        EnsureChannelFirstd,
        EnsureTyped,
        FgBgToIndicesd,
        Orientationd,
        ResampleToMatchd,
        ScaleIntensityRanged,
        Spacingd,
    )

    from ctpipe.io.reader import ct_loader_dict
    from ctpipe.segment import RAS_LABELS

    pre = config.preprocess
    steps: list[Any] = [
        ct_loader_dict(list(KEYS)),
        EnsureChannelFirstd(KEYS, channel_dim="no_channel"),
        ResampleToMatchd("label", key_dst="image", mode="nearest", padding_mode="zeros"),
        RemapLabelsd("label", config.data.label_values, config.model.class_map),
    ]
    if pre.axcodes is not None:
        steps.append(Orientationd(KEYS, axcodes=pre.axcodes, labels=RAS_LABELS))
    if pre.target_spacing is not None:
        pixdim = [-1.0 if s is None else s for s in pre.target_spacing]  # <= 0: keep
        steps.append(
            Spacingd(KEYS, pixdim=pixdim, mode=("bilinear", "nearest"), padding_mode="border")
        )
    low, high = pre.hu_window
    steps += [
        ScaleIntensityRanged("image", low, high, 0.0, 1.0, clip=True),
        EnsureTyped(KEYS, dtype=torch.float32),
        FgBgToIndicesd("label", image_key="image", image_threshold=0.0),
    ]
    return Compose(steps)


def patch_transforms(config: SegmentTrainConfig) -> Any:
    """The random chain (step 2): ``patches.per_volume`` augmented patches of one case.

    Example:
        >>> import torch
        >>> from ctpipe.training.segment.config import SegmentTrainConfig
        >>> config = SegmentTrainConfig.from_dict({
        ...     "model": {"spatial_dims": 2, "class_map": {"liver": 1}, "channels": [4, 8],
        ...               "strides": [2]},
        ...     "data": {"datalist": "d.json"}, "patches": {"size": [8, 6], "per_volume": 3},
        ...     "train": {"batch_size": 3}, "inference": {"roi_size": [8, 8]},
        ...     "output_dir": "o"})
        >>> label = torch.zeros(1, 20, 20, 4)
        >>> label[:, 5:10, 5:10] = 1
        >>> from monai.transforms import FgBgToIndicesd
        >>> case = FgBgToIndicesd("label")({"image": torch.rand(1, 20, 20, 4), "label": label})
        >>> out = patch_transforms(config)(case)
        >>> len(out), tuple(out[0]["image"].shape)  # (1, j, i) slices
        (3, (1, 6, 8))
    """
    import math

    import torch
    from monai.transforms import (
        Compose,
        EnsureTyped,
        RandAffined,
        RandCropByPosNegLabeld,
        RandGaussianNoised,
        RandShiftIntensityd,
        SelectItemsd,
        SpatialPadd,
        SqueezeDimd,
        Transposed,
    )

    two_d = config.model.spatial_dims == 2
    crop = (*config.patches.size, 1) if two_d else config.patches.size
    steps: list[Any] = [
        SpatialPadd(KEYS, spatial_size=crop),
        RandCropByPosNegLabeld(
            KEYS,
            label_key="label",
            spatial_size=crop,
            pos=config.patches.pos,
            neg=config.patches.neg,
            num_samples=config.patches.per_volume,
            image_key="image",
            image_threshold=0.0,
            fg_indices_key=_INDEX_KEYS[0],
            bg_indices_key=_INDEX_KEYS[1],
        ),
        SelectItemsd(KEYS),
    ]
    if two_d:
        steps += [SqueezeDimd(KEYS, dim=3), Transposed(KEYS, indices=(0, 2, 1))]  # (1, j, i)
    aug = config.augment
    if aug.prob > 0:
        angle = math.radians(aug.rotate_deg)
        if aug.rotate_deg or aug.scale:
            steps.append(
                RandAffined(
                    KEYS,
                    prob=aug.prob,
                    rotate_range=(angle,) if two_d else (0.0, 0.0, angle),
                    scale_range=(aug.scale, aug.scale) if two_d else (aug.scale, aug.scale, 0.0),
                    mode=("bilinear", "nearest"),
                    padding_mode="zeros",
                )
            )
        if aug.intensity_shift:
            steps.append(RandShiftIntensityd("image", offsets=aug.intensity_shift, prob=aug.prob))
        if aug.noise_std:
            steps.append(RandGaussianNoised("image", prob=aug.prob, std=aug.noise_std))
    steps.append(EnsureTyped(KEYS, dtype=torch.float32, track_meta=False))  # plain tensors
    return Compose(steps)


def build_segment_datasets(
    config: SegmentTrainConfig, split: CaseSplit
) -> tuple[Dataset, Dataset | None]:
    """``CacheDataset`` objects of the training cases (with patches) and validation cases."""
    from monai.data import CacheDataset
    from monai.transforms import Compose

    cache = {
        "cache_rate": config.data.cache_rate,
        "num_workers": config.data.num_workers or 1,
        "progress": False,
    }
    from monai.transforms import SelectItemsd

    cases = case_transforms(config)
    # Flattened: CacheDataset caches up to the first random transform, and a nested
    # Compose counts as random.
    train_chain = Compose([cases, patch_transforms(config)]).flatten()
    with reraise_input_errors():
        train = CacheDataset(split.train, train_chain, **cache)
        validation = None
        if split.validation:
            chain = Compose([cases, SelectItemsd(KEYS)]).flatten()
            validation = CacheDataset(split.validation, chain, **cache)
    return train, validation


def build_segment_loaders(
    config: SegmentTrainConfig,
    split: CaseSplit | None = None,
    *,
    rank: int = 0,
    world_size: int = 1,
) -> tuple[DataLoader, DataLoader | None]:
    """Data loaders of a segmentation training config.

    The training loader yields batches of ``train.batch_size`` patches, drawn from
    ``train.batch_size / patches.per_volume`` cases. Under ``torchrun`` a
    ``DistributedSampler`` gives each process its share of the cases (a process gets a
    case twice when there are fewer cases than processes). The validation loader yields
    whole cases one at a time, each process its share (all of them when there are fewer
    cases than processes).

    Args:
        config: The training configuration.
        split: The cases; by default :func:`split_cases` of ``config.data``.
        rank: This process's rank.
        world_size: The number of processes.

    Returns:
        ``(train_loader, validation_loader)``; the latter is ``None`` without validation
        cases.

    Raises:
        InputError: Unusable data, or fewer training cases than one batch needs.
    """
    from ctpipe.training.distributed import sharded_loaders

    split = split if split is not None else split_cases(config.data)
    train_set, val_set = build_segment_datasets(config, split)
    volumes = config.volumes_per_batch
    if len(train_set) < volumes:
        raise InputError(
            config.data.datalist or split.train[0]["image"],
            f"{len(train_set)} training case(s) is fewer than the {volumes} one batch needs "
            f"(train.batch_size {config.train.batch_size} / patches.per_volume "
            f"{config.patches.per_volume}); lower train.batch_size or raise "
            "patches.per_volume",
        )
    return sharded_loaders(
        train_set,
        val_set,
        batch_size=volumes,
        num_workers=config.data.num_workers,
        seed=config.train.seed,
        rank=rank,
        world_size=world_size,
    )


@contextlib.contextmanager
def reraise_input_errors() -> Iterator[None]:
    """Re-raise a ctpipe error that MONAI wrapped in ``RuntimeError("applying transform")``.

    MONAI's ``Compose`` wraps every exception of a transform, so a bad file would show as
    a long traceback; this finds the ctpipe error (naming the file) in the chain.
    """
    try:
        yield
    except RuntimeError as err:
        cause: BaseException | None = err
        while cause is not None and not isinstance(cause, CTPipeError):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        raise cause from None
