"""Segmenter training on the labelled phantom with a tiny 2-D UNet (seconds per run)."""

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

from ctpipe.checkpoints.file import read_checkpoint
from ctpipe.checkpoints.segmenter import SEGMENTER_FORMAT, load_segmenter
from ctpipe.errors import InputError
from ctpipe.nets.segmenters import ABDOMINAL_CLASS_MAP
from ctpipe.phantom import make_phantom, write_phantom
from ctpipe.training.entry import torchrun_main
from ctpipe.training.segment.config import SegmentTrainConfig
from ctpipe.training.segment.data import build_segment_loaders
from ctpipe.training.segment.trainer import build_segment_trainer, train_segmenter

CLASSES = [f"dice_{name}" for name in ABDOMINAL_CLASS_MAP]


def phantom_case(folder: Path, seed: int) -> dict[str, str]:
    phantom = make_phantom(shape=(40, 40, 6), spacing=(4.0, 4.0, 6.0), seed=seed)
    files = write_phantom(folder, phantom)
    return {"image": str(files.ct_nifti), "label": str(files.labels_nifti)}


def tiny_config(output_dir: Path, train: list, validation: list, **loop) -> SegmentTrainConfig:
    return SegmentTrainConfig.from_dict(
        {
            "model": {"spatial_dims": 2, "channels": [8, 16], "strides": [2], "num_res_units": 0},
            "data": {"train": train, "validation": validation},
            "preprocess": {"target_spacing": [4.0, 4.0, None], "hu_window": [-1000, 1000]},
            "patches": {"size": [32, 32], "per_volume": 4},
            "augment": {"prob": 0.0},
            "optimizer": {"lr": 3e-3},
            "train": {
                "batch_size": 4,
                "epochs": 1,
                "iterations_per_epoch": 3,
                "device": "cpu",
                "progress": False,
                **loop,
            },
            "inference": {"roi_size": [32, 32], "sw_batch_size": 6},
            "output_dir": str(output_dir),
        }
    )


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantoms")
    return [phantom_case(root / "a", 0)], [phantom_case(root / "b", 1)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cases):
    torch.set_num_threads(1)
    config = tiny_config(tmp_path_factory.mktemp("run") / "out", *cases)
    return config, train_segmenter(config)


def test_run_writes_checkpoints_log_and_per_class_metrics(trained):
    config, result = trained
    assert (result.epoch, result.iteration, result.start_iteration) == (1, 3, 0)
    assert math.isfinite(result.last_loss) and result.last_loss > 0
    assert {"mean_dice", *CLASSES} <= set(result.metrics)
    assert {f"hd95_{name}" for name in ABDOMINAL_CLASS_MAP} <= set(result.metrics)
    assert all(0.0 <= result.metrics[k] <= 1.0 for k in ("mean_dice", *CLASSES))
    assert sorted(p.name for p in config_dir(config).iterdir()) == [
        "checkpoint_best.pt",
        "checkpoint_latest.pt",
        "config.yaml",
        "loss_curve.png",
        "training_log.json",
    ]


def config_dir(config: SegmentTrainConfig) -> Path:
    return Path(config.output_dir)


def test_checkpoint_is_self_describing_and_reloads(trained):
    config, result = trained
    record = read_checkpoint(result.checkpoint, checkpoint_format=SEGMENTER_FORMAT)["ctpipe"]
    assert record["format"] == SEGMENTER_FORMAT and record["iteration"] == 3
    assert record["model"]["kwargs"]["class_map"] == dict(ABDOMINAL_CLASS_MAP)
    assert record["inference"]["target_spacing"] == [4.0, 4.0, None]
    assert record["inference"]["roi_size"] == [32, 32]
    model, loaded = load_segmenter(result.checkpoint)
    assert loaded == config.model and not model.training
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), result.model.eval()(x))
    with pytest.raises(InputError, match=r"not a ctpipe denoiser checkpoint: format is "):
        read_checkpoint(result.checkpoint)  # a segmenter is no denoiser


def test_validation_dice_matches_numpy_on_the_validation_case(trained, cases):
    """The evaluator's per-class Dice is the textbook Dice of the sliding-window labels."""
    from ctpipe.evaluate.segmentation import numpy_dice
    from ctpipe.segment import SegmenterInferer
    from ctpipe.training.segment.data import case_transforms

    config, result = trained
    case = case_transforms(config)(cases[1][0])
    inferer = SegmenterInferer(config.model, (32, 32), sw_batch_size=6)
    model = result.model.eval()
    with torch.no_grad():
        labels = inferer(case["image"][None].as_tensor(), model).argmax(1)[0].numpy()
    reference = case["label"][0].numpy()
    for name, value in ABDOMINAL_CLASS_MAP.items():
        expected = numpy_dice(labels == value, reference == value)
        got = result.metrics[f"dice_{name}"]
        assert got == pytest.approx(expected, abs=1e-5) or (np.isnan(expected) and np.isnan(got))


def test_resume_continues_from_the_saved_iteration(trained, tmp_path):
    config, result = trained
    output = tmp_path / "resumed"
    shutil.copytree(result.output_dir, output)
    resumed = train_segmenter(
        dataclasses.replace(
            config,
            output_dir=str(output),
            resume=str(output / "checkpoint_latest.pt"),
            train=dataclasses.replace(config.train, epochs=2, validation_interval=0),
        )
    )
    assert (resumed.start_iteration, resumed.iteration, resumed.epoch) == (3, 6, 2)
    log = json.loads((output / "training_log.json").read_text())
    assert log["iterations"]["iteration"] == [1, 2, 3, 4, 5, 6]
    assert log["iterations"]["loss"][:3] == json.loads(result.log.read_text())["iterations"]["loss"]
    assert (
        read_checkpoint(output / "checkpoint_latest.pt", checkpoint_format=SEGMENTER_FORMAT)[
            "ctpipe"
        ]["iteration"]
        == 6
    )


def test_resume_refuses_another_segmenter(trained, tmp_path):
    config, result = trained
    other = dataclasses.replace(
        config,
        output_dir=str(tmp_path / "other"),
        model=dataclasses.replace(config.model, channels=(4, 8)),
        resume=str(result.checkpoint),
    )
    with pytest.raises(InputError, match=r"cannot resume: .*model keys that differ: channels"):
        build_segment_trainer(other)


def test_loss_decreases_on_one_fixed_batch(tmp_path, cases):
    """Overfit check: 25 steps on the same patches bring the Dice + CE loss down."""
    torch.set_num_threads(1)
    config = tiny_config(tmp_path, cases[0], [], iterations_per_epoch=25, validation_interval=0)
    config = dataclasses.replace(config, optimizer=dataclasses.replace(config.optimizer, lr=1e-2))
    torch.manual_seed(0)
    loader, _ = build_segment_loaders(config)
    batch = next(iter(loader))
    trainer, evaluator = build_segment_trainer(config, train_loader=[batch])
    assert evaluator is None
    trainer.run()
    losses = trainer.history.iterations["loss"]
    assert len(losses) == 25 and all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.6 * losses[0]
    assert sum(b < a for a, b in itertools.pairwise(losses)) >= 20  # mostly downhill


def test_module_entry_point_reports_bad_config_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {}\ndata: {train: [{image: a, label: b}]}\n")
    assert torchrun_main(["segment", str(bad)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"ctpipe: error: {bad}: key 'output_dir' is required"
    )
