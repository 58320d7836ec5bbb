"""The committed resume checkpoints: readable, with training state, for their config."""

from __future__ import annotations

import pytest

from ctpipe.checkpoints.file import read_checkpoint
from ctpipe.training.denoise.config import load_train_config
from tests.conftest import REPO

RESUME = REPO / "workflows" / "training" / "resume"
CHECKPOINTS = sorted(RESUME.glob("*.pt"))


def test_every_resume_checkpoint_is_described_in_the_folder_readme():
    readme = (RESUME / "README.md").read_text()
    assert CHECKPOINTS, "no resume checkpoint committed"
    for path in CHECKPOINTS:
        assert f"`{path.name}`" in readme, f"{path.name} is not described in {RESUME}/README.md"


@pytest.mark.parametrize("path", CHECKPOINTS, ids=lambda p: p.name)
def test_resume_checkpoint_carries_training_state_for_its_config(path):
    checkpoint = read_checkpoint(path)
    assert {"optimizer", "lr_scheduler", "trainer", "history"} <= set(checkpoint)
    config = load_train_config(REPO / "workflows" / "training" / f"{path.stem}.yaml")
    record = checkpoint["ctpipe"]
    assert record["model"]["name"] == config.model.name
    assert record["model"]["kwargs"]["filters"] == config.model.kwargs["filters"]
    trainer = checkpoint["trainer"]
    assert trainer["epoch_length"] == config.train.iterations_per_epoch
    assert 0 < trainer["iteration"] < config.train.epochs * config.train.iterations_per_epoch
