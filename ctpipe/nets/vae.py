r"""A convolutional variational autoencoder (Kingma & Welling 2014) for CT slices or patches.

The encoder is the recognition model ``q_phi(z|x) = N(mu, diag(sigma^2))``: a stack of
stride-2 convolutions followed by two linear heads, one for ``mu`` and one for the
log-variance ``log sigma^2``. A latent code is drawn by reparameterisation, ``z = mu + sigma
* eps`` (:func:`ctpipe.elbo.reparameterize`). The decoder is the generative model
``p_theta(x|z)``: a linear layer back to the smallest feature map and stride-2 transposed
convolutions up to the input size, the last of which gives the output (as in DCGAN, which
keeps the full-resolution cost small). Its output is the per-pixel Gaussian mean ``x_mean``
(through a sigmoid, for images scaled to [0, 1]) and, for ``reconstruction="gaussian_nll"``,
a per-pixel log-variance ``x_logvar``. The prior is ``p(z) = N(0, I)``.

Layers are MONAI ``Convolution`` blocks (convolution, batch norm, leaky ReLU), so the same
class builds a 2-D model (``in_shape=(H, W)``) or a 3-D one (``in_shape=(D, H, W)``).

A trained model is stored as a ctpipe checkpoint and rebuilt by
:func:`ctpipe.checkpoints.vae.load_vae`.

Example:
    >>> import torch
    >>> vae = VAE((32, 32), latent_dim=8, channels=(4, 8))
    >>> out = vae(torch.rand(2, 1, 32, 32))
    >>> out.x_mean.shape, out.mu.shape, out.z.shape, out.x_logvar is None
    (torch.Size([2, 1, 32, 32]), torch.Size([2, 8]), torch.Size([2, 8]), True)
    >>> vae.sample(3).shape
    torch.Size([3, 1, 32, 32])
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from ctpipe.elbo import RECONSTRUCTIONS, reparameterize

__all__ = ["NORMS", "VAE", "VAEOutput"]

#: Normalisation layers the encoder and decoder may use.
NORMS = ("batch", "instance", "none")


class VAEOutput(NamedTuple):
    """What :meth:`VAE.forward` returns.

    Attributes:
        x_mean: The decoder's mean of ``p(x|z)``, shaped like the input.
        mu: The posterior means, ``(batch, latent_dim)``.
        logvar: The posterior log-variances, ``(batch, latent_dim)``.
        z: The drawn latent codes, ``(batch, latent_dim)``.
        x_logvar: The decoder's per-pixel log-variances (``None`` for ``"mse"`` models).
    """

    x_mean: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    x_logvar: torch.Tensor | None


class VAE(nn.Module):
    """Convolutional VAE: encoder ``q(z|x)``, reparameterisation, decoder ``p(x|z)``.

    Args:
        in_shape: Spatial size of the inputs, 2 (``H, W``) or 3 (``D, H, W``) numbers, each
            divisible by ``2 ** len(channels)``.
        latent_dim: Dimension of the latent code ``z``.
        channels: Feature channels of the encoder levels; each level halves the size. The
            decoder mirrors them.
        in_channels: Image channels.
        reconstruction: ``"mse"`` (the decoder gives a mean; the likelihood has a fixed
            variance) or ``"gaussian_nll"`` (it also gives a per-pixel log-variance).
        norm: ``"batch"``, ``"instance"`` or ``"none"``.

    Raises:
        ValueError: A setting outside its rule (named in the message).

    Example:
        >>> VAE((16, 16, 16), latent_dim=4, channels=(2, 4)).sample(1).shape
        torch.Size([1, 1, 16, 16, 16])
    """

    def __init__(
        self,
        in_shape: Sequence[int] = (128, 128),
        *,
        latent_dim: int = 64,
        channels: Sequence[int] = (16, 32, 64, 128, 128),
        in_channels: int = 1,
        reconstruction: str = "mse",
        norm: str = "batch",
    ) -> None:
        super().__init__()
        in_shape, channels = _check_shape(in_shape, channels)
        _check_positive("latent_dim", latent_dim)
        _check_positive("in_channels", in_channels)
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(
                f"reconstruction must be one of {', '.join(RECONSTRUCTIONS)}, "
                f"got {reconstruction!r}"
            )
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
        self.config: dict[str, Any] = {
            "in_shape": list(in_shape),
            "latent_dim": int(latent_dim),
            "channels": list(channels),
            "in_channels": int(in_channels),
            "reconstruction": reconstruction,
            "norm": norm,
        }
        self.spatial_dims = len(in_shape)
        self.latent_dim = int(latent_dim)
        self.reconstruction = reconstruction
        self.base_shape = tuple(s // 2 ** len(channels) for s in in_shape)
        flat = channels[-1] * math.prod(self.base_shape)
        self.encoder = self._encoder(in_channels, channels, norm)
        self.fc_mu = nn.Linear(flat, latent_dim)
        self.fc_logvar = nn.Linear(flat, latent_dim)
        self.fc_decode = nn.Linear(latent_dim, flat)
        out_channels = in_channels * (2 if reconstruction == "gaussian_nll" else 1)
        self.decoder = self._decoder(channels, out_channels, norm)
        self.in_channels = int(in_channels)

    def _encoder(self, in_channels: int, channels: Sequence[int], norm: str) -> nn.Sequential:
        from monai.networks.blocks import Convolution

        layers, previous = [], in_channels
        for c in channels:
            layers.append(
                Convolution(
                    self.spatial_dims,
                    previous,
                    c,
                    strides=2,
                    kernel_size=3,
                    act=("leakyrelu", {"negative_slope": 0.2}),
                    norm=_norm(norm),
                )
            )
            previous = c
        return nn.Sequential(*layers)

    def _decoder(self, channels: Sequence[int], out_channels: int, norm: str) -> nn.Sequential:
        from monai.networks.blocks import Convolution

        widths = list(reversed(channels))
        layers: list[nn.Module] = [
            Convolution(
                self.spatial_dims,
                a,
                b,
                strides=2,
                kernel_size=3,
                is_transposed=True,
                act=("leakyrelu", {"negative_slope": 0.2}),
                norm=_norm(norm),
            )
            for a, b in itertools.pairwise(widths)
        ]
        layers.append(  # the last up-sampling gives the output directly (as in DCGAN)
            Convolution(
                self.spatial_dims,
                widths[-1],
                out_channels,
                strides=2,
                kernel_size=3,
                is_transposed=True,
                conv_only=True,
            )
        )
        return nn.Sequential(*layers)

    # --- the model --------------------------------------------------------------------------

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``q(z|x)``: the posterior means and log-variances, each ``(batch, latent_dim)``."""
        features = self.encoder(x).flatten(1)
        return self.fc_mu(features), self.fc_logvar(features)

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``p(x|z)``: the per-pixel mean (in [0, 1]) and log-variance (or ``None``)."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be shaped (batch, {self.latent_dim}), got {tuple(z.shape)}")
        features = self.fc_decode(z).view(z.shape[0], -1, *self.base_shape)
        out = self.decoder(features)
        x_mean = torch.sigmoid(out[:, : self.in_channels])
        x_logvar = out[:, self.in_channels :] if self.reconstruction == "gaussian_nll" else None
        return x_mean, x_logvar

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> VAEOutput:
        """Encode, draw ``z`` by reparameterisation (in training and eval mode), decode.

        Args:
            x: Images ``(batch, in_channels, *in_shape)``, scaled to [0, 1].
            generator: Random generator of the draw; ``None`` uses torch's global one.
        """
        self.check_input(x)
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar, generator)
        x_mean, x_logvar = self.decode(z)
        return VAEOutput(x_mean, mu, logvar, z, x_logvar)

    def sample(
        self, n: int, *, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> torch.Tensor:
        """Decode ``n`` codes drawn from the prior ``N(0, temperature^2 I)``: image means.

        Args:
            n: Number of images.
            generator: Random generator (on the CPU); ``None`` uses torch's global one.
            temperature: Scale of the prior's standard deviation (1 is the prior itself).
        """
        _check_positive("n", n)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        z = torch.randn(n, self.latent_dim, generator=generator) * temperature
        return self.decode(z.to(self.device))[0]

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is ``(batch, in_channels, *in_shape)``."""
        expected = (self.in_channels, *self.config["in_shape"])
        if x.ndim != self.spatial_dims + 2 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"input must be shaped (batch, {', '.join(map(str, expected))}), "
                f"got {tuple(x.shape)}"
            )

    @property
    def device(self) -> torch.device:
        """The device of the weights."""
        return next(self.parameters()).device

    def parameter_count(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def _norm(norm: str) -> str | None:
    return None if norm == "none" else norm.upper()


def _check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _check_shape(
    in_shape: Sequence[int], channels: Sequence[int]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    in_shape, channels = tuple(in_shape), tuple(channels)
    if len(in_shape) not in (2, 3):
        raise ValueError(f"in_shape must have 2 or 3 sizes (2-D or 3-D), got {in_shape!r}")
    if not channels:
        raise ValueError("channels must list at least one encoder level, got ()")
    for c in channels:
        _check_positive("each of channels", c)
    factor = 2 ** len(channels)
    if any(
        isinstance(s, bool) or not isinstance(s, int) or s < factor or s % factor for s in in_shape
    ):
        raise ValueError(
            f"in_shape sizes must be multiples of 2 ** len(channels) = {factor} (one halving "
            f"per encoder level), got {in_shape!r}"
        )
    return in_shape, channels
