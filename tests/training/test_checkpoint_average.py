"""Weight averaging of checkpoints: the mean, its record and the refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ctpipe.checkpoints.average import average_checkpoints
from ctpipe.checkpoints.denoiser import load_denoiser
from ctpipe.checkpoints.file import read_checkpoint, save_checkpoint, state_sha256
from ctpipe.errors import InputError
from ctpipe.nets import build_denoiser


def _saved(tmp_path, name: str, seed: int, filters: int = 4, iteration: int = 0):
    torch.manual_seed(seed)
    model = build_denoiser("redcnn", filters=filters)
    path = save_checkpoint(tmp_path / name, model, model_name="redcnn", iteration=iteration)
    return path, {k: v.numpy().copy() for k, v in model.state_dict().items()}


def test_mean_is_the_element_wise_mean_of_the_sources(tmp_path):
    sources = [_saved(tmp_path, f"{i}.pt", seed=i, iteration=100 * i) for i in range(3)]
    out = average_checkpoints([p for p, _ in sources], tmp_path / "mean.pt")
    state = read_checkpoint(out)["network"]
    for name, tensor in state.items():
        expected = (sources[0][1][name] + sources[1][1][name] + sources[2][1][name]) / 3
        np.testing.assert_allclose(tensor.numpy(), expected, rtol=1e-6, atol=1e-7)


def test_mean_loads_and_records_its_sources(tmp_path):
    sources = [_saved(tmp_path, f"{i}.pt", seed=i, iteration=100 * i) for i in (1, 2)]
    out = average_checkpoints([p for p, _ in sources], tmp_path / "mean.pt", note="card.md")
    model = load_denoiser(out)
    record = model.checkpoint_record
    assert record["network_sha256"] == state_sha256(model.state_dict())
    assert [s["file"] for s in record["averaged_from"]] == ["1.pt", "2.pt"]
    assert [s["iteration"] for s in record["averaged_from"]] == [100, 200]
    assert record["iteration"] == 200 and record["note"] == "card.md"
    # the mean of two different networks is neither of them
    first = load_denoiser(sources[0][0])
    with torch.no_grad():
        x = torch.rand(1, 1, 24, 24)
        assert not torch.allclose(model(x), first(x))


def test_refuses_one_checkpoint(tmp_path):
    path, _ = _saved(tmp_path, "a.pt", seed=0)
    with pytest.raises(InputError, match="2 or more"):
        average_checkpoints([path], tmp_path / "mean.pt")
    assert not (tmp_path / "mean.pt").exists()


def test_refuses_checkpoints_of_another_model(tmp_path):
    a, _ = _saved(tmp_path, "a.pt", seed=0, filters=4)
    b, _ = _saved(tmp_path, "b.pt", seed=1, filters=8)
    with pytest.raises(InputError, match=r"b\.pt.*differs"):
        average_checkpoints([a, b], tmp_path / "mean.pt")
    assert not (tmp_path / "mean.pt").exists()


def test_refuses_a_damaged_source(tmp_path):
    a, _ = _saved(tmp_path, "a.pt", seed=0)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"bad\.pt"):
        average_checkpoints([a, bad], tmp_path / "mean.pt")
