"""The relative MSE against a hand computation, its floor and its refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ctpipe.training.denoise.relative_loss import DEFAULT_FLOOR, RelativeMSELoss, pack_target


def test_each_patch_counts_by_the_fraction_of_its_noise_left():
    rng = np.random.default_rng(0)
    y = rng.random((3, 1, 6, 6))
    x = y + rng.normal(0, [[[[0.1]]], [[[0.01]]], [[[0.03]]]], size=y.shape)
    pred = y + rng.normal(0, 0.005, size=y.shape)
    expected = np.mean(
        [np.mean((pred[i] - y[i]) ** 2) / np.mean((x[i] - y[i]) ** 2) for i in range(3)]
    )
    tensors = [torch.from_numpy(a) for a in (pred, y, x)]
    loss = RelativeMSELoss(floor=0.0)(tensors[0], pack_target(tensors[1], tensors[2]))
    assert loss.item() == pytest.approx(expected, rel=1e-9)


def test_plain_mse_is_dominated_by_the_noisy_patch_and_this_loss_is_not():
    y = torch.zeros(2, 1, 4, 4)
    x = y + torch.tensor([0.1, 0.01]).view(2, 1, 1, 1)
    quiet_fixed = y + torch.tensor([0.1, 0.0]).view(2, 1, 1, 1)  # only the quiet patch denoised
    loud_fixed = y + torch.tensor([0.0, 0.01]).view(2, 1, 1, 1)  # only the noisy one
    relative = RelativeMSELoss(floor=0.0)
    packed = pack_target(y, x)
    assert relative(quiet_fixed, packed).item() == pytest.approx(relative(loud_fixed, packed))
    mse = torch.nn.MSELoss()
    assert mse(quiet_fixed, y).item() > 50 * mse(loud_fixed, y).item()


def test_the_floor_bounds_patches_where_input_equals_target():
    y = torch.zeros(1, 1, 4, 4)
    pred = y + 0.001
    loss = RelativeMSELoss()(pred, pack_target(y, y.clone()))
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(0.001**2 / DEFAULT_FLOOR, rel=1e-6)


def test_gradients_flow_to_the_prediction_only():
    y, x = torch.zeros(2, 1, 4, 4), torch.full((2, 1, 4, 4), 0.1)
    pred = torch.full((2, 1, 4, 4), 0.05, requires_grad=True)
    RelativeMSELoss()(pred, pack_target(y, x)).backward()
    # d/dp mean_i mean((p - y)^2) / mean((x - y)^2) = 2 (p - y) / (16 * 2 * 0.01) per pixel
    assert torch.allclose(pred.grad, torch.full_like(pred, 2 * 0.05 / (32 * 0.01)))


def test_refuses_an_unpacked_target_and_a_negative_floor():
    y = torch.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="use pack_target"):
        RelativeMSELoss()(y, y)
    with pytest.raises(ValueError, match="differ"):
        pack_target(y, torch.zeros(1, 1, 4, 5))
    with pytest.raises(ValueError, match="floor"):
        RelativeMSELoss(floor=-1.0)
