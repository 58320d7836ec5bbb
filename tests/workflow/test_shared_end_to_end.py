"""The default workflow end to end on real series: the AAPM L096 and the pancreas study.

Each series runs once per module (the shipped denoiser and segmenter on CPU); the tests
then check the study folder against independent readers: SimpleITK for the derived
series' geometry, highdicom for the Segmentation, dciodvfy for DICOM validity.
"""

from __future__ import annotations

import shutil
import subprocess

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from ctpipe.export.dicom_seg import read_dicom_seg_labels
from ctpipe.io.dicom_volume import read_dicom_volume
from ctpipe.workflow import load_workflow, run_study
from tests.conftest import REPO, shared_path

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:skipped .* non-DICOM file"),
]

SERIES = ["aapm_L096_full_3mm_D45_series", "pancreas_ct_series"]


@pytest.fixture(scope="module", params=SERIES)
def study(request, tmp_path_factory):
    source = shared_path(request.param)
    workflow = load_workflow(REPO / "workflows" / "denoise_segment.yaml")
    result = run_study(workflow, source, tmp_path_factory.mktemp("e2e") / request.param)
    assert result.status == "done", result.error
    return source, result


def _sitk_series(folder):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def test_derived_series_geometry_matches_source_in_simpleitk(study):
    source, result = study
    original = _sitk_series(source)
    derived = _sitk_series(result.output_dir / "dicom" / "derived")
    assert derived.GetSize() == original.GetSize()
    np.testing.assert_allclose(derived.GetOrigin(), original.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(derived.GetSpacing(), original.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(derived.GetDirection(), original.GetDirection(), atol=1e-6)
    denoised = nib.load(result.output_dir / "nifti" / "denoised.nii.gz").get_fdata()
    array = sitk.GetArrayFromImage(derived).transpose(2, 1, 0)  # (k, j, i) -> (i, j, k)
    np.testing.assert_allclose(array, denoised, atol=0.5)


def test_denoising_changes_tissue_not_padding(study):
    source, result = study
    hu = read_dicom_volume(source).hu
    denoised = nib.load(result.output_dir / "nifti" / "denoised.nii.gz").get_fdata()
    body = hu > -500
    change = denoised[body] - hu[body]
    assert abs(change.mean()) < 10  # no HU shift
    assert 1 < change.std() < 100  # noise removed, anatomy kept
    padding = hu < -1024
    np.testing.assert_array_equal(denoised[padding], hu[padding])


def test_segmentation_round_trips_through_dicom_seg(study):
    source, result = study
    volume = read_dicom_volume(source)
    sources = [pydicom.dcmread(s.path, stop_before_pixels=True) for s in volume.series.slices]
    labels = np.asarray(nib.load(result.output_dir / "nifti" / "labels.nii.gz").dataobj)
    seg = result.output_dir / "dicom" / "segmentation.dcm"
    np.testing.assert_array_equal(read_dicom_seg_labels(seg, sources, _class_map(result)), labels)
    assert labels.shape == volume.hu.shape and labels.max() > 0


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) absent")
def test_exports_pass_dciodvfy(study):
    _, result = study
    series = sorted((result.output_dir / "dicom" / "derived").glob("*.dcm"))
    for path in [series[0], series[-1], result.output_dir / "dicom" / "segmentation.dcm"]:
        report = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        errors = [line for line in report.stderr.splitlines() if line.startswith("Error")]
        assert not errors, f"{path.name}: {errors}"


def test_report_shows_previews_models_and_timings(study):
    _, result = study
    html = (result.output_dir / "report.html").read_text()
    for key in ("previews/input.png", "previews/denoised.png", "previews/labels.png"):
        assert key in html and (result.output_dir / key).is_file()
    for step in ("denoise", "segment"):
        assert result.record["steps"][step]["model"]["sha256"] in html


def _class_map(result) -> dict[str, int]:
    return result.record["steps"]["segment"]["class_map"]
