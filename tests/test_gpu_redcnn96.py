"""``benchmarks/gpu_redcnn96.py``, the GPU training script, run on the CPU for a few iterations."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ctpipe.phantom import make_phantom
from ctpipe.transforms import hu_to_unit

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_redcnn96.py"


@pytest.fixture(scope="module")
def gpu():
    spec = importlib.util.spec_from_file_location("gpu_redcnn96", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_redcnn96"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("gpu_redcnn96", None)


@pytest.fixture(scope="module")
def pack(gpu, tmp_path_factory):
    """Six 64 x 64 phantom slices: low dose = normal dose + 100 HU + noise; 2 for validation."""
    rng = np.random.default_rng(0)
    high = make_phantom((64, 64, 6), (6.0, 6.0, 5.0), seed=2).hu
    high = [high[:, :, k] for k in range(6)]
    low = [h + 100.0 + rng.normal(0, 20, h.shape) for h in high]
    groups = ["real/sharp", "real/sharp", "real/sharp", "simulated/smooth", "real/sharp", "x"]
    roles = ["train"] * 4 + ["validation"] * 2
    path = tmp_path_factory.mktemp("pack") / "pairs.npz"
    return gpu.pack_arrays(low, high, groups, roles, path, {"made": "test"}), low, high


def test_pack_round_trips_int16_hu_by_role(gpu, pack):
    path, low, high = pack
    data = gpu.load_pack(path, torch.device("cpu"))
    assert data["meta"] == {"made": "test", "written_by": gpu.WRITTEN_BY}
    assert data["train"]["low"].shape == (4, 1, 64, 64)
    assert data["validation"]["groups"] == ["real/sharp", "x"]
    expected = hu_to_unit(np.rint(low[4]).astype(np.float32))  # rounded, not clipped
    assert torch.allclose(data["validation"]["low"][0, 0], torch.from_numpy(expected))
    assert torch.allclose(
        data["train"]["high"][1, 0], torch.from_numpy(hu_to_unit(np.rint(high[1])))
    )


def test_pack_refuses_mixed_shapes_and_unknown_roles(gpu, tmp_path):
    a, b = np.zeros((8, 8)), np.zeros((9, 8))
    with pytest.raises(ValueError, match="one shape"):
        gpu.pack_arrays([a, b], [a, b], ["g", "g"], ["train", "train"], tmp_path / "p.npz")
    with pytest.raises(ValueError, match="roles must be"):
        gpu.pack_arrays([a], [a], ["g"], ["test"], tmp_path / "p.npz")


def test_balanced_weights_give_each_group_the_same_share(gpu):
    weights = gpu.balanced_weights(["a", "a", "a", "b"])
    assert weights.sum() == pytest.approx(1.0)
    assert weights[:3].sum() == pytest.approx(0.5) and weights[3] == pytest.approx(0.5)


def test_random_patches_are_aligned_crops_of_the_pairs(gpu, pack):
    data = gpu.load_pack(pack[0], torch.device("cpu"))
    train = data["train"]
    shift = hu_to_unit(np.float32(100.0)) - hu_to_unit(np.float32(0.0))
    generator = torch.Generator().manual_seed(1)
    weights = torch.ones(4)
    for _ in range(5):
        x, y = gpu.random_patches(train["low"], train["high"], weights, 3, 16, generator)
        assert x.shape == y.shape == (3, 1, 16, 16)
        # low = high + 100 HU + noise (sd 20 HU): the pair is aligned pixel by pixel
        difference = (x - y).mean().item()
        assert difference == pytest.approx(float(shift), rel=0.1)


def test_run_trains_scores_saves_and_times_on_the_cpu(gpu, pack, tmp_path):
    from ctpipe.checkpoints.denoiser import load_denoiser

    argv = ["run", "--pack", str(pack[0]), "--out", str(tmp_path), "--filters", "4"]
    argv += ["--patch", "48", "--batch", "2", "--max-iterations", "3", "--minutes", "5"]
    argv += ["--size", "64", "--repeats", "1", "--paths", "fp32", "fp32 channels_last"]
    argv += ["bf16 channels_last compile + CUDA graphs"]
    assert gpu.main(argv) == 0
    result = json.loads((tmp_path / "gpu_run.json").read_text())
    assert result["training"]["iterations"] == 3 and result["training"]["bf16"] is True
    assert set(result["validation"]) == {"psnr", "psnr_window"}
    assert all(np.isfinite(list(result["validation"].values())))
    timed = {row["path"]: row for row in result["inference"]}
    assert set(timed) == {"fp32", "fp32 channels_last", "bf16 channels_last compile + CUDA graphs"}
    assert timed["fp32"]["ms"] > 0 and timed["fp32"]["tflops"] > 0
    assert timed["bf16 channels_last compile + CUDA graphs"]["error"] == "needs CUDA"
    model = load_denoiser(tmp_path / "redcnn96_gpu.pt")
    assert model.config["filters"] == 4
    assert model.checkpoint_record["metrics"]["psnr"] == pytest.approx(result["validation"]["psnr"])


def test_macs_count_every_layer_of_redcnn(gpu):
    """Ten 5 x 5 layers on a 41 x 41 input: hand-computed multiply-adds."""
    from ctpipe.nets.redcnn import REDCNN

    net = REDCNN(filters=2)
    sizes = [37, 33, 29, 25, 21]  # encoder outputs; the decoder's inputs mirror them
    encoder = sum(c_in * 2 * 25 * s * s for c_in, s in zip([1, 2, 2, 2, 2], sizes, strict=True))
    decoder = sum(
        2 * c_out * 25 * s * s for c_out, s in zip([2, 2, 2, 2, 1], sizes[::-1], strict=True)
    )
    assert gpu.macs(net, 41) == encoder + decoder


def test_pack_replaces_its_own_pack_but_no_other_file(gpu, tmp_path):
    a = np.zeros((8, 8))
    path = gpu.pack_arrays([a], [a], ["g"], ["train"], tmp_path / "p.npz", {"n": 1})
    gpu.pack_arrays([a + 5], [a], ["g"], ["train"], path, {"n": 2})  # its own: replaced
    assert gpu.load_pack(path, torch.device("cpu"))["meta"]["n"] == 2
    foreign = tmp_path / "mine.npz"
    foreign.write_bytes(b"a user's file")
    with pytest.raises(ValueError, match=r"mine\.npz: exists and is not a pack"):
        gpu.pack_arrays([a], [a], ["g"], ["train"], foreign)
    assert foreign.read_bytes() == b"a user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.npz", "p.npz"]  # no temp left


def test_run_refuses_a_folder_with_an_earlier_run_before_training(gpu, pack, tmp_path):
    (tmp_path / "gpu_run.json").write_text("{}")
    with pytest.raises(SystemExit, match=r"already holds gpu_run\.json; give an empty --out"):
        gpu.main(["run", "--pack", str(pack[0]), "--out", str(tmp_path), "--filters", "4"])
    assert (tmp_path / "gpu_run.json").read_text() == "{}"
