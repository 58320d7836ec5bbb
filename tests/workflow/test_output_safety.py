"""``run``, ``batch`` and ``demo`` never delete or overwrite what ctpipe did not write."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ctpipe.cli import main
from ctpipe.errors import OutputError
from ctpipe.workflow import load_workflow, run_batch, run_study
from ctpipe.workflow.runner import study_folder_problem

pytestmark = pytest.mark.filterwarnings("ignore:skipped .* non-DICOM file")


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones included) with the sha256 of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("ctpipe: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def archive(tmp_path: Path, phantom_series) -> Path:
    """A user's folder: DICOM files and notes that ctpipe never wrote."""
    folder = tmp_path / "patient_archive"
    folder.mkdir()
    for f in phantom_series.dicom_files:
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "notes.txt").write_text("do not lose me")
    return folder


def test_output_naming_an_existing_file_is_refused(tmp_path, phantom_series, workflow_file, capsys):
    target = tmp_path / "results.txt"
    target.write_text("precious")
    code, _, err = run_cli(
        capsys, "run", workflow_file(), "--input", phantom_series.dicom_folder, "--output", target
    )
    assert code == 2
    line = one_error_line(err)
    assert str(target) in line and "is not a folder" in line
    assert target.read_text() == "precious"


@pytest.mark.parametrize("where", ["same", "inside", "holds"])
def test_output_overlapping_the_input_is_refused(tmp_path, archive, workflow_file, capsys, where):
    workflow = workflow_file()
    before = snapshot(tmp_path)
    source, output = {
        "same": (archive, archive),
        "inside": (archive, archive / "results"),
        "holds": (archive, tmp_path),
    }[where]
    code, _, err = run_cli(
        capsys, "run", workflow, "--input", source, "--output", output, "--overwrite"
    )
    assert code == 2
    line = one_error_line(err)
    assert f"the input {source}" in line
    assert snapshot(tmp_path) == before
    assert not (archive / "results").exists()


def test_failed_run_into_a_foreign_folder_is_refused_before_work(
    tmp_path, archive, workflow_file, capsys
):
    before = snapshot(archive)
    code, _, err = run_cli(
        capsys, "run", workflow_file(), "--input", tmp_path / "typo", "--output", archive
    )
    assert code == 2
    line = one_error_line(err)
    assert str(archive) in line and "without a ctpipe run record" in line
    assert "--overwrite" in line
    assert snapshot(archive) == before


def test_failed_run_with_overwrite_leaves_the_folder_as_it_was(
    tmp_path, archive, workflow_file, capsys
):
    other = tmp_path / "other_archive"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    before = snapshot(other)
    code, out, err = run_cli(
        capsys,
        "run",
        workflow_file(),
        "--input",
        tmp_path / "typo",
        "--output",
        other,
        "--overwrite",
    )
    assert code == 2
    assert "typo: no such file or folder" in err
    assert "left as it was" in out
    assert snapshot(other) == before
    assert not list(tmp_path.glob(".other_archive*"))


@pytest.fixture
def done_folder(tmp_path, phantom_series, workflow_file) -> Path:
    out = tmp_path / "study"
    result = run_study(
        load_workflow(workflow_file(steps=["denoise"])), phantom_series.dicom_folder, out
    )
    assert result.status == "done", result.error
    return out


def test_a_done_study_folder_lists_every_file_it_holds(done_folder):
    assert study_folder_problem(done_folder) is None


def test_failed_rerun_keeps_the_earlier_result(tmp_path, done_folder, workflow_file, capsys):
    before = snapshot(done_folder)
    code, out, err = run_cli(
        capsys, "run", workflow_file(), "--input", tmp_path / "typo", "--output", done_folder
    )
    assert code == 2 and "typo: no such file or folder" in err
    assert f"the earlier result in {done_folder} is left as it was" in out
    assert snapshot(done_folder) == before
    assert json.loads((done_folder / "run.json").read_text())["status"] == "done"
    assert not list(tmp_path.glob(".study*"))


def test_failure_record_replaces_an_earlier_failure_record(tmp_path, workflow_file):
    out = tmp_path / "study"
    workflow = load_workflow(workflow_file())
    assert run_study(workflow, tmp_path / "first", out).status == "failed"
    assert run_study(workflow, tmp_path / "second", out).status == "failed"
    record = json.loads((out / "run.json").read_text())
    assert "second: no such file or folder" in record["error"]


def test_study_folder_with_a_user_file_is_not_replaced(
    tmp_path, done_folder, phantom_series, workflow_file, capsys
):
    (done_folder / "my_measurements.csv").write_text("liver,1200\n")
    before = snapshot(done_folder)
    code, _, err = run_cli(
        capsys,
        "run",
        workflow_file(steps=["denoise"]),
        "--input",
        phantom_series.dicom_folder,
        "--output",
        done_folder,
    )
    assert code == 2
    line = one_error_line(err)
    assert "1 file(s) that ctpipe did not write (my_measurements.csv)" in line
    assert snapshot(done_folder) == before


def test_rerun_with_overwrite_replaces_a_foreign_folder(
    tmp_path, phantom_series, workflow_file, capsys
):
    out = tmp_path / "old"
    out.mkdir()
    (out / "junk.txt").write_text("x")
    code, _, _ = run_cli(
        capsys,
        "run",
        workflow_file(steps=["denoise"]),
        "--input",
        phantom_series.dicom_folder,
        "--output",
        out,
        "--overwrite",
    )
    assert code == 0
    assert not (out / "junk.txt").exists() and (out / "run.json").is_file()


def test_current_folder_is_refused(tmp_path, phantom_series, workflow_file, capsys, monkeypatch):
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    code, _, err = run_cli(
        capsys, "run", workflow_file(), "--input", phantom_series.dicom_folder, "--output", "."
    )
    assert code == 2
    assert "is the current folder" in one_error_line(err)
    assert list(workdir.iterdir()) == [] and not list(tmp_path.glob(".work*"))


def test_symlinked_output_is_refused(tmp_path, phantom_series, workflow_file, capsys):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    code, _, err = run_cli(
        capsys, "run", workflow_file(), "--input", phantom_series.dicom_folder, "--output", link
    )
    assert code == 2 and "symbolic link" in one_error_line(err)
    assert link.is_symlink()


def test_unwritable_output_is_refused_before_reading(phantom_series, workflow_file, capsys):
    code, _, err = run_cli(
        capsys,
        "run",
        workflow_file(),
        "--input",
        phantom_series.dicom_folder,
        "--output",
        "/proc/ctpipe/out",
    )
    assert code == 2
    assert "/proc/ctpipe: is not writable" in one_error_line(err)


def test_foreign_staging_name_is_not_deleted(tmp_path, phantom_series, workflow_file):
    out = tmp_path / "study"
    squatter = tmp_path / ".study.partial"
    squatter.mkdir()
    (squatter / "keep.txt").write_text("mine")
    workflow = load_workflow(workflow_file(steps=["denoise"]))
    with pytest.raises(OutputError, match=r"\.study\.partial: exists and was not made by ctpipe"):
        run_study(workflow, phantom_series.dicom_folder, out)
    assert (squatter / "keep.txt").read_text() == "mine"
    assert not out.exists()


# --- batch ------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path, phantom_series) -> Path:
    root = tmp_path / "tree"
    (root / "a").mkdir(parents=True)
    for f in phantom_series.dicom_files:
        (root / "a" / f.name).write_bytes(f.read_bytes())
    return root


@pytest.mark.parametrize("where", ["inside", "same", "holds"])
def test_batch_output_overlapping_the_tree_is_refused(tmp_path, tree, workflow_file, capsys, where):
    output = {"inside": tree / "out", "same": tree, "holds": tmp_path}[where]
    workflow = workflow_file(steps=["denoise"])
    before = snapshot(tmp_path)
    code, _, err = run_cli(
        capsys,
        "batch",
        workflow,
        "--input",
        tree,
        "--output",
        output,
        "--no-progress",
    )
    assert code == 2
    assert f"the input {tree}" in one_error_line(err)
    assert snapshot(tmp_path) == before


def test_batch_into_a_foreign_folder_needs_overwrite(tmp_path, tree, workflow_file, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.csv").write_text("someone else's table")
    code, _, err = run_cli(
        capsys, "batch", workflow_file(steps=["denoise"]), "--input", tree, "--output", out
    )
    assert code == 2
    assert "without a ctpipe batch summary (batch.json)" in one_error_line(err)
    assert (out / "summary.csv").read_text() == "someone else's table"


def test_batch_isolates_a_foreign_study_folder(tmp_path, tree, workflow_file, phantom_series):
    from ctpipe.workflow.batch import find_jobs

    workflow = load_workflow(workflow_file(steps=["denoise"]))
    other = tree / "b"
    other.mkdir()
    from ctpipe.phantom import make_phantom, write_phantom

    write_phantom(tmp_path / "p2", make_phantom(shape=(40, 40, 4), seed=5), patient_id="B")
    for f in (tmp_path / "p2" / "dicom").iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    out = tmp_path / "out"
    first = run_batch(workflow, tree, out, progress=False)
    assert first.counts == {"done": 2}
    jobs, _ = find_jobs(tree)
    victim = out / jobs[0].name
    (victim / "my_notes.txt").write_text("mine")
    result = run_batch(workflow, tree, out, progress=False, resume=False)
    rows = {row["name"]: row for row in result.rows}
    assert rows[jobs[0].name]["status"] == "failed"
    assert "did not write (my_notes.txt)" in rows[jobs[0].name]["error"]
    assert rows[jobs[1].name]["status"] == "done"
    assert (victim / "my_notes.txt").read_text() == "mine"


def test_batch_api_refuses_output_inside_tree(tree, workflow_file):
    workflow = load_workflow(workflow_file(steps=["denoise"]))
    with pytest.raises(OutputError, match="is inside the input"):
        run_batch(workflow, tree, tree / "derived", progress=False)
    assert not (tree / "derived").exists()


# --- demo -------------------------------------------------------------------------


def test_demo_into_a_foreign_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "summary.json").write_text('{"mine": true}')
    code, _, err = run_cli(capsys, "demo", "--output", out)
    assert code == 2
    assert "without a ctpipe demo summary" in one_error_line(err)
    assert (out / "summary.json").read_text() == '{"mine": true}'
    assert [p.name for p in out.iterdir()] == ["summary.json"]
