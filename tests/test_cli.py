"""The ``ctpipe`` command: fast help, info on good and bad input, the demo end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from ctpipe.cli import main
from ctpipe.phantom import make_phantom


def test_help_imports_no_heavy_package():
    code = (
        "import sys, contextlib, io\n"
        "from ctpipe.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
        "print(sorted(m for m in ('torch', 'monai', 'pydicom', 'SimpleITK', 'numpy') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for command in ("info", "demo", "data"):
        assert command in text


def test_info_lists_series(small_series, capsys):
    folder, hu, _ = small_series
    assert main(["info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "CTPIPE-PHANTOM" in out and f"{hu.shape[0]}x{hu.shape[1]}" in out
    assert "PROBLEM" not in out


def test_info_json_reports_problems_and_exit_1(small_series, capsys):
    folder, _, _ = small_series
    sorted_files = sorted(folder.iterdir())
    sorted_files[0].unlink()  # a shuffled name: some slice goes missing
    code = main(["info", "--json", str(folder)])
    data = json.loads(capsys.readouterr().out)
    problems = data["series"][0]["problems"]
    interior_gap = any(p.startswith("missing slice") for p in problems)
    assert code == (1 if interior_gap else 0)
    assert data["series"][0]["slices"] == 5


def test_info_on_empty_folder_is_one_clear_line(tmp_path, capsys):
    assert main(["info", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"ctpipe: error: {tmp_path}: no files found (empty folder)"


def test_bad_input_no_traceback_in_subprocess(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "ctpipe", "demo", "--input", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{tmp_path / 'missing'}: no such file or folder" in result.stderr


def test_demo_runs_the_default_workflow_and_prints_the_report(tmp_path, capsys):
    from ctpipe.demo import DEMO_SHAPE, DEMO_SPACING

    assert main(["demo", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    study = tmp_path / "study"
    assert f"report: {study / 'report.html'}" in out and "orientation       LPS" in out
    phantom = make_phantom(shape=DEMO_SHAPE, spacing=DEMO_SPACING)
    image = nib.load(study / "nifti" / "image.nii.gz")
    np.testing.assert_array_equal(np.asarray(image.dataobj), phantom.hu)
    np.testing.assert_allclose(image.affine, phantom.to_ras_affine(), atol=1e-5)
    assert len(list((study / "dicom" / "derived").glob("*.dcm"))) == DEMO_SHAPE[2]
    assert (study / "dicom" / "segmentation.dcm").is_file()
    with Image.open(study / "previews" / "labels.png") as png:
        assert png.width > phantom.hu.shape[0]  # three views side by side
    record = json.loads((study / "run.json").read_text())
    assert record["status"] == "done"
    assert list(record["steps"]) == ["guard", "denoise", "segment"]
    # the phantom is a cartoon: the guard flags it, the demo says so and goes on
    assert record["guard"]["flagged"] is True and record["guard"]["action"] == "warn"
    assert "guard: WARNING: out of distribution" in out and "This is expected here" in out
    assert "volumes (mL) UNRELIABLE (study flagged by the guard):" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["shape"] == list(phantom.hu.shape)
    assert summary["hu_min"] == float(phantom.hu.min())
    assert not [p for p in tmp_path.rglob(".*")]


def test_demo_on_nifti_input(tmp_path):
    from ctpipe.demo import run_demo
    from ctpipe.phantom import write_phantom

    files = write_phantom(tmp_path / "in", make_phantom(shape=(40, 36, 6)))
    result = run_demo(files.ct_nifti, tmp_path / "out", quiet=True)
    assert result.summary["shape"] == [40, 36, 6]
    assert result.summary["orientation"] == "LPS"
    assert result.study.status == "done", result.study.error
    assert result.report == tmp_path / "out" / "study" / "report.html"
