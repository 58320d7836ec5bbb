"""MarginLoss: the loss of the inside of each patch, checked against hand-cropped tensors."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ctpipe.nets.redcnn import REDCNN
from ctpipe.training.denoise.config import PatchConfig
from ctpipe.training.denoise.margin_loss import MarginLoss


def test_equals_the_loss_of_the_hand_cropped_tensors():
    torch.manual_seed(0)
    output, target = torch.randn(3, 1, 12, 10), torch.randn(3, 1, 12, 10)
    for base in (torch.nn.MSELoss(), torch.nn.L1Loss()):
        expected = base(output[:, :, 3:9, 3:7], target[:, :, 3:9, 3:7])
        assert torch.equal(MarginLoss(base, 3)(output, target), expected)


def test_margin_zero_is_the_plain_loss():
    torch.manual_seed(1)
    output, target = torch.randn(2, 1, 8, 8), torch.randn(2, 1, 8, 8)
    plain = torch.nn.functional.mse_loss(output, target)
    assert torch.equal(MarginLoss(torch.nn.MSELoss(), 0)(output, target), plain)


def test_edge_pixels_get_no_gradient_and_inner_pixels_do():
    output = torch.randn(1, 1, 9, 9, requires_grad=True)
    MarginLoss(torch.nn.MSELoss(), 2)(output, torch.zeros(1, 1, 9, 9)).backward()
    inside = torch.zeros(9, 9, dtype=torch.bool)
    inside[2:7, 2:7] = True
    grad = output.grad[0, 0]
    assert torch.all(grad[~inside] == 0)
    assert torch.all(grad[inside] != 0)
    # d/dx mean((x - 0)^2) over the 25 inner pixels = 2 x / 25
    assert torch.allclose(grad[inside], 2 * output.detach()[0, 0][inside] / 25)


def test_redcnn_receptive_radius_is_what_the_margin_removes():
    """Outputs inside the margin are the same whatever lies beyond the patch's edge ring."""
    torch.manual_seed(2)
    net = REDCNN(filters=4).eval()
    radius = net.receptive_radius
    size = 2 * radius + 6
    x = torch.randn(1, 1, size, size)
    y = x.clone()
    y[..., :1, :] = 5.0  # change the outermost row only
    with torch.no_grad():
        a, b = net(x), net(y)
    inner = slice(radius + 1, size - radius - 1)
    assert torch.allclose(a[..., inner, inner], b[..., inner, inner])
    assert not torch.allclose(a[..., :radius, :], b[..., :radius, :])


def test_a_margin_that_leaves_nothing_is_refused():
    with pytest.raises(ValueError, match="leaves nothing of a 6 x 8 patch"):
        MarginLoss(torch.nn.MSELoss(), 3)(torch.zeros(1, 1, 6, 8), torch.zeros(1, 1, 6, 8))
    with pytest.raises(ValueError, match="margin must be >= 0"):
        MarginLoss(torch.nn.MSELoss(), -1)


def test_patch_config_checks_the_margin():
    assert PatchConfig(size=[96, 96], loss_margin=20).loss_margin == 20
    with pytest.raises(ValueError, match="loss_margin"):
        PatchConfig(size=[40, 40], loss_margin=20)
    with pytest.raises(ValueError, match="loss_margin"):
        dataclasses.replace(PatchConfig(), loss_margin=-1)
    assert PatchConfig().loss_margin == 0  # the paper: every pixel
