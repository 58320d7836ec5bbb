"""Fixtures for workflow tests: small phantom series and a tiny segmenter checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml


@pytest.fixture
def phantom_series(tmp_path: Path):
    """A 48 x 48 x 6 phantom written as DICOM; returns its PhantomFiles."""
    from ctpipe.phantom import make_phantom, write_phantom

    phantom = make_phantom(shape=(48, 48, 6), spacing=(6.0, 6.0, 5.0), seed=1)
    return write_phantom(tmp_path / "phantom", phantom, patient_id="PHANTOM-1")


@pytest.fixture(scope="session")
def tiny_segmenter(tmp_path_factory) -> Path:
    """A seeded, untrained 2-D UNet segmenter checkpoint (liver, spleen)."""
    import torch

    from ctpipe.checkpoints.segmenter import save_segmenter
    from ctpipe.nets.segmenters import SegmenterConfig, build_segmenter

    torch.manual_seed(0)
    config = SegmenterConfig(
        spatial_dims=2,
        class_map={"liver": 1, "spleen": 2},
        channels=(4, 8),
        strides=(2,),
        num_res_units=0,
    )
    path = tmp_path_factory.mktemp("weights") / "tiny_segmenter.pt"
    inference = {"roi_size": [32, 32], "target_spacing": None, "hu_window": [-200, 300]}
    return save_segmenter(path, build_segmenter(config), config, inference=inference)


@pytest.fixture
def workflow_file(tmp_path: Path, tiny_segmenter: Path):
    """Write a workflow YAML (denoise with the shipped weights, tiny segmenter)."""

    def write(**changes) -> Path:
        data = {
            "name": "test_wf",
            "steps": ["denoise", "segment"],
            "denoise": {"device": "cpu", "batch_size": 2},
            "segment": {"weights": str(tiny_segmenter), "sw_device": "cpu"},
        }
        data.update(changes)
        path = tmp_path / f"wf_{len(list(tmp_path.glob('wf_*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return path

    return write
