from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ctpipe.cli.data import add_data_parser
from ctpipe.io.manifest import load_manifest, read_header

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def run(*argv: str | Path) -> int:
    parser = argparse.ArgumentParser(prog="ctpipe")
    add_data_parser(parser.add_subparsers())
    args = parser.parse_args([str(arg) for arg in argv])
    return args.func(args)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for index in range(12):
        path = root / f"P{index % 3}" / f"slice_{index:02d}.IMA"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes([index]) * (100 + index))
    (root / "README.txt").write_text("demo")
    return root


@pytest.fixture
def manifest(tree: Path, tmp_path: Path) -> Path:
    out = tmp_path / "demo.yaml"
    assert run("data", "create", tree, "--name", "demo", "-o", out) == 0
    return out


def test_create_writes_manifest_with_header_and_progress(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "demo.yaml"
    assert run("data", "create", tree, "--name", "demo", "-o", manifest) == 0
    captured = capsys.readouterr()
    assert "13 files" in captured.out
    assert "hashing" in captured.err  # progress bar for more than a handful of files
    loaded = load_manifest(manifest)
    assert loaded.name == "demo"
    assert len(loaded.files or ()) == 13
    assert "Regenerate with: ctpipe data create" in read_header(manifest)


def test_create_with_patterns(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.yaml"
    assert run("data", "create", tree, "--name", "d", "-o", out, "--pattern", "*.txt") == 0
    assert [f.path for f in load_manifest(out).files or ()] == ["README.txt"]


def test_create_from_template_keeps_metadata(tree: Path, tmp_path: Path) -> None:
    template = tmp_path / "t.yaml"
    template.write_text(
        "# Demo header.\nmanifest_version: 1\nname: demo\nsplits:\n  train: [P0]\n"
        "layout:\n  - pattern: '*/*.IMA'\n    expected_count: 12\n"
    )
    assert run("data", "create", tree, "--template", template, "-o", template) == 0
    loaded = load_manifest(template)
    assert loaded.splits == {"train": ("P0",)}
    assert len(loaded.files or ()) == 13
    assert read_header(template) == "Demo header."


def test_create_errors_exit_2(tree: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "m.yaml"
    assert run("data", "create", tmp_path / "absent", "--name", "d", "-o", out) == 2
    assert "absent" in capsys.readouterr().err
    assert run("data", "create", tree, "-o", out) == 2
    assert "--name is required" in capsys.readouterr().err
    assert run("data", "create", tree, "--name", "d", "-o", out, "--pattern", "../x") == 2
    assert "'../x'" in capsys.readouterr().err
    assert not out.exists()


def test_verify_ok_exits_0(tree: Path, manifest: Path, capsys) -> None:
    capsys.readouterr()
    assert run("data", "verify", manifest, tree) == 0
    assert "OK" in capsys.readouterr().out
    assert run("data", "verify", manifest, tree, "--no-hash") == 0


def test_verify_problems_exit_1_with_json(
    tree: Path, manifest: Path, tmp_path: Path, capsys
) -> None:
    (tree / "README.txt").unlink()
    (tree / "P0" / "slice_00.IMA").write_bytes(b"\xff" * 100)
    (tree / "P0" / "new.IMA").write_bytes(b"x")
    report_path = tmp_path / "report.json"
    capsys.readouterr()

    assert run("data", "verify", manifest, tree, "--json", report_path) == 1

    out = capsys.readouterr().out
    assert "README.txt" in out and "P0/new.IMA" in out
    report = json.loads(report_path.read_text())
    assert report["ok"] is False
    assert report["missing"] == ["README.txt"]
    assert [c["path"] for c in report["changed"]] == ["P0/slice_00.IMA"]
    assert report["unexpected"] == ["P0/new.IMA"]
    # a same-size change is invisible without hashes; the rest is still reported
    assert run("data", "verify", manifest, tree, "--no-hash") == 1


def test_verify_bad_manifest_exits_2_without_traceback(tree: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("manifest_version: 1\nname: demo\nlayuot: []\n")
    assert run("data", "verify", bad, tree) == 2
    err = capsys.readouterr().err
    assert "unknown key 'layuot'" in err and "did you mean 'layout'" in err
    assert "Traceback" not in err


def test_verify_missing_root_exits_2(manifest: Path, tmp_path: Path, capsys) -> None:
    assert run("data", "verify", manifest, tmp_path / "absent") == 2
    assert "absent: dataset root folder does not exist" in capsys.readouterr().err


def test_data_without_command_prints_help(capsys) -> None:
    assert run("data") == 2
    assert "verify" in capsys.readouterr().err


@pytest.mark.shared_data
def test_verify_shared_pairs(capsys) -> None:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared dev data not found at {SHARED_DATA} (only in the project's setup)")
    manifest = REPO / "data_manifests" / "aapm_ldct_pairs_shared.yaml"
    assert run("data", "verify", manifest, SHARED_DATA / "aapm_ldct_pairs") == 0


def test_entry_point_wires_data_commands(tree: Path, manifest: Path) -> None:
    code = "import sys; from ctpipe.cli import main; sys.exit(main())"
    argv = [sys.executable, "-c", code, "data", "verify", str(manifest), str(tree)]
    ok = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    argv[-1] = str(tree / "absent")
    bad = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert "does not exist" in bad.stderr and "Traceback" not in bad.stderr
