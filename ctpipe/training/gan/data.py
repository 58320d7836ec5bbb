"""Training patches for the DCGAN: HU-windowed axial slices, random patches on the body.

1. Each source volume (:class:`~ctpipe.training.gan.config.SliceSourceConfig`) is read as
   HU with :func:`ctpipe.io.reader.load_ct`, and its selected slices are kept in memory
   as ``(1, i, j)`` float32 arrays, clipped to the window and mapped to [-1, 1]
   (:func:`ctpipe.transforms.hu_to_tanh`), with a body mask (HU above
   ``body_threshold``): :func:`load_training_slices`.
2. Each item of the dataset is one random slice (sampled with replacement) passed through
   MONAI transforms: ``FgBgToIndicesd`` lists the body pixels once (``CacheDataset``
   keeps them), ``RandCropByPosNegLabeld`` cuts one ``image_size`` patch centred on a
   body pixel, then random flips and a random multiple of 90 degrees:
   :func:`patch_transforms`.
3. :func:`build_gan_loader` batches ``batch_size`` patches per iteration; an epoch is
   ``iterations_per_epoch`` batches.

Example:
    >>> import numpy as np
    >>> body = np.zeros((1, 80, 80), np.float32)
    >>> body[:, 20:60, 20:60] = 1
    >>> slices = [{"image": np.zeros((1, 80, 80), np.float32), "body": body}]
    >>> patch = patch_transforms(32, flip=True, rot90=True)(slices[0])[0]["image"]
    >>> tuple(patch.shape)
    (1, 32, 32)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ctpipe.errors import InputError

if TYPE_CHECKING:
    from torch.utils.data import DataLoader

    from ctpipe.training.gan.config import GanTrainConfig, SliceSourceConfig

__all__ = ["build_gan_loader", "load_training_slices", "patch_transforms"]

logger = logging.getLogger("ctpipe.train")


def load_training_slices(
    sources: Sequence[SliceSourceConfig],
    window: tuple[float, float],
    body_threshold: float,
    *,
    min_size: int = 1,
) -> list[dict[str, Any]]:
    """Read the selected slices of every source, windowed to [-1, 1], with body masks.

    Args:
        sources: The volumes and their slice selections.
        window: HU window mapped to [-1, 1].
        body_threshold: HU above which a pixel counts as body (a patch centre).
        min_size: Smallest acceptable slice side (the patch size).

    Returns:
        One dict per slice: ``"image"`` and ``"body"`` (float32, ``(1, i, j)``), plus
        ``"source"`` and ``"k"`` (slice index in its volume).

    Raises:
        InputError: A source cannot be read, selects no slice, has slices smaller than
            ``min_size`` or no body pixel (the message names the source).
    """
    from ctpipe.io.reader import load_ct
    from ctpipe.transforms import hu_to_tanh

    items: list[dict[str, Any]] = []
    for source in sources:
        image = load_ct(
            source.path, series_uid=source.series_uid, allow_irregular=source.allow_irregular
        )
        hu = np.asarray(image, dtype=np.float32)
        if hu.ndim == 2:
            hu = hu[:, :, None]
        if hu.ndim != 3:
            raise InputError(source.path, f"expected a 2D or 3D CT image, got shape {hu.shape}")
        if min(hu.shape[:2]) < min_size:
            raise InputError(
                source.path,
                f"slices of {hu.shape[:2]} pixels are smaller than the patch side {min_size}",
            )
        indices = source.slice_range(hu.shape[2])
        if len(indices) == 0:
            raise InputError(
                source.path, f"slices {source.slices} select none of its {hu.shape[2]} slices"
            )
        for k in indices:
            body = hu[None, :, :, k] > body_threshold
            if not body.any():
                raise InputError(
                    source.path, f"slice {k} has no pixel above body_threshold {body_threshold} HU"
                )
            items.append(
                {
                    "image": hu_to_tanh(hu[None, :, :, k], window).astype(np.float32),
                    "body": body.astype(np.float32),
                    "source": str(source.path),
                    "k": int(k),
                }
            )
        logger.info("%s: %d training slices", source.path, len(indices))
    return items


def patch_transforms(image_size: int, *, flip: bool, rot90: bool) -> Any:
    """One random ``image_size`` patch centred on the body, randomly flipped and rotated.

    Returns:
        A MONAI ``Compose`` mapping a slice dict to a list holding one patch dict
        (``"image"`` only).
    """
    from monai.transforms import (
        Compose,
        EnsureTyped,
        FgBgToIndicesd,
        RandCropByPosNegLabeld,
        RandFlipd,
        RandRotate90d,
        SelectItemsd,
    )

    steps: list[Any] = [
        # deterministic, so cached once per slice by CacheDataset: the body pixel list,
        # and plain tensors (no metadata tracking: it costs more than the crop itself)
        FgBgToIndicesd("body"),
        EnsureTyped(["image"], data_type="tensor", track_meta=False),
        RandCropByPosNegLabeld(
            keys=["image"],
            label_key="body",
            fg_indices_key="body_fg_indices",
            bg_indices_key="body_bg_indices",
            spatial_size=(image_size, image_size),
            pos=1,
            neg=0,
            num_samples=1,
            allow_smaller=False,
        ),
        SelectItemsd(["image"]),
    ]
    if flip:
        steps += [
            RandFlipd(["image"], prob=0.5, spatial_axis=0),
            RandFlipd(["image"], prob=0.5, spatial_axis=1),
        ]
    if rot90:
        steps.append(RandRotate90d(["image"], prob=0.5, max_k=3, spatial_axes=(0, 1)))
    return Compose(steps)


def build_gan_loader(
    config: GanTrainConfig, slices: Sequence[dict[str, Any]] | None = None
) -> DataLoader:
    """The training loader: ``batch_size`` random patches per batch, an epoch of batches.

    Args:
        config: The training configuration.
        slices: Slices from :func:`load_training_slices`; read from ``config.data`` when
            ``None``.

    Returns:
        A MONAI ``DataLoader`` whose batches are dicts with ``"image"`` of shape
        ``(batch_size, 1, S, S)`` in [-1, 1].
    """
    import torch
    from monai.data import CacheDataset, DataLoader

    if slices is None:
        slices = load_training_slices(
            config.data.sources,
            config.data.window,
            config.data.body_threshold,
            min_size=config.model.image_size,
        )
    data = [{"image": s["image"], "body": s["body"]} for s in slices]
    dataset = CacheDataset(
        data,
        transform=patch_transforms(
            config.model.image_size, flip=config.data.flip, rot90=config.data.rot90
        ),
        progress=False,
        copy_cache=False,  # the random transforms return new arrays; no deep copy needed
    )
    sampler = torch.utils.data.RandomSampler(
        dataset,
        replacement=True,
        num_samples=config.train.batch_size * config.train.iterations_per_epoch,
    )
    return DataLoader(
        dataset,
        batch_size=config.train.batch_size,
        sampler=sampler,
        num_workers=config.data.num_workers,
        drop_last=True,
    )
