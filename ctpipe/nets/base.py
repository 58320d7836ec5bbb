"""One interface for every denoiser: ``forward(x) -> x`` on unit-normalised CT.

Denoisers work on HU mapped linearly to [0, 1] over [-1024, 3072] HU, the convention of the
AAPM low-dose CT literature (:func:`ctpipe.transforms.hu_to_unit`), as tensors shaped
``(batch, 1, height, width)``. They return an image of the same shape (never the noise):
a model trained to predict the residual adds it back inside ``forward``.

Example:
    >>> import torch
    >>> class Identity(Denoiser):
    ...     def forward(self, x):
    ...         return x
    >>> Identity()(torch.zeros(1, 1, 8, 8)).shape
    torch.Size([1, 1, 8, 8])
"""

from __future__ import annotations

import torch
from torch import nn


class Denoiser(nn.Module):
    """Base class of the denoising networks (RED-CNN, REDNet, ...).

    Subclasses implement :meth:`forward`, mapping a noisy unit-normalised image batch
    ``(B, 1, H, W)`` to its denoised estimate of the same shape, and set
    :attr:`config` to the keyword arguments that rebuild them (saved in checkpoints).
    """

    #: Keyword arguments that rebuild the model with :func:`ctpipe.nets.build_denoiser`.
    config: dict

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Return the denoised image batch, same shape as ``x``."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward")

    def parameter_count(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
