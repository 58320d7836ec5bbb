"""A tiny VAE and a phantom volume for anomaly tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ctpipe.nets.vae import VAE
from ctpipe.phantom import make_phantom
from ctpipe.slice_grid import SliceGrid

GRID = SliceGrid(size=(32, 32), pixel_mm=6.0)


@pytest.fixture(scope="package")
def tiny_vae() -> VAE:
    torch.manual_seed(0)
    return VAE((32, 32), latent_dim=4, channels=(4, 8)).eval()


@pytest.fixture(scope="package")
def phantom_volume() -> tuple[np.ndarray, tuple[float, float, float]]:
    phantom = make_phantom(shape=(96, 80, 4), spacing=(2.0, 2.0, 3.0), seed=0)
    return phantom.hu, (2.0, 2.0, 3.0)
