"""GAN inpainting of CT: latent search (Yeh et al. 2017), faster start and slice sequences.

One idea per module:

* :mod:`~ctpipe.inpaint.masks`: read masks (NIfTI, PNG) and check them against the CT;
* :mod:`~ctpipe.inpaint.mask_generators`: seeded boxes, strokes and metal-like streaks;
* :mod:`~ctpipe.inpaint.losses`: context loss (uniform, neighbourhood or distance
  weights) and prior loss;
* :mod:`~ctpipe.inpaint.search`: Adam on the latent ``z`` (Yeh et al., CVPR 2017);
* :mod:`~ctpipe.inpaint.init`: nearest pool sample by data + structure loss (Lahiri et
  al., ICIP 2019);
* :mod:`~ctpipe.inpaint.sequence`: slices as video frames: latent reuse and group
  consistency (Lahiri et al.);
* :mod:`~ctpipe.inpaint.blend`: plain and Poisson blending;
* :mod:`~ctpipe.inpaint.tiles`: one generator-sized tile per hole;
* :mod:`~ctpipe.inpaint.volume`: :func:`inpaint_volume`, the HU volume entry point.

Names are imported lazily, so ``import ctpipe.inpaint`` loads no torch.

Example:
    >>> from ctpipe.inpaint import InpaintSettings
    >>> InpaintSettings(mode="independent", blend="plain").init
    'pool'
"""

from __future__ import annotations

from ctpipe.lazy import lazy_exports

_EXPORTS = {
    "ctpipe.inpaint.masks": ("read_mask", "check_mask"),
    "ctpipe.inpaint.mask_generators": ("BoxMask", "StrokeMask", "StreakMask", "generate_mask"),
    "ctpipe.inpaint.search": ("SearchSettings", "latent_search"),
    "ctpipe.inpaint.init": ("LatentPool", "nearest_latents"),
    "ctpipe.inpaint.sequence": ("inpaint_sequence",),
    "ctpipe.inpaint.blend": ("blend_plain", "blend_poisson"),
    "ctpipe.inpaint.volume": (
        "InpaintResult",
        "InpaintSettings",
        "SliceStats",
        "inpaint_slice",
        "inpaint_volume",
    ),
}

__all__ = sorted(name for names in _EXPORTS.values() for name in names)

__getattr__ = lazy_exports(__name__, _EXPORTS)
