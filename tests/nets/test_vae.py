"""The convolutional VAE: shapes in 2-D and 3-D, settings, checkpoints."""

from __future__ import annotations

import pytest
import torch

from ctpipe.checkpoints.file import save_checkpoint
from ctpipe.checkpoints.vae import VAE_FORMAT, load_vae
from ctpipe.errors import InputError
from ctpipe.nets.vae import VAE


def test_2d_forward_shapes_and_latent_statistics():
    vae = VAE((64, 32), latent_dim=6, channels=(4, 8, 8))
    out = vae(torch.rand(3, 1, 64, 32), generator=torch.Generator().manual_seed(0))
    assert out.x_mean.shape == (3, 1, 64, 32)
    assert out.mu.shape == out.logvar.shape == out.z.shape == (3, 6)
    assert out.x_logvar is None
    means = out.x_mean.detach()
    assert float(means.min()) >= 0 and float(means.max()) <= 1  # sigmoid means
    # z is a draw around mu with the encoder's variance (not mu itself, even in eval mode)
    vae.eval()
    a = vae(torch.rand(1, 1, 64, 32))
    assert not torch.equal(a.z, a.mu)


def test_3d_model_and_gaussian_nll_head():
    vae = VAE((16, 16, 16), latent_dim=4, channels=(2, 4), reconstruction="gaussian_nll")
    out = vae(torch.rand(2, 1, 16, 16, 16))
    assert out.x_mean.shape == out.x_logvar.shape == (2, 1, 16, 16, 16)
    assert vae.sample(2).shape == (2, 1, 16, 16, 16)


def test_forward_is_repeatable_with_a_generator():
    vae = VAE((32, 32), latent_dim=4, channels=(4, 8)).eval()
    x = torch.rand(2, 1, 32, 32)
    a = vae(x, generator=torch.Generator().manual_seed(1)).x_mean
    b = vae(x, generator=torch.Generator().manual_seed(1)).x_mean
    assert torch.equal(a, b)


def test_gradients_reach_encoder_and_decoder():
    vae = VAE((32, 32), latent_dim=4, channels=(4, 8))
    out = vae(torch.rand(2, 1, 32, 32))
    (out.x_mean.sum() + out.mu.sum()).backward()
    assert vae.encoder[0].conv.weight.grad.abs().sum() > 0
    assert vae.fc_logvar.weight.grad.abs().sum() > 0  # through z = mu + sigma * eps
    assert vae.decoder[-1].conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"in_shape": (30, 32)}, "multiples of 2 \\*\\* len\\(channels\\) = 4"),
        ({"in_shape": (32,)}, "in_shape must have 2 or 3 sizes"),
        ({"latent_dim": 0}, "latent_dim must be an integer >= 1"),
        ({"reconstruction": "bce"}, "reconstruction must be one of"),
        ({"norm": "layer"}, "norm must be one of batch, instance, none"),
        ({"channels": ()}, "channels must list at least one"),
    ],
)
def test_bad_settings_named(kwargs, match):
    settings = {"in_shape": (32, 32), "latent_dim": 4, "channels": (4, 8), **kwargs}
    with pytest.raises(ValueError, match=match):
        VAE(**settings)


def test_bad_inputs_named():
    vae = VAE((32, 32), latent_dim=4, channels=(4, 8))
    with pytest.raises(ValueError, match=r"input must be shaped \(batch, 1, 32, 32\)"):
        vae(torch.rand(1, 1, 32, 30))
    with pytest.raises(ValueError, match=r"z must be shaped \(batch, 4\)"):
        vae.decode(torch.zeros(1, 5))


def test_checkpoint_round_trip_and_refusals(tmp_path):
    vae = VAE((32, 32), latent_dim=4, channels=(4, 8))
    grid = {"size": [32, 32], "pixel_mm": 3.0, "window": [-160.0, 240.0]}
    path = save_checkpoint(
        tmp_path / "vae.pt",
        vae,
        model_name="vae",
        extra={"grid": grid},
        checkpoint_format=VAE_FORMAT,
    )
    loaded = load_vae(path)
    assert not loaded.training and loaded.config == vae.config
    assert loaded.checkpoint_record["grid"] == grid
    z = torch.randn(2, 4)
    with torch.no_grad():
        assert torch.equal(loaded.decode(z)[0], vae.eval().decode(z)[0])
    denoiser = save_checkpoint(tmp_path / "d.pt", torch.nn.Linear(1, 1), model_name="redcnn")
    with pytest.raises(
        InputError, match=r"not a ctpipe vae checkpoint: format is 'ctpipe\.denoiser'"
    ):
        load_vae(denoiser)
