"""DCGAN generator and discriminator (Radford, Metz and Chintala, ICLR 2016) for CT patches.

The architecture guidelines of the paper, for single-channel square images of side
``image_size`` (a power of two, at least 16):

* **Generator** ``z -> image``: the latent vector is projected to a ``4 x 4`` map by a
  transposed convolution, then each stride-2 transposed convolution (kernel 4, padding 1)
  doubles the side and halves the channels, down to ``features`` channels; a last one
  gives the image. Batch normalisation and ReLU after every layer but the output, which
  is ``tanh`` (images scaled to [-1, 1]). No fully connected or pooling layer.
* **Discriminator** ``image -> logit``: stride-2 convolutions (kernel 4, padding 1) halve
  the side and double the channels from ``features``; batch normalisation on every layer
  but the first; LeakyReLU with slope 0.2; a last ``4 x 4`` convolution gives one logit
  per image (no sigmoid: the losses in :mod:`ctpipe.gan_losses` take logits).
* Weights are drawn from N(0, 0.02) and batch-norm scales from N(1, 0.02)
  (:func:`dcgan_init_`).

The paper uses 64 and 128 features for 64 x 64 colour images; the CT default here is
smaller (16), so that a model trains on a CPU and ships in a few MB.

Example:
    >>> import torch
    >>> g, d = DCGANGenerator(latent_size=8, features=4), DCGANDiscriminator(features=4)
    >>> images = g(torch.randn(3, 8))
    >>> images.shape, d(images).shape
    (torch.Size([3, 1, 64, 64]), torch.Size([3]))
    >>> bool(images.abs().max() <= 1)
    True
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["DCGANDiscriminator", "DCGANGenerator", "dcgan_init_"]


def _levels(image_size: int) -> int:
    """Stride-2 layers between the 4 x 4 map and the image; validates ``image_size``."""
    if not (
        isinstance(image_size, int) and image_size >= 16 and image_size & (image_size - 1) == 0
    ):
        raise ValueError(f"image_size must be a power of two >= 16, got {image_size!r}")
    return int(math.log2(image_size)) - 2


def _check_positive(name: str, value: int) -> None:
    if not (isinstance(value, int) and value >= 1):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


class DCGANGenerator(nn.Module):
    """The DCGAN generator: a latent vector to a ``tanh`` image in [-1, 1].

    Args:
        latent_size: Length of the latent vector ``z`` (100 in the paper).
        features: Channels of the last hidden layer; the first has ``features * 2**(L-1)``
            for ``L`` stride-2 layers (8x for 64 x 64 images).
        image_size: Side of the square output image, a power of two >= 16.
        channels: Image channels (1 for CT).

    Example:
        >>> g = DCGANGenerator(latent_size=10, features=8, image_size=32)
        >>> g(torch.randn(2, 10)).shape, g.config["image_size"]
        (torch.Size([2, 1, 32, 32]), 32)
    """

    def __init__(
        self, latent_size: int = 100, features: int = 16, image_size: int = 64, channels: int = 1
    ) -> None:
        super().__init__()
        levels = _levels(image_size)
        for name, value in (("latent_size", latent_size), ("features", features)):
            _check_positive(name, value)
        _check_positive("channels", channels)
        self.config = {
            "latent_size": latent_size,
            "features": features,
            "image_size": image_size,
            "channels": channels,
        }
        width = features * 2 ** (levels - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_size, width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        for _ in range(levels - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(inplace=True),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        dcgan_init_(self)

    @property
    def latent_size(self) -> int:
        """Length of the latent vector."""
        return int(self.config["latent_size"])

    @property
    def image_size(self) -> int:
        """Side of the generated images."""
        return int(self.config["image_size"])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images ``(B, channels, S, S)`` in [-1, 1] from latents ``(B, latent_size)``."""
        if z.dim() == 2:
            z = z[:, :, None, None]
        return self.main(z)


class DCGANDiscriminator(nn.Module):
    """The DCGAN discriminator: an image to one real-vs-generated logit.

    Args:
        features: Channels of the first layer (doubled at each stride-2 layer).
        image_size: Side of the square input image, a power of two >= 16.
        channels: Image channels (1 for CT).

    Example:
        >>> d = DCGANDiscriminator(features=8, image_size=32)
        >>> d(torch.zeros(5, 1, 32, 32)).shape
        torch.Size([5])
    """

    def __init__(self, features: int = 16, image_size: int = 64, channels: int = 1) -> None:
        super().__init__()
        levels = _levels(image_size)
        _check_positive("features", features)
        _check_positive("channels", channels)
        self.config = {"features": features, "image_size": image_size, "channels": channels}
        layers: list[nn.Module] = [
            nn.Conv2d(channels, features, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        width = features
        for _ in range(levels - 1):
            layers += [
                nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width *= 2
        layers.append(nn.Conv2d(width, 1, 4, 1, 0, bias=False))
        self.main = nn.Sequential(*layers)
        dcgan_init_(self)

    @property
    def image_size(self) -> int:
        """Side of the images scored."""
        return int(self.config["image_size"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B,)``: positive means "real"; ``sigmoid`` gives the probability."""
        return self.main(x).reshape(x.shape[0])


def dcgan_init_(module: nn.Module) -> None:
    """Initialise as in the DCGAN paper: N(0, 0.02) weights, N(1, 0.02) BN scales.

    Example:
        >>> conv = nn.Conv2d(1, 512, 4)
        >>> dcgan_init_(conv)
        >>> round(float(conv.weight.detach().std()), 2)
        0.02
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
