"""``ctpipe run`` and ``ctpipe batch``: exit codes, messages, outputs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ctpipe.cli import main
from ctpipe.cli.workflow import WORKFLOWS_DIR, resolve_workflow

pytestmark = pytest.mark.filterwarnings("ignore:skipped .* non-DICOM file")


def test_run_prints_report_and_record(tmp_path, phantom_series, workflow_file, capsys):
    path = workflow_file(steps=["denoise"])
    out = tmp_path / "study"
    code = main(
        ["run", str(path), "--input", str(phantom_series.dicom_folder), "--output", str(out)]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert f"report: {out / 'report.html'}" in printed
    assert f"record: {out / 'run.json'}" in printed


def test_run_on_missing_input_exits_2_with_the_error(tmp_path, workflow_file, capsys):
    code = main(
        [
            "run",
            str(workflow_file()),
            "--input",
            str(tmp_path / "nope"),
            "--output",
            str(tmp_path / "o"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.strip() == f"ctpipe: error: {tmp_path / 'nope'}: no such file or folder"


def test_bad_workflow_exits_2_in_one_line_before_work(tmp_path, phantom_series):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsteps: [denoise]\ndenoise: {weigths: default}\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ctpipe",
            "run",
            str(bad),
            "--input",
            str(phantom_series.dicom_folder),
            "--output",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert (
        "unknown key 'denoise.weigths'" in result.stderr
        and "did you mean 'weights'" in result.stderr
    )
    assert not (tmp_path / "o").exists()


def test_batch_reports_failures_and_exits_1(tmp_path, phantom_series, workflow_file, capsys):
    tree = tmp_path / "tree"
    (tree / "good").mkdir(parents=True)
    for f in phantom_series.dicom_files:
        (tree / "good" / f.name).write_bytes(f.read_bytes())
    from ctpipe.phantom import make_phantom, write_phantom

    other = write_phantom(tmp_path / "other", make_phantom(shape=(32, 32, 4)), patient_id="B")
    other.dicom_files[1].unlink()  # a missing slice: not a regular grid
    other.dicom_folder.rename(tree / "broken")
    out = tmp_path / "out"
    code = main(
        [
            "batch",
            str(workflow_file(steps=["denoise"])),
            "--input",
            str(tree),
            "--output",
            str(out),
            "--no-progress",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "2 series" in captured.out and "1 done" in captured.out and "1 failed" in captured.out
    assert "failed: " in captured.err and "gap" in captured.err
    assert f"index: {out / 'index.html'}" in captured.out


def test_shipped_workflow_by_name():
    assert resolve_workflow("denoise_segment") == WORKFLOWS_DIR / "denoise_segment.yaml"
    assert resolve_workflow("other.yaml").name == "other.yaml"
