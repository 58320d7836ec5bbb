"""DCGAN training with MONAI's GanTrainer on tiny synthetic data (a few seconds in all)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ctpipe.checkpoints.file import save_checkpoint
from ctpipe.checkpoints.gan import export_gan_weights, load_gan, save_gan
from ctpipe.errors import InputError
from ctpipe.nets import build_denoiser
from ctpipe.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from ctpipe.training.config import TrainConfigError
from ctpipe.training.gan.config import GanTrainConfig, load_gan_config
from ctpipe.training.gan.trainer import (
    DiscriminatorLoss,
    InstanceNoise,
    build_gan_trainer,
    sample_grid,
    train_gan,
)
from tests.conftest import REPO

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tiny_config(output_dir: Path, source: str = "unused", **train) -> GanTrainConfig:
    return GanTrainConfig.from_dict(
        {
            "data": {"sources": [{"path": source}], "window": [-1000, 1000]},
            "model": {
                "latent_size": 8,
                "generator_features": 4,
                "discriminator_features": 4,
                "image_size": 16,
            },
            "train": {
                "batch_size": 4,
                "epochs": 2,
                "iterations_per_epoch": 2,
                "sample_grid": 4,
                "device": "cpu",
                "progress": False,
                "log_interval": 0,
                **train,
            },
            "output_dir": str(output_dir),
        }
    )


def synthetic_loader(count: int = 8, batch_size: int = 4):
    rng = np.random.default_rng(0)
    items = [
        {"image": torch.as_tensor(rng.uniform(-1, 1, (1, 16, 16)), dtype=torch.float32)}
        for _ in range(count)
    ]
    return torch.utils.data.DataLoader(items, batch_size=batch_size, shuffle=True, drop_last=True)


def adam_steps(optimizer: torch.optim.Optimizer) -> int:
    """Steps Adam took (its own per-parameter counter)."""
    state = next(iter(optimizer.state.values()))
    return int(state["step"])


@pytest.mark.parametrize("k", [1, 3])
def test_k_discriminator_steps_per_generator_step(tmp_path, k):
    config = tiny_config(tmp_path / "run", d_steps=k)
    trainer = build_gan_trainer(config, train_loader=synthetic_loader())
    trainer.run()
    iterations = config.train.epochs * config.train.iterations_per_epoch
    assert trainer.state.iteration == iterations
    assert adam_steps(trainer.d_optimizer) == k * iterations
    assert adam_steps(trainer.g_optimizer) == iterations
    assert (trainer.d_loss.calls, trainer.g_loss.calls) == (k * iterations, iterations)


def test_discriminator_step_leaves_the_generator_alone():
    g, d = DCGANGenerator(8, 4, 16), DCGANDiscriminator(4, 16)
    loss = DiscriminatorLoss(d)
    loss(g(torch.randn(4, 8)), torch.zeros(4, 1, 16, 16)).backward()
    assert all(p.grad is None for p in g.parameters())
    assert all(p.grad is not None for p in d.parameters())
    assert 0 < loss.last["d_real"] < 1 and 0 < loss.last["d_fake"] < 1


def test_outputs_log_curve_and_sample_grids(tmp_path):
    config = tiny_config(tmp_path / "run")
    trainer = build_gan_trainer(config, train_loader=synthetic_loader())
    trainer.run()
    out = tmp_path / "run"
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint_latest.pt",
        "loss_curve.png",
        "samples",
        "training_log.json",
    ]
    assert sorted(p.name for p in (out / "samples").iterdir()) == [
        "epoch_0001.png",
        "epoch_0002.png",
    ]
    assert (out / "loss_curve.png").read_bytes()[:8] == PNG_SIGNATURE
    log = json.loads((out / "training_log.json").read_text())
    assert [e["epoch"] for e in log["epochs"]] == [1, 2]
    assert set(log["iterations"]) >= {"loss", "d_loss", "d_real", "d_fake", "lr"}
    assert len(log["iterations"]["d_loss"]) == 4
    assert all(0 <= v <= 1 for v in log["iterations"]["d_fake"])
    assert log["meta"]["d_steps"] == 1


def test_resume_continues_iterations_history_and_optimizer(tmp_path):
    out = tmp_path / "run"
    first = build_gan_trainer(tiny_config(out, epochs=1), train_loader=synthetic_loader())
    first.run()
    resumed = build_gan_trainer(
        dataclasses.replace(tiny_config(out, epochs=2), resume=str(out / "checkpoint_latest.pt")),
        train_loader=synthetic_loader(),
    )
    resumed.run()
    assert resumed.state.iteration == 4 and resumed.state.epoch == 2
    assert adam_steps(resumed.g_optimizer) == 4  # optimizer state came back
    assert len(resumed.history.iterations["loss"]) == 4
    assert [e["epoch"] for e in resumed.history.epochs] == [1, 2]


def test_resume_refuses_another_architecture_and_exported_weights(tmp_path):
    out = tmp_path / "run"
    build_gan_trainer(tiny_config(out, epochs=1), train_loader=synthetic_loader()).run()
    other = dataclasses.replace(tiny_config(out), resume=str(out / "checkpoint_latest.pt"))
    other = dataclasses.replace(other, model=dataclasses.replace(other.model, generator_features=8))
    with pytest.raises(InputError, match="cannot resume: the checkpoint holds generator"):
        build_gan_trainer(other, train_loader=synthetic_loader())
    exported = export_gan_weights(out / "checkpoint_latest.pt", tmp_path / "weights.pt")
    weights_only = dataclasses.replace(tiny_config(out), resume=str(exported))
    with pytest.raises(InputError, match="has no d_optimizer, g_optimizer, history, trainer state"):
        build_gan_trainer(weights_only, train_loader=synthetic_loader())


def test_export_and_load_round_trip(tmp_path):
    out = tmp_path / "run"
    trainer = build_gan_trainer(tiny_config(out), train_loader=synthetic_loader())
    trainer.run()
    path = export_gan_weights(out / "checkpoint_latest.pt", tmp_path / "gan.pt", note="card")
    models = load_gan(path)
    z = torch.randn(3, 8)
    trainer.g_network.eval()
    assert torch.equal(models.generator(z), trainer.g_network(z))
    assert models.window == (-1000.0, 1000.0)
    assert models.record["note"] == "card" and models.record["epoch"] == 2
    assert not models.generator.training and not models.discriminator.training
    assert path.stat().st_size < (out / "checkpoint_latest.pt").stat().st_size


def test_load_gan_refuses_damaged_and_foreign_files(tmp_path):
    path = save_gan(
        tmp_path / "g.pt", DCGANGenerator(8, 4, 16), DCGANDiscriminator(4, 16), window=(-1, 1)
    )
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["discriminator"]["main.0.weight"] += 1.0
    torch.save(checkpoint, tmp_path / "damaged.pt")
    with pytest.raises(
        InputError, match=r"damaged\.pt: discriminator state does not match the sha256"
    ):
        load_gan(tmp_path / "damaged.pt")
    denoiser = save_checkpoint(
        tmp_path / "redcnn.pt", build_denoiser("redcnn", filters=2), model_name="redcnn"
    )
    with pytest.raises(InputError, match=r"redcnn\.pt: not a ctpipe gan checkpoint"):
        load_gan(denoiser)


def test_instance_noise_schedule_and_effect():
    noise = InstanceNoise(0.2, 0.05, total=10)
    assert [noise.at(i) for i in (0, 5, 10, 99)] == [0.2, 0.125, 0.05, 0.05]
    noise.sigma = 0.5
    torch.manual_seed(0)
    noisy = noise(torch.zeros(200, 1, 16, 16))
    assert noisy.std().item() == pytest.approx(0.5, rel=0.02)
    assert torch.equal(InstanceNoise()(torch.ones(2)), torch.ones(2))


def test_sample_grid_layout():
    images = torch.stack([torch.full((1, 4, 4), v) for v in (-1.0, 0.0, 1.0, 0.5)])
    grid = sample_grid(images, border=1)
    assert grid.shape == (11, 11)
    assert (grid[1, 1], grid[1, 6], grid[6, 1], grid[6, 6]) == (0, 128, 255, 191)
    with pytest.raises(ValueError, match="square number"):
        sample_grid(torch.zeros(3, 1, 4, 4))


def test_train_gan_end_to_end_on_a_phantom(tmp_path):
    from ctpipe.io.nifti import write_nifti
    from ctpipe.phantom import make_phantom

    phantom = make_phantom(shape=(48, 48, 3), seed=0)
    source = write_nifti(phantom.hu, np.diag([-1.5, -1.5, 3.0, 1.0]), tmp_path / "phantom.nii.gz")
    result = train_gan(tiny_config(tmp_path / "run", source=str(source)))
    assert (result.epoch, result.iteration) == (2, 4)
    assert np.isfinite([result.g_loss, result.d_loss]).all()
    assert result.samples.name == "epoch_0002.png"
    assert (tmp_path / "run" / "samples" / "real.png").read_bytes()[:8] == PNG_SIGNATURE
    assert (tmp_path / "run" / "config.yaml").exists()


@pytest.mark.parametrize(
    ("train", "match"),
    [
        ({"d_steps": 0}, "train: d_steps must be >= 1, got 0"),
        ({"sample_grid": 10}, "sample_grid must be a square number"),
        ({"instance_noise": -0.1}, "instance_noise must be >= 0"),
        ({"d_step": 2}, "unknown key 'train.d_step'.*did you mean 'd_steps'"),
    ],
)
def test_config_errors_name_the_key(tmp_path, train, match):
    with pytest.raises(TrainConfigError, match=match):
        tiny_config(tmp_path, **train)


def test_shipped_workflow_configs_load():
    for name in ("gan_dcgan_cpu.yaml", "gan_dcgan.yaml"):
        config = load_gan_config(REPO / "workflows" / "training" / name)
        assert config.model.image_size == 64
        assert config.generator_optimizer.betas == (0.5, 0.999)
