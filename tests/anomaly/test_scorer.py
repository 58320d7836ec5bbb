"""Anomaly maps and slice scores: shapes, units, ELBO terms, determinism, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ctpipe.anomaly.scorer import VAEAnomalyScorer, anomaly_volume
from ctpipe.elbo import gaussian_kl, reconstruction_nll
from ctpipe.io.nifti import read_nifti
from tests.anomaly.conftest import GRID


def test_map_shape_units_and_masks(tiny_vae, phantom_volume):
    hu, spacing = phantom_volume
    result = anomaly_volume(hu, tiny_vae, spacing=spacing, grid=GRID, sigma=0.1, samples=2)
    assert result.map_hu.shape == hu.shape and result.map_hu.dtype == np.float32
    assert result.neg_elbo.shape == result.kl.shape == (hu.shape[2],)
    assert np.allclose(result.neg_elbo, result.reconstruction_nll + result.kl)
    assert (result.map_hu >= 0).all() and result.map_hu.max() <= GRID.window_width
    assert not result.map_hu[~result.body].any()  # zero outside the body
    assert result.map_hu[result.body].mean() > 1.0  # an untrained model errs in HU
    assert result.settings["samples"] == 2 and result.settings["grid"] == GRID.to_dict()


def test_scores_equal_the_elbo_terms_of_the_same_draws(tiny_vae, phantom_volume):
    hu, spacing = phantom_volume
    scorer = VAEAnomalyScorer(tiny_vae, grid=GRID, sigma=0.1, samples=3, seed=7)
    images, _ = GRID.to_grid(hu, spacing[:2])
    scores = scorer.score_grid(images)
    x = torch.from_numpy(images)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        mu, logvar = tiny_vae.encode(x)
        nll, error = 0.0, 0.0
        for _ in range(3):
            z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator)
            mean = tiny_vae.decode(z)[0]
            nll = nll + reconstruction_nll(x, mean, sigma=0.1).double()
            error = error + (x - mean).abs()
    assert np.allclose(scores["kl"], gaussian_kl(mu, logvar).double().numpy())
    assert np.allclose(scores["reconstruction_nll"], (nll / 3).numpy(), rtol=1e-6)
    assert np.allclose(scores["map"], (error / 3)[:, 0].numpy(), atol=1e-6)


def test_same_seed_same_result_other_seed_other_draws(tiny_vae, phantom_volume):
    hu, spacing = phantom_volume
    kwargs = {"spacing": spacing, "grid": GRID, "sigma": 0.1, "samples": 1}
    a = anomaly_volume(hu, tiny_vae, seed=1, **kwargs)
    b = anomaly_volume(hu, tiny_vae, seed=1, **kwargs)
    c = anomaly_volume(hu, tiny_vae, seed=2, **kwargs)
    assert np.array_equal(a.map_hu, b.map_hu) and np.array_equal(a.neg_elbo, b.neg_elbo)
    assert not np.array_equal(a.neg_elbo, c.neg_elbo)


def test_signed_error_and_smoothing(tiny_vae, phantom_volume):
    hu, spacing = phantom_volume
    kwargs = {"spacing": spacing, "grid": GRID, "sigma": 0.1, "samples": 1}
    signed = anomaly_volume(hu, tiny_vae, error="signed", **kwargs)
    plain = anomaly_volume(hu, tiny_vae, **kwargs)
    assert (signed.map_hu < 0).any() and (signed.map_hu > 0).any()
    images, _ = GRID.to_grid(hu, spacing[:2])
    on_grid = {
        error: VAEAnomalyScorer(tiny_vae, grid=GRID, sigma=0.1, samples=1, error=error).score_grid(
            images
        )["map"]
        for error in ("abs", "signed")
    }
    assert np.allclose(np.abs(on_grid["signed"]), on_grid["abs"])  # one draw: |mean| = mean |.|
    smooth = anomaly_volume(hu, tiny_vae, smooth_mm=6.0, **kwargs)
    inside = plain.body & plain.fov[:, :, None]
    assert smooth.map_hu[inside].std() < plain.map_hu[inside].std()


def test_map_as_nifti_keeps_the_affine(tiny_vae, phantom_volume, tmp_path):
    hu, spacing = phantom_volume
    result = anomaly_volume(hu, tiny_vae, spacing=spacing, grid=GRID, sigma=0.1, samples=1)
    affine = np.diag([-2.0, -2.0, 3.0, 1.0])
    affine[:3, 3] = (10.0, -20.0, 30.0)
    array, back = read_nifti(result.write_nifti(tmp_path / "map.nii.gz", affine))
    assert np.array_equal(array, result.map_hu) and np.allclose(back, affine)


def test_table_of_slices(tiny_vae, phantom_volume):
    hu, spacing = phantom_volume
    result = anomaly_volume(hu, tiny_vae, spacing=spacing, grid=GRID, sigma=0.1, samples=1)
    rows = result.slice_table()
    assert [r["slice"] for r in rows] == [0, 1, 2, 3]
    assert rows[2]["neg_elbo"] == pytest.approx(float(result.neg_elbo[2]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"samples": 0}, "samples must be an integer >= 1"),
        ({"error": "squared"}, "error must be one of abs, signed"),
        ({"smooth_mm": -1.0}, "smooth_mm must be a number >= 0"),
        ({"sigma": None}, "sigma must be a number > 0 for an 'mse' VAE"),
    ],
)
def test_bad_settings(tiny_vae, kwargs, match):
    settings = {"grid": GRID, "sigma": 0.1, **kwargs}
    with pytest.raises(ValueError, match=match):
        VAEAnomalyScorer(tiny_vae, **settings)


def test_bad_volumes(tiny_vae):
    with pytest.raises(ValueError, match="carries no slice grid"):
        VAEAnomalyScorer(tiny_vae, sigma=0.1)
    scorer = VAEAnomalyScorer(tiny_vae, grid=GRID, sigma=0.1)
    with pytest.raises(ValueError, match="NaN or infinite"):
        scorer.score(np.full((8, 8, 1), np.nan), (1.0, 1.0))
    with pytest.raises(ValueError, match="spacing must be 2 or 3 positive sizes"):
        scorer.score(np.zeros((8, 8, 1)), (1.0, 0.0))
