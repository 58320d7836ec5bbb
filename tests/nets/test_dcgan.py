"""DCGAN generator and discriminator: shapes, ranges, the paper's layout and initialisation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ctpipe.nets.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_init_


@pytest.mark.parametrize("size", [16, 32, 64, 128])
def test_shapes_and_tanh_range(size):
    g = DCGANGenerator(latent_size=12, features=4, image_size=size)
    d = DCGANDiscriminator(features=4, image_size=size)
    images = g(torch.randn(3, 12))
    assert images.shape == (3, 1, size, size)
    assert images.abs().max() <= 1.0
    assert d(images).shape == (3,)
    assert g(torch.randn(2, 12, 1, 1)).shape == (2, 1, size, size)  # (B, nz, 1, 1) also works


def test_layer_layout_follows_the_paper():
    g = DCGANGenerator(latent_size=100, features=16, image_size=64)
    d = DCGANDiscriminator(features=16, image_size=64)
    convs = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in convs] == [
        (100, 128, 1),
        (128, 64, 2),
        (64, 32, 2),
        (32, 16, 2),
        (16, 1, 2),
    ]
    # batch norm after every generator layer but the output; none on the discriminator's input
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g.modules()) == 4
    d_layers = list(d.main)
    assert isinstance(d_layers[0], nn.Conv2d) and isinstance(d_layers[1], nn.LeakyReLU)
    assert d_layers[1].negative_slope == 0.2
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == 3
    assert not any(isinstance(m, nn.Linear | nn.MaxPool2d) for m in [*g.modules(), *d.modules()])
    # parameter count by hand: conv weights (no bias) + 2 per BN channel
    g_count = (
        100 * 128 * 16
        + 128 * 64 * 16
        + 64 * 32 * 16
        + 32 * 16 * 16
        + 16 * 16
        + 2 * (128 + 64 + 32 + 16)
    )
    d_count = 16 * 16 + 16 * 32 * 16 + 32 * 64 * 16 + 64 * 128 * 16 + 128 * 16 + 2 * (32 + 64 + 128)
    assert sum(p.numel() for p in g.parameters()) == g_count
    assert sum(p.numel() for p in d.parameters()) == d_count


def test_initialisation_statistics():
    torch.manual_seed(0)
    g = DCGANGenerator(latent_size=100, features=32, image_size=64)
    weights = torch.cat(
        [m.weight.detach().flatten() for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    )
    scales = torch.cat([m.weight.detach() for m in g.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(weights.mean().item()) < 1e-3 and weights.std().item() == pytest.approx(
        0.02, rel=0.02
    )
    assert scales.mean().item() == pytest.approx(1.0, abs=0.01)
    assert scales.std().item() == pytest.approx(0.02, rel=0.3)
    layer = nn.Conv2d(1, 1, 3, bias=True)
    nn.init.constant_(layer.bias, 5.0)
    dcgan_init_(layer)
    assert layer.bias.item() == 0.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"image_size": 48}, "image_size must be a power of two >= 16, got 48"),
        ({"image_size": 8}, "image_size must be a power of two >= 16, got 8"),
        ({"features": 0}, "features must be a positive integer, got 0"),
        ({"latent_size": -1}, "latent_size must be a positive integer, got -1"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DCGANGenerator(**kwargs)


def test_discriminator_bad_size():
    with pytest.raises(ValueError, match="image_size must be a power of two"):
        DCGANDiscriminator(image_size=100)
