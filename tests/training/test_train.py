"""Training runs on the shared AAPM pairs with a tiny RED-CNN (a few seconds each)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ctpipe.checkpoints.denoiser import load_denoiser
from ctpipe.checkpoints.file import read_checkpoint
from ctpipe.errors import InputError
from ctpipe.training.denoise.config import DenoiseTrainConfig
from ctpipe.training.denoise.data import build_loaders
from ctpipe.training.denoise.trainer import build_denoise_trainer, train_denoiser
from ctpipe.training.entry import torchrun_main
from tests.conftest import REPO, shared_path

pytestmark = pytest.mark.shared_data

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tiny_config(output_dir: Path, data: dict | None = None, **train) -> DenoiseTrainConfig:
    """REDCNN(filters=8) on L096 (9 training slices, 1 held out), 2 iterations of 4 patches."""
    return DenoiseTrainConfig.from_dict(
        {
            "model": {"name": "redcnn", "kwargs": {"filters": 8}},
            "data": {
                "root": str(shared_path("aapm_ldct_pairs")),
                "manifest": str(REPO / "data_manifests" / "aapm_ldct_pairs_shared.yaml"),
                "train_patients": ["L096"],
                "validation_holdout": 1,
                **(data or {}),
            },
            "patches": {"size": [32, 32], "per_slice": 2},
            "optimizer": {"lr": 1e-3},
            "train": {
                "batch_size": 4,
                "epochs": 1,
                "iterations_per_epoch": 2,
                "progress": False,
                "device": "cpu",
                **train,
            },
            "output_dir": str(output_dir),
        }
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    output = tmp_path_factory.mktemp("train") / "run"
    config = tiny_config(output)
    return config, train_denoiser(config)


def test_two_iterations_give_finite_losses_and_all_outputs(trained):
    _config, result = trained
    assert (result.epoch, result.iteration, result.start_iteration) == (1, 2, 0)
    assert math.isfinite(result.last_loss) and result.last_loss > 0
    assert result.seconds_per_iteration > 0
    assert set(result.metrics) == {"psnr", "ssim", "psnr_window", "ssim_window"}
    names = sorted(p.name for p in result.output_dir.iterdir())
    assert names == [
        "checkpoint_best.pt",
        "checkpoint_latest.pt",
        "config.yaml",
        "loss_curve.png",
        "training_log.json",
    ]  # nothing half-written (.tmp-*) left behind


def test_loss_curve_and_log(trained):
    _, result = trained
    assert result.curve.read_bytes()[:8] == PNG_SIGNATURE
    log = json.loads(result.log.read_text())
    assert log["iterations"]["iteration"] == [1, 2]
    assert all(math.isfinite(v) for v in log["iterations"]["loss"])
    assert log["epochs"][0]["validation"].keys() == {"psnr", "ssim", "psnr_window", "ssim_window"}
    assert log["meta"]["input_validation"]["psnr"] > 20  # the quarter-dose input's own PSNR
    assert log["meta"]["data"].startswith("train 9 slices (L096); validation 1 slices (L096)")


def test_checkpoint_reloads_to_identical_outputs(trained):
    config, result = trained
    checkpoint = read_checkpoint(result.checkpoint)
    record = checkpoint["ctpipe"]
    assert (record["epoch"], record["iteration"]) == (1, 2)
    assert record["model"] == {"name": "redcnn", "kwargs": result.model.config}
    assert record["config"] == config.to_dict()
    assert {"optimizer", "lr_scheduler", "trainer", "history"} <= set(checkpoint)
    loaded = load_denoiser(result.checkpoint)
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), result.model.eval()(x))
    best = load_denoiser(result.best_checkpoint)
    assert best.checkpoint_record["metrics"]["psnr"] == pytest.approx(result.metrics["psnr"])


def test_resume_continues_from_the_saved_iteration(trained, tmp_path):
    config, result = trained
    output = tmp_path / "resumed"
    shutil.copytree(result.output_dir, output)
    resumed_config = dataclasses.replace(
        config,
        output_dir=str(output),
        resume=str(output / "checkpoint_latest.pt"),
        train=dataclasses.replace(config.train, epochs=2),
    )
    resumed = train_denoiser(resumed_config)
    assert (resumed.start_iteration, resumed.iteration, resumed.epoch) == (2, 4, 2)
    log = json.loads((output / "training_log.json").read_text())
    assert log["iterations"]["iteration"] == [1, 2, 3, 4]  # one log, continued
    assert log["iterations"]["loss"][:2] == json.loads(result.log.read_text())["iterations"]["loss"]
    assert [e["epoch"] for e in log["epochs"]] == [1, 2]
    assert read_checkpoint(output / "checkpoint_latest.pt")["ctpipe"]["iteration"] == 4


def test_resume_refuses_a_checkpoint_of_another_model(trained, tmp_path):
    config, result = trained
    other = dataclasses.replace(
        config,
        output_dir=str(tmp_path / "other"),
        model=dataclasses.replace(config.model, kwargs={"filters": 4}),
        resume=str(result.checkpoint),
    )
    with pytest.raises(InputError, match=r"cannot resume: the checkpoint holds 'redcnn'"):
        build_denoise_trainer(other)


def test_loss_decreases_on_one_fixed_batch(tmp_path):
    """Overfit check: ten steps on the same batch bring its loss down."""
    config = tiny_config(
        tmp_path,
        data={"cache_rate": 0.0},  # read only the two slices of the batch
        iterations_per_epoch=10,
        validation_interval=0,
    )
    torch.manual_seed(0)
    loader, _ = build_loaders(config)
    batch = next(iter(loader))
    trainer, evaluator = build_denoise_trainer(config, train_loader=[batch])
    assert evaluator is None
    trainer.run()
    losses = trainer.history.iterations["loss"]
    assert len(losses) == 10 and all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.7 * losses[0]
    assert sum(b < a for a, b in itertools.pairwise(losses)) >= 7  # mostly downhill


def test_module_entry_point_reports_bad_config_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {name: redcnn}\ndata: {root: /d, train_patients: [A]}\n")
    assert torchrun_main(["denoise", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"ctpipe: error: {bad}: key 'output_dir' is required"


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_balanced_sampling_resumes_exactly_as_an_uninterrupted_run(tmp_path):
    """Two epochs straight, or one epoch, a stop and ``--resume``: the same weights, bit for bit."""
    balanced = {"sampling": "balanced", "shares": {"real/sharp": 1.0}}
    straight = train_denoiser(tiny_config(tmp_path / "straight", data=balanced, epochs=2))
    first = train_denoiser(tiny_config(tmp_path / "stopped", data=balanced, epochs=1))
    resumed = train_denoiser(
        dataclasses.replace(
            tiny_config(tmp_path / "stopped", data=balanced, epochs=2),
            resume=str(first.checkpoint),
        )
    )
    assert (resumed.start_iteration, resumed.iteration) == (2, 4)
    a, b = _weights(straight.model), _weights(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    logs = [json.loads(r.log.read_text())["iterations"]["loss"] for r in (straight, resumed)]
    assert logs[0] == logs[1]
    # and the stream is not constant: a run with another seed trains to other weights
    other = train_denoiser(tiny_config(tmp_path / "seed1", data=balanced, epochs=1, seed=1))
    assert not torch.equal(_weights(other.model)["encoder.0.weight"], a["encoder.0.weight"])


def test_channels_last_and_deconv_as_conv_train_like_the_reference(tmp_path):
    """The speed settings change the memory layout and kernels, not the arithmetic."""
    balanced = {"sampling": "balanced"}
    reference = train_denoiser(tiny_config(tmp_path / "ref", data=balanced))
    fast = train_denoiser(tiny_config(tmp_path / "fast", data=balanced, channels_last=True))
    a, b = _weights(reference.model), _weights(fast.model)
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_window_psnr_picks_the_best_checkpoint_when_asked(tmp_path):
    result = train_denoiser(tiny_config(tmp_path / "w", key_metric="psnr_window"))
    best = read_checkpoint(result.best_checkpoint)["ctpipe"]["metrics"]
    assert best["psnr_window"] == pytest.approx(result.metrics["psnr_window"])
    # the window metric is on a 400 HU scale: the same error gives a lower PSNR
    assert result.metrics["psnr_window"] < result.metrics["psnr"]


@pytest.mark.parametrize("sampling", ["epochs", "balanced"])
def test_structure_weighted_patches_train(tmp_path, sampling):
    """``patches.structure_share`` trains through both loaders: the cached one and the stream."""
    config = tiny_config(tmp_path / sampling, data={"sampling": sampling})
    config = dataclasses.replace(
        config, patches=dataclasses.replace(config.patches, structure_share=0.5)
    )
    result = train_denoiser(config)
    losses = json.loads(result.log.read_text())["iterations"]["loss"]
    assert len(losses) == 2 and all(np.isfinite(losses))


def test_loss_margin_trains_on_the_inside_of_each_patch(tmp_path):
    """``patches.loss_margin``: the trainer's loss leaves the margin out; training runs."""
    from ctpipe.training.denoise.margin_loss import MarginLoss

    config = tiny_config(tmp_path, iterations_per_epoch=2, validation_interval=0)
    config = dataclasses.replace(config, patches=dataclasses.replace(config.patches, loss_margin=6))
    trainer, _ = build_denoise_trainer(config)
    assert isinstance(trainer.loss_function, MarginLoss) and trainer.loss_function.margin == 6
    trainer.run()
    assert all(math.isfinite(v) for v in trainer.history.iterations["loss"])
