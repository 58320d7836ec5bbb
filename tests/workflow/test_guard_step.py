"""The workflow's ``guard`` step: it scores the input first, and a study out of distribution
carries the warning in its record, report and batch summary (warn), or runs no model
(skip); segment volumes of a flagged study are marked."""

from __future__ import annotations

import csv
import json

import pytest

from ctpipe.errors import InputError
from ctpipe.workflow import Workflow, load_workflow, run_batch, run_study
from ctpipe.workflow.config import WorkflowError
from tests.conftest import REPO

pytestmark = pytest.mark.filterwarnings("ignore:skipped .* non-DICOM file")

#: Thresholds that make any study pass or be flagged, whatever its score.
NEVER, ALWAYS = 1e9, 1e-6


def _guarded(workflow_file, threshold, action="warn", steps=("guard", "denoise", "segment")):
    guard = {"threshold": threshold, "action": action, "device": "cpu", "max_slices": 4}
    return load_workflow(workflow_file(steps=list(steps), guard=guard))


def test_default_workflow_guards_first():
    assert Workflow(name="x").steps == ("guard", "denoise", "segment")
    shipped = load_workflow(REPO / "workflows" / "denoise_segment.yaml")
    assert shipped.steps[0] == "guard" and shipped.guard.action == "warn"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"steps": ["denoise", "guard"]}, "guard must be the first step"),
        ({"guard": {"action": "stop"}}, r"guard.action must be one of warn, skip"),
        ({"guard": {"threshold": 0}}, "threshold must be > 0, got 0"),
        ({"guard": {"max_slices": 0}}, "max_slices must be >= 1, got 0"),
    ],
)
def test_bad_guard_settings_are_refused(data, message):
    with pytest.raises(WorkflowError, match=message):
        Workflow.from_dict({"name": "w", **data}, source="wf.yaml")


def test_a_study_that_passes_gets_no_warning(tmp_path, phantom_series, workflow_file):
    result = run_study(_guarded(workflow_file, NEVER), phantom_series.dicom_folder, tmp_path / "ok")
    assert result.status == "done", result.error
    assert result.record["guard"]["flagged"] is False and result.warnings == []
    metrics = result.record["steps"]["guard"]["metrics"]
    assert metrics["slices_scored"] == 4 and metrics["study_threshold"] == NEVER
    assert "volume_warning" not in result.record["steps"]["segment"]["metrics"]
    assert "Warnings" not in result.report.read_text()


def test_warn_runs_on_and_marks_record_report_volumes_and_dicom(
    tmp_path, phantom_series, workflow_file
):
    import pydicom

    result = run_study(
        _guarded(workflow_file, ALWAYS), phantom_series.dicom_folder, tmp_path / "warn"
    )
    assert result.status == "done", result.error
    record = json.loads((result.output_dir / "run.json").read_text())
    assert record["guard"]["flagged"] is True and record["guard"]["action"] == "warn"
    assert record["warnings"] == [record["guard"]["warning"]]
    assert record["warnings"][0].startswith("out of distribution: guard score")
    segment = record["steps"]["segment"]["metrics"]
    assert segment["volume_warning"].startswith("UNRELIABLE") and segment["volume_ml"]
    html = result.report.read_text()
    assert '<ul class="failed"><li>out of distribution: guard score' in html
    assert "volume_ml (UNRELIABLE, see the warning): liver" in html
    seg = pydicom.dcmread(result.output_dir / "dicom" / "segmentation.dcm", stop_before_pixels=True)
    assert seg.SeriesDescription.endswith("[guard: OOD]")
    derived = sorted((result.output_dir / "dicom" / "derived").glob("*.dcm"))[0]
    ds = pydicom.dcmread(derived, stop_before_pixels=True)
    assert ds.SeriesDescription.endswith("[guard: OOD]")
    assert "WARNING: input out of distribution" in ds.DerivationDescription


def test_skip_runs_no_model_and_records_why(tmp_path, phantom_series, workflow_file):
    workflow = _guarded(workflow_file, ALWAYS, action="skip")
    result = run_study(workflow, phantom_series.dicom_folder, tmp_path / "skip")
    assert result.status == "out_of_distribution", result.error
    assert list(result.record["steps"]) == ["guard"]
    assert result.record["steps_not_run"] == ["denoise", "segment"]
    assert not (result.output_dir / "dicom").exists()
    assert not (result.output_dir / "nifti" / "labels.nii.gz").exists()
    assert "Steps not run: denoise, segment" in result.report.read_text()


def test_batch_summaries_carry_the_guard(tmp_path, phantom_series, workflow_file):
    out = tmp_path / "batch"
    tree = phantom_series.dicom_folder.parent
    result = run_batch(_guarded(workflow_file, ALWAYS, "skip"), tree, out, progress=False)
    (row,) = [r for r in result.rows if r["status"] != "not_selected"]
    assert row["status"] == "out_of_distribution" and row["guard"] == "flagged, not run"
    assert result.exit_code == 0 and result.flagged == [row]
    summary = json.loads((out / "batch.json").read_text())
    assert summary["guard_flagged"] == 1
    with open(out / "summary.csv", newline="") as stream:
        (line,) = [r for r in csv.DictReader(stream) if r["status"] != "not_selected"]
    assert line["guard"] == "flagged, not run" and float(line["guard_score"]) > 0
    assert line["warning"].startswith("out of distribution")
    index = (out / "index.html").read_text()
    assert "1 series flagged out of distribution by the guard" in index
    again = run_batch(_guarded(workflow_file, ALWAYS, "skip"), tree, out, progress=False)
    (resumed,) = [r for r in again.rows if r["status"] != "not_selected"]
    assert resumed["status"] == "skipped" and resumed["guard"] == "flagged, not run"


def test_guard_weights_without_calibration_are_refused(tmp_path, phantom_series, workflow_file):
    import torch

    from ctpipe.checkpoints.file import save_checkpoint
    from ctpipe.checkpoints.vae import VAE_FORMAT
    from ctpipe.nets.vae import VAE
    from ctpipe.workflow.steps import Models

    bare = save_checkpoint(
        tmp_path / "bare_vae.pt",
        VAE((32, 32), latent_dim=4, channels=(4, 8)),
        model_name="vae",
        extra={"grid": {"size": [32, 32], "pixel_mm": 9.0, "window": [-160.0, 240.0]}},
        checkpoint_format=VAE_FORMAT,
    )
    torch.manual_seed(0)
    workflow = load_workflow(workflow_file(steps=["guard"], guard={"weights": str(bare)}))
    with pytest.raises(InputError, match="holds no guard calibration; add one with"):
        Models.load(workflow)


def test_a_nifti_stored_in_ras_order_scores_as_its_dicom_series(
    tmp_path, phantom_series, workflow_file
):
    """The step turns each volume to LPS order from its affine before scoring it."""
    import numpy as np

    from ctpipe.io.geometry import reorient
    from ctpipe.io.nifti import write_nifti
    from ctpipe.io.reader import read_study

    volume = read_study(phantom_series.dicom_folder)
    ras_order, affine = reorient(volume.hu, volume.affine_ras, "RAS")
    assert not np.array_equal(ras_order, volume.hu)  # stored the other way up
    nifti = write_nifti(np.ascontiguousarray(ras_order), affine, tmp_path / "ct.nii.gz")
    workflow = _guarded(workflow_file, NEVER, steps=("guard",))
    scores = []
    for source, out in ((phantom_series.dicom_folder, "dicom"), (nifti, "nifti")):
        result = run_study(workflow, source, tmp_path / out)
        assert result.status == "done", result.error
        scores.append(result.record["steps"]["guard"]["metrics"]["study_score"])
    assert scores[1] == pytest.approx(scores[0], rel=1e-5)
