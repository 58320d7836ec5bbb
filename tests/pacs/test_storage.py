"""Safe names from UIDs and durable writes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ctpipe.pacs.storage import instance_path, safe_name, write_durably

EVIL = ["..", ".", "", "../../etc/passwd", "/etc/passwd", "a/b", "1.2\\..\\3", "1.2\x00.3", "CON"]


@pytest.mark.parametrize("uid", ["1.2.840.10008.5.1.4.1.1.2", "0", "1.02.003", "1." + "9" * 100])
def test_digits_and_dots_are_kept(uid):
    assert safe_name(uid) == uid


@pytest.mark.parametrize("value", [*EVIL, "1." + "9" * 200, "1.2.", ".1.2", "1..2", None])
def test_anything_else_becomes_the_hash_of_the_value(value):
    text = "" if value is None else str(value)
    expected = "x-" + hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()
    assert safe_name(value) == expected


@pytest.mark.parametrize("uid", EVIL)
def test_instance_paths_stay_inside_their_folder(tmp_path, uid):
    path = instance_path(tmp_path / "root", uid, uid, uid)
    assert path.resolve().is_relative_to((tmp_path / "root").resolve())
    assert len(path.relative_to(tmp_path / "root").parts) == 3
    assert path.suffix == ".dcm"


def test_instance_path_needs_a_uid(tmp_path):
    with pytest.raises(ValueError, match="at least the SOP Instance UID"):
        instance_path(tmp_path)


def test_write_durably_replaces_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "a" / "1.2.3.dcm"
    write_durably(target, b"first")
    write_durably(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["1.2.3.dcm"]


def test_write_durably_failure_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "1.2.3.dcm"
    write_durably(target, b"old")

    def refuse(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("ctpipe.pacs.storage.os.fsync", refuse)
    with pytest.raises(OSError, match="No space left"):
        write_durably(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["1.2.3.dcm"]
