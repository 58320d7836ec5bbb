from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from ctpipe.errors import InputError, ManifestError
from ctpipe.io.manifest import (
    FileEntry,
    LayoutEntry,
    Manifest,
    create_manifest,
    list_files,
    load_manifest,
    match_pattern,
    read_header,
    save_manifest,
    sha256_file,
    verify_files,
    verify_manifest,
)

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "data_manifests"
SHARED_DATA = REPO.parent / "shared" / "data"

FILES = {
    "P1/full_3mm/a.IMA": 100,
    "P1/full_3mm/b.IMA": 120,
    "P1/quarter_3mm/a.IMA": 100,
    "P2/full_3mm/c.IMA": 80,
    "notes.txt": 10,
}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def tree(tmp_path: Path, rng: np.random.Generator) -> Path:
    root = tmp_path / "data"
    for name, size in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    (root / ".DS_Store").write_bytes(b"hidden")
    (root / "P1" / "._a.IMA").write_bytes(b"macOS junk")
    return root


def _manifest(root: Path, **kwargs: object) -> Manifest:
    return create_manifest(
        root,
        name="demo",
        description="line one\nline two",
        layout=[LayoutEntry("*/full_3mm/*.IMA", expected_count=3, description="full dose")],
        splits={"train": ["P1"], "test": ["P2"]},
        labels={"background": 0, "liver": 1},
        **kwargs,  # type: ignore[arg-type]
    )


def _write_yaml(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _valid_dict() -> dict:
    return {
        "manifest_version": 1,
        "name": "demo",
        "layout": [{"pattern": "*/full_3mm/*.IMA", "expected_count": 3}],
        "splits": {"train": ["P1"], "test": ["P2"]},
        "labels": {"background": 0},
        "files": [{"path": "a.txt", "sha256": "0" * 64, "size": 1}],
    }


# --- create / save / load ---------------------------------------------------------------


def test_create_lists_sorted_posix_paths_and_skips_hidden(tree: Path) -> None:
    manifest = _manifest(tree)
    assert [entry.path for entry in manifest.files] == sorted(FILES)
    sizes = {entry.path: entry.size for entry in manifest.files}
    assert sizes == FILES
    entry = manifest.files[0]
    assert entry.sha256 == sha256_file(tree / entry.path)


def test_create_with_patterns_selects_files(tree: Path) -> None:
    manifest = create_manifest(tree, name="demo", patterns=["*/quarter_3mm/*", "*.txt"])
    assert [entry.path for entry in manifest.files] == ["P1/quarter_3mm/a.IMA", "notes.txt"]


def test_create_with_no_match_raises(tree: Path) -> None:
    with pytest.raises(InputError, match="no file matches"):
        create_manifest(tree, name="demo", patterns=["*.nii.gz"])


def test_save_load_round_trip(tree: Path, tmp_path: Path) -> None:
    manifest = _manifest(tree)
    out = tmp_path / "demo.yaml"
    save_manifest(manifest, out, header="Demo data.\nDownload: nowhere.")
    assert load_manifest(out) == manifest
    assert read_header(out) == "Demo data.\nDownload: nowhere."
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "demo.yaml"]


def test_save_replaces_existing_file(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo.yaml"
    out.write_text("old")
    save_manifest(Manifest("other"), out)
    assert load_manifest(out).name == "other"


def test_save_into_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nowhere"):
        save_manifest(Manifest("demo"), tmp_path / "nowhere" / "m.yaml")


def test_manifest_without_files_round_trips(tmp_path: Path) -> None:
    manifest = Manifest("demo", layout=[LayoutEntry("*.nii.gz", 2)])
    out = tmp_path / "m.yaml"
    save_manifest(manifest, out)
    loaded = load_manifest(out)
    assert loaded.files is None
    assert loaded == manifest


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.update(licenc="x"), r"unknown key 'licenc'.*licence"),
        (lambda d: d["layout"][0].update(patern="x"), r"layout\[0\]\.patern.*pattern"),
        (lambda d: d["files"][0].update(md5="x"), r"files\[0\]\.md5.*sha256"),
    ],
)
def test_unknown_key_is_refused_with_allowed_keys(tmp_path: Path, edit, match: str) -> None:
    data = _valid_dict()
    edit(data)
    with pytest.raises(ManifestError, match=match):
        load_manifest(_write_yaml(tmp_path / "m.yaml", data))


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.update(name=5), r"name must be a string.*int 5"),
        (lambda d: d.update(version=1.0), r"version must be a string \(quote it"),
        (lambda d: d.update(manifest_version=2), r"manifest_version must be 1.*got 2"),
        (lambda d: d.update(manifest_version="1"), r"manifest_version must be an integer"),
        (lambda d: d["layout"][0].update(expected_count="3"), r"layout\[0\]\.expected_count"),
        (lambda d: d["layout"][0].update(expected_count=-1), r"expected_count must be >= 0"),
        (lambda d: d.update(layout={"pattern": "x"}), r"layout must be a list"),
        (lambda d: d["layout"][0].update(pattern="../x"), r"layout\[0\]\.pattern.*'\.\./x'"),
        (lambda d: d.update(splits={"train": [67]}), r"splits\.train\[0\] must be a string"),
        (lambda d: d.update(splits=["P1"]), r"splits must be a mapping"),
        (lambda d: d.update(labels={"liver": "1"}), r"labels\.liver must be an integer"),
        (lambda d: d["files"][0].update(size="1"), r"files\[0\]\.size must be an integer"),
        (lambda d: d["files"][0].update(sha256="abc"), r"files\[0\]\.sha256 must be 64"),
        (lambda d: d["files"][0].update(path="/abs"), r"files\[0\]\.path must be a relative"),
        (lambda d: d.update(files="a.txt"), r"files must be a list"),
    ],
)
def test_wrong_value_names_the_key(tmp_path: Path, edit, match: str) -> None:
    data = _valid_dict()
    edit(data)
    with pytest.raises(ManifestError, match=match):
        load_manifest(_write_yaml(tmp_path / "m.yaml", data))


def test_missing_required_key(tmp_path: Path) -> None:
    data = _valid_dict()
    del data["layout"][0]["pattern"]
    with pytest.raises(ManifestError, match=r"'layout\[0\]\.pattern' is required"):
        load_manifest(_write_yaml(tmp_path / "m.yaml", data))


def test_case_in_two_splits_is_refused() -> None:
    with pytest.raises(ValueError, match="'P1' is in both 'train' and 'test'"):
        Manifest("demo", splits={"train": ["P1"], "test": ["P1"]})


def test_duplicate_label_value_is_refused() -> None:
    with pytest.raises(ValueError, match="value 1 is used by both 'liver' and 'tumour'"):
        Manifest("demo", labels={"liver": 1, "tumour": 1})


def test_duplicate_file_is_refused() -> None:
    entry = FileEntry("a.txt", "0" * 64, 1)
    with pytest.raises(ValueError, match=r"'a\.txt' is listed twice"):
        Manifest("demo", files=[entry, entry])


@pytest.mark.parametrize(
    ("text", "match"),
    [("- a\n- b\n", "top level must be a mapping"), ("name: [unclosed\n", "not valid YAML")],
)
def test_bad_document(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError, match=match):
        load_manifest(path)


def test_missing_manifest_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"nothere\.yaml"):
        load_manifest(tmp_path / "nothere.yaml")


# --- verify -------------------------------------------------------------------------------


def test_verify_ok(tree: Path) -> None:
    report = verify_manifest(_manifest(tree), tree)
    assert report.ok
    assert report.checked == len(FILES)
    assert (report.missing, report.changed, report.unexpected) == ([], [], [])
    assert [(r.pattern, r.expected, r.found, r.ok) for r in report.layout] == [
        ("*/full_3mm/*.IMA", 3, 3, True)
    ]
    assert "OK" in report.format()


def test_verify_reports_missing_changed_unexpected(tree: Path) -> None:
    manifest = _manifest(tree)
    (tree / "notes.txt").unlink()
    changed = tree / "P1" / "full_3mm" / "b.IMA"
    data = bytearray(changed.read_bytes())
    data[7] ^= 0xFF
    changed.write_bytes(bytes(data))
    (tree / "P2" / "extra.IMA").write_bytes(b"new")

    report = verify_manifest(manifest, tree)

    assert not report.ok
    assert report.missing == ["notes.txt"]
    assert [(c.path, c.what) for c in report.changed] == [("P1/full_3mm/b.IMA", "sha256")]
    assert report.changed[0].expected != report.changed[0].actual
    assert report.unexpected == ["P2/extra.IMA"]
    text = str(report)
    for expected in ("PROBLEMS", "notes.txt", "P1/full_3mm/b.IMA", "P2/extra.IMA"):
        assert expected in text
    json.dumps(report.to_dict())


def test_verify_without_hash_checks_sizes_only(tree: Path) -> None:
    manifest = _manifest(tree)
    (tree / "P2" / "full_3mm" / "c.IMA").write_bytes(bytes(80))  # same size, new content
    (tree / "notes.txt").write_bytes(b"longer than before")
    report = verify_manifest(manifest, tree, check_hashes=False)
    assert [(c.path, c.what, c.expected) for c in report.changed] == [("notes.txt", "size", 10)]
    assert "sizes only" in report.summary()


def test_layout_count_mismatch_is_reported(tree: Path) -> None:
    manifest = Manifest("demo", layout=[LayoutEntry("*/full_3mm/*.IMA", expected_count=5)])
    report = verify_manifest(manifest, tree)
    assert not report.ok
    assert (report.layout[0].found, report.layout[0].ok) == (3, False)
    assert report.unexpected == []  # no file list, so nothing is unexpected
    assert "FAIL */full_3mm/*.IMA: expected 5, found 3" in report.format()


def test_verify_calls_progress_with_every_path(tree: Path) -> None:
    seen: list[list[str]] = []

    def progress(paths):
        seen.append(list(paths))
        return paths

    verify_manifest(_manifest(tree), tree, progress=progress)
    assert seen == [sorted(FILES)]


def test_missing_root_raises(tree: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"absent.*does not exist"):
        verify_manifest(_manifest(tree), tmp_path / "absent")
    with pytest.raises(InputError, match="not a folder"):
        verify_manifest(_manifest(tree), tree / "notes.txt")


def test_verify_files_checks_only_given_files(tree: Path) -> None:
    manifest = _manifest(tree)
    (tree / "notes.txt").write_bytes(b"changed!!!")
    (tree / "P2" / "extra.IMA").write_bytes(b"new")
    wanted = [tree / "P1" / "full_3mm" / "a.IMA", "P2/full_3mm/c.IMA"]
    assert verify_files(manifest, tree, wanted).ok

    report = verify_files(manifest, tree, ["notes.txt", "P2/extra.IMA"])
    assert [c.path for c in report.changed] == ["notes.txt"]
    assert report.unexpected == ["P2/extra.IMA"]
    with pytest.raises(InputError, match="does not match its manifest"):
        report.raise_if_problems()


def test_verify_files_refuses_outside_paths_and_unpinned_manifests(
    tree: Path, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match="not inside the dataset root"):
        verify_files(_manifest(tree), tree, [tmp_path / "elsewhere.IMA"])
    with pytest.raises(ManifestError, match="lists no files"):
        verify_files(Manifest("demo"), tree, ["notes.txt"])


def test_list_files_skips_hidden(tree: Path) -> None:
    assert list_files(tree) == sorted(FILES)


@pytest.mark.parametrize(
    ("path", "pattern", "expected"),
    [
        ("L067/full_3mm/a.IMA", "*/full_3mm/*.IMA", True),
        ("L067/quarter_3mm/a.IMA", "*/full_3mm/*.IMA", False),
        ("L067/full_3mm/sub/a.IMA", "*/full_3mm/*.IMA", False),
        ("a.IMA", "**/*.IMA", True),
        ("x/y/z/a.IMA", "**/*.IMA", True),
        ("x/y/z/a.IMA", "x/**/z/*.IMA", True),
        ("imagesTr/liver_0.nii.gz", "imagesTr/*.nii.gz", True),
        ("imagesTr/liver_0.nii", "imagesTr/*.nii.gz", False),
        ("a.ima", "*.IMA", False),
    ],
)
def test_match_pattern(path: str, pattern: str, expected: bool) -> None:
    assert match_pattern(path, pattern) is expected


# --- the project's manifests ------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(MANIFESTS.glob("*.yaml")), ids=lambda p: p.name)
def test_project_manifest_loads(path: Path) -> None:
    manifest = load_manifest(path)
    assert manifest.name == path.stem
    assert manifest.source and manifest.licence and manifest.description
    assert path.read_text().startswith("#"), "each manifest starts with a comment header"


def test_project_manifests_exist() -> None:
    names = {path.stem for path in MANIFESTS.glob("*.yaml")}
    assert {"aapm_ldct_2016", "tcia_ldct_and_projection_data", "msd_task03_liver"} <= names
    assert {"msd_task09_spleen", "shared_dev_data", "aapm_ldct_pairs_shared"} <= names


def test_aapm_manifest_counts_and_split() -> None:
    manifest = load_manifest(MANIFESTS / "aapm_ldct_2016.yaml")
    counts = {entry.pattern: entry.expected_count for entry in manifest.layout}
    assert counts["*/full_3mm/*.IMA"] == counts["*/quarter_3mm/*.IMA"] == 2378
    assert counts["*/full_1mm/*.IMA"] == counts["*/quarter_1mm/*.IMA"] == 5936
    assert manifest.splits["test"] == ("L506",)
    assert len(manifest.splits["train"]) == 9


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("manifest_name", "folder"),
    [("shared_dev_data", "."), ("aapm_ldct_pairs_shared", "aapm_ldct_pairs")],
)
def test_shared_data_matches_its_manifest(manifest_name: str, folder: str) -> None:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared dev data not found at {SHARED_DATA} (only in the project's setup)")
    manifest = load_manifest(MANIFESTS / f"{manifest_name}.yaml")
    report = verify_manifest(manifest, SHARED_DATA / folder)
    assert report.ok, report.format()
