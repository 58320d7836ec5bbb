r"""The losses of semantic inpainting by latent search (Yeh et al., CVPR 2017).

For a corrupted image ``y`` with known-pixel mask ``M`` (1 = known) and a generator
``G``, the search minimises over the latent ``z``

.. math:: L(z) = L_c(z) + \lambda L_p(z),

* **context loss** ``L_c(z) = || W \odot (G(z) - y) ||_1``: the generated image must agree
  with the known pixels. The weights ``W`` (:func:`context_weights`) are ``M`` itself
  (``uniform``), Yeh et al.'s importance weights (``neighbourhood``: the fraction of hole
  pixels in a ``window x window`` neighbourhood of each known pixel, so that known pixels
  next to the hole count most and those far from it not at all), or an exponential decay
  with the distance to the hole (``distance``);
* **prior loss** ``L_p(z) = log(1 - D(G(z)))`` (:func:`prior_loss`): the discriminator must
  find ``G(z)`` realistic. From a logit ``l``, ``log(1 - sigmoid(l)) = -softplus(l)``.

Both are per image (shape ``(B,)``), summed over pixels as in the paper, so images in a
batch are optimised independently when their losses are summed.

Example:
    >>> import torch
    >>> known = torch.ones(1, 1, 5, 5)
    >>> known[..., 2, 2] = 0
    >>> w = context_weights(known, "neighbourhood", window=3)
    >>> round(float(w[0, 0, 1, 1]), 4), float(w[0, 0, 2, 2]), float(w[0, 0, 0, 0])
    (0.1111, 0.0, 0.0)
"""

from __future__ import annotations

from typing import Literal

import torch
from torch.nn import functional as F

__all__ = ["WEIGHTINGS", "context_loss", "context_weights", "prior_loss"]

Weighting = Literal["uniform", "neighbourhood", "distance"]
#: Context weightings :func:`context_weights` knows.
WEIGHTINGS = ("uniform", "neighbourhood", "distance")


def context_weights(
    known: torch.Tensor,
    weighting: Weighting = "uniform",
    *,
    window: int = 7,
    distance_scale: float = 8.0,
) -> torch.Tensor:
    """Per-pixel weights ``W`` of the context loss; 0 on every hole pixel.

    Args:
        known: ``(B, 1, H, W)``, 1 on known pixels and 0 in the hole.
        weighting: ``uniform`` (``W = M``), ``neighbourhood`` (Yeh et al. eq. 3: the
            fraction of hole pixels among the ``window x window`` neighbours of each known
            pixel, the neighbours counted inside the image), or ``distance``
            (``M * exp(-d / distance_scale)`` with ``d`` the Euclidean distance in pixels
            to the nearest hole pixel).
        window: Odd neighbourhood side for ``neighbourhood``.
        distance_scale: Decay length in pixels for ``distance``.

    Returns:
        ``(B, 1, H, W)`` weights, same dtype and device as ``known``.

    Raises:
        ValueError: Unknown weighting, even or non-positive window, non-positive scale.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}")
    known = known.float()
    if weighting == "uniform":
        return known
    if weighting == "neighbourhood":
        if window < 1 or window % 2 == 0:
            raise ValueError(f"window must be an odd number >= 1, got {window!r}")
        holes = F.avg_pool2d(
            1.0 - known, window, stride=1, padding=window // 2, count_include_pad=False
        )
        return known * holes
    if not distance_scale > 0:
        raise ValueError(f"distance_scale must be > 0, got {distance_scale!r}")
    import numpy as np
    from scipy.ndimage import distance_transform_edt

    hole = (known < 0.5).cpu().numpy()
    distance = np.stack(
        [distance_transform_edt(~h[0]) if h.any() else np.full(h.shape[1:], np.inf) for h in hole]
    )[:, None]
    return known * torch.as_tensor(
        np.exp(-distance / distance_scale), dtype=known.dtype, device=known.device
    )


def context_loss(
    generated: torch.Tensor, target: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """``sum |W * (G(z) - y)|`` per image: shape ``(B,)``.

    Example:
        >>> g, y = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)
        >>> context_loss(g, y, torch.ones(2, 1, 2, 2)).tolist()
        [4.0, 4.0]
    """
    return (weights * (generated - target)).abs().flatten(1).sum(dim=1)


def prior_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """``log(1 - D(G(z)))`` per image from the discriminator's logits: ``-softplus(l)``.

    Example:
        >>> round(float(prior_loss(torch.tensor([0.0]))[0]), 4)  # log(1/2)
        -0.6931
    """
    return -F.softplus(fake_logits)
