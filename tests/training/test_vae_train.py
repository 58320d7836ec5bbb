"""VAE training with MONAI engines on small phantom volumes (seconds per run)."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ctpipe.checkpoints.file import read_checkpoint
from ctpipe.checkpoints.vae import VAE_FORMAT, load_vae
from ctpipe.elbo import kl_warmup_beta
from ctpipe.errors import InputError
from ctpipe.io.nifti import write_nifti
from ctpipe.phantom import make_phantom
from ctpipe.training.vae.config import VAETrainConfig
from ctpipe.training.vae.trainer import build_vae_trainer, train_vae

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> list[Path]:
    """Two phantom volumes (different noise) as NIfTI, 96 x 96 x 6 at 2 x 2 x 3 mm."""
    folder = tmp_path_factory.mktemp("phantoms")
    paths = []
    for seed in (0, 1):
        phantom = make_phantom(shape=(96, 96, 6), spacing=(2.0, 2.0, 3.0), seed=seed)
        affine = np.diag([-2.0, -2.0, 3.0, 1.0])
        paths.append(write_nifti(phantom.hu, affine, folder / f"p{seed}.nii.gz"))
    return paths


def tiny_config(output_dir: Path, phantoms: list[Path], **train) -> VAETrainConfig:
    return VAETrainConfig.from_dict(
        {
            "data": {
                "train": [{"path": str(phantoms[0])}, {"path": str(phantoms[1]), "slices": [0, 3]}],
                "validation": [{"path": str(phantoms[1]), "slices": [3, 6]}],
            },
            "grid": {"size": [32, 32], "pixel_mm": 6.0},
            "model": {"latent_dim": 4, "channels": [4, 8]},
            "loss": {"sigma": 0.1, "warmup_iterations": 4},
            "augment": {"prob": 0.5},
            "optimizer": {"lr": 3e-3},
            "train": {
                "batch_size": 3,
                "epochs": 1,
                "iterations_per_epoch": 3,
                "device": "cpu",
                "progress": False,
                **train,
            },
            "output_dir": str(output_dir),
        }
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory, phantoms):
    config = tiny_config(tmp_path_factory.mktemp("vae") / "run", phantoms)
    return config, train_vae(config)


def test_run_writes_every_output(trained):
    _, result = trained
    names = sorted(p.name for p in result.output_dir.iterdir())
    assert names == [
        "checkpoint_best.pt",
        "checkpoint_latest.pt",
        "config.yaml",
        "images",
        "loss_curve.png",
        "training_log.json",
    ]  # nothing half-written left behind
    images = sorted(p.name for p in (result.output_dir / "images").iterdir())
    assert images == ["interpolation_epoch_001.png", "samples_epoch_001.png"]
    assert all(p.read_bytes()[:8] == PNG_SIGNATURE for p in result.images)
    assert set(result.metrics) == {"neg_elbo", "kl", "mae_hu"}
    assert all(math.isfinite(v) for v in result.metrics.values())


def test_log_records_elbo_terms_and_the_kl_warmup(trained):
    _, result = trained
    log = json.loads(result.log.read_text())
    iterations = log["iterations"]
    assert iterations["iteration"] == [1, 2, 3]
    assert iterations["beta"] == [
        kl_warmup_beta(i, beta=1.0, warmup_iterations=4) for i in (1, 2, 3)
    ]
    for i in range(3):  # loss = mean(-log p) + beta * mean(KL)
        expected = iterations["reconstruction_nll"][i] + iterations["beta"][i] * iterations["kl"][i]
        assert iterations["loss"][i] == pytest.approx(expected, rel=1e-5)
    assert log["meta"]["data"]["train"] == {"p0.nii.gz": 6, "p1.nii.gz[0:3]": 3}
    assert log["epochs"][0]["validation"].keys() == {"neg_elbo", "kl", "mae_hu"}


def test_checkpoint_is_a_vae_with_its_grid(trained):
    config, result = trained
    record = read_checkpoint(result.checkpoint, checkpoint_format=VAE_FORMAT)["ctpipe"]
    assert record["grid"] == config.grid.to_dict()
    assert record["config"] == config.to_dict()
    model = load_vae(result.best_checkpoint)
    z = torch.randn(2, 4)
    with torch.no_grad():
        assert torch.equal(model.decode(z)[0], result.model.eval().decode(z)[0])


def test_training_reduces_the_loss(phantoms, tmp_path):
    from ctpipe.training.vae.data import load_slices

    config = tiny_config(
        tmp_path / "run",
        phantoms,
        epochs=1,
        iterations_per_epoch=60,
        image_interval=0,
        checkpoint_interval=0,
        log_interval=0,
    )
    config = dataclasses.replace(config, loss=dataclasses.replace(config.loss, warmup_iterations=0))
    images = np.stack([item["image"] for item in load_slices(config.data.train, config.grid)])
    batch = [{"image": torch.from_numpy(images[:6])}]
    trainer, _ = build_vae_trainer(config, train_loader=batch * 60)
    trainer.run()
    losses = trainer.history.iterations["loss"]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_resume_continues_the_run(trained, tmp_path):
    config, result = trained
    output = tmp_path / "resumed"
    shutil.copytree(result.output_dir, output)
    resumed = train_vae(
        dataclasses.replace(
            config,
            output_dir=str(output),
            resume=str(output / "checkpoint_latest.pt"),
            train=dataclasses.replace(config.train, epochs=2),
        )
    )
    assert (resumed.start_iteration, resumed.iteration, resumed.epoch) == (3, 6, 2)
    log = json.loads((output / "training_log.json").read_text())
    assert log["iterations"]["iteration"] == [1, 2, 3, 4, 5, 6]
    assert log["iterations"]["beta"][3:] == [1.0, 1.0, 1.0]  # the warm-up went on, then held
    assert (output / "images" / "samples_epoch_002.png").exists()


def test_resume_refuses_another_model(trained, tmp_path):
    config, result = trained
    other = dataclasses.replace(
        config,
        output_dir=str(tmp_path / "o"),
        model=dataclasses.replace(config.model, latent_dim=5),
        resume=str(result.checkpoint),
    )
    with pytest.raises(InputError, match="cannot resume: the checkpoint holds a VAE"):
        train_vae(other)


def test_missing_series_named(phantoms, tmp_path):
    config = tiny_config(tmp_path / "o", phantoms)
    bad = dataclasses.replace(
        config,
        data=dataclasses.replace(
            config.data, train=(dataclasses.replace(config.data.train[0], path="/no/such"),)
        ),
    )
    with pytest.raises(InputError, match="/no/such: no such file or folder"):
        train_vae(bad)
