"""Blending keeps known pixels exactly; Poisson solves the discrete equation (dense check)."""

from __future__ import annotations

import numpy as np
import pytest

from ctpipe.inpaint.blend import blend, blend_plain, blend_poisson


def dense_poisson(image, guidance, hole):
    """Reference: graph Laplacian L of the 4-connected pixel grid (no links outside the
    image), rows of the hole solved densely for (L x)_p = (L g)_p with x = image elsewhere."""
    h, w = image.shape
    n = h * w
    laplacian = np.zeros((n, n))
    for i in range(h):
        for j in range(w):
            for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                if 0 <= i + di < h and 0 <= j + dj < w:
                    laplacian[i * w + j, i * w + j] += 1
                    laplacian[i * w + j, (i + di) * w + j + dj] -= 1
    inside = hole.ravel()
    a = laplacian[np.ix_(inside, inside)]
    b = (laplacian @ guidance.ravel())[inside] - laplacian[np.ix_(inside, ~inside)] @ image.ravel()[
        ~inside
    ]
    out = image.astype(np.float64).ravel().copy()
    out[inside] = np.linalg.solve(a, b)
    return out.reshape(h, w)


@pytest.fixture
def case():
    rng = np.random.default_rng(7)
    image = rng.normal(0, 100, (9, 11))
    guidance = rng.normal(0, 100, (9, 11))
    hole = np.zeros((9, 11), bool)
    hole[2:6, 3:8] = True
    hole[6, 0:2] = True  # a second part, touching the image edge
    return image, guidance, hole


def test_poisson_matches_a_direct_dense_solve(case):
    image, guidance, hole = case
    assert np.allclose(
        blend_poisson(image, guidance, hole), dense_poisson(image, guidance, hole), atol=1e-9
    )


@pytest.mark.parametrize("method", ["plain", "poisson"])
def test_known_pixels_are_kept_exactly(case, method):
    image, guidance, hole = case
    out = blend(image, guidance, hole, method)
    assert np.array_equal(out[~hole], image[~hole])
    assert not np.allclose(out[hole], image[hole])


def test_plain_takes_the_generated_pixels():
    image, guidance = np.zeros((3, 3)), np.arange(9.0).reshape(3, 3)
    hole = np.eye(3, dtype=bool)
    assert np.array_equal(blend_plain(image, guidance, hole), np.diag([0.0, 4.0, 8.0]))


def test_poisson_with_the_true_image_as_guidance_returns_it(case):
    image, _, hole = case
    assert np.allclose(blend_poisson(image, image, hole), image, atol=1e-9)


def test_poisson_follows_the_boundary_offset():
    # The guidance is the truth shifted by +50: Poisson blending removes the offset.
    truth = np.add.outer(np.arange(8.0), 2 * np.arange(8.0))
    hole = np.zeros((8, 8), bool)
    hole[2:6, 2:6] = True
    assert np.allclose(blend_poisson(truth, truth + 50.0, hole), truth, atol=1e-9)


def test_errors():
    hole = np.ones((3, 3), bool)
    with pytest.raises(ValueError, match="touches none"):
        blend_poisson(np.zeros((3, 3)), np.zeros((3, 3)), hole)
    with pytest.raises(ValueError, match="of one shape"):
        blend_plain(np.zeros((3, 3)), np.zeros((3, 4)), np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match="method must be one of poisson, plain"):
        blend(np.zeros((3, 3)), np.zeros((3, 3)), np.zeros((3, 3), bool), "alpha")
