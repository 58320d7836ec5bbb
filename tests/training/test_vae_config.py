"""VAE training configuration: defaults, refusals with key paths, held-out data refused."""

from __future__ import annotations

import pytest

from ctpipe.training.vae.config import (
    SeriesSource,
    VAEConfigError,
    VAEDataConfig,
    VAETrainConfig,
    load_vae_config,
)
from tests.conftest import REPO


def config(**data) -> dict:
    return {"data": {"train": [{"path": "/d/a"}], **data}, "output_dir": "o"}


def test_shipped_config_loads_and_keeps_held_out_data_out():
    c = load_vae_config(REPO / "workflows" / "training" / "vae_ct128_cpu.yaml")
    assert c.grid.size == (128, 128) and c.grid.pixel_mm == 3.0
    held = {s.label for s in c.data.holdout}
    assert held == {"L192", "pancreas[45:75]", "totalseg", "radiomics_lung", "dcmqi"}
    trained = [s.path for s in c.data.train + c.data.validation]
    assert not any("L192" in p for p in trained)
    calibrated = {s.label for s in c.data.calibration}
    assert calibrated == {"L143_B30", "pancreas[45:75]", "totalseg", "radiomics_lung", "dcmqi"}
    assert len(c.data.train) == 6  # every normal-dose series that is not held back


def test_round_trip_through_plain_data():
    c = VAETrainConfig.from_dict(config(validation=[{"path": "/d/b", "slices": [0, 4]}]))
    assert VAETrainConfig.from_dict(c.to_dict()) == c
    assert c.model_kwargs()["in_shape"] == [128, 128]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (
            {"holdout": [{"path": "/d/a", "slices": [10, 20]}]},
            r"train source /d/a slices all shares held-out slices \[10, 20\)",
        ),
        (
            {"train": [{"path": "/d", "slices": None}], "holdout": [{"path": "/d/x"}]},
            "train source /d holds the held-out source /d/x",
        ),
        (
            {"train": [{"path": "/d/x/y"}], "holdout": [{"path": "/d/x"}]},
            "lies inside the held-out folder /d/x",
        ),
        (
            {
                "train": [{"path": "/d/a", "slices": [0, 10]}],
                "validation": [{"path": "/d/a", "slices": [5, 8]}],
            },
            "validation source /d/a slices \\[5, 8\\) shares training slices",
        ),
        (
            {"calibration": [{"path": "/d/a", "slices": [0, 4]}]},
            r"train source /d/a slices all shares calibration slices \[0, 4\)",
        ),
        ({"train": [{"path": "/d/a", "slices": [5, 3]}]}, "slices must be \\[start, stop\\)"),
        ({"train": []}, "train must list at least one source"),
    ],
)
def test_data_refusals(data, match):
    with pytest.raises(VAEConfigError, match=match):
        VAETrainConfig.from_dict({"data": {"train": [{"path": "/d/a"}], **data}, "output_dir": "o"})


def test_guard_slices_next_to_a_held_out_range():
    ok = VAEDataConfig([SeriesSource("/s", (0, 42))], holdout=[SeriesSource("/s", (45, 75))])
    assert ok.guard_slices == 3
    with pytest.raises(ValueError, match="comes within guard_slices 3"):
        VAEDataConfig([SeriesSource("/s", (0, 43))], holdout=[SeriesSource("/s", (45, 75))])


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"modle": {}}, "unknown key 'modle'.*did you mean 'model'"),
        ({"model": {"reconstruction": "l2"}}, "model.reconstruction must be one of mse"),
        ({"grid": {"size": [100, 100]}}, "grid.size must be multiples of 2 \\*\\* len"),
        ({"loss": {"sigma": 0}}, "loss: sigma must be > 0"),
        ({"augment": {"scale": 1.5}}, "augment: scale must be in \\[0, 1\\)"),
        ({"train": {"device": "gpu"}}, "train: device must be 'auto'"),
    ],
)
def test_section_refusals(extra, match):
    with pytest.raises(VAEConfigError, match=match):
        VAETrainConfig.from_dict({**config(), **extra})
