"""The wheel works on its own: built, installed in a fresh environment, run from elsewhere.

The package's dependencies (torch, MONAI, ...) come from the running interpreter through a
``.pth`` path entry, so nothing is downloaded; ctpipe itself comes only from the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: What building the wheel reads from the repository.
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "ctpipe", "workflows")


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{argv[:4]} failed:\n{done.stdout}\n{done.stderr}"
    return done


def _build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    dist = tmp_path / "dist"
    pip = [sys.executable, "-m", "pip"]
    _run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w"]
        + [str(dist), str(source)]
    )
    (wheel,) = dist.glob("ctpipe-*.whl")
    return wheel


def _install(wheel: Path, venv: Path) -> Path:
    """A fresh virtual environment with the wheel; the dependencies through a path entry."""
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    dependencies = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site.stdout.strip()) / "_ctpipe_test_dependencies.pth").write_text(
        "\n".join(sorted(dependencies)) + "\n", encoding="utf-8"
    )
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps"]
        + ["--no-index", "-q", str(wheel)]
    )
    return venv / "bin" / "ctpipe"


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX virtual-environment layout")
def test_installed_wheel_runs_a_shipped_workflow_by_name(tmp_path: Path) -> None:
    from ctpipe.phantom import make_phantom, write_phantom

    ctpipe = _install(_build_wheel(tmp_path), tmp_path / "venv")
    phantom = make_phantom(shape=(48, 48, 6), spacing=(6.0, 6.0, 5.0), seed=1)
    series = write_phantom(tmp_path / "phantom", phantom).dicom_folder
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"

    where = _run(
        [str(ctpipe.parent / "python"), "-c", "import ctpipe; print(ctpipe.__file__)"],
        cwd=elsewhere,
        env=env,
    )
    assert Path(where.stdout.strip()).is_relative_to(tmp_path / "venv")
    done = _run(
        [str(ctpipe), "run", "denoise_segment", "--input", str(series), "--output"] + ["study"],
        cwd=elsewhere,
        env=env,
    )
    assert done.stdout.startswith("done: study")
    record = json.loads((elsewhere / "study" / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "done"
    assert record["workflow"]["name"] == "denoise_segment"
    assert list(record["steps"]) == ["guard", "denoise", "segment"]
    assert Path(record["steps"]["denoise"]["model"]["path"]).is_relative_to(tmp_path / "venv")
