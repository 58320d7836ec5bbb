"""GAN losses against Bernoulli log-likelihoods (torch.distributions) and their gradients."""

from __future__ import annotations

import torch
from torch.distributions import Bernoulli

from ctpipe.gan_losses import (
    discriminator_loss,
    generator_loss_minimax,
    generator_loss_non_saturating,
)


def test_non_saturating_loss_is_minus_log_d_of_fakes():
    logits = torch.tensor([-30.0, -4.0, -0.5, 0.0, 2.0, 40.0], dtype=torch.float64)
    reference = -Bernoulli(logits=logits).log_prob(torch.ones_like(logits)).mean()
    assert torch.allclose(generator_loss_non_saturating(logits), reference, rtol=1e-12)
    naive = -torch.log(torch.sigmoid(logits[1:5])).mean()  # the formula, where it is safe
    assert torch.allclose(generator_loss_non_saturating(logits[1:5]), naive, rtol=1e-12)


def test_discriminator_loss_is_the_binary_cross_entropy_of_both_batches():
    real = torch.tensor([3.0, -1.0, 0.2], dtype=torch.float64)
    fake = torch.tensor([-2.0, 0.5], dtype=torch.float64)
    reference = (
        -Bernoulli(logits=real).log_prob(torch.ones(3, dtype=torch.float64)).mean()
        - Bernoulli(logits=fake).log_prob(torch.zeros(2, dtype=torch.float64)).mean()
    )
    assert torch.allclose(discriminator_loss(real, fake), reference, rtol=1e-12)


def test_minimax_loss_is_log_one_minus_d():
    fake = torch.tensor([-3.0, 0.0, 1.5], dtype=torch.float64)
    assert torch.allclose(
        generator_loss_minimax(fake), torch.log(1 - torch.sigmoid(fake)).mean(), rtol=1e-12
    )


def test_non_saturating_gradient_stays_strong_where_minimax_vanishes():
    # A confident discriminator (D(G(z)) = sigmoid(-10) ~ 4.5e-5): the reason for the
    # non-saturating form. d/dl of -log sigmoid(l) is -(1 - sigmoid(l)); of log(1 - sigmoid(l))
    # it is -sigmoid(l).
    logit = torch.tensor([-10.0], dtype=torch.float64, requires_grad=True)
    generator_loss_non_saturating(logit).backward()
    assert torch.allclose(logit.grad, -(1 - torch.sigmoid(logit.detach())))
    strong = logit.grad.abs().item()
    logit.grad = None
    generator_loss_minimax(logit).backward()
    assert torch.allclose(logit.grad, -torch.sigmoid(logit.detach()))
    assert strong > 0.99 and logit.grad.abs().item() < 1e-4


def test_extreme_logits_stay_finite():
    big = torch.tensor([1e4, -1e4])
    for value in (
        discriminator_loss(big, big),
        generator_loss_non_saturating(big),
        generator_loss_minimax(big),
    ):
        assert torch.isfinite(value)
