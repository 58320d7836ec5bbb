"""Tests of ctpipe.baselines.bm3d: BM3D on HU slices and the choice of its sigma."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from ctpipe.baselines.bm3d import (
    DEFAULT_SIGMA_GRID,
    BM3DDenoiser,
    bm3d_denoise_slice,
    choose_bm3d_sigma,
)
from ctpipe.metrics import slice_quality
from ctpipe.phantom import make_phantom
from tests.conftest import shared_path

TRUE_SIGMA = 0.01  # unit scale: 40.96 HU


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    """A noise-free 64x64 phantom slice (air, fat, soft tissue, organs, spine) in HU."""
    return make_phantom(shape=(64, 64, 1), noise_hu=0.0).hu[:, :, 0]


@pytest.fixture(scope="module")
def noisy(clean: np.ndarray) -> np.ndarray:
    """The phantom with white Gaussian noise of TRUE_SIGMA (unit scale)."""
    rng = np.random.default_rng(7)
    return (clean + rng.normal(0.0, TRUE_SIGMA * 4096, clean.shape)).astype(np.float32)


def test_bm3d_improves_psnr_on_noisy_phantom(clean, noisy) -> None:
    denoised = bm3d_denoise_slice(noisy, TRUE_SIGMA)
    assert denoised.shape == noisy.shape and denoised.dtype == np.float32
    before = slice_quality(noisy, clean)
    after = slice_quality(denoised, clean)
    assert after["psnr"] > before["psnr"] + 5.0
    assert after["rmse_hu"] < 0.6 * before["rmse_hu"]
    # HU level is kept: the unit-domain round trip adds no offset
    assert abs(float(np.mean(denoised - clean))) < 2.0


def test_sigma_search_picks_the_true_noise_level(clean, noisy) -> None:
    grid = (0.02, 0.005, TRUE_SIGMA)  # unsorted on purpose
    best, table = choose_bm3d_sigma([(noisy, clean)], grid)
    assert best == TRUE_SIGMA
    assert [row["sigma"] for row in table] == [0.005, 0.01, 0.02]
    assert set(table[0]) == {
        "sigma",
        "sigma_hu",
        "psnr_full",
        "psnr_full_std",
        "ssim_full",
        "n_slices",
        "seconds",
    }
    assert table[1]["sigma_hu"] == pytest.approx(40.96)
    assert table[1]["psnr_full"] == max(row["psnr_full"] for row in table)
    assert all(row["n_slices"] == 1 and row["seconds"] > 0 for row in table)


@pytest.mark.shared_data
def test_bm3d_improves_psnr_on_real_quarter_dose_crop() -> None:
    from ctpipe.io.dicom_volume import read_dicom_volume

    root = shared_path("aapm_ldct_pairs", "L192")
    crop = (slice(200, 296), slice(200, 296))  # 96x96 of abdomen, (i, j)
    low = read_dicom_volume(next((root / "quarter_3mm_D45").glob("*z-00202.6.IMA"))).hu
    normal = read_dicom_volume(next((root / "full_3mm_D45").glob("*z-00202.6.IMA"))).hu
    low, normal = low[crop][:, :, 0], normal[crop][:, :, 0]
    denoised = bm3d_denoise_slice(low, 0.012)
    for window in (None, (-160, 240)):
        before = slice_quality(low, normal, window=window)
        after = slice_quality(denoised, normal, window=window)
        assert after["psnr"] > before["psnr"] + 1.0
        assert after["ssim"] > before["ssim"]


def test_denoiser_records_its_settings() -> None:
    denoiser = BM3DDenoiser(sigma=0.012, profile="refilter")
    settings = denoiser.settings()
    assert settings["sigma"] == 0.012 and settings["sigma_hu"] == pytest.approx(49.152)
    assert settings["profile"] == "refilter" and settings["package"].startswith("bm3d ")


def test_default_grid_is_sorted_and_in_unit_scale() -> None:
    assert list(DEFAULT_SIGMA_GRID) == sorted(DEFAULT_SIGMA_GRID)
    assert all(0 < s < 0.1 for s in DEFAULT_SIGMA_GRID)


def test_missing_package_names_the_extra(monkeypatch, noisy) -> None:
    monkeypatch.setitem(sys.modules, "bm3d", None)  # makes `import bm3d` fail
    with pytest.raises(ImportError, match=r"pip install ctpipe\[baselines\]"):
        bm3d_denoise_slice(noisy, TRUE_SIGMA)


@pytest.mark.parametrize(
    ("sigma", "match"),
    [
        (0.0, "positive number"),
        (-0.01, "positive number"),
        (float("nan"), "positive number"),
        ("x", "positive number"),
        (40.0, "must be < 1.*divide by 4096"),
    ],
)
def test_bad_sigma_is_refused(sigma, match, noisy) -> None:
    with pytest.raises(ValueError, match=match):
        bm3d_denoise_slice(noisy, sigma)
    with pytest.raises(ValueError, match=match):
        BM3DDenoiser(sigma=sigma)


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((16, 16, 2)), "one 2D slice"),
        (np.zeros((4, 16)), "at least 8 x 8"),
        (np.full((16, 16), np.nan), "NaN"),
    ],
)
def test_bad_slice_is_refused(image, match) -> None:
    with pytest.raises(ValueError, match=match):
        bm3d_denoise_slice(image, 0.01)


def test_bad_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="profile must be one of np, refilter"):
        BM3DDenoiser(sigma=0.01, profile="fast")


@pytest.mark.parametrize(
    ("pairs", "grid", "match"),
    [
        ([], (0.01,), "at least one"),
        ([(np.zeros((16, 16)), np.zeros((16, 16)))], (), "at least one sigma"),
        ([(np.zeros((16, 16)), np.zeros((16, 16)))], "0.01", "sequence of sigmas"),
        ([(np.zeros((16, 16)), np.zeros((16, 16)))], (0.01, 2.0), "must be < 1"),
        ([(np.zeros((16, 16)), np.zeros((16, 18)))], (0.01,), r"pairs_train\[0\].*differ"),
        ([np.zeros((16, 16))], (0.01,), r"pairs_train\[0\] must be a"),
    ],
)
def test_bad_search_input_is_refused(pairs, grid, match) -> None:
    with pytest.raises(ValueError, match=match):
        choose_bm3d_sigma(pairs, grid)
