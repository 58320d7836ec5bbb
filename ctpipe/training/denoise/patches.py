"""Random training patches of a denoiser: the same crops, flips and rotation for both keys.

The low-dose input (``image``) and its normal-dose target (``label``) get the same patches.

Example:
    >>> import torch
    >>> from ctpipe.training.denoise.config import PatchConfig
    >>> item = {"image": torch.rand(1, 8, 8), "label": torch.rand(1, 8, 8)}
    >>> len(patch_transforms(PatchConfig(size=(3, 3), per_slice=4))(item))
    4
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctpipe.training.denoise.config import PatchConfig

__all__ = ["KEYS", "StructureWeightd", "patch_transforms", "structure_weight"]

#: The keys of a training item: the low-dose input and its normal-dose target.
KEYS = ("image", "label")


def patch_transforms(patches: PatchConfig) -> Any:
    """The random part (step 5): the same patches, flips and rotation for both keys.

    Returns a ``Compose`` that maps one slice to a list of ``patches.per_slice`` dicts.

    Example:
        >>> import torch
        >>> from ctpipe.training.denoise.config import PatchConfig
        >>> image = torch.arange(64.0).reshape(1, 8, 8)
        >>> out = patch_transforms(PatchConfig(size=(3, 3), per_slice=4))(
        ...     {"image": image, "label": image.clone()})
        >>> len(out), all(torch.equal(o["image"], o["label"]) for o in out)
        (4, True)
    """
    from monai.transforms import (
        Compose,
        DeleteItemsd,
        RandFlipd,
        RandRotate90d,
        RandSpatialCropSamplesd,
        RandWeightedCropd,
    )

    steps: list[Any]
    if patches.structure_share > 0:
        steps = [
            StructureWeightd(patches.structure_share),
            RandWeightedCropd(
                KEYS,
                w_key=WEIGHT_KEY,
                spatial_size=list(patches.size),
                num_samples=patches.per_slice,
            ),
            DeleteItemsd(WEIGHT_KEY),
        ]
    else:
        steps = [
            RandSpatialCropSamplesd(
                KEYS, roi_size=list(patches.size), num_samples=patches.per_slice, random_size=False
            )
        ]
    if patches.flip:
        steps += [
            RandFlipd(KEYS, prob=0.5, spatial_axis=0),
            RandFlipd(KEYS, prob=0.5, spatial_axis=1),
        ]
    if patches.rot90:
        steps.append(RandRotate90d(KEYS, prob=0.5, max_k=3, spatial_axes=(0, 1)))
    return Compose(steps)


#: The key of the patch-centre weight map (:class:`StructureWeightd`).
WEIGHT_KEY = "weight"


def structure_weight(label: Any, share: float, sigma: float = 2.0) -> Any:
    """Patch-centre weights: ``(1 - share)`` uniform plus ``share`` in proportion to edges.

    The edge strength is the gradient magnitude (Sobel) of the target smoothed by a
    Gaussian of ``sigma`` pixels, so that noise does not count as structure. The weights
    have a mean of 1: a flat region keeps ``1 - share`` of its uniform chance.

    Args:
        label: The normal-dose target, ``(1, H, W)`` (tensor or array).
        share: The share of centres drawn by edge strength, in [0, 1).
        sigma: The Gaussian's standard deviation in pixels.

    Returns:
        A float32 array ``(1, H, W)``; all ones where the target is constant.

    Example:
        >>> import numpy as np
        >>> step = np.zeros((1, 32, 32)); step[:, :, 16:] = 1.0
        >>> w = structure_weight(step, 0.5)
        >>> round(float(w.mean()), 3), float(w[0, 16, 2]), bool(w[0, 16, 16] > 1)
        (1.0, 0.5, True)
    """
    import numpy as np
    from scipy import ndimage

    image = np.asarray(label, dtype=np.float32)[0]
    smooth = ndimage.gaussian_filter(image, sigma)
    edges = np.hypot(ndimage.sobel(smooth, axis=0), ndimage.sobel(smooth, axis=1))
    mean = float(edges.mean())
    if not mean > 0:
        return np.ones_like(image)[None]
    return ((1.0 - share) + share * edges / mean).astype(np.float32)[None]


class StructureWeightd:
    """Add the patch-centre weights of ``label`` (:func:`structure_weight`) as ``weight``.

    Deterministic, so a ``CacheDataset`` caches it with the slice.

    Example:
        >>> import torch
        >>> item = StructureWeightd(0.5)({"label": torch.zeros(1, 8, 8)})
        >>> item["weight"].shape, float(item["weight"].min())
        ((1, 8, 8), 1.0)
    """

    def __init__(self, share: float, sigma: float = 2.0) -> None:
        self.share = share
        self.sigma = sigma

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        """A shallow copy of ``data`` with ``weight`` added."""
        item = dict(data)
        item[WEIGHT_KEY] = structure_weight(data["label"], self.share, self.sigma)
        return item
