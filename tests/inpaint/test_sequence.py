"""Slice sequences: latents are reused from group to group; the consistency term by hand."""

from __future__ import annotations

import itertools

import pytest
import torch

import ctpipe.inpaint.sequence as sequence_module
from ctpipe.inpaint.search import SearchSettings
from ctpipe.inpaint.sequence import group_consistency, inpaint_sequence
from tests.inpaint.conftest import centre_hole


def test_group_consistency_by_hand():
    generated = torch.zeros(3, 1, 2, 2)
    generated[1, 0, 0, 0] = 2.0
    generated[2, 0, 1, 1] = -1.0
    known = torch.ones(3, 1, 2, 2)
    known[:, 0, 0, 0] = 0  # hole at (0, 0) in every frame
    known[2, 0, 1, 1] = 0  # and at (1, 1) in the last one
    # term 1: |2 - 0| at (0, 0); term 2: |0 - 2| at (0, 0) + |-1 - 0| at (1, 1)
    assert group_consistency(generated, known).tolist() == [0.0, 2.0, 3.0]
    previous = torch.full((1, 1, 2, 2), 5.0)
    assert group_consistency(generated, known, previous).tolist() == [5.0, 2.0, 3.0]


def test_latents_are_reused_from_the_previous_group(gan, monkeypatch):
    g, d = gan
    starts, finals = [], []
    search = sequence_module.latent_search

    def recording(*args, **kwargs):
        starts.append(args[4].clone())
        result = search(*args, **kwargs)
        finals.append(result.z.clone())
        return result

    monkeypatch.setattr(sequence_module, "latent_search", recording)
    frames = g(torch.randn(5, 8)).detach()
    result = inpaint_sequence(
        g,
        d,
        frames,
        centre_hole(5),
        torch.randn(1, 8),
        SearchSettings(iterations=5, tolerance=0),
        group_size=2,
    )
    assert [size for _, size, _ in result.groups] == [2, 2, 1]
    assert torch.equal(starts[1], finals[0][-1:].expand(2, -1))
    assert torch.equal(starts[2], finals[1][-1:])
    assert torch.equal(result.z, torch.cat(finals))


def test_key_frame_then_short_follow_searches(gan, monkeypatch):
    g, d = gan
    calls = []
    search = sequence_module.latent_search

    def recording(*args, **kwargs):
        result = search(*args, **kwargs)
        calls.append((args[2].shape[0], args[4].clone(), args[5], result))
        return result

    monkeypatch.setattr(sequence_module, "latent_search", recording)
    frames = g(torch.randn(6, 8)).detach()
    full = SearchSettings(iterations=30, tolerance=0)
    follow = SearchSettings(iterations=4, tolerance=0)
    z_key = torch.randn(1, 8)
    result = inpaint_sequence(
        g, d, frames, centre_hole(6), z_key, full, group_size=2, first_group=1, follow=follow
    )
    assert [size for _, size, _ in result.groups] == [1, 2, 2, 1]
    assert [steps for _, _, steps in result.groups] == [30, 4, 4, 4]
    assert result.iterations == 42
    assert [c[2] for c in calls] == [full, follow, follow, follow]
    assert torch.equal(calls[0][1], z_key)
    for (_, _, _, before), (size, start, _, _) in itertools.pairwise(calls):
        assert torch.equal(start, before.z[-1:].expand(size, -1))


def test_reused_latent_converges_faster_on_similar_slices(gan):
    g, d = gan
    torch.manual_seed(0)
    base = torch.randn(1, 8)
    frames = g(base + 0.02 * torch.randn(6, 8)).detach()  # slowly varying "slices"
    settings = SearchSettings(iterations=300, lr=0.05, tolerance=1e-3, patience=10)
    result = inpaint_sequence(
        g,
        d,
        frames,
        centre_hole(6),
        torch.randn(1, 8),
        settings,
        group_size=1,
        consistency_weight=0,
    )
    steps = [s for _, _, s in result.groups]
    assert max(steps[1:]) < steps[0]


def test_consistency_pulls_neighbouring_fills_together(gan):
    g, d = gan
    torch.manual_seed(5)
    frames = g(torch.randn(4, 8)).detach()
    known = centre_hole(4)
    z0 = torch.randn(4, 8)
    settings = SearchSettings(iterations=60, lr=0.05, tolerance=0)
    free = inpaint_sequence(g, d, frames, known, z0, settings, group_size=4, consistency_weight=0)
    tied = inpaint_sequence(g, d, frames, known, z0, settings, group_size=4, consistency_weight=5.0)
    assert (
        group_consistency(tied.generated, known).sum()
        < group_consistency(free.generated, known).sum()
    )


def test_bad_arguments(gan):
    g, d = gan
    frames, known = torch.zeros(3, 1, 16, 16), centre_hole(3)
    with pytest.raises(ValueError, match="group_size must be >= 1"):
        inpaint_sequence(g, d, frames, known, torch.randn(1, 8), group_size=0)
    with pytest.raises(ValueError, match=r"z_first must be \(1 or 2, latent_size\)"):
        inpaint_sequence(g, d, frames, known, torch.randn(3, 8), group_size=2)
    with pytest.raises(ValueError, match=r"z_first must be \(1, latent_size\), got \(2, 8\)"):
        inpaint_sequence(g, d, frames, known, torch.randn(2, 8), first_group=1)
    with pytest.raises(ValueError, match="first_group must be >= 1, got 0"):
        inpaint_sequence(g, d, frames, known, torch.randn(1, 8), first_group=0)
