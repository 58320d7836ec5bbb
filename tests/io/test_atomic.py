from pathlib import Path

import pytest

from ctpipe.io.atomic import TEMP_PREFIX, atomic_path


def test_keeps_suffixes_and_renames(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "sub" / "x.nii.gz") as tmp:
        assert tmp.parent == tmp_path / "sub"
        assert tmp.name.startswith(TEMP_PREFIX) and tmp.name.endswith(".nii.gz")
        assert not (tmp_path / "sub" / "x.nii.gz").exists()
        tmp.write_bytes(b"data")
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["x.nii.gz"]


def test_failure_leaves_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    assert target.read_text() == "old"
