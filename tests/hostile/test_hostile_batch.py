"""Bad series in a tree: ``info`` and ``batch`` isolate each one, even at discovery time.

One tree holds a good series and, beside it, a series whose ImagePositionPatient has two
values, one missing a RescaleSlope on one slice, an RLE image declaring 4 gigapixels and
a file that cannot be opened. ``info`` lists each problem without a traceback; ``batch``
processes the good series and fails each bad one alone with its reason. A re-run
processes a series again when its pixels changed, even with the same size and time.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from ctpipe.cli import main
from tests.hostile.builders import _delete, _edit, _rle_huge, _set, write_template
from tests.hostile.test_hostile_inputs import error_line, snapshot

pytestmark = pytest.mark.filterwarnings("ignore")

LOCKED = "locked.dcm"


def _series_copy(template: Path, folder: Path, change=None, files=None) -> Path:
    """The template series under new UIDs (a series of its own), optionally changed."""
    folder.mkdir(parents=True)
    uid = generate_uid()
    names = files or sorted(p.name for p in (template / "dicom").glob("*.dcm"))
    for name in names:
        path = folder / name
        path.write_bytes((template / "dicom" / name).read_bytes())
        _edit(path, _set(SeriesInstanceUID=uid, SOPInstanceUID=generate_uid()))
    if change is not None:
        change(folder)
    return folder


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("template")
    write_template(folder)
    return folder


@pytest.fixture
def tree(template, tmp_path) -> Path:
    root = tmp_path / "tree"
    (root / "good").mkdir(parents=True)
    for path in (template / "dicom").glob("*.dcm"):
        (root / "good" / path.name).write_bytes(path.read_bytes())
    _series_copy(
        template,
        root / "two_values",
        lambda f: [_edit(p, _set(ImagePositionPatient=[1, 2])) for p in f.glob("*.dcm")],
    )
    _series_copy(
        template,
        root / "no_slope",
        lambda f: _edit(f / "IM0003.dcm", _delete("RescaleSlope")),
    )
    _series_copy(
        template,
        root / "bomb",
        lambda f: _edit(f / "IM0001.dcm", _rle_huge),
        files=["IM0001.dcm"],
    )
    (root / "other").mkdir()
    (root / "other" / LOCKED).write_bytes((template / "dicom" / "IM0001.dcm").read_bytes())
    return root


@pytest.fixture
def locked(monkeypatch):
    """``locked.dcm`` cannot be opened (no read permission; simulated, as root reads all)."""
    original = pydicom.dcmread

    def dcmread(source, *args, **kwargs):
        if Path(str(source)).name == LOCKED:
            raise PermissionError(13, "Permission denied", str(source))
        return original(source, *args, **kwargs)

    monkeypatch.setattr(pydicom, "dcmread", dcmread)


def test_info_lists_every_problem_without_a_traceback(tree, locked, capsys):
    code = main(["info", str(tree)])
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.err + captured.out
    out = captured.out
    assert "PROBLEM: ImagePositionPatient is not 3 finite numbers in 4 of 4 slice(s)" in out
    assert "PROBLEM: no valid HU rescale: RescaleSlope missing in 1 of 4 slice(s) (IM0003" in out
    assert "PROBLEM: the headers declare 65535 x 65535 x 1" in out
    assert f"unreadable: {tree / 'other' / LOCKED}: cannot be opened: Permission denied" in out


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files without read permission")
def test_info_with_a_really_unreadable_file(tree, capsys):
    locked_file = tree / "other" / LOCKED
    locked_file.chmod(0)
    try:
        assert main(["info", str(tree)]) == 1
        assert "cannot be opened: Permission denied" in capsys.readouterr().out
    finally:
        locked_file.chmod(0o644)


def test_batch_isolates_each_bad_series(tree, locked, tmp_path, capsys):
    before = snapshot(tree)
    out = tmp_path / "out"
    code = main(["batch", "denoise_only", "--input", str(tree), "--output", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.err
    with open(out / "summary.csv", newline="") as stream:
        rows = {Path(row["input"]).name: row for row in csv.DictReader(stream)}
    assert rows["good"]["status"] == "done"
    assert "ImagePositionPatient is not 3 finite numbers" in rows["two_values"]["error"]
    assert "RescaleSlope missing in 1 of 4 slice(s) (IM0003.dcm)" in rows["no_slope"]["error"]
    assert "above the limit of" in rows["bomb"]["error"]
    assert rows[LOCKED]["status"] == "failed"
    assert "cannot be opened: Permission denied" in rows[LOCKED]["error"]
    assert snapshot(tree) == before


def _pixels_changed_keeping_size_and_time(path: Path) -> None:
    stat = path.stat()
    ds = pydicom.dcmread(path)
    values = ds.pixel_array.copy()
    values[10:20, 10:20] += 50
    ds.PixelData = values.tobytes()
    ds.save_as(path)
    assert path.stat().st_size == stat.st_size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_resume_redoes_a_series_whose_pixels_changed(template, tmp_path, capsys):
    tree = tmp_path / "tree"
    (tree / "good").mkdir(parents=True)
    for path in (template / "dicom").glob("*.dcm"):
        (tree / "good" / path.name).write_bytes(path.read_bytes())
    out = tmp_path / "out"
    argv = ["batch", "denoise_only", "--input", str(tree), "--output", str(out)]
    assert main(argv) == 0
    assert main(argv) == 0
    assert "1 skipped" in capsys.readouterr().out
    _pixels_changed_keeping_size_and_time(tree / "good" / "IM0002.dcm")
    assert main(argv) == 0
    assert "1 done" in capsys.readouterr().out  # not skipped: the fingerprint differs
    (tree / "good" / "IM0004.dcm").touch()  # a newer time alone redoes it too
    assert main(argv) == 0
    assert "1 done" in capsys.readouterr().out


def test_batch_bad_input_tree_is_one_line(tmp_path, capsys):
    code = main(["batch", "denoise_only", "--input", str(tmp_path / "nope"), "--output", "x"])
    assert code == 2
    assert "nope: no such folder" in error_line(capsys.readouterr().err)
