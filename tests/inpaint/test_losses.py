"""Context weights and losses against hand-computed values; the prior against Bernoulli."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli

from ctpipe.inpaint.losses import context_loss, context_weights, prior_loss


def one_hole(size=5, at=(2, 2)):
    known = torch.ones(1, 1, size, size)
    known[0, 0, at[0], at[1]] = 0
    return known


def test_uniform_weights_are_the_known_mask():
    known = one_hole()
    assert torch.equal(context_weights(known, "uniform"), known)


def test_neighbourhood_weights_by_hand():
    # Yeh et al.: fraction of hole pixels among the 3 x 3 neighbours (counted in the image)
    w = context_weights(one_hole(at=(0, 0)), "neighbourhood", window=3)[0, 0]
    assert w[0, 0] == 0  # the hole itself
    assert w[0, 1].item() == pytest.approx(1 / 6)  # a border pixel: 6 neighbours in the image
    assert w[1, 1].item() == pytest.approx(1 / 9)
    assert w[2, 2] == 0 and w[0, 2] == 0  # no hole pixel in their 3 x 3 windows


def test_distance_weights_by_hand():
    w = context_weights(one_hole(), "distance", distance_scale=2.0)[0, 0]
    for (i, j), d in {(2, 3): 1.0, (3, 3): math.sqrt(2), (2, 4): 2.0, (0, 0): math.sqrt(8)}.items():
        assert w[i, j].item() == pytest.approx(math.exp(-d / 2.0), rel=1e-6)
    assert w[2, 2] == 0


def test_context_loss_is_the_weighted_l1_sum_per_image():
    g = torch.zeros(2, 1, 2, 2)
    y = torch.tensor([[[[1.0, -2.0], [0.5, 0.0]]], [[[3.0, 3.0], [3.0, 3.0]]]])
    w = torch.tensor([[[[1.0, 0.5], [0.0, 2.0]]]]).repeat(2, 1, 1, 1)
    assert context_loss(g, y, w).tolist() == [2.0, 10.5]


def test_prior_loss_is_log_one_minus_d():
    logits = torch.tensor([-5.0, 0.0, 3.0], dtype=torch.float64)
    assert torch.allclose(
        prior_loss(logits), Bernoulli(logits=logits).log_prob(torch.zeros(3, dtype=torch.float64))
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"weighting": "gaussian"}, "weighting must be one of uniform, neighbourhood, distance"),
        ({"weighting": "neighbourhood", "window": 4}, "window must be an odd number >= 1, got 4"),
        ({"weighting": "distance", "distance_scale": 0.0}, "distance_scale must be > 0"),
    ],
)
def test_bad_weighting_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        context_weights(one_hole(), **kwargs)
