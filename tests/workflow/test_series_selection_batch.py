"""A batch and a one-study run follow the workflow's select rules and record what they
left out, and ``ctpipe info --workflow`` shows it, on a generated study export."""

from __future__ import annotations

import csv
import json

import pytest

from ctpipe.cli import main
from ctpipe.workflow import load_workflow, run_batch, run_study

pytestmark = pytest.mark.filterwarnings("ignore:skipped .* non-DICOM file")


def _roles(uids):
    return {uid: name for name, uid in uids.items()}


def test_batch_records_every_series_left_out_and_why(tmp_path, study_folder, workflow_file):
    root, uids = study_folder
    workflow = load_workflow(workflow_file(steps=["denoise"], select={"per_study": "one"}))
    out = tmp_path / "out"
    result = run_batch(workflow, root, out, progress=False)
    role = _roles(uids)
    rows = {role[r["series_uid"]]: r for r in result.rows}
    assert rows["venous_1_5mm"]["status"] == "done"
    assert "chosen among 3 matching series" in rows["venous_1_5mm"]["reason"]
    for name in ("localizer", "dose_report", "venous_3mm", "arterial_3mm"):
        assert rows[name]["status"] == "not_selected" and rows[name]["reason"]
        assert not (out / rows[name]["name"]).exists()  # nothing was run for them
    assert result.exit_code == 0
    summary = json.loads((out / "batch.json").read_text())
    assert summary["counts"] == {"done": 1, "not_selected": 4}
    dose = next(r for r in summary["series"] if r["series_uid"] == uids["dose_report"])
    assert "Secondary Capture Image Storage" in dose["reason"]
    with open(out / "summary.csv", newline="") as stream:
        table = {role[r["series_uid"]]: r for r in csv.DictReader(stream)}
    assert table["localizer"]["status"] == "not_selected"
    assert "LOCALIZER" in table["localizer"]["reason"]
    assert table["dose_report"]["description"] == "Dose Report"
    index = (out / "index.html").read_text()
    assert "holds LOCALIZER (skip_image_type)" in index and "not_selected" in index
    again = run_batch(workflow, root, out, progress=False)  # resume keeps the decisions
    assert sorted(r["status"] for r in again.rows) == ["not_selected"] * 4 + ["skipped"]


def test_run_on_a_study_folder_takes_the_series_the_rules_pick(
    tmp_path, study_folder, workflow_file
):
    root, uids = study_folder
    path = workflow_file(
        steps=["denoise"], select={"description": "arterial"}, export={"dicom": False}
    )
    one = load_workflow(path)
    result = run_study(one, root, tmp_path / "one")
    assert result.status == "done", result.error
    assert result.record["input"]["SeriesInstanceUID"] == uids["arterial_3mm"]
    left_out = [s for s in result.record["input"]["selection"] if not s["selected"]]
    assert len(left_out) == 4 and all(s["reason"] for s in left_out)
    several = load_workflow(workflow_file(steps=["denoise"]))
    failed = run_study(several, root, tmp_path / "several")
    assert failed.status == "failed"
    assert "3 series pass the workflow's select rules" in failed.error


def test_info_shows_which_series_a_workflow_takes(study_folder, workflow_file, capsys):
    root, uids = study_folder
    path = workflow_file(steps=["denoise"], select={"per_study": "one"})
    assert main(["info", str(root), "--workflow", str(path)]) in (0, 1)
    text = capsys.readouterr().out
    assert text.splitlines()[0].startswith("workflow")
    assert text.count("takes") == 1 and text.count("skips") == 4
    assert "left out: ImageType ORIGINAL\\PRIMARY\\LOCALIZER holds LOCALIZER" in text
    main(["info", str(root), "--workflow", str(path), "--json"])
    rows = {r["series"]: r for r in json.loads(capsys.readouterr().out)["series"]}
    assert rows[uids["venous_1_5mm"]]["selected"] is True
    assert rows[uids["venous_3mm"]]["selected"] is False
    assert "per_study 'one' chose" in rows[uids["venous_3mm"]]["selection"]


def test_info_refuses_a_bad_workflow(study_folder, tmp_path, capsys):
    root, _ = study_folder
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nselect: {per_study: first}\n", encoding="utf-8")
    assert main(["info", str(root), "--workflow", str(bad)]) == 2
    assert "select.per_study must be one of all, one" in capsys.readouterr().err
