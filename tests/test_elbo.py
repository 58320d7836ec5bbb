"""ELBO pieces against torch.distributions, Monte-Carlo estimates and hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from ctpipe.elbo import ELBOLoss, gaussian_kl, kl_warmup_beta, reconstruction_nll, reparameterize


def posterior(seed: int = 0, shape=(5, 7)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(shape, generator=g, dtype=torch.float64)
    logvar = torch.randn(shape, generator=g, dtype=torch.float64) * 0.7
    return mu, logvar


def test_kl_closed_form_equals_torch_distributions():
    mu, logvar = posterior()
    q = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    p = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    expected = kl_divergence(q, p)
    assert torch.allclose(gaussian_kl(mu, logvar), expected, rtol=1e-12, atol=1e-12)


def test_kl_closed_form_equals_monte_carlo_estimate():
    mu, logvar = posterior(seed=1, shape=(3, 4))
    q = Normal(mu, torch.exp(0.5 * logvar))
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    torch.manual_seed(2)
    z = q.sample((200_000,))  # KL = E_q[log q(z) - log p(z)]
    estimate = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean(0)
    standard_error = (q.log_prob(z) - p.log_prob(z)).sum(-1).std(0) / math.sqrt(z.shape[0])
    closed = gaussian_kl(mu, logvar)
    assert torch.all((estimate - closed).abs() < 5 * standard_error)


def test_kl_hand_values():
    # N(1, 1) vs N(0, 1): 1/2; N(0, e) vs N(0, 1): (e - 1 - 1) / 2 per dimension
    assert gaussian_kl(torch.ones(1, 1), torch.zeros(1, 1)).item() == pytest.approx(0.5)
    kl = gaussian_kl(torch.zeros(1, 3), torch.ones(1, 3)).item()
    assert kl == pytest.approx(3 * (math.e - 2) / 2)


def test_reparameterisation_draws_the_posterior_and_carries_gradients():
    mu = torch.tensor([1.5, -2.0], requires_grad=True)
    logvar = torch.tensor([0.0, math.log(4.0)], requires_grad=True)
    g = torch.Generator().manual_seed(0)
    z = reparameterize(mu.expand(100_000, 2), logvar.expand(100_000, 2), g)
    assert torch.allclose(z.mean(0), mu.detach(), atol=0.03)
    assert torch.allclose(z.std(0), torch.tensor([1.0, 2.0]), atol=0.03)
    # d z / d mu = 1 and d z / d logvar = eps * sigma / 2, so the gradient of sum(z) is
    # N for mu and sum(eps) * sigma / 2 for logvar
    z.sum().backward()
    assert torch.allclose(mu.grad, torch.full((2,), 100_000.0))
    eps = (z.detach() - mu.detach()) / torch.exp(0.5 * logvar.detach())
    expected = eps.sum(0) * torch.exp(0.5 * logvar.detach()) / 2
    assert torch.allclose(logvar.grad, expected, rtol=1e-4)


def test_reparameterisation_is_repeatable_with_a_generator():
    mu, logvar = posterior()
    a = reparameterize(mu, logvar, torch.Generator().manual_seed(5))
    b = reparameterize(mu, logvar, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_mse_likelihood_is_the_gaussian_log_density():
    g = torch.Generator().manual_seed(3)
    x, mean = torch.rand(2, 1, 4, 5, generator=g), torch.rand(2, 1, 4, 5, generator=g)
    nll = reconstruction_nll(x, mean, sigma=0.2)
    expected = -Normal(mean, 0.2).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(nll, expected, rtol=1e-5)


def test_gaussian_nll_likelihood_uses_predicted_variance_with_a_floor():
    g = torch.Generator().manual_seed(4)
    x, mean = torch.rand(1, 1, 3, 3, generator=g), torch.rand(1, 1, 3, 3, generator=g)
    logvar = torch.full_like(x, math.log(0.3**2))
    logvar[0, 0, 0, 0] = -50.0  # floored at min_sigma
    nll = reconstruction_nll(x, mean, x_logvar=logvar, min_sigma=0.05)
    sigma = torch.full_like(x, 0.3)
    sigma[0, 0, 0, 0] = 0.05
    expected = -Normal(mean, sigma).log_prob(x).sum()
    assert nll.item() == pytest.approx(expected.item(), rel=1e-5)


def test_elbo_loss_weights_kl_by_beta():
    mu, logvar = (t.float() for t in posterior(shape=(3, 6)))
    x = torch.rand(3, 1, 4, 4)
    mean = torch.rand(3, 1, 4, 4)
    terms = ELBOLoss("mse", sigma=0.1).terms(x, mean, mu, logvar)
    for beta in (0.0, 1.0, 4.0):
        loss = ELBOLoss("mse", sigma=0.1, beta=beta).forward_terms(x, mean, mu, logvar)["loss"]
        expected = (terms["reconstruction_nll"] + beta * terms["kl"]).mean()
        assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert not torch.allclose(terms["kl"], torch.zeros(3))


def test_elbo_is_below_the_log_likelihood_of_a_linear_gaussian_model():
    # p(z) = N(0, 1), p(x|z) = N(z, s^2): log p(x) = log N(x; 0, 1 + s^2) >= ELBO for any q,
    # with equality at the exact posterior N(x / (1 + s^2), s^2 / (1 + s^2)).
    s, x = 0.5, torch.tensor([[0.8]], dtype=torch.float64)
    log_px = Normal(0.0, math.sqrt(1 + s**2)).log_prob(x).item()

    def elbo(mu: float, var: float) -> float:
        mu_t = torch.tensor([[mu]], dtype=torch.float64)
        logvar_t = torch.tensor([[math.log(var)]], dtype=torch.float64)
        z = reparameterize(
            mu_t.expand(400_000, 1), logvar_t.expand(400_000, 1), torch.Generator().manual_seed(0)
        )
        nll = reconstruction_nll(
            x.expand(400_000, 1)[:, :, None, None], z[:, :, None, None], sigma=s
        )
        return -(nll.mean() + gaussian_kl(mu_t, logvar_t)).item()

    exact = elbo(0.8 / (1 + s**2), s**2 / (1 + s**2))
    assert exact == pytest.approx(log_px, abs=2e-3)
    assert elbo(0.0, 1.0) < log_px - 0.05


def test_warmup_schedule():
    assert [kl_warmup_beta(i, beta=2.0, warmup_iterations=4) for i in (0, 1, 3, 4, 10)] == [
        0.0,
        0.5,
        1.5,
        2.0,
        2.0,
    ]
    assert kl_warmup_beta(1, beta=0.5, warmup_iterations=0) == 0.5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reconstruction": "l1"}, "reconstruction must be one of mse, gaussian_nll"),
        ({"sigma": 0.0}, "sigma must be a finite number > 0"),
        ({"beta": -1.0}, "beta must be a finite number >= 0"),
    ],
)
def test_bad_loss_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ELBOLoss(**kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match="mu and logvar must have the same shape"):
        gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="exactly one of sigma"):
        reconstruction_nll(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))
    with pytest.raises(ValueError, match="needs the decoder's log-variances"):
        ELBOLoss("gaussian_nll").terms(
            torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), torch.zeros(1, 2), torch.zeros(1, 2)
        )
    with pytest.raises(ValueError, match="warmup_iterations must be >= 0"):
        kl_warmup_beta(1, beta=1.0, warmup_iterations=-1)
