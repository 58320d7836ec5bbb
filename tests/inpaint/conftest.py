"""Tiny seeded DCGANs (16 x 16 images) for fast inpainting tests."""

from __future__ import annotations

import pytest
import torch

from ctpipe.nets.dcgan import DCGANDiscriminator, DCGANGenerator


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks run fastest on one thread (and do not fight other jobs for cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def gan():
    torch.manual_seed(0)
    generator = DCGANGenerator(latent_size=8, features=4, image_size=16).eval()
    discriminator = DCGANDiscriminator(features=4, image_size=16).eval()
    return generator, discriminator


def centre_hole(batch: int = 1, size: int = 16, lo: int = 5, hi: int = 11) -> torch.Tensor:
    """Known-pixel mask (1 = known) with a square hole."""
    known = torch.ones(batch, 1, size, size)
    known[..., lo:hi, lo:hi] = 0
    return known
