"""Pool initialisation (Lahiri et al.): the chosen sample minimises data + structure loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ctpipe.inpaint.init import LatentPool, nearest_latents
from tests.inpaint.conftest import centre_hole


def brute_force(pool_images, image, known, beta, norm):
    """The loss of every pool image, with plain numpy loops over pixels."""
    power = 1 if norm == "l1" else 2
    y, m = image[0].numpy().astype(np.float64), known[0].numpy()
    losses = []
    for p in pool_images[:, 0].numpy().astype(np.float64):
        data = sum(abs(y[i, j] - p[i, j]) ** power for i in range(16) for j in range(16) if m[i, j])
        structure = 0.0
        for i in range(16):
            for j in range(16):
                if i + 1 < 16 and m[i, j] and m[i + 1, j]:
                    structure += abs((y[i + 1, j] - y[i, j]) - (p[i + 1, j] - p[i, j])) ** power
                if j + 1 < 16 and m[i, j] and m[i, j + 1]:
                    structure += abs((y[i, j + 1] - y[i, j]) - (p[i, j + 1] - p[i, j])) ** power
        losses.append(data + beta * structure)
    return np.array(losses)


def test_pool_is_seeded_and_generated_in_eval_mode(gan):
    g, _ = gan
    g.train()
    a, b = LatentPool.from_generator(g, 10, seed=4), LatentPool.from_generator(g, 10, seed=4)
    assert torch.equal(a.z, b.z) and torch.equal(a.images, b.images) and len(a) == 10
    assert g.training  # restored
    g.eval()
    assert torch.allclose(g(a.z[:3]), a.images[:3], atol=1e-6)


@pytest.mark.parametrize("norm", ["l1", "l2"])
@pytest.mark.parametrize("beta", [0.0, 1.0, 5.0])
def test_match_equals_a_brute_force_search(gan, beta, norm):
    g, _ = gan
    pool = LatentPool.from_generator(g, 12, seed=1)
    torch.manual_seed(3)
    images = torch.rand(2, 1, 16, 16) * 2 - 1
    known = centre_hole(2)
    match = nearest_latents(pool, images, known, structure_weight=beta, norm=norm)
    for n in range(2):
        losses = brute_force(pool.images, images[n], known[n], beta, norm)
        assert match.index[n].item() == int(np.argmin(losses))
        chosen = match.data_loss[n] + beta * match.structure_loss[n]
        assert chosen.item() == pytest.approx(losses.min(), rel=1e-4)
    assert torch.equal(match.z, pool.z[match.index])


def test_structure_loss_breaks_a_tie_of_the_data_loss():
    # Both candidates differ from the image by 8 on the known pixels in total, but one has
    # its image's gradients and the other a checkerboard.
    image = torch.zeros(1, 1, 16, 16)
    known = torch.zeros(1, 1, 16, 16)
    known[..., :2, :2] = 1
    flat = torch.zeros(1, 16, 16)
    flat[:, :2, :2] = 2.0
    checker = torch.zeros(1, 16, 16)
    checker[:, :2, :2] = torch.tensor([[4.0, 0.0], [0.0, 4.0]])
    pool = LatentPool(z=torch.eye(2), images=torch.stack([checker, flat]))
    l1 = {"structure_weight": 0.0, "norm": "l1"}
    assert nearest_latents(pool, image, known, **l1).data_loss.item() == 8.0
    assert nearest_latents(pool, image, known, structure_weight=1.0, norm="l1").index.item() == 1
    # squared differences: the flat candidate is also closer in its data (16 < 32)
    assert nearest_latents(pool, image, known, structure_weight=0.0).index.item() == 1


def test_bad_inputs(gan):
    g, _ = gan
    pool = LatentPool.from_generator(g, 4)
    with pytest.raises(ValueError, match=r"images and known must be \(B, 1, 16, 16\)"):
        nearest_latents(pool, torch.zeros(1, 1, 8, 8), torch.ones(1, 1, 8, 8))
    with pytest.raises(ValueError, match="structure_weight must be >= 0"):
        nearest_latents(pool, torch.zeros(1, 1, 16, 16), centre_hole(), structure_weight=-1)
    with pytest.raises(ValueError, match="norm must be 'l1' or 'l2', got 'l3'"):
        nearest_latents(pool, torch.zeros(1, 1, 16, 16), centre_hole(), norm="l3")
    with pytest.raises(ValueError, match="size must be >= 1"):
        LatentPool.from_generator(g, 0)
