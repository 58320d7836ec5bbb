"""Two CPU processes under torchrun (gloo) train one model; only rank 0 writes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import yaml

from ctpipe.checkpoints.denoiser import load_denoiser
from ctpipe.checkpoints.file import read_checkpoint
from tests.conftest import REPO, shared_path

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_torchrun_two_processes_on_cpu(tmp_path):
    output = tmp_path / "run"
    config = {
        "model": {"name": "redcnn", "kwargs": {"filters": 8}},
        "data": {
            "root": str(shared_path("aapm_ldct_pairs")),
            "manifest": str(REPO / "data_manifests" / "aapm_ldct_pairs_shared.yaml"),
            "train_patients": ["L096", "L143"],
            "validation_holdout": 1,  # 2 validation slices: one per rank
        },
        "patches": {"size": [32, 32], "per_slice": 2},
        "train": {
            "batch_size": 4,
            "epochs": 1,
            "iterations_per_epoch": 2,
            "progress": False,
            "device": "cpu",
            "log_interval": 1,
        },
        "output_dir": str(output),
    }
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        "-m",
        "ctpipe.training",
        "denoise",
        str(path),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    for rank in (0, 1):
        assert f"[rank {rank}] rank {rank} of 2 on cpu: training redcnn" in log
        assert f"[rank {rank}] rank {rank} of 2: finished at iteration 2" in log
    # rank 0 alone writes: one latest and one best checkpoint, saved by rank 0 only
    assert sorted(p.name for p in output.glob("*.pt")) == [
        "checkpoint_best.pt",
        "checkpoint_latest.pt",
    ]
    assert "[rank 0] Saved checkpoint at epoch: 1" in log
    assert "[rank 1] Saved checkpoint" not in log
    assert not list(output.glob(".tmp-*"))
    checkpoint = read_checkpoint(output / "checkpoint_latest.pt")
    assert checkpoint["ctpipe"]["world_size"] == 2 and checkpoint["ctpipe"]["iteration"] == 2
    assert not any(name.startswith("module.") for name in checkpoint["network"])  # unwrapped
    load_denoiser(output / "checkpoint_latest.pt")
    assert (output / "loss_curve.png").exists() and (output / "training_log.json").exists()
