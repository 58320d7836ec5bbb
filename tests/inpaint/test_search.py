"""Latent search (Yeh et al.): it lowers the context loss and keeps the best latents."""

from __future__ import annotations

import itertools

import pytest
import torch

from ctpipe.inpaint.losses import context_loss, prior_loss
from ctpipe.inpaint.search import SearchSettings, latent_search
from tests.inpaint.conftest import centre_hole


def test_search_reduces_the_context_loss(gan):
    g, d = gan
    torch.manual_seed(1)
    target = g(torch.randn(4, 8)).detach()
    known = centre_hole(4)
    result = latent_search(
        g, d, target, known, torch.randn(4, 8), SearchSettings(iterations=150, lr=0.05, tolerance=0)
    )
    assert result.iterations == 150
    assert (result.context < 0.5 * result.initial_context).all()
    assert result.trace[-1] < result.trace[0]


def test_returned_latents_are_the_best_seen_and_losses_recompute(gan):
    g, d = gan
    target = g(torch.randn(2, 8)).detach()
    known = centre_hole(2)
    settings = SearchSettings(iterations=40, lr=0.3, prior_weight=0.1, tolerance=0)
    totals = []
    result = latent_search(
        g,
        d,
        target,
        known,
        torch.randn(2, 8),
        settings,
        callback=lambda step, z, gen: totals.append(
            (context_loss(gen, target, known) + 0.1 * prior_loss(d(gen))).detach()
        ),
    )
    with torch.no_grad():
        again = g(result.z)
        assert torch.allclose(again, result.generated, atol=1e-6)
        assert torch.allclose(context_loss(again, target, known), result.context, rtol=1e-5)
        assert torch.allclose(prior_loss(d(again)), result.prior, rtol=1e-5)
    best = torch.stack(totals).min(dim=0).values
    final_total = result.context + 0.1 * result.prior
    assert (final_total <= best + 1e-4).all()


def test_networks_are_left_as_they_were(gan):
    g, d = gan
    g.train()
    latent_search(
        g,
        d,
        torch.zeros(1, 1, 16, 16),
        centre_hole(),
        torch.randn(1, 8),
        SearchSettings(iterations=2),
    )
    assert g.training and not d.training
    assert all(p.requires_grad for p in g.parameters())
    assert all(p.grad is None for p in g.parameters())  # the weights were never differentiated


def test_batch_elements_are_independent(gan):
    g, d = gan
    torch.manual_seed(2)
    target = g(torch.randn(3, 8)).detach()
    known, z0 = centre_hole(3), torch.randn(3, 8)
    settings = SearchSettings(iterations=25, lr=0.05, tolerance=0)
    together = latent_search(g, d, target, known, z0, settings)
    alone = latent_search(g, d, target[1:2], known[1:2], z0[1:2], settings)
    assert torch.allclose(together.z[1], alone.z[0], atol=1e-4)


def test_early_stop_without_ground_truth(gan):
    g, d = gan
    target = g(torch.randn(1, 8)).detach()
    z = torch.randn(1, 8)
    loose = latent_search(
        g, d, target, centre_hole(), z, SearchSettings(iterations=500, tolerance=0.5, patience=5)
    )
    assert loose.iterations < 500
    full = latent_search(g, d, target, centre_hole(), z, SearchSettings(iterations=60, tolerance=0))
    assert full.iterations == 60


def test_warmup_ramps_the_learning_rate(gan):
    g, d = gan
    torch.manual_seed(2)
    target = g(torch.randn(1, 8)).detach()
    z0 = torch.randn(1, 8)
    moves = {}
    for warmup in (0, 10):
        steps = []
        latent_search(
            g,
            d,
            target,
            centre_hole(),
            z0,
            SearchSettings(iterations=12, lr=0.1, tolerance=0, warmup=warmup),
            callback=lambda step, z, _g, _s=steps: _s.append(z.clone()),
        )
        moves[warmup] = [(b - a).abs().max().item() for a, b in itertools.pairwise([z0, *steps])]
    # Adam's first step moves the largest coordinate by about the learning rate
    assert moves[0][0] == pytest.approx(0.1, rel=1e-3)
    assert moves[10][0] == pytest.approx(0.01, rel=1e-3)  # lr / warmup
    assert moves[10][1] == pytest.approx(0.01 * (1 + 0.9), rel=0.1)  # lr * 2 / warmup, roughly
    assert max(moves[10][:5]) < 0.06


def test_early_stop_waits_for_the_end_of_the_warmup(gan):
    g, d = gan
    target = g(torch.randn(1, 8)).detach()
    eager = SearchSettings(iterations=200, tolerance=0.9, patience=3, warmup=0)
    assert latent_search(g, d, target, centre_hole(), torch.randn(1, 8), eager).iterations == 3
    warm = SearchSettings(iterations=200, tolerance=0.9, patience=3, warmup=25)
    assert latent_search(g, d, target, centre_hole(), torch.randn(1, 8), warm).iterations == 28


def test_bad_inputs(gan):
    g, d = gan
    with pytest.raises(ValueError, match=r"images and known must both be \(B, 1, S, S\)"):
        latent_search(g, d, torch.zeros(1, 1, 16, 16), torch.ones(1, 1, 8, 8), torch.randn(1, 8))
    with pytest.raises(ValueError, match=r"z_init must be \(B=1, latent_size\)"):
        latent_search(g, d, torch.zeros(1, 1, 16, 16), centre_hole(), torch.randn(2, 8))
    with pytest.raises(ValueError, match="lr must be > 0, got 0"):
        SearchSettings(lr=0)
    with pytest.raises(ValueError, match="warmup must be >= 0, got -1"):
        SearchSettings(warmup=-1)
