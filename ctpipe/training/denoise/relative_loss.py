"""Relative MSE: each patch's error measured against the noise its input brought.

Plain MSE over a batch mixing reconstruction kernels and doses is dominated by the noisy
patches: a sharp-kernel (D45) quarter-dose slice carries about four times the error energy
of a smooth-kernel (B30) one, so the smooth kernel, where a model must beat a strong
classical smoother, gets a small share of every gradient. The relative MSE divides each
patch's squared error by its input's squared error against the same target::

    L = mean over patches i of  |f(x_i) - y_i|^2 / max(|x_i - y_i|^2, floor)

so a patch counts by the fraction of its noise left, whatever its noise level. A gain in dB
is ``-10 log10`` of that fraction, and the mean PSNR over slices (the metric that judges
a denoiser) rewards dB gains on every slice alike: to first order this loss is that
metric's proxy, as plain MSE is the proxy of one PSNR over all pixels pooled. The
``floor`` (5 HU RMS by default) keeps patches of air, where input and target agree, from
dividing by zero.

The input rides along with the target: :func:`pack_target` stacks target and input along
the channel axis for the trainer's ``prepare_batch``, and :class:`RelativeMSELoss` splits
them again.

Example:
    >>> import torch
    >>> y = torch.zeros(2, 1, 8, 8)
    >>> x = y + torch.tensor([0.1, 0.01]).view(2, 1, 1, 1)  # a noisy and a quiet patch
    >>> pred = y + torch.tensor([0.05, 0.005]).view(2, 1, 1, 1)  # both halve their noise
    >>> round(RelativeMSELoss(floor=0.0)(pred, pack_target(y, x)).item(), 4)
    0.25
"""

from __future__ import annotations

import torch

__all__ = ["DEFAULT_FLOOR", "RelativeMSELoss", "pack_target"]

#: The default floor of a patch's input error: (5 HU)^2 on the unit scale of 4096 HU.
DEFAULT_FLOOR = (5.0 / 4096.0) ** 2


def pack_target(target: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
    """Target and input stacked along channels, as :class:`RelativeMSELoss` takes them.

    Args:
        target: The normal-dose patches, ``(B, C, H, W)``.
        noisy: The low-dose inputs, the same shape.

    Returns:
        ``(B, 2C, H, W)``: the target's channels, then the input's.
    """
    if target.shape != noisy.shape:
        raise ValueError(f"target {tuple(target.shape)} and input {tuple(noisy.shape)} differ")
    return torch.cat([target, noisy], dim=1)


class RelativeMSELoss(torch.nn.Module):
    """Mean over patches of the squared error relative to the input's (see the module).

    Args:
        floor: The smallest input error per pixel (mean square, on the model's scale) a
            patch is divided by; the default is :data:`DEFAULT_FLOOR`.
    """

    def __init__(self, floor: float = DEFAULT_FLOOR) -> None:
        super().__init__()
        if not floor >= 0:
            raise ValueError(f"floor must be >= 0, got {floor}")
        self.floor = float(floor)

    def forward(self, prediction: torch.Tensor, packed: torch.Tensor) -> torch.Tensor:
        """The loss of ``prediction`` against ``packed`` (:func:`pack_target`'s output)."""
        channels = prediction.shape[1]
        if packed.shape[1] != 2 * channels:
            raise ValueError(
                f"packed target has {packed.shape[1]} channels, expected {2 * channels} "
                "(target and input: use pack_target)"
            )
        target, noisy = packed[:, :channels], packed[:, channels:]
        error = (prediction - target).square().flatten(1).mean(1)
        reference = (noisy - target).square().flatten(1).mean(1)
        return (error / reference.clamp_min(self.floor).clamp_min(1e-12)).mean()
