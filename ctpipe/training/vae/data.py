"""Training slices for the VAE: CT series read once, put on the slice grid, augmented.

Each :class:`~ctpipe.training.vae.config.SeriesSource` is read with
:func:`ctpipe.io.reader.load_ct` (DICOM through ctpipe, NIfTI through MONAI; HU and a RAS
affine), its body found (:func:`ctpipe.body_mask.body_mask`) and its chosen slices put on
the grid centred on the body (:class:`ctpipe.slice_grid.SliceGrid`). The grid images, a
few MB, are kept in memory. Training batches draw them in random order and pass them
through MONAI's ``RandAffined`` (rotation, scaling, translation; zeros, i.e. the window's
low end, fill the corners); validation slices are used as they are.

Example:
    >>> from ctpipe.training.vae.config import SeriesSource
    >>> from ctpipe.slice_grid import SliceGrid
    >>> items = load_slices([SeriesSource("/data/ct")], SliceGrid())  # doctest: +SKIP
    >>> items[0]["image"].shape, items[0]["source"]  # doctest: +SKIP
    ((1, 128, 128), 'ct')
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ctpipe.errors import InputError

if TYPE_CHECKING:
    from torch.utils.data import DataLoader

    from ctpipe.slice_grid import SliceGrid
    from ctpipe.training.vae.config import AugmentConfig, SeriesSource, VAETrainConfig

__all__ = [
    "build_vae_loaders",
    "load_slices",
    "load_volume",
    "read_series",
    "source_volumes",
    "train_transforms",
]

logger = logging.getLogger("ctpipe.train")


def load_volume(
    path: str | Path,
    *,
    series_uid: str | None = None,
    allow_irregular: bool = False,
    allow_non_hu: bool = False,
    min_slice_pixels: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Read a CT volume (DICOM series, NIfTI) as float32 HU ``(i, j, k)`` and its RAS affine.

    It reads through :func:`ctpipe.io.reader.read_study`, so the volume is checked as every
    command checks its input (HU, finite values, geometry, size). Warnings of the reader
    (e.g. gaps read anyway) go to the ``ctpipe.train`` log.

    Raises:
        InputError: The path is missing or cannot be read as one CT volume
            (:func:`ctpipe.io.reader.read_study` names the file and the problem).
    """
    from ctpipe.io.reader import read_study

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        volume = read_study(
            path,
            series_uid=series_uid,
            allow_irregular=allow_irregular,
            allow_non_hu=allow_non_hu,
            min_slice_pixels=min_slice_pixels,
        )
    for warning in caught:
        logger.info("%s: %s", path, warning.message)
    hu = volume.hu
    if hu.ndim != 3:
        raise InputError(path, f"expected a 3-D CT volume, got an array of shape {hu.shape}")
    return hu, volume.affine_ras


def read_series(
    path: str | Path, *, allow_irregular: bool = True
) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Read one CT series as float32 HU ``(i, j, k)`` and its voxel size in mm.

    Raises:
        InputError: The path is missing or cannot be read as one CT series.
    """
    hu, affine = load_volume(path, allow_irregular=allow_irregular)
    spacing = tuple(float(np.linalg.norm(affine[:3, axis])) for axis in range(3))
    return hu, spacing  # type: ignore[return-value]


def _read_source(
    source: SeriesSource, *, allow_irregular: bool
) -> tuple[np.ndarray, list[int], tuple[float, float, float]]:
    """A source's series in HU, the indices of its chosen slices and its voxel size in mm.

    Raises:
        InputError: The series cannot be read, or the source's slice range selects none.
    """
    hu, spacing = read_series(source.path, allow_irregular=allow_irregular)
    indices = source.indices(hu.shape[2])
    if not indices:
        raise InputError(
            source.path,
            f"slices {list(source.slices or ())} select none of its {hu.shape[2]} slices",
        )
    return hu, indices, spacing


def source_volumes(
    sources: Sequence[SeriesSource], *, allow_irregular: bool = True
) -> list[tuple[str, np.ndarray, tuple[float, float, float]]]:
    """Each source's chosen slices as ``(label, float32 HU (i, j, k), voxel size in mm)``.

    Raises:
        InputError: A source cannot be read, or its slice range is beyond its slices.
    """
    volumes = []
    for source in sources:
        hu, indices, spacing = _read_source(source, allow_irregular=allow_irregular)
        volumes.append((source.label, np.ascontiguousarray(hu[:, :, indices]), spacing))
    return volumes


def load_slices(
    sources: Sequence[SeriesSource], grid: SliceGrid, *, allow_irregular: bool = True
) -> list[dict[str, Any]]:
    """The chosen slices of every source on the grid, as MONAI data dicts.

    Returns:
        One dict per slice: ``"image"`` (float32 ``(1, rows, columns)`` in [0, 1]),
        ``"source"`` (the source's label) and ``"slice"`` (its index ``k``).

    Raises:
        InputError: A source cannot be read, or its slice range is beyond its slices.
    """
    from ctpipe.body_mask import body_bbox_centre, body_mask

    items: list[dict[str, Any]] = []
    for source in sources:
        hu, indices, spacing = _read_source(source, allow_irregular=allow_irregular)
        chosen = hu[:, :, indices]
        centre = body_bbox_centre(body_mask(chosen))
        images, placement = grid.to_grid(chosen, spacing[:2], centre)
        logger.info(
            "%s: %d slices, %.2f x %.2f mm pixels resized to %.2f mm",
            source.label,
            len(indices),
            spacing[0],
            spacing[1],
            placement.pixel_mm[1],
        )
        items += [
            {"image": image, "source": source.label, "slice": k}
            for image, k in zip(images, indices, strict=True)
        ]
    return items


def train_transforms(augment: AugmentConfig, pixel_mm: float) -> Any:
    """MONAI ``RandAffined`` of the augmentation settings, then float32 tensors."""
    from monai.transforms import Compose, EnsureTyped, RandAffined

    shift = augment.translate_mm / pixel_mm
    return Compose(
        [
            RandAffined(
                keys="image",
                prob=augment.prob,
                rotate_range=(math.radians(augment.rotate_deg),),
                scale_range=(augment.scale, augment.scale),
                translate_range=(shift, shift),
                mode="bilinear",
                padding_mode="zeros",
            ),
            EnsureTyped(keys="image", dtype=np.float32, track_meta=False),
        ]
    )


def build_vae_loaders(
    config: VAETrainConfig,
) -> tuple[DataLoader, DataLoader | None, dict[str, Any]]:
    """Data loaders of a configuration, and a description of the data for the log.

    Returns:
        ``(train_loader, validation_loader, description)``; the validation loader is
        ``None`` without validation sources.

    Raises:
        InputError: A source cannot be read, or there are fewer training slices than one
            batch.
    """
    from monai.data import DataLoader, Dataset
    from monai.transforms import EnsureTyped

    data = config.data
    train = load_slices(data.train, config.grid, allow_irregular=data.allow_irregular)
    if len(train) < config.train.batch_size:
        raise InputError(
            data.train[0].path,
            f"{len(train)} training slices are fewer than train.batch_size "
            f"{config.train.batch_size}",
        )
    validation = (
        load_slices(data.validation, config.grid, allow_irregular=data.allow_irregular)
        if data.validation
        else []
    )
    train_set = Dataset(_images_only(train), train_transforms(config.augment, config.grid.pixel_mm))
    train_loader = DataLoader(
        train_set, batch_size=config.train.batch_size, shuffle=True, drop_last=True, num_workers=0
    )
    val_loader = None
    if validation:
        val_set = Dataset(
            _images_only(validation), EnsureTyped(keys="image", dtype=np.float32, track_meta=False)
        )
        val_loader = DataLoader(val_set, batch_size=8, shuffle=False, num_workers=0)
    description = {
        "train": _count(train),
        "validation": _count(validation),
        "holdout (never used)": [s.label for s in data.holdout],
    }
    return train_loader, val_loader, description


def _images_only(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"image": item["image"]} for item in items]


def _count(items: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item["source"]] = counts.get(item["source"], 0) + 1
    return counts
