"""REDNet: the very deep encoder-decoder with symmetric skip connections of Mao et al.

X.-J. Mao, C. Shen and Y.-B. Yang, "Image Restoration Using Very Deep Convolutional
Encoder-Decoder Networks with Symmetric Skip Connections", NIPS 2016. ``depth / 2``
convolutions then ``depth / 2`` transposed convolutions, 64 filters of 3x3, stride 1 and
"same" padding, so every feature map keeps the slice size. Every second convolution's
output is added to the output of its mirrored transposed convolution (the one whose
output it matches in the symmetric layout), and the sum goes through a ReLU; the input
image is added to the output of the last layer the same way. With ``depth=10`` the
shortcuts are conv4 -> deconv1, conv2 -> deconv3 and input -> deconv5, the same pattern as
RED-CNN.

Example:
    >>> import torch
    >>> REDNet(depth=10).parameter_count()
    296641
    >>> REDNet(depth=4, filters=4)(torch.rand(2, 1, 17, 23)).shape
    torch.Size([2, 1, 17, 23])
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ctpipe.nets.base import Denoiser


class REDNet(Denoiser):
    """REDNet (Mao et al. 2016) for unit-normalised CT slices ``(B, 1, H, W)``.

    Args:
        depth: Total number of layers, an even number >= 4: ``depth / 2`` convolutions and
            as many transposed convolutions. The paper reports 10, 20 and 30 (RED30 is its
            best).
        filters: Feature maps in each hidden layer (64 in the paper).
        kernel_size: Odd kernel size of every layer (3 in the paper).
        predict_residual: ``False`` (the paper): the output is
            ``relu(last_layer(...) + x)``. ``True``: the last layer's output is read as a
            signed noise estimate and :meth:`forward` returns ``x - noise``, with neither
            the input shortcut nor the final ReLU. Either way :meth:`forward` returns the
            denoised image.

    Raises:
        ValueError: ``depth`` is not an even integer >= 4, ``filters`` is not a positive
            integer, or ``kernel_size`` is not an odd integer >= 3.

    Example:
        >>> model = REDNet(depth=20, filters=8)
        >>> model.config, model.receptive_radius
        ({'depth': 20, 'filters': 8, 'kernel_size': 3, 'predict_residual': False}, 20)
    """

    def __init__(
        self,
        depth: int = 30,
        filters: int = 64,
        kernel_size: int = 3,
        predict_residual: bool = False,
    ) -> None:
        super().__init__()
        _check_arguments(depth, filters, kernel_size)
        self.config = {
            "depth": depth,
            "filters": filters,
            "kernel_size": kernel_size,
            "predict_residual": bool(predict_residual),
        }
        self.predict_residual = bool(predict_residual)
        self.kernel_size = kernel_size
        self.layers_per_side = depth // 2
        half, pad = self.layers_per_side, kernel_size // 2
        self.encoder = nn.ModuleList(
            nn.Conv2d(1 if i == 0 else filters, filters, kernel_size, padding=pad)
            for i in range(half)
        )
        self.decoder = nn.ModuleList(
            nn.ConvTranspose2d(filters, 1 if i == half - 1 else filters, kernel_size, padding=pad)
            for i in range(half)
        )

    @property
    def receptive_radius(self) -> int:
        """Pixels on each side that one output pixel depends on (``depth`` for 3x3).

        An output pixel at least this far from the image border does not see the border;
        :class:`ctpipe.inference.SliceInferer` pads and overlaps tiles by this much.
        """
        return 2 * self.layers_per_side * (self.kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise a unit-normalised batch ``(B, 1, H, W)``; returns the same shape.

        Raises:
            ValueError: ``x`` is not shaped ``(B, 1, H, W)``.
        """
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(
                f"REDNet expects a (batch, 1, height, width) tensor, got shape {tuple(x.shape)}"
            )
        last = self._last_layer_output(x)
        if self.predict_residual:
            return x - last
        return F.relu(last + x)

    def _last_layer_output(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder, then decoder with the every-second-layer skips; the last raw output."""
        half = self.layers_per_side
        skips = {}
        out = x
        for index, conv in enumerate(self.encoder, start=1):
            out = F.relu(conv(out))
            if index % 2 == 0 and index < half:
                skips[index] = out
        for index, deconv in enumerate(self.decoder, start=1):
            out = deconv(out)
            mirror = half - index  # conv whose output this layer's output mirrors
            if mirror in skips:
                out = out + skips[mirror]
            if index < half:
                out = F.relu(out)
        return out


def _check_arguments(depth: int, filters: int, kernel_size: int) -> None:
    """Raise ValueError naming the rule for a bad ``depth``, ``filters`` or ``kernel_size``."""
    if not _is_int(depth) or depth < 4 or depth % 2:
        raise ValueError(
            f"depth must be an even integer >= 4 (half convolutions, half transposed "
            f"convolutions; the paper uses 10, 20 or 30), got {depth!r}"
        )
    if not _is_int(filters) or filters < 1:
        raise ValueError(f"filters must be a positive integer, got {filters!r}")
    if not _is_int(kernel_size) or kernel_size < 3 or kernel_size % 2 == 0:
        raise ValueError(
            f"kernel_size must be an odd integer >= 3 (so padding keeps the size), "
            f"got {kernel_size!r}"
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
