"""REDNet (Mao et al. 2016): depth rule, skips, parameter count, sizes and errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from ctpipe.nets import build_denoiser
from ctpipe.nets.rednet import REDNet


def conv_parameters(inputs: int, outputs: int, kernel: int) -> int:
    """Weights plus biases of one (transposed) convolution."""
    return inputs * outputs * kernel * kernel + outputs


def expected_parameters(depth: int, filters: int = 64, kernel: int = 3) -> int:
    hidden = depth - 2  # all layers but the first convolution and the last deconvolution
    return (
        conv_parameters(1, filters, kernel)
        + hidden * conv_parameters(filters, filters, kernel)
        + conv_parameters(filters, 1, kernel)
    )


@pytest.fixture
def small() -> REDNet:
    torch.manual_seed(0)
    return REDNet(depth=10, filters=6)


@pytest.mark.parametrize(("depth", "count"), [(10, 296_641), (20, 665_921), (30, 1_035_201)])
def test_parameter_count_from_the_layer_formula(depth: int, count: int):
    assert expected_parameters(depth) == count
    assert REDNet(depth=depth).parameter_count() == count


def test_layers_are_symmetric_and_keep_the_size():
    model = REDNet(depth=8, filters=4)
    convs = [m for m in model.modules() if type(m) is nn.Conv2d]
    deconvs = [m for m in model.modules() if type(m) is nn.ConvTranspose2d]
    assert len(convs) == len(deconvs) == 4
    for layer in convs + deconvs:
        assert (layer.kernel_size, layer.stride, layer.padding) == ((3, 3), (1, 1), (1, 1))


def test_depth_10_wiring_skips_conv4_conv2_and_the_input(small: REDNet):
    c1, c2, c3, c4, c5 = small.encoder
    d1, d2, d3, d4, d5 = small.decoder
    x = torch.rand(2, 1, 19, 26)
    out2 = F.relu(c2(F.relu(c1(x))))
    out4 = F.relu(c4(F.relu(c3(out2))))
    out = F.relu(d1(F.relu(c5(out4))) + out4)
    out = F.relu(d3(F.relu(d2(out))) + out2)
    expected = F.relu(d5(F.relu(d4(out))) + x)
    torch.testing.assert_close(small(x), expected)


def test_depth_8_wiring_skips_conv2_and_the_input():
    torch.manual_seed(1)
    model = REDNet(depth=8, filters=4, predict_residual=True)
    c1, c2, c3, c4 = model.encoder
    d1, d2, d3, d4 = model.decoder
    x = torch.rand(1, 1, 15, 12)
    out2 = F.relu(c2(F.relu(c1(x))))
    out = F.relu(d1(F.relu(c4(F.relu(c3(out2))))))
    out = F.relu(d2(out) + out2)
    noise = d4(F.relu(d3(out)))
    torch.testing.assert_close(model(x), x - noise)


@pytest.mark.parametrize("size", [(1, 1), (7, 5), (17, 23), (32, 31)])
def test_output_has_the_input_size_odd_sizes_too(small: REDNet, size: tuple[int, int]):
    assert small(torch.rand(2, 1, *size)).shape == (2, 1, *size)


def test_receptive_radius_is_the_reach_of_one_pixel(small: REDNet):
    x = torch.rand(1, 1, 41, 41)
    bumped = x.clone()
    bumped[0, 0, 20, 20] += 1.0
    with torch.no_grad():
        changed = (small(bumped) - small(x))[0, 0].abs() > 0
    rows, cols = torch.nonzero(changed, as_tuple=True)
    assert small.receptive_radius == 10
    assert rows.min() >= 10 and rows.max() <= 30 and cols.min() >= 10 and cols.max() <= 30


def test_gradients_reach_every_layer(small: REDNet):
    small(torch.rand(2, 1, 16, 16)).mean().backward()
    for name, parameter in small.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_config_rebuilds_the_model(small: REDNet):
    assert small.config == {"depth": 10, "filters": 6, "kernel_size": 3, "predict_residual": False}
    rebuilt = build_denoiser("rednet", **small.config)
    rebuilt.load_state_dict(small.state_dict())
    x = torch.rand(1, 1, 12, 12)
    torch.testing.assert_close(rebuilt(x), small(x))


@pytest.mark.parametrize("depth", [0, 2, 3, 5, 11, 10.0, True])
def test_depth_must_be_even_and_at_least_4(depth):
    with pytest.raises(ValueError, match=r"depth must be an even integer >= 4 .*got"):
        REDNet(depth=depth)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"filters": 0}, "filters must be a positive integer, got 0"),
        ({"kernel_size": 2}, r"kernel_size must be an odd integer >= 3 \(so padding"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict, match: str):
    with pytest.raises(ValueError, match=match):
        REDNet(**kwargs)


def test_bad_input_is_refused(small: REDNet):
    with pytest.raises(ValueError, match=r"got shape \(2, 3, 8, 8\)"):
        small(torch.zeros(2, 3, 8, 8))
