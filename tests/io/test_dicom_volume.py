"""Reading DICOM series: exact HU and geometry, and a clear error for each bad input."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from ctpipe.errors import (
    AmbiguousSeriesError,
    CorruptDicomError,
    InputError,
    NoSeriesFoundError,
    SeriesGeometryError,
    UnsupportedModalityError,
)
from ctpipe.export.dicom_series import write_ct_series
from ctpipe.io.dicom_volume import CTVolume, read_dicom_volume
from ctpipe.io.discovery import scan_dicom
from tests.conftest import axial_affine, random_hu


def _sitk_volume(folder: Path, series_uid: str = "") -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder), series_uid))
    return reader.Execute()


def _edit(path: Path, **tags) -> None:
    ds = pydicom.dcmread(path)
    for name, value in tags.items():
        setattr(ds, name, value)
    ds.save_as(path)


def _sorted_files(folder: Path) -> list[Path]:
    scan = scan_dicom(folder)
    return [s.path for s in scan.series[0].slices]


def test_reads_shuffled_series_exactly(small_series):
    folder, hu, affine = small_series
    volume = read_dicom_volume(folder)
    np.testing.assert_array_equal(volume.hu, hu)
    np.testing.assert_allclose(volume.affine_lps, affine, atol=1e-6)
    assert volume.hu.dtype == np.float32
    assert volume.meta["Modality"] == "CT"


def test_matches_simpleitk(small_series):
    folder, _, _ = small_series
    volume = read_dicom_volume(folder)
    image = _sitk_volume(folder)
    np.testing.assert_array_equal(volume.hu, sitk.GetArrayFromImage(image).transpose(2, 1, 0))
    np.testing.assert_allclose(volume.affine_lps[:3, 3], image.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(volume.spacing, image.GetSpacing(), atol=1e-4)


def test_oblique_orientation_and_slope(tmp_path, rng):
    hu = rng.integers(-1000, 1000, size=(16, 12, 5)).astype(np.float32) * 0.5
    affine = axial_affine(rotation_deg=20.0)
    write_ct_series(hu, affine, tmp_path, rescale_slope=0.5, rescale_intercept=-1000.0)
    volume = read_dicom_volume(tmp_path)
    np.testing.assert_array_equal(volume.hu, hu)
    np.testing.assert_allclose(volume.affine_lps, affine, atol=1e-5)
    image = _sitk_volume(tmp_path)
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    np.testing.assert_allclose(volume.affine_lps[:3, :3] / volume.spacing, direction, atol=1e-4)


def test_nothing_in_empty_folder(tmp_path):
    with pytest.raises(NoSeriesFoundError, match="empty folder"):
        read_dicom_volume(tmp_path)


def test_missing_path_named(tmp_path):
    with pytest.raises(InputError, match="nowhere: no such file or folder"):
        read_dicom_volume(tmp_path / "nowhere")


def test_only_non_dicom_files(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with (
        pytest.warns(UserWarning, match="non-DICOM"),
        pytest.raises(NoSeriesFoundError, match="1 not DICOM"),
    ):
        read_dicom_volume(tmp_path)


def test_non_dicom_files_skipped_with_warning(small_series):
    folder, hu, _ = small_series
    (folder / "README.txt").write_text("not an image")
    (folder / "thumbs.db").write_bytes(b"\x00" * 300)
    with pytest.warns(UserWarning, match=r"skipped 2 non-DICOM file\(s\).*README.txt"):
        volume = read_dicom_volume(folder)
    np.testing.assert_array_equal(volume.hu, hu)


def test_truncated_file_named(small_series):
    folder, _, _ = small_series
    victim = _sorted_files(folder)[2]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) - 100])
    with pytest.raises(CorruptDicomError, match=rf"{victim.name}: .*truncated"):
        read_dicom_volume(folder)
    problems = scan_dicom(folder).series[0].problems
    assert any(victim.name in p and "truncated" in p for p in problems)


def test_pydicom_truncated_sample_refused():
    path = get_testdata_file("MR_truncated.dcm")
    with pytest.raises(CorruptDicomError, match=r"MR_truncated\.dcm"):
        read_dicom_volume(path, modalities=None)


@pytest.mark.parametrize(("keep", "why"), [(200, "no data elements"), (1500, "without pixel data")])
def test_header_truncated_file_beside_the_series_is_refused(small_series, keep, why):
    """Its series is unknown, so the series may lack a slice: refused unless irregular."""
    folder, hu, _ = small_series
    data = get_testdata_file("CT_small.dcm", read=False)
    (folder / "broken.dcm").write_bytes(Path(data).read_bytes()[:keep])
    with pytest.raises(SeriesGeometryError, match=rf"damaged DICOM file broken.dcm \(.*{why}"):
        read_dicom_volume(folder)
    with pytest.warns(UserWarning, match=rf"damaged DICOM file.*broken.dcm: .*{why}"):
        volume = read_dicom_volume(folder, allow_irregular=True)
    np.testing.assert_array_equal(volume.hu, hu)


def test_non_ct_modality_refused_unless_allowed(small_series):
    folder, hu, _ = small_series
    for path in folder.iterdir():
        _edit(path, Modality="MR")
    with pytest.raises(UnsupportedModalityError, match="modality MR is not allowed"):
        read_dicom_volume(folder)
    np.testing.assert_array_equal(read_dicom_volume(folder, modalities=None).hu, hu)


def test_two_series_in_one_folder(tmp_path, rng):
    a, b = random_hu(rng), random_hu(rng, shape=(10, 10, 3))
    uid_a, uid_b = generate_uid(), generate_uid()
    write_ct_series(
        a, axial_affine(), tmp_path, series_uid=uid_a, file_name_pattern="a{index:03d}.dcm"
    )
    write_ct_series(
        b, axial_affine(), tmp_path, series_uid=uid_b, file_name_pattern="b{index:03d}.dcm"
    )
    assert {s.key for s in scan_dicom(tmp_path).series} == {uid_a, uid_b}
    with pytest.raises(AmbiguousSeriesError, match=rf"2 series found.*{uid_a}|{uid_b}"):
        read_dicom_volume(tmp_path)
    np.testing.assert_array_equal(read_dicom_volume(tmp_path, series_uid=uid_b).hu, b)
    with pytest.raises(InputError, match=r"no series '1\.2\.3'"):
        read_dicom_volume(tmp_path, series_uid="1.2.3")


def test_missing_slice_reports_gap(small_series):
    folder, hu, _ = small_series
    files = _sorted_files(folder)
    files[3].unlink()
    with pytest.raises(SeriesGeometryError, match=r"missing slice.*gap of 5.000 mm.*step 2.500 mm"):
        read_dicom_volume(folder)
    with pytest.warns(UserWarning, match="reading despite: missing slice"):
        volume = read_dicom_volume(folder, allow_irregular=True)
    np.testing.assert_array_equal(volume.hu, np.delete(hu, 3, axis=2))


def test_uneven_spacing_reported(small_series):
    folder, _, _ = small_series
    last = _sorted_files(folder)[-1]
    ds = pydicom.dcmread(last)
    _edit(
        last, ImagePositionPatient=[*ds.ImagePositionPatient[:2], ds.ImagePositionPatient[2] + 1.0]
    )
    with pytest.raises(SeriesGeometryError, match=r"uneven spacing: gap of 3\.500 mm"):
        read_dicom_volume(folder)


def test_duplicate_positions_name_both_files(small_series):
    folder, _, _ = small_series
    files = _sorted_files(folder)
    shutil.copy(files[2], folder / "copy_of_slice.dcm")
    _edit(folder / "copy_of_slice.dcm", SOPInstanceUID=generate_uid())
    with pytest.raises(SeriesGeometryError, match=r"duplicate slice positions.*copy_of_slice.dcm"):
        read_dicom_volume(folder, allow_irregular=True)


def test_tilted_gantry_reported_and_readable_when_allowed(small_series):
    folder, hu, affine = small_series
    affine = affine.copy()
    affine[1, 2] = 2.5 * np.tan(np.radians(12))  # each slice shifts along y: gantry tilt
    for k, path in enumerate(_sorted_files(folder)):
        _edit(path, ImagePositionPatient=list((affine @ [0, 0, k, 1])[:3]), GantryDetectorTilt=12)
    with pytest.raises(SeriesGeometryError, match=r"sheared by 12.00 degrees"):
        read_dicom_volume(folder)
    with pytest.warns(UserWarning, match="sheared"):
        volume = read_dicom_volume(folder, allow_irregular=True)
    np.testing.assert_allclose(volume.affine_lps, affine, atol=1e-5)
    np.testing.assert_array_equal(volume.hu, hu)


def test_non_orthogonal_orientation_refused(small_series):
    folder, _, _ = small_series
    for path in folder.iterdir():
        _edit(path, ImageOrientationPatient=[1, 0, 0, 0.3, 0.954, 0])
    with pytest.raises(SeriesGeometryError, match="not orthogonal"):
        read_dicom_volume(folder)


def test_mixed_matrix_sizes_refused(small_series, rng):
    folder, _, _ = small_series
    uid = pydicom.dcmread(next(folder.iterdir())).SeriesInstanceUID
    write_ct_series(
        random_hu(rng, (8, 8, 1)),
        axial_affine(),
        folder,
        series_uid=uid,
        file_name_pattern="odd{index}.dcm",
    )
    with pytest.raises(SeriesGeometryError, match="different size"):
        read_dicom_volume(folder)


def test_missing_uids_fall_back_with_warning(small_series):
    folder, hu, _ = small_series
    for path in folder.iterdir():
        _edit(path, SeriesInstanceUID="", StudyInstanceUID="")
    with pytest.warns(UserWarning, match="no SeriesInstanceUID"):
        volume = read_dicom_volume(folder)
    np.testing.assert_array_equal(volume.hu, hu)
    assert str(volume.meta["ctpipe_series_key"]).startswith("nouid-")


def test_multiframe_enhanced_ct_equals_single_frame(small_series, tmp_path):
    from highdicom.legacy import LegacyConvertedEnhancedCTImage

    folder, hu, affine = small_series
    datasets = [pydicom.dcmread(p) for p in folder.iterdir()]
    enhanced = LegacyConvertedEnhancedCTImage(
        legacy_datasets=datasets,
        series_instance_uid=generate_uid(),
        series_number=99,
        sop_instance_uid=generate_uid(),
        instance_number=1,
    )
    target = tmp_path / "enhanced" / "ct.dcm"
    target.parent.mkdir()
    enhanced.save_as(target)
    scan = scan_dicom(target.parent)
    assert scan.series[0].is_multiframe and scan.series[0].shape == hu.shape
    volume = read_dicom_volume(target.parent)
    np.testing.assert_array_equal(volume.hu, hu)
    np.testing.assert_allclose(volume.affine_lps, affine, atol=1e-5)


def test_two_multiframe_files_in_one_series_refused(tmp_path):
    path = get_testdata_file("SC_rgb_rle_2frame.dcm")
    for name in ("a.dcm", "b.dcm"):
        shutil.copy(path, tmp_path / name)
        _edit(tmp_path / name, SOPInstanceUID=generate_uid())
    with pytest.raises(SeriesGeometryError, match="2 multi-frame files in one series"):
        read_dicom_volume(tmp_path, modalities=None)


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_RLE.dcm",
        "MR_small_implicit.dcm",
    ],
)
def test_transfer_syntaxes_decode_losslessly(name):
    reference = read_dicom_volume(get_testdata_file("MR_small.dcm"), modalities=None)
    volume = read_dicom_volume(get_testdata_file(name), modalities=None)
    np.testing.assert_array_equal(volume.hu, reference.hu)
    np.testing.assert_allclose(volume.affine_lps, reference.affine_lps)


def test_pydicom_ct_small_matches_simpleitk():
    path = get_testdata_file("CT_small.dcm")
    volume = read_dicom_volume(path)
    image = sitk.ReadImage(path)
    np.testing.assert_array_equal(volume.hu, sitk.GetArrayFromImage(image).transpose(2, 1, 0))
    np.testing.assert_allclose(volume.affine_lps[:3, 3], image.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(volume.spacing[:2], image.GetSpacing()[:2], atol=1e-4)


def test_ctvolume_from_nifti_round_trip(small_series, tmp_path):
    from ctpipe.io.nifti import write_nifti

    folder, hu, affine = small_series
    volume = CTVolume.from_dicom_series(folder)
    path = write_nifti(volume.hu, volume.affine_ras, tmp_path / "ct.nii.gz")
    again = CTVolume.from_nifti(path)
    np.testing.assert_array_equal(again.hu, hu)
    np.testing.assert_allclose(again.affine_lps, affine, atol=1e-5)


def test_no_warning_for_clean_series(small_series):
    folder, _, _ = small_series
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_dicom_volume(folder)
