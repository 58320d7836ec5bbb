r"""The GAN objective of Goodfellow et al. (2014), on discriminator logits.

The discriminator ``D`` outputs a logit ``l``; its probability that the input is real is
``sigmoid(l)``. With ``log sigmoid(l) = -softplus(-l)`` and
``log(1 - sigmoid(l)) = -softplus(l)`` every term is computed from logits without
overflow:

* **Discriminator** (ascends ``log D(x) + log(1 - D(G(z)))``): it minimises

  .. math:: L_D = \mathrm{mean}\,\mathrm{softplus}(-l_{real})
            + \mathrm{mean}\,\mathrm{softplus}(l_{fake}).

* **Generator, minimax form** (descends ``log(1 - D(G(z)))``): ``-mean softplus(l_fake)``.
  Its gradient vanishes when ``D`` rejects the fakes confidently, early in training.
* **Generator, non-saturating form** (the paper's practical choice, ascends
  ``log D(G(z))``): it minimises

  .. math::

      L_G = -\mathrm{mean} \log \sigma(l_{fake}) = \mathrm{mean}\,\mathrm{softplus}(-l_{fake}).

Example:
    >>> import torch
    >>> fake = torch.tensor([-3.0, 0.0, 2.0])
    >>> ns = generator_loss_non_saturating(fake)
    >>> bool(torch.isclose(ns, -torch.log(torch.sigmoid(fake)).mean()))
    True
    >>> float(discriminator_loss(torch.tensor([0.0]), torch.tensor([0.0])))  # 2 log 2
    1.3862943649291992
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = [
    "discriminator_loss",
    "generator_loss_minimax",
    "generator_loss_non_saturating",
]


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``-mean log D(x) - mean log(1 - D(G(z)))`` from the logits of reals and fakes.

    Args:
        real_logits: Discriminator logits of real images, any shape.
        fake_logits: Discriminator logits of generated images, any shape.

    Returns:
        A scalar tensor.
    """
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss_non_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """``-mean log D(G(z))``: the non-saturating generator loss.

    Args:
        fake_logits: Discriminator logits of generated images.

    Returns:
        A scalar tensor.
    """
    return F.softplus(-fake_logits).mean()


def generator_loss_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    """``mean log(1 - D(G(z)))``: the generator's side of the minimax game (saturates).

    Args:
        fake_logits: Discriminator logits of generated images.

    Returns:
        A scalar tensor.

    Example:
        >>> import torch
        >>> float(generator_loss_minimax(torch.tensor([0.0])))  # log(1/2)
        -0.6931471824645996
    """
    return -F.softplus(fake_logits).mean()
