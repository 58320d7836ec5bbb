"""RED-CNN (Chen et al. 2017): layers, shortcuts, parameter count, sizes and errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from ctpipe.nets import build_denoiser
from ctpipe.nets.redcnn import REDCNN


def conv_parameters(inputs: int, outputs: int, kernel: int) -> int:
    """Weights plus biases of one (transposed) convolution."""
    return inputs * outputs * kernel * kernel + outputs


def paper_reference(model: REDCNN, x: torch.Tensor) -> torch.Tensor:
    """The paper's forward pass written out layer by layer (shortcuts x, conv2, conv4)."""
    c1, c2, c3, c4, c5 = model.encoder
    d1, d2, d3, d4, d5 = model.decoder
    out2 = F.relu(c2(F.relu(c1(x))))
    out4 = F.relu(c4(F.relu(c3(out2))))
    out = F.relu(d1(F.relu(c5(out4))) + out4)
    out = F.relu(d3(F.relu(d2(out))) + out2)
    return d5(F.relu(d4(out)))  # before the input shortcut


@pytest.fixture
def small() -> REDCNN:
    torch.manual_seed(0)
    return REDCNN(filters=6)


def test_parameter_count_of_the_paper_configuration():
    filters, kernel = 96, 5
    expected = (
        conv_parameters(1, filters, kernel)
        + 4 * conv_parameters(filters, filters, kernel)  # conv2..conv5
        + 4 * conv_parameters(filters, filters, kernel)  # deconv1..deconv4
        + conv_parameters(filters, 1, kernel)  # deconv5
    )
    assert expected == 1_848_865
    assert REDCNN().parameter_count() == expected


def test_layers_are_unpadded_stride_one_and_independent():
    model = REDCNN(filters=4)
    convs = [m for m in model.modules() if type(m) is nn.Conv2d]
    deconvs = [m for m in model.modules() if type(m) is nn.ConvTranspose2d]
    assert len(convs) == len(deconvs) == 5
    for layer in convs + deconvs:
        assert layer.kernel_size == (5, 5)
        assert layer.stride == (1, 1)
        assert layer.padding == (0, 0)
    assert len({id(layer.weight) for layer in convs + deconvs}) == 10
    assert (convs[0].in_channels, deconvs[-1].out_channels) == (1, 1)


@pytest.mark.parametrize("predict_residual", [False, True])
def test_forward_matches_the_paper_wiring(small: REDCNN, predict_residual: bool):
    small.predict_residual = predict_residual
    x = torch.rand(2, 1, 37, 29)
    last = paper_reference(small, x)
    expected = x - last if predict_residual else F.relu(last + x)
    torch.testing.assert_close(small(x), expected)


@pytest.mark.parametrize("size", [(21, 21), (22, 35), (64, 47)])
def test_output_has_the_input_size(small: REDCNN, size: tuple[int, int]):
    assert small(torch.rand(3, 1, *size)).shape == (3, 1, *size)


def test_zero_last_layer_returns_the_input():
    model = REDCNN(filters=4, predict_residual=True)
    nn.init.zeros_(model.decoder[-1].weight)
    nn.init.zeros_(model.decoder[-1].bias)
    x = torch.rand(1, 1, 30, 30) - 0.2  # negative values too: no ReLU in this mode
    torch.testing.assert_close(model(x), x)
    model.predict_residual = False
    torch.testing.assert_close(model(x), F.relu(x))


def test_receptive_radius_is_the_reach_of_one_pixel(small: REDCNN):
    x = torch.rand(1, 1, 61, 61)
    bumped = x.clone()
    bumped[0, 0, 30, 30] += 1.0
    with torch.no_grad():
        changed = (small(bumped) - small(x))[0, 0].abs() > 0
    rows, cols = torch.nonzero(changed, as_tuple=True)
    radius = small.receptive_radius
    assert radius == 20
    assert rows.min() >= 30 - radius and rows.max() <= 30 + radius
    assert cols.min() >= 30 - radius and cols.max() <= 30 + radius


def test_gradients_reach_every_layer(small: REDCNN):
    small(torch.rand(2, 1, 25, 25)).mean().backward()
    for name, parameter in small.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_config_rebuilds_the_model(small: REDCNN):
    assert small.config == {"filters": 6, "kernel_size": 5, "predict_residual": False}
    rebuilt = build_denoiser("redcnn", **small.config)
    rebuilt.load_state_dict(small.state_dict())
    x = torch.rand(1, 1, 24, 24)
    torch.testing.assert_close(rebuilt(x), small(x))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"filters": 0}, "filters must be a positive integer, got 0"),
        ({"filters": 9.5}, "filters must be a positive integer"),
        ({"kernel_size": 4}, "kernel_size must be an odd integer >= 3, got 4"),
        ({"kernel_size": 1}, "kernel_size must be an odd integer >= 3"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict, match: str):
    with pytest.raises(ValueError, match=match):
        REDCNN(**kwargs)


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((1, 1, 20, 40), r"needs height and width >= 21"),
        (
            (1, 2, 32, 32),
            r"expects a \(batch, 1, height, width\) tensor, got shape \(1, 2, 32, 32\)",
        ),
        ((1, 32, 32), r"got shape \(1, 32, 32\)"),
    ],
)
def test_bad_inputs_are_refused(small: REDCNN, shape: tuple[int, ...], match: str):
    with pytest.raises(ValueError, match=match):
        small(torch.zeros(shape))
