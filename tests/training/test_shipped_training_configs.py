"""Every training config in workflows/training/ loads with the loader of its task."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctpipe.training.denoise.config import load_train_config
from ctpipe.training.gan.config import load_gan_config
from ctpipe.training.segment.config import load_segment_config
from ctpipe.training.vae.config import load_vae_config
from tests.conftest import REPO

LOADERS = {
    "denoise": load_train_config,
    "segment": load_segment_config,
    "vae": load_vae_config,
    "gan": load_gan_config,
}
CONFIGS = sorted((REPO / "workflows" / "training").glob("*.yaml"))


def test_every_task_ships_a_config():
    tasks = {path.name.split("_")[0] for path in CONFIGS}
    assert tasks == set(LOADERS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_loads_with_its_task_loader(path: Path):
    task = path.name.split("_")[0]
    assert task in LOADERS, f"{path.name}: name it after its task ({', '.join(LOADERS)})"
    config = LOADERS[task](path)
    assert str(config.output_dir).strip()
