"""Generation API: prior samples, interpolation, arithmetic, grid PNGs, slices of files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ctpipe.errors import InputError
from ctpipe.io.nifti import write_nifti
from ctpipe.nets.vae import VAE
from ctpipe.phantom import make_phantom
from ctpipe.slice_grid import SliceGrid
from ctpipe.vae_generate import (
    encode_images,
    grid_slice,
    interpolate,
    latent_arithmetic,
    model_grid,
    sample_images,
    slerp,
    write_image_grid,
)


@pytest.fixture(scope="module")
def vae() -> VAE:
    torch.manual_seed(0)
    return VAE((32, 32), latent_dim=4, channels=(4, 8)).eval()


def test_samples_are_seeded_decodes_of_prior_draws(vae):
    a = sample_images(vae, 3, seed=5)
    assert a.shape == (3, 32, 32) and a.dtype == np.float32
    assert np.array_equal(a, sample_images(vae, 3, seed=5))
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert np.allclose(a, vae.decode(z)[0][:, 0].numpy())
    assert not np.array_equal(a, sample_images(vae, 3, seed=6))


def test_interpolation_ends_at_the_two_codes_and_is_linear_between(vae):
    a, b = sample_images(vae, 2, seed=1)
    steps = interpolate(vae, a, b, steps=5)
    codes = encode_images(vae, np.stack([a, b]))
    with torch.no_grad():
        ends = vae.decode(codes)[0][:, 0].numpy()
        middle = vae.decode(codes.mean(0, keepdim=True))[0][0, 0].numpy()
    assert np.allclose(steps[0], ends[0], atol=1e-6) and np.allclose(steps[-1], ends[1], atol=1e-6)
    assert np.allclose(steps[2], middle, atol=1e-6)
    assert interpolate(vae, a, b, steps=4, method="slerp").shape == (4, 32, 32)


def test_slerp_keeps_unit_norm_on_the_circle():
    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])
    points = slerp(a, b, torch.linspace(0, 1, 7))
    assert torch.allclose(points.norm(dim=1), torch.ones(7), atol=1e-6)
    assert torch.allclose(points[0], a) and torch.allclose(points[-1], b, atol=1e-6)


def test_arithmetic_decodes_a_minus_b_plus_c(vae):
    a, b, c = sample_images(vae, 3, seed=2)
    result = latent_arithmetic(vae, a, b, c)
    codes = encode_images(vae, np.stack([a, b, c]))
    with torch.no_grad():
        expected = vae.decode((codes[0] - codes[1] + codes[2])[None])[0][0, 0].numpy()
    assert np.allclose(result, expected, atol=1e-6)
    assert np.allclose(
        latent_arithmetic(vae, a, b, b), interpolate(vae, a, a, steps=2)[0], atol=1e-5
    )


def test_image_grid_layout(tmp_path):
    images = np.zeros((3, 4, 5), np.float32)
    images[1] = 1.0
    path = write_image_grid(images, tmp_path / "g.png", columns=2, gap=1)
    pixels = np.asarray(Image.open(path))
    assert pixels.shape == (9, 11)
    assert (pixels[0:4, 6:11] == 255).all() and (pixels[0:4, 0:5] == 0).all()
    with pytest.raises(ValueError, match="images must be shaped"):
        write_image_grid(np.zeros((4, 4)), tmp_path / "bad.png")


def test_grid_slice_of_a_nifti_file(tmp_path):
    phantom = make_phantom(shape=(64, 64, 3), spacing=(2.0, 2.0, 3.0))
    path = write_nifti(phantom.hu, np.diag([-2.0, -2.0, 3.0, 1.0]), tmp_path / "p.nii.gz")
    grid = SliceGrid((32, 32), pixel_mm=4.0)
    image = grid_slice(path, grid, 1)
    expected, _ = grid.to_grid(phantom.hu[:, :, 1], (2.0, 2.0))
    assert image.shape == (32, 32) and image.max() > 0.3
    assert np.abs(image.sum() - expected.sum()) < 1e-3 * expected.sum()  # only re-centred
    with pytest.raises(InputError, match="no slice 7: the volume has 3 slices"):
        grid_slice(path, grid, 7)


def test_model_without_a_record_needs_a_grid(vae):
    with pytest.raises(ValueError, match="carries no slice grid"):
        model_grid(vae)
