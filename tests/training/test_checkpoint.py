from __future__ import annotations

import pytest
import torch

from ctpipe.checkpoints.denoiser import load_denoiser
from ctpipe.checkpoints.file import (
    CHECKPOINT_FORMAT,
    read_checkpoint,
    save_checkpoint,
    state_sha256,
)
from ctpipe.errors import InputError
from ctpipe.nets import build_denoiser


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_denoiser("redcnn", filters=4)


def test_round_trip_gives_identical_outputs(tmp_path, model):
    path = save_checkpoint(
        tmp_path / "model.pt", model, model_name="redcnn", epoch=3, metrics={"psnr": 40.5}
    )
    loaded = load_denoiser(path)
    assert type(loaded) is type(model) and not loaded.training
    x = torch.rand(2, 1, 30, 30)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))
    record = loaded.checkpoint_record
    assert record["format"] == CHECKPOINT_FORMAT
    assert record["model"] == {"name": "redcnn", "kwargs": model.config}
    assert record["epoch"] == 3 and record["metrics"] == {"psnr": 40.5}
    assert record["network_sha256"] == state_sha256(model.state_dict())
    assert set(record["versions"]) == {"ctpipe", "torch", "monai"}
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary file left


def test_ddp_style_wrapper_is_unwrapped(tmp_path, model):
    class Wrapper(torch.nn.Module):  # what DistributedDataParallel looks like from outside
        def __init__(self, module):
            super().__init__()
            self.module = module

    path = save_checkpoint(tmp_path / "m.pt", Wrapper(model), model_name="redcnn")
    assert set(read_checkpoint(path)["network"]) == set(model.state_dict())


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"absent\.pt: checkpoint file does not exist"):
        load_denoiser(tmp_path / "absent.pt")


def test_not_a_torch_file(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("hello")
    with pytest.raises(InputError, match=r"notes\.pt: not a ctpipe checkpoint: torch\.load"):
        load_denoiser(path)


def test_plain_state_dict_is_refused(tmp_path, model):
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(InputError, match=r"weights\.pt: not a ctpipe checkpoint: no 'ctpipe'"):
        load_denoiser(path)


def test_other_format_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"ctpipe": {"format": "ctpipe.segmenter"}, "network": {}}, path)
    with pytest.raises(InputError, match=r"format is 'ctpipe\.segmenter'"):
        load_denoiser(path)


def test_changed_weights_fail_the_sha256(tmp_path, model):
    path = save_checkpoint(tmp_path / "m.pt", model, model_name="redcnn")
    checkpoint = torch.load(path, weights_only=True)
    next(iter(checkpoint["network"].values())).add_(1.0)
    torch.save(checkpoint, path)
    with pytest.raises(InputError, match="does not match the sha256 recorded"):
        load_denoiser(path)


def test_weights_of_another_shape(tmp_path, model):
    path = save_checkpoint(tmp_path / "m.pt", model, model_name="redcnn")
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["ctpipe"]["model"]["kwargs"]["filters"] = 5
    torch.save(checkpoint, path)
    with pytest.raises(InputError, match=r"weights do not fit model 'redcnn'"):
        load_denoiser(path)


def test_export_weights_is_smaller_and_loads_the_same(tmp_path):
    import torch

    from ctpipe.checkpoints.file import export_weights, save_checkpoint
    from ctpipe.nets import build_denoiser

    torch.manual_seed(0)
    model = build_denoiser("redcnn", filters=4)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.rand(1, 1, 24, 24)).mean().backward()
    optimizer.step()
    full = save_checkpoint(
        tmp_path / "full.pt",
        model,
        model_name="redcnn",
        extra_states={"optimizer": optimizer.state_dict()},
    )
    slim = export_weights(full, tmp_path / "slim.pt", note="test export")
    assert slim.stat().st_size < full.stat().st_size
    x = torch.rand(1, 1, 30, 30)
    with torch.no_grad():
        torch.testing.assert_close(load_denoiser(slim)(x), load_denoiser(full)(x))
    assert load_denoiser(slim).checkpoint_record["note"] == "test export"
