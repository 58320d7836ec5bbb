"""Two CPU processes under torchrun (gloo) train one segmenter; only rank 0 writes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from ctpipe.checkpoints.file import read_checkpoint
from ctpipe.checkpoints.segmenter import SEGMENTER_FORMAT, load_segmenter
from ctpipe.phantom import make_phantom, write_phantom
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_torchrun_two_processes_on_cpu(tmp_path):
    cases = []
    for seed in (0, 1):
        files = write_phantom(
            tmp_path / f"case{seed}",
            make_phantom(shape=(32, 32, 4), spacing=(5.0, 5.0, 6.0), seed=seed),
        )
        cases.append({"image": str(files.ct_nifti), "label": str(files.labels_nifti)})
    output = tmp_path / "run"
    config = {
        "model": {"spatial_dims": 2, "channels": [4, 8], "strides": [2], "num_res_units": 0},
        "data": {"train": cases, "validation": cases},  # one validation case per rank
        "preprocess": {"target_spacing": None},
        "patches": {"size": [16, 16], "per_volume": 2},
        "augment": {"prob": 0.0},
        "train": {
            "batch_size": 2,
            "epochs": 1,
            "iterations_per_epoch": 2,
            "progress": False,
            "device": "cpu",
            "log_interval": 1,
        },
        "inference": {"roi_size": [32, 32]},
        "output_dir": str(output),
    }
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",  # a free port chosen by torchrun itself: no race with other jobs
        "--nproc_per_node",
        "2",
        "-m",
        "ctpipe.training",
        "segment",
        str(path),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    for rank in (0, 1):
        assert f"[rank {rank}] rank {rank} of 2 on cpu: training unet 2-D segmenter" in log
        assert f"[rank {rank}] rank {rank} of 2: finished at iteration 2" in log
    assert sorted(p.name for p in output.glob("*.pt")) == [
        "checkpoint_best.pt",
        "checkpoint_latest.pt",
    ]
    assert "[rank 1] Saved checkpoint" not in log
    assert not list(output.glob(".tmp-*"))
    checkpoint = read_checkpoint(
        output / "checkpoint_latest.pt", checkpoint_format=SEGMENTER_FORMAT
    )
    assert checkpoint["ctpipe"]["world_size"] == 2 and checkpoint["ctpipe"]["iteration"] == 2
    assert not any(name.startswith("module.") for name in checkpoint["network"])  # unwrapped
    load_segmenter(output / "checkpoint_latest.pt")
