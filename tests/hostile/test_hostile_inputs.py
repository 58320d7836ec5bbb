"""The hostile-input corpus: every bad input through every command that reads CT.

Each case of :data:`builders.CASES` is built in ``tmp_path`` from a tiny seeded phantom
and given to ``segment``, ``simulate``, ``inpaint``, ``anomaly``, ``run`` and ``demo``
(in process, through :func:`ctpipe.cli.main`). Each must answer the same way: exit status
2, exactly one ``ctpipe: error:`` line naming the file and the problem, no traceback,
nothing under the input changed or deleted, and no output (``run`` leaves only its
failure record).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from ctpipe.cli import main
from tests.hostile.builders import CASES, Bad, write_template

pytestmark = pytest.mark.filterwarnings("ignore")

#: How each command is called on an input, writing under ``out``.
COMMANDS = {
    "segment": lambda src, out: ["segment", src, "--output", out / "labels.nii.gz"],
    "simulate": lambda src, out: ["simulate", src, "--output", out / "low.nii.gz"],
    "inpaint": lambda src, out: [
        "inpaint",
        src,
        "--generate",
        "box",
        "--method",
        "biharmonic",
        "-o",
        out / "filled.nii.gz",
    ],
    "anomaly": lambda src, out: ["anomaly", src, "--output", out / "anomaly"],
    "run": lambda src, out: ["run", "denoise_only", "--input", src, "--output", out / "study"],
    "demo": lambda src, out: ["demo", "--input", src, "--output", out / "demo"],
}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("template")
    write_template(folder)
    return folder


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the sha256 of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def build(template: Path, tmp_path: Path, case: str) -> tuple[Bad, Path]:
    inputs = tmp_path / "in"
    shutil.copytree(template, inputs)
    return CASES[case](inputs), tmp_path / "out"


def error_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("ctpipe: error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_the_corpus_is_large_enough():
    assert len(CASES) * len(COMMANDS) >= 300
    assert len(CASES) >= 60


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_exit_2_and_loses_nothing(template, tmp_path, capsys, case, command):
    bad, out = build(template, tmp_path, case)
    before = snapshot(tmp_path / "in")
    argv = [*bad.args, *COMMANDS[command](bad.path, out)]
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    line = error_line(captured.err)
    assert code == 2, captured.err
    assert bad.names in line and bad.problem in line, line
    assert snapshot(tmp_path / "in") == before
    written = snapshot(out) if out.exists() else {}
    if command == "run":  # the failure record, and nothing else
        assert list(written) == ["study/run.json"]
        record = json.loads((out / "study" / "run.json").read_text())
        assert record["status"] == "failed" and bad.problem in record["error"]
    else:
        assert written == {}


def test_good_input_passes_every_check(template, tmp_path, capsys):
    """The template itself is read: the corpus fails on what each case changed."""
    from ctpipe.io.reader import read_study

    for source in (template / "dicom", template / "ct.nii.gz"):
        assert read_study(source, min_slice_pixels=32).hu.shape == (40, 40, 4)


@pytest.mark.parametrize(
    "case", ["slope-missing-one", "slope-zero", "rescale-without-air", "nifti-mr-like"]
)
def test_allow_non_hu_reads_what_the_hu_check_refuses(template, tmp_path, capsys, case):
    bad, out = build(template, tmp_path, case)
    argv = ["segment", bad.path, "--output", out / "labels.nii.gz", "--allow-non-hu"]
    assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    assert (out / "labels.nii.gz").is_file()


def test_voxel_limit_from_the_environment(template, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CTPIPE_MAX_VOXELS", "5000")
    code = main(["segment", str(template / "dicom"), "--output", str(tmp_path / "l.nii.gz")])
    line = error_line(capsys.readouterr().err)
    assert code == 2 and "above the limit of 5000 voxels" in line
