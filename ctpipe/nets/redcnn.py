"""RED-CNN: the residual encoder-decoder CNN of Chen et al. for low-dose CT denoising.

H. Chen et al., "Low-Dose CT With a Residual Encoder-Decoder Convolutional Neural
Network", IEEE Trans. Med. Imaging 36(12), 2017. Ten layers: five convolutions and five
transposed convolutions, 96 filters of 5x5, stride 1 and no padding, so each convolution
trims ``kernel_size - 1`` pixels and each transposed convolution restores them. Three
shortcuts (the paper's "residual compensation") add, before a ReLU:

* the output of conv4 to the output of deconv1,
* the output of conv2 to the output of deconv3,
* the input image to the output of deconv5 (the last layer).

Every layer has its own weights. (The widely used reference code, SSinyu/RED-CNN,
re-applies one ``Conv2d`` and one ``ConvTranspose2d`` module four times each, so it trains
about a quarter of the paper's 1.85 million parameters; this module follows the paper.)

Example:
    >>> import torch
    >>> model = REDCNN()
    >>> model.parameter_count()
    1848865
    >>> REDCNN(filters=4)(torch.rand(2, 1, 32, 40)).shape
    torch.Size([2, 1, 32, 40])
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ctpipe.nets.base import Denoiser

#: Convolutions (and, mirrored, transposed convolutions) in RED-CNN.
LAYERS_PER_SIDE = 5
#: Convolutions whose output feeds a shortcut (1-based), as in the paper.
SHORTCUT_CONVS = (2, 4)


class REDCNN(Denoiser):
    """RED-CNN (Chen et al. 2017) for unit-normalised CT slices ``(B, 1, H, W)``.

    Args:
        filters: Feature maps in each hidden layer (96 in the paper).
        kernel_size: Odd kernel size of every layer (5 in the paper). Slices must be at
            least ``5 * (kernel_size - 1) + 1`` pixels (21 for 5x5) in height and width.
        predict_residual: ``False`` (the paper): the output is
            ``relu(deconv5(...) + x)``. ``True``: the last layer's output is read as a
            signed noise estimate and :meth:`forward` returns ``x - noise``, with neither
            the input shortcut nor the final ReLU (which would force the noise to be
            non-negative). Either way :meth:`forward` returns the denoised image.

    Raises:
        ValueError: ``filters`` is not a positive integer, or ``kernel_size`` is not an
            odd integer >= 3.

    Example:
        >>> import torch
        >>> model = REDCNN(filters=4, predict_residual=True)
        >>> model.config, model.receptive_radius
        ({'filters': 4, 'kernel_size': 5, 'predict_residual': True}, 20)
        >>> model(torch.zeros(1, 1, 21, 21)).shape
        torch.Size([1, 1, 21, 21])
    """

    def __init__(
        self, filters: int = 96, kernel_size: int = 5, predict_residual: bool = False
    ) -> None:
        super().__init__()
        if isinstance(filters, bool) or not isinstance(filters, int) or filters < 1:
            raise ValueError(f"filters must be a positive integer, got {filters!r}")
        if (
            isinstance(kernel_size, bool)
            or not isinstance(kernel_size, int)
            or kernel_size < 3
            or kernel_size % 2 == 0
        ):
            raise ValueError(f"kernel_size must be an odd integer >= 3, got {kernel_size!r}")
        self.config = {
            "filters": filters,
            "kernel_size": kernel_size,
            "predict_residual": bool(predict_residual),
        }
        self.predict_residual = bool(predict_residual)
        self.kernel_size = kernel_size
        self.encoder = nn.ModuleList(
            nn.Conv2d(1 if i == 0 else filters, filters, kernel_size)
            for i in range(LAYERS_PER_SIDE)
        )
        self.decoder = nn.ModuleList(
            nn.ConvTranspose2d(filters, 1 if i == LAYERS_PER_SIDE - 1 else filters, kernel_size)
            for i in range(LAYERS_PER_SIDE)
        )

    @property
    def receptive_radius(self) -> int:
        """Pixels on each side that one output pixel depends on (20 for 5x5 kernels).

        An output pixel at least this far from the image border does not see the border;
        :class:`ctpipe.inference.SliceInferer` pads and overlaps tiles by this much.
        """
        return 2 * LAYERS_PER_SIDE * (self.kernel_size // 2)

    @property
    def min_size(self) -> int:
        """Smallest height and width the network accepts (21 for 5x5 kernels)."""
        return LAYERS_PER_SIDE * (self.kernel_size - 1) + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise a unit-normalised batch ``(B, 1, H, W)``; returns the same shape.

        Raises:
            ValueError: ``x`` is not ``(B, 1, H, W)`` or is smaller than :attr:`min_size`.
        """
        self._check_input(x)
        last = self._last_layer_output(x)
        if self.predict_residual:
            return x - last
        return F.relu(last + x)

    def _last_layer_output(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder, then decoder with the conv2/conv4 shortcuts; deconv5's raw output."""
        shortcuts = {}
        out = x
        for index, conv in enumerate(self.encoder, start=1):
            out = F.relu(conv(out))
            if index in SHORTCUT_CONVS:
                shortcuts[index] = out
        for index, deconv in enumerate(self.decoder, start=1):
            out = deconv(out)
            mirror = LAYERS_PER_SIDE - index  # conv whose output has this size
            if mirror in shortcuts:
                out = out + shortcuts[mirror]
            if index < LAYERS_PER_SIDE:
                out = F.relu(out)
        return out

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(
                f"REDCNN expects a (batch, 1, height, width) tensor, got shape {tuple(x.shape)}"
            )
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(
                f"REDCNN with kernel_size={self.kernel_size} needs height and width >= "
                f"{self.min_size} (5 unpadded convolutions), got {tuple(x.shape[-2:])}"
            )
