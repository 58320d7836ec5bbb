"""Bad outputs and settings: refused before any work, in one line naming the path.

An output that is the input, a folder, or under a read-only tree; a disk that fills while
writing; a sliding window so large it would ask for terabytes. Each is one
``ctpipe: error:`` line with exit status 2 (``run``: 1 for a failure while writing, its
earlier result kept), and nothing half-written is left behind.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import nibabel as nib
import pytest

from ctpipe.cli import main
from tests.hostile.builders import write_template
from tests.hostile.test_hostile_inputs import error_line, snapshot

pytestmark = pytest.mark.filterwarnings("ignore")

UNWRITABLE = Path("/proc/ctpipe-out")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("template")
    write_template(folder)
    return folder


def _argv(command: str, source: Path, output: Path) -> list[str]:
    return {
        "segment": ["segment", source, "--output", output],
        "simulate": ["simulate", source, "--output", output],
        "inpaint": ["inpaint", source, "--generate", "box", "--method", "ns", "-o", output],
        "anomaly": ["anomaly", source, "--output", output],
    }[command]


@pytest.mark.parametrize("command", ["segment", "simulate", "inpaint", "anomaly"])
def test_unwritable_output_is_refused_before_reading(template, capsys, command):
    output = UNWRITABLE / ("x" if command == "anomaly" else "x.nii.gz")
    code = main([str(a) for a in _argv(command, template / "dicom", output)])
    line = error_line(capsys.readouterr().err)
    assert code == 2
    assert str(UNWRITABLE) in line and "is not writable" in line


@pytest.mark.parametrize("command", ["segment", "simulate", "inpaint"])
def test_output_naming_the_input_is_refused(template, tmp_path, capsys, command):
    source = tmp_path / "ct.nii.gz"
    source.write_bytes((template / "ct.nii.gz").read_bytes())
    before = snapshot(tmp_path)
    code = main([str(a) for a in _argv(command, source, source)])
    line = error_line(capsys.readouterr().err)
    assert code == 2 and f"is the input {source}" in line
    assert snapshot(tmp_path) == before


def test_output_that_is_a_folder_is_refused(template, tmp_path, capsys):
    folder = tmp_path / "labels.nii.gz"
    folder.mkdir()
    code = main(["segment", str(template / "ct.nii.gz"), "--output", str(folder)])
    assert code == 2 and "is a folder; give a file name" in error_line(capsys.readouterr().err)


def test_generated_mask_over_the_input_is_refused(template, tmp_path, capsys):
    source = tmp_path / "hole_mask.nii.gz"  # -o hole.nii.gz writes the mask to this name
    source.write_bytes((template / "ct.nii.gz").read_bytes())
    before = snapshot(tmp_path)
    argv = ["inpaint", source, "--generate", "box", "-o", tmp_path / "hole.nii.gz"]
    code = main([str(a) for a in argv])
    assert code == 2 and f"is the input {source}" in error_line(capsys.readouterr().err)
    assert snapshot(tmp_path) == before


def test_demo_output_holding_the_input_is_refused_even_with_overwrite(template, tmp_path, capsys):
    source = tmp_path / "dicom"
    source.mkdir()
    for path in (template / "dicom").glob("*.dcm"):
        (source / path.name).write_bytes(path.read_bytes())
    before = snapshot(tmp_path)
    argv = ["demo", "--input", str(source), "--output", str(tmp_path), "--overwrite"]
    code = main(argv)
    line = error_line(capsys.readouterr().err)
    assert code == 2 and f"contains the input {source}" in line
    assert snapshot(tmp_path) == before


def test_anomaly_output_folder_holding_other_files_is_refused(template, tmp_path, capsys):
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "notes.txt").write_text("kept")
    before = snapshot(tmp_path)
    code = main(["anomaly", str(template / "ct.nii.gz"), "--output", str(archive)])
    line = error_line(capsys.readouterr().err)
    assert code == 2 and "did not write (notes.txt)" in line and "--overwrite" in line
    assert snapshot(tmp_path) == before


@pytest.fixture
def full_disk(monkeypatch):
    """Every NIfTI write fails as on a full disk."""

    def save(image, path, *args, **kwargs):
        Path(path).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(nib, "save", save)


def test_full_disk_names_the_output_and_leaves_no_partial_file(
    template, tmp_path, capsys, full_disk
):
    output = tmp_path / "out" / "labels.nii.gz"
    code = main(["segment", str(template / "ct.nii.gz"), "--output", str(output)])
    line = error_line(capsys.readouterr().err)
    assert code == 2
    assert line == f"ctpipe: error: {output}: No space left on device"
    assert not output.parent.exists() or list(output.parent.iterdir()) == []


def test_full_disk_during_run_keeps_the_earlier_result(template, tmp_path, capsys, monkeypatch):
    study = tmp_path / "study"
    argv = ["run", "denoise_only", "--input", str(template / "dicom"), "--output", str(study)]
    assert main(argv) == 0
    before = snapshot(study)

    def save(image, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(nib, "save", save)
    code = main(argv)
    captured = capsys.readouterr()
    line = error_line(captured.err)
    assert code == 1
    assert "No space left on device" in line and "image.nii.gz" in line
    assert "left as it was" in captured.out
    assert snapshot(study) == before
    assert json.loads((study / "run.json").read_text())["status"] == "done"
    assert not list(tmp_path.glob(".study*"))


def test_absurd_roi_size_is_named_before_allocating(template, tmp_path, capsys):
    code = main(
        [
            "segment",
            str(template / "ct.nii.gz"),
            "--output",
            str(tmp_path / "labels.nii.gz"),
            "--roi-size",
            "200000",
            "200000",
        ]
    )
    line = error_line(capsys.readouterr().err)
    assert code == 2
    assert "roi_size [200000, 200000] needs about" in line and "GiB" in line
    assert not (tmp_path / "labels.nii.gz").exists()
