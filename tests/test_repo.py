"""The repository keeps its promises: CI runs the README test command, no CT data committed."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.conftest import REPO


def _readme_command(section: str) -> str:
    text = (REPO / "README.md").read_text()
    body = text.split(f"## {section}", 1)[1]
    return re.search(r"```bash\n(.+?)\n```", body, re.S).group(1).strip()


def test_ci_runs_the_readme_test_command():
    command = _readme_command("Tests")
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert command in [line.strip() for line in ci]


def test_readme_main_command_runs_the_demo():
    assert _readme_command("Quick start").endswith("ctpipe demo")


def test_no_dicom_or_image_data_committed():
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    data = [f for f in tracked if re.search(r"\.(dcm|ima|nii|nii\.gz|nrrd|mha)$", f, re.I)]
    assert data == []
