"""Workflow files: typed, checked before any work, shipped workflows load."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctpipe.workflow.config import Workflow, WorkflowError, load_workflow

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wf.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "name: a\nsteps: [denoise]\ndenoise: {batch_szie: 2}\n",
            r"denoise\.batch_szie.*batch_size",
        ),
        ("name: a\nsteps: [denoise]\ndenoise: {batch_size: two}\n", r"denoise\.batch_size"),
        ("name: a\nsteps: [denosie]\n", r"steps\[0\].*did you mean 'denoise'"),
        ("name: a\nsteps: [denoise]\nexport: {dicom: maybe}\n", r"export\.dicom"),
        (
            "name: a\nsteps: [segment]\nsegment: {overlap: 1.5}\n",
            r"segment.*overlap must be >= 0 and < 1",
        ),
        ("name: a\nsteps: []\n", r"at least one step"),
        ("steps: [denoise]\n", r"name"),
        ("name: a/b\n", r"name must be letters"),
        ("name: a\nsteps: [denoise]\ndenoise: {device: gpu}\n", r"device must be 'auto'"),
    ],
)
def test_bad_workflow_refused_with_key_path(tmp_path, text, match):
    path = _write(tmp_path, text)
    with pytest.raises(WorkflowError, match=match) as info:
        load_workflow(path)
    assert str(path) in str(info.value)


def test_missing_weights_refused_before_work(tmp_path):
    path = _write(tmp_path, "name: a\nsteps: [denoise]\ndenoise: {weights: nothere.pt}\n")
    with pytest.raises(WorkflowError, match=r"denoise\.weights: no such file 'nothere.pt'"):
        load_workflow(path)


def test_weights_relative_to_workflow_file(tmp_path, tiny_segmenter):
    (tmp_path / "models").mkdir()
    target = tmp_path / "models" / "seg.pt"
    target.write_bytes(tiny_segmenter.read_bytes())
    path = _write(tmp_path, "name: a\nsteps: [segment]\nsegment: {weights: models/seg.pt}\n")
    assert load_workflow(path).segment.weights == "models/seg.pt"


def test_missing_file_and_not_yaml(tmp_path):
    with pytest.raises(WorkflowError, match=r"nothing\.yaml"):
        load_workflow(tmp_path / "nothing.yaml")
    with pytest.raises(WorkflowError):
        load_workflow(_write(tmp_path, "name: [unclosed\n"))


def test_settings_hash_tracks_settings_not_description():
    base = Workflow(name="w")
    assert base.sha256 == Workflow(name="w", description="other words").sha256
    assert base.sha256 != Workflow(name="w", steps=("denoise",)).sha256


def test_seg_export_off_without_segment_step():
    assert Workflow(name="w", steps=("denoise",)).export.seg is False


@pytest.mark.parametrize(
    ("name", "steps"),
    [
        ("denoise_only", ("denoise",)),
        ("denoise_segment", ("guard", "denoise", "segment")),
        ("segment_only", ("guard", "segment")),
        ("denoise_segment_anomaly", ("guard", "denoise", "segment", "anomaly")),
        ("inpaint_streaks", ("denoise", "inpaint")),
    ],
)
def test_shipped_workflows_load(name, steps):
    workflow = load_workflow(REPO / "workflows" / f"{name}.yaml")
    assert workflow.name == name
    assert workflow.steps == steps


def test_default_workflow_file_is_the_code_default():
    workflow = load_workflow(REPO / "workflows" / "denoise_segment.yaml")
    assert workflow.sha256 == Workflow(name="denoise_segment").sha256
