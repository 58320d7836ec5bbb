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

__all__ = ["KEYS", "patch_transforms"]

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
    from monai.transforms import Compose, RandFlipd, RandRotate90d, RandSpatialCropSamplesd

    steps: list[Any] = [
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
