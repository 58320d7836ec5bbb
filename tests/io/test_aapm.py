"""Tests of ctpipe.io.aapm: pairing AAPM Low Dose CT slices by position."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from ctpipe.errors import InputError, ManifestError
from ctpipe.io.aapm import find_aapm_pairs, split_by_patient, write_datalist
from ctpipe.io.manifest import Manifest, create_manifest

REPO_ROOT = Path(__file__).resolve().parents[2]
AAPM_DATA = REPO_ROOT.parent / "shared" / "data" / "aapm_ldct_pairs"
AAPM_MANIFEST = REPO_ROOT / "data_manifests" / "aapm_ldct_pairs_shared.yaml"
ZS = [-12.0, -9.0, -6.0, -3.0, 0.0]


# --- synthetic AAPM-like trees -------------------------------------------------------------


def write_slice(
    path: Path,
    z: float,
    *,
    patient_id: str = "L001",
    series_uid: str | None = None,
    modality: str = "CT",
    orientation: tuple[float, ...] = (1, 0, 0, 0, 1, 0),
) -> Path:
    """Write an 8x8 CT slice at height z (IOP axial unless given)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.PatientID = patient_id
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.ImagePositionPatient = [-100.0, -100.0, z]
    ds.ImageOrientationPatient = list(orientation)
    ds.PixelSpacing = [0.7, 0.7]
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    pixels = np.random.default_rng(abs(int(z * 10))).integers(0, 2000, (8, 8), dtype=np.int16)
    ds.PixelData = pixels.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_series(folder: Path, zs: list[float], *, reverse_names: bool = False, ext=".IMA"):
    """Write one slice per z as slice_<i><ext>; reverse_names numbers the files backwards."""
    uid = generate_uid()
    n = len(zs)
    for i, z in enumerate(zs):
        index = n - 1 - i if reverse_names else i
        write_slice(folder / f"slice_{index:03d}{ext}", z, series_uid=uid)


def make_pair_tree(
    root: Path, patient: str = "L001", suffix: str = "1mm_B30", zs: list[float] = ZS
) -> Path:
    """Full and quarter folders at the same positions, quarter file names reversed."""
    write_series(root / patient / f"full_{suffix}", zs)
    write_series(root / patient / f"quarter_{suffix}", zs, reverse_names=True)
    return root


def header_z(path: str) -> float:
    return float(pydicom.dcmread(path, stop_before_pixels=True).ImagePositionPatient[2])


# --- pairing -------------------------------------------------------------------------------


def test_pairs_by_position_not_by_name(tmp_path: Path) -> None:
    pairs = find_aapm_pairs(make_pair_tree(tmp_path))
    assert [p["z"] for p in pairs] == ZS
    names_differ = 0
    for pair in pairs:
        assert header_z(pair["image"]) == header_z(pair["label"]) == pair["z"]
        assert "quarter_1mm_B30" in pair["image"] and "full_1mm_B30" in pair["label"]
        names_differ += Path(pair["image"]).name != Path(pair["label"]).name
        assert (pair["patient"], pair["thickness"], pair["kernel"]) == ("L001", "1mm", "B30")
    assert names_differ == len(ZS) - 1  # only the middle slice has the same name in both


@pytest.mark.parametrize("ext", [".dcm", ""])
def test_accepts_dcm_and_extensionless_files(tmp_path: Path, ext: str) -> None:
    write_series(tmp_path / "L001" / "full_3mm", ZS, ext=ext)
    write_series(tmp_path / "L001" / "quarter_3mm", ZS, reverse_names=True, ext=ext)
    pairs = find_aapm_pairs(tmp_path)
    assert len(pairs) == len(ZS)
    assert all(p["kernel"] == "" and p["thickness"] == "3mm" for p in pairs)


def test_files_in_nested_subfolders_are_found(tmp_path: Path) -> None:
    write_series(tmp_path / "L001" / "full_3mm_D45" / "a" / "b", ZS)
    write_series(tmp_path / "L001" / "quarter_3mm_D45", ZS)
    assert len(find_aapm_pairs(tmp_path)) == len(ZS)


def test_sorted_by_patient_kernel_and_z(tmp_path: Path) -> None:
    make_pair_tree(tmp_path, "L200", "3mm_D45", [5.0, -5.0])
    make_pair_tree(tmp_path, "L100", "3mm_D45", [7.0, 1.0])
    make_pair_tree(tmp_path, "L100", "3mm_B30", [2.0, -2.0])
    keys = [(p["patient"], p["kernel"], p["z"]) for p in find_aapm_pairs(tmp_path)]
    assert keys == [
        ("L100", "B30", -2.0),
        ("L100", "B30", 2.0),
        ("L100", "D45", 1.0),
        ("L100", "D45", 7.0),
        ("L200", "D45", -5.0),
        ("L200", "D45", 5.0),
    ]


def test_z_is_along_the_slice_normal(tmp_path: Path) -> None:
    # Coronal slices: row (1,0,0), column (0,0,-1), normal (0,1,0): z is IPP's y, -100 here.
    coronal = (1, 0, 0, 0, 0, -1)
    write_slice(tmp_path / "L001" / "full_3mm" / "a.IMA", 4.0, orientation=coronal)
    write_slice(tmp_path / "L001" / "quarter_3mm" / "b.IMA", 4.0, orientation=coronal)
    (pair,) = find_aapm_pairs(tmp_path)
    assert pair["z"] == pytest.approx(-100.0)


def test_pairs_within_tolerance_only(tmp_path: Path) -> None:
    write_series(tmp_path / "L001" / "full_3mm", [0.0, 3.0])
    write_series(tmp_path / "L001" / "quarter_3mm", [0.005, 3.5])
    with pytest.warns(UserWarning, match=r"2 slice\(s\) have no partner"):
        pairs = find_aapm_pairs(tmp_path)
    assert [p["z"] for p in pairs] == [0.0]
    assert len(find_aapm_pairs(tmp_path, tolerance_mm=0.6)) == 2


def test_unpaired_slice_warns_naming_file_and_z(tmp_path: Path) -> None:
    make_pair_tree(tmp_path)
    write_slice(tmp_path / "L001" / "quarter_1mm_B30" / "extra.IMA", -21.5)
    with pytest.warns(UserWarning, match=r"no partner.*extra\.IMA \(z=-21\.5\)"):
        pairs = find_aapm_pairs(tmp_path)
    assert len(pairs) == len(ZS)


def test_unpaired_slice_raises_when_strict(tmp_path: Path) -> None:
    make_pair_tree(tmp_path)
    write_slice(tmp_path / "L001" / "full_1mm_B30" / "extra.IMA", 30.0)
    with pytest.raises(InputError, match=r"extra\.IMA \(z=30\)"):
        find_aapm_pairs(tmp_path, strict=True)


def test_missing_partner_folder_warns_or_raises(tmp_path: Path) -> None:
    make_pair_tree(tmp_path)
    write_series(tmp_path / "L001" / "full_1mm_D45", ZS)
    with pytest.warns(UserWarning, match="full_1mm_D45 has no quarter_1mm_D45 partner folder"):
        assert len(find_aapm_pairs(tmp_path)) == len(ZS)
    with pytest.raises(InputError, match="has no quarter_1mm_D45 partner folder"):
        find_aapm_pairs(tmp_path, strict=True)


def test_duplicate_position_raises_naming_both_files(tmp_path: Path) -> None:
    make_pair_tree(tmp_path)
    write_slice(tmp_path / "L001" / "full_1mm_B30" / "copy.IMA", ZS[2])
    with pytest.raises(InputError, match=r"copy\.IMA and slice_002\.IMA are at the same .* z=-6"):
        find_aapm_pairs(tmp_path)


def test_non_dicom_and_non_ct_files_skipped_with_one_warning(tmp_path: Path) -> None:
    make_pair_tree(tmp_path)
    (tmp_path / "L001" / "full_1mm_B30" / "notes.txt").write_text("scanner log")
    (tmp_path / "L001" / "quarter_1mm_B30" / "empty.IMA").write_bytes(b"")
    (tmp_path / "L001" / "quarter_1mm_B30" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    write_slice(tmp_path / "L001" / "full_1mm_B30" / "mr.dcm", 99.0, modality="MR")
    with pytest.warns(UserWarning, match="skipped 3 file") as record:
        pairs = find_aapm_pairs(tmp_path)
    assert len(pairs) == len(ZS)
    assert len(record) == 1
    message = str(record[0].message)
    assert "notes.txt (not DICOM)" in message and "empty.IMA (not DICOM)" in message
    assert "mr.dcm (Modality 'MR', not CT)" in message and ".DS_Store" not in message


def test_slices_not_parallel_raise(tmp_path: Path) -> None:
    write_slice(tmp_path / "L001" / "full_3mm" / "a.IMA", 0.0)
    write_slice(tmp_path / "L001" / "quarter_3mm" / "b.IMA", 0.0, orientation=(1, 0, 0, 0, 0, -1))
    with pytest.raises(InputError, match="ImageOrientationPatient agree"):
        find_aapm_pairs(tmp_path)


# --- manifest verification ----------------------------------------------------------------


def test_manifest_check_passes_then_names_a_changed_file(tmp_path: Path) -> None:
    root = make_pair_tree(tmp_path / "data")
    manifest = create_manifest(root, name="synthetic")
    assert find_aapm_pairs(root, manifest=manifest) == find_aapm_pairs(root)
    changed = root / "L001" / "full_1mm_B30" / "slice_003.IMA"
    content = bytearray(changed.read_bytes())
    content[-1] ^= 0xFF  # one pixel byte: the header still reads, the pairs do not change
    changed.write_bytes(bytes(content))
    with pytest.raises(InputError, match=r"L001/full_1mm_B30/slice_003\.IMA: sha256 expected"):
        find_aapm_pairs(root, manifest=manifest)


def test_manifest_check_names_files_the_manifest_does_not_list(tmp_path: Path) -> None:
    root = make_pair_tree(tmp_path / "data")
    manifest = create_manifest(root, name="synthetic", patterns=["*/full_*/*"])
    with pytest.raises(
        InputError, match=r"unexpected \(5\):\n  L001/quarter_1mm_B30/slice_00\d\.IMA"
    ):
        find_aapm_pairs(root, manifest=manifest)


def test_manifest_without_files_raises(tmp_path: Path) -> None:
    root = make_pair_tree(tmp_path / "data")
    with pytest.raises(ManifestError, match="lists no files"):
        find_aapm_pairs(root, manifest=Manifest("no_files"))


# --- layout and arguments ------------------------------------------------------------------


def test_wrong_layout_raises_with_expected_layout(tmp_path: Path) -> None:
    write_series(tmp_path / "L001" / "FD_1mm", ZS)
    write_series(tmp_path / "L001" / "low_dose", ZS)
    with pytest.raises(InputError, match=r"\{full,quarter\}_<thickness>\[_<kernel>\]") as info:
        find_aapm_pairs(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_patient_folder_as_root_gets_a_hint(tmp_path: Path) -> None:
    make_pair_tree(tmp_path)
    with pytest.raises(InputError, match="looks like one patient's folder"):
        find_aapm_pairs(tmp_path / "L001")


def test_layout_folders_mixed_with_others_are_skipped(tmp_path: Path) -> None:
    make_pair_tree(tmp_path)
    write_series(tmp_path / "L001" / "scout", [0.0])
    write_series(tmp_path / "L001" / "full_thin", [0.0])
    assert len(find_aapm_pairs(tmp_path)) == len(ZS)


@pytest.mark.parametrize("kind", ["missing", "empty", "file"])
def test_bad_root_raises(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "aapm"
    if kind == "empty":
        root.mkdir()
    elif kind == "file":
        root.write_text("not a folder")
    with pytest.raises(InputError, match=f"{re.escape(str(root))}: AAPM root"):
        find_aapm_pairs(root)


def test_filters(tmp_path: Path) -> None:
    make_pair_tree(tmp_path, "L001", "3mm_D45")
    make_pair_tree(tmp_path, "L001", "3mm_B30", [0.0])
    make_pair_tree(tmp_path, "L002", "1mm_D45", [0.0, 1.0])
    assert len(find_aapm_pairs(tmp_path, kernel="d45")) == len(ZS) + 2
    assert len(find_aapm_pairs(tmp_path, thickness="3.0mm")) == len(ZS) + 1
    assert len(find_aapm_pairs(tmp_path, thickness="1mm", kernel="D45")) == 2
    assert {p["patient"] for p in find_aapm_pairs(tmp_path, patients=["L002"])} == {"L002"}


def test_filters_that_match_nothing_raise(tmp_path: Path) -> None:
    make_pair_tree(tmp_path)
    with pytest.raises(InputError, match=r"kernel='D45'.*found \['1mm_B30'\]"):
        find_aapm_pairs(tmp_path, kernel="D45")
    with pytest.raises(InputError, match=r"patients \['L999'\] not found"):
        find_aapm_pairs(tmp_path, patients=["L001", "L999"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"thickness": "3"}, "thickness must be a number followed by 'mm'"),
        ({"tolerance_mm": -1.0}, "tolerance_mm must be a finite number >= 0"),
        ({"tolerance_mm": float("nan")}, "tolerance_mm must be a finite number >= 0"),
    ],
)
def test_bad_arguments_raise(tmp_path: Path, kwargs: dict, match: str) -> None:
    make_pair_tree(tmp_path)
    with pytest.raises(ValueError, match=match):
        find_aapm_pairs(tmp_path, **kwargs)


# --- splits and JSON -----------------------------------------------------------------------

DATA = [
    {"image": "q1", "label": "f1", "patient": "A"},
    {"image": "q2", "label": "f2", "patient": "B"},
    {"image": "q3", "label": "f3", "patient": "A"},
    {"image": "q4", "label": "f4", "patient": "C"},
]


def test_split_by_patient() -> None:
    parts = split_by_patient(DATA, {"training": ["A", "C"], "test": ["B"]})
    assert list(parts) == ["training", "test"]
    assert [e["image"] for e in parts["training"]] == ["q1", "q3", "q4"]
    assert [e["image"] for e in parts["test"]] == ["q2"]


@pytest.mark.parametrize(
    ("splits", "match"),
    [
        ({"training": ["A", "B"], "test": ["B", "C"]}, "patient 'B' is in splits 'training' and"),
        ({"training": ["A"], "test": ["B"]}, r"patients in no split: \['C'\]"),
        ({"training": "ABC"}, "must be a list of patient ids"),
    ],
)
def test_split_by_patient_rejects_leaks(splits: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        split_by_patient(DATA, splits)


def test_split_by_patient_warns_on_absent_patient() -> None:
    with pytest.warns(UserWarning, match=r"absent from the datalist: \['Z'\]"):
        split_by_patient(DATA, {"training": ["A", "B", "C"], "test": ["Z"]})


def test_write_datalist_roundtrips_through_monai(tmp_path: Path) -> None:
    from monai.data import load_decathlon_datalist

    make_pair_tree(tmp_path / "data")
    pairs = find_aapm_pairs(tmp_path / "data")
    out = write_datalist(
        {"training": pairs[:3], "validation": pairs[3:]}, tmp_path / "j" / "d.json"
    )
    assert [p.name for p in out.parent.iterdir()] == ["d.json"]  # no temporary file left
    assert json.loads(out.read_text())["validation"] == pairs[3:]
    loaded = load_decathlon_datalist(out, data_list_key="training")
    assert [(e["image"], e["label"]) for e in loaded] == [
        (p["image"], p["label"]) for p in pairs[:3]
    ]


def test_write_datalist_rejects_a_bare_list(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"e\.g\. \{'training': pairs\}"):
        write_datalist(DATA, tmp_path / "d.json")  # type: ignore[arg-type]


# --- real AAPM data ------------------------------------------------------------------------


@pytest.fixture
def aapm_root() -> Path:
    if not AAPM_DATA.is_dir():
        pytest.skip(f"real AAPM data not found at {AAPM_DATA} (../shared/data is absent)")
    return AAPM_DATA


def name_z(path: str) -> float:
    match = re.search(r"_z(-?\d+(?:\.\d+)?)\.IMA$", path)
    assert match, path
    return float(match[1])


@pytest.mark.shared_data
def test_real_pairs_count_and_z(aapm_root: Path) -> None:
    pairs = find_aapm_pairs(aapm_root, thickness="3mm", strict=True)
    assert len(pairs) == 32
    counts = Counter((p["patient"], p["kernel"]) for p in pairs)
    assert counts == {
        ("L096", "D45"): 10,
        ("L143", "D45"): 4,
        ("L143", "B30"): 7,
        ("L192", "D45"): 4,
        ("L192", "B30"): 7,
    }
    for pair in pairs:
        assert name_z(pair["image"]) == pytest.approx(pair["z"], abs=1e-6)
        assert name_z(pair["label"]) == pytest.approx(pair["z"], abs=1e-6)
        assert "quarter_3mm" in pair["image"] and "full_3mm" in pair["label"]
    keys = [(p["patient"], p["kernel"], p["z"]) for p in pairs]
    assert keys == sorted(keys)


@pytest.mark.shared_data
def test_real_pairs_match_the_shared_manifest(aapm_root: Path) -> None:
    pairs = find_aapm_pairs(aapm_root, manifest=str(AAPM_MANIFEST))
    assert len(pairs) == 32


@pytest.mark.shared_data
def test_real_kernel_filter_and_split(aapm_root: Path) -> None:
    b30 = find_aapm_pairs(aapm_root, kernel="B30")
    assert len(b30) == 14 and {p["kernel"] for p in b30} == {"B30"}
    assert {p["patient"] for p in b30} == {"L143", "L192"}
    parts = split_by_patient(
        find_aapm_pairs(aapm_root), {"training": ["L096", "L143"], "test": ["L192"]}
    )
    assert (len(parts["training"]), len(parts["test"])) == (21, 11)
    train = {p["patient"] for p in parts["training"]}
    assert train.isdisjoint(p["patient"] for p in parts["test"])


@pytest.mark.shared_data
@pytest.mark.filterwarnings("ignore:NvImgCodecPydicomReader")
def test_real_pair_loads_through_monai(aapm_root: Path) -> None:
    from monai.transforms import LoadImaged

    pair = find_aapm_pairs(aapm_root, patients=["L192"], kernel="D45")[0]
    data = LoadImaged(keys=["image", "label"], reader="PydicomReader")(pair)
    image, label = data["image"], data["label"]
    assert tuple(image.shape) == tuple(label.shape) == (512, 512)
    assert np.allclose(image.affine.numpy(), label.affine.numpy())
    assert float(label.affine[2, 3]) == pytest.approx(pair["z"])
    assert not np.array_equal(image.numpy(), label.numpy())  # different doses, same place
