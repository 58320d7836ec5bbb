"""A loss over the inside of each patch: train only the outputs that see their whole context.

RED-CNN (Chen et al. 2017) has no padding: each output pixel depends on the input within
its ``receptive_radius`` (20 pixels for five 5 x 5 layers). At inference a whole slice is
mirror-padded by that radius (:class:`ctpipe.inference.SliceInferer`), so every output
pixel sees a full receptive field. In a training patch the pixels within the radius of the
patch's edge see only part of theirs (the rest is the transposed convolutions' zero
padding): in a 96 x 96 patch that is 66 % of the pixels, in a 55 x 55 patch 93 %.
:class:`MarginLoss` leaves a margin of ``margin`` pixels at every edge out of the loss, so
the network is trained on the pixels as it will be used, and those only.

Example:
    >>> import torch
    >>> loss = MarginLoss(torch.nn.MSELoss(), margin=2)
    >>> target = torch.zeros(1, 1, 6, 6)
    >>> output = target.clone(); output[..., 0, :] = 1.0  # wrong on the edge only
    >>> float(loss(output, target))
    0.0
"""

from __future__ import annotations

import torch

__all__ = ["MarginLoss"]


class MarginLoss(torch.nn.Module):
    """``loss`` of the two tensors' ``(..., H, W)`` without ``margin`` pixels at each edge.

    Args:
        loss: The loss of the cropped tensors (``torch.nn.MSELoss()``, ``L1Loss()``).
        margin: Pixels left out at each of the four edges; 0 scores every pixel.

    Raises:
        ValueError: ``margin`` is negative, or (when called) leaves no pixel of the patch.
    """

    def __init__(self, loss: torch.nn.Module, margin: int) -> None:
        super().__init__()
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        self.loss = loss
        self.margin = int(margin)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss over ``[margin : H - margin, margin : W - margin]`` of both tensors."""
        m = self.margin
        if m == 0:
            return self.loss(output, target)
        height, width = output.shape[-2:]
        if min(height, width) <= 2 * m:
            raise ValueError(
                f"a loss margin of {m} pixels leaves nothing of a {height} x {width} patch"
            )
        return self.loss(output[..., m:-m, m:-m], target[..., m:-m, m:-m])
