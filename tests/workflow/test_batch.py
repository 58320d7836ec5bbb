"""Batches: every series under a tree, one failure isolated, resumable, summarised."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from ctpipe.errors import InputError
from ctpipe.workflow import batch as batch_module
from ctpipe.workflow import load_workflow, run_batch
from ctpipe.workflow.runner import StudyRun

pytestmark = pytest.mark.filterwarnings("ignore:skipped .* non-DICOM file")


def _series(folder: Path, patient: str, seed: int) -> Path:
    from ctpipe.phantom import make_phantom, write_phantom

    phantom = make_phantom(shape=(40, 40, 4), spacing=(7.0, 7.0, 5.0), seed=seed)
    return write_phantom(folder, phantom, patient_id=patient).dicom_folder


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Two good series and one whose third file lost half its pixel data."""
    root = tmp_path / "tree"
    _series(root / "a", "PAT-A", 1)
    _series(root / "b", "PAT-B", 2)
    corrupt = _series(root / "c", "PAT-C", 3)
    victim = sorted(corrupt.glob("*.dcm"))[2]
    victim.write_bytes(victim.read_bytes()[:-1000])
    return root


@pytest.fixture
def workflow(workflow_file):
    return load_workflow(workflow_file(steps=["denoise"]))


def _by_patient(rows):
    return {row["name"].split("_S")[0]: row for row in rows}


def test_failing_series_is_recorded_and_others_finish(tmp_path, tree, workflow):
    out = tmp_path / "out"
    result = run_batch(workflow, tree, out, progress=False)
    rows = _by_patient(result.rows)
    assert rows["PAT-A"]["status"] == rows["PAT-B"]["status"] == "done"
    assert rows["PAT-C"]["status"] == "failed"
    assert "IM0003.dcm" in rows["PAT-C"]["error"] and "pixel data" in rows["PAT-C"]["error"]
    assert result.exit_code == 1
    assert (out / rows["PAT-A"]["name"] / "report.html").is_file()
    failed = json.loads((out / rows["PAT-C"]["name"] / "run.json").read_text())
    assert failed["status"] == "failed"
    with open(out / "summary.csv", newline="") as stream:
        table = list(csv.DictReader(stream))
    assert sorted(r["status"] for r in table) == ["done", "done", "failed"]
    summary = json.loads((out / "batch.json").read_text())
    assert summary["counts"] == {"done": 2, "failed": 1}
    index = (out / "index.html").read_text()
    assert f'href="{rows["PAT-A"]["name"]}/report.html"' in index


def test_rerun_skips_done_and_retries_failed(tmp_path, tree, workflow):
    out = tmp_path / "out"
    first = run_batch(workflow, tree, out, progress=False)
    done = {r["name"]: (out / r["name"] / "run.json").stat().st_mtime_ns for r in first.rows}
    second = run_batch(workflow, tree, out, progress=False)
    rows = _by_patient(second.rows)
    assert rows["PAT-A"]["status"] == rows["PAT-B"]["status"] == "skipped"
    assert rows["PAT-C"]["status"] == "failed"
    for name in (rows["PAT-A"]["name"], rows["PAT-B"]["name"]):
        assert (out / name / "run.json").stat().st_mtime_ns == done[name]


def test_other_settings_redo_done_series(tmp_path, tree, workflow, workflow_file):
    out = tmp_path / "out"
    run_batch(workflow, tree, out, progress=False)
    changed = load_workflow(workflow_file(steps=["denoise"], denoise={"batch_size": 1}))
    rows = _by_patient(run_batch(changed, tree, out, progress=False).rows)
    assert rows["PAT-A"]["status"] == "done"


@pytest.mark.parametrize("overlap", [True, False])
def test_resume_after_interrupted_run(tmp_path, tree, workflow, monkeypatch, overlap):
    out = tmp_path / "out"
    compute = StudyRun.compute
    calls = []

    def interrupt_second(run, models=None):
        calls.append(run.output_dir)
        if len(calls) == 2:  # killed while the second series is half written
            (run.output_dir.parent / f".{run.output_dir.name}.partial").mkdir()
            raise KeyboardInterrupt
        return compute(run, models)

    monkeypatch.setattr(StudyRun, "compute", interrupt_second)
    with pytest.raises(KeyboardInterrupt):
        run_batch(workflow, tree, out, progress=False, overlap=overlap)
    summary = json.loads((out / "batch.json").read_text())
    assert summary["counts"] == {"done": 1}  # the first series was published and recorded
    assert (out / calls[0].name / "report.html").is_file()
    monkeypatch.undo()
    result = run_batch(workflow, tree, out, progress=False, overlap=overlap)
    assert sorted(r["status"] for r in result.rows) == ["done", "failed", "skipped"]
    assert not list(out.glob(".*"))  # the half-finished staging folder is gone


def test_no_resume_redoes_everything(tmp_path, tree, workflow):
    out = tmp_path / "out"
    run_batch(workflow, tree, out, progress=False)
    result = run_batch(workflow, tree, out, progress=False, resume=False)
    assert sorted(r["status"] for r in result.rows) == ["done", "done", "failed"]


def test_empty_or_missing_tree_is_refused(tmp_path, workflow):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty folder"):
        run_batch(workflow, tmp_path / "empty", tmp_path / "out", progress=False)
    with pytest.raises(InputError, match="no such folder"):
        run_batch(workflow, tmp_path / "missing", tmp_path / "out", progress=False)


def test_study_names_are_safe_and_stable(tree):
    jobs, _ = batch_module.find_jobs(tree)
    names = [job.name for job in jobs]
    assert names == [job.name for job in batch_module.find_jobs(tree)[0]]
    assert len(set(names)) == 3
    assert all("/" not in n and not n.startswith(".") for n in names)
