"""Tests of ctpipe.metrics against hand-computed values and MONAI's SSIM."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ctpipe.metrics import (
    METRIC_NAMES,
    denoising_quality,
    image_quality,
    quality_per_slice,
    slice_quality,
    to_metric_scale,
)

WINDOW = (-160.0, 240.0)
C1 = (0.01 * 1.0) ** 2  # SSIM stability constant for data_range 1


@pytest.fixture
def reference(rng: np.random.Generator) -> np.ndarray:
    """A 48x48 HU slice: air, soft tissue, bone, all inside both ranges after offsets."""
    image = np.full((48, 48), -1000.0)
    image[8:40, 8:40] = 40.0
    image[20:28, 20:28] = 700.0
    return image + rng.normal(0.0, 5.0, image.shape)


# --- PSNR and RMSE: closed forms ----------------------------------------------------------


@pytest.mark.parametrize("offset_hu", [4.096, 40.96, 409.6])
def test_full_range_constant_offset(reference: np.ndarray, offset_hu: float) -> None:
    # estimate = reference + d everywhere (nothing clips): RMSE = d, PSNR = 20 log10(4096/d)
    q = slice_quality(reference + offset_hu, reference)
    assert q["rmse_hu"] == pytest.approx(offset_hu, rel=1e-9)
    assert q["rmse"] == pytest.approx(offset_hu / 4096, rel=1e-9)
    assert q["psnr"] == pytest.approx(20 * math.log10(4096 / offset_hu), rel=1e-9)


def test_window_constant_offset() -> None:
    reference = np.full((32, 32), 0.0)
    reference[:16] = 100.0  # 0 and 100 HU: +40 HU stays inside [-160, 240]
    q = slice_quality(reference + 40.0, reference, window=WINDOW)
    assert q["rmse_hu"] == pytest.approx(40.0)
    assert q["rmse"] == pytest.approx(0.1)
    assert q["psnr"] == pytest.approx(20.0)  # 20 log10(400 / 40)


def test_window_clips_before_comparing() -> None:
    # -500 vs -300 HU (both below -160) and 500 vs 900 (both above 240) agree in the window
    reference = np.full((32, 32), -500.0)
    reference[16:] = 500.0
    estimate = np.where(reference < 0, -300.0, 900.0)
    q = slice_quality(estimate, reference, window=WINDOW)
    assert q["rmse"] == 0.0 and q["rmse_hu"] == 0.0
    assert q["psnr"] == math.inf
    assert q["ssim"] == pytest.approx(1.0)
    full = slice_quality(estimate, reference)  # but not on the full range
    assert full["rmse_hu"] == pytest.approx(math.sqrt((200.0**2 + 400.0**2) / 2))


def test_full_range_clips_outside_minus_1024_to_3072() -> None:
    reference = np.full((16, 16), -1024.0)
    reference[8:] = 3072.0
    estimate = np.where(reference < 0, -2048.0, 4000.0)
    assert slice_quality(estimate, reference)["rmse"] == 0.0


def test_half_image_offset_rmse(reference: np.ndarray) -> None:
    estimate = reference.copy()
    estimate[:24] += 80.0  # half the pixels off by 80 HU: RMSE = 80 / sqrt(2)
    q = slice_quality(estimate, reference)
    assert q["rmse_hu"] == pytest.approx(80.0 / math.sqrt(2.0))
    assert q["psnr"] == pytest.approx(10 * math.log10(1.0 / ((80.0 / 4096) ** 2 / 2)))


def test_psnr_matches_mse_formula_on_noise(reference: np.ndarray, rng: np.random.Generator):
    reference = reference + 500.0  # keep the noisy air above -1024 HU: nothing clips
    estimate = reference + rng.normal(0.0, 30.0, reference.shape)
    mse = np.mean(((estimate - reference) / 4096.0) ** 2)
    q = slice_quality(estimate, reference)
    assert q["psnr"] == pytest.approx(10 * math.log10(1.0 / mse), rel=1e-9)
    assert q["rmse"] == pytest.approx(math.sqrt(mse), rel=1e-9)


def test_equal_images(reference: np.ndarray) -> None:
    q = slice_quality(reference, reference)
    assert q == {"psnr": math.inf, "ssim": pytest.approx(1.0), "rmse": 0.0, "rmse_hu": 0.0}


# --- SSIM ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("estimate_hu", "reference_hu", "window", "a", "b"),
    [
        (0.0, 100.0, None, 1024 / 4096, 1124 / 4096),
        (0.0, 100.0, WINDOW, 160 / 400, 260 / 400),
        (-1000.0, 200.0, WINDOW, 0.0, 360 / 400),
    ],
)
def test_ssim_of_constant_images_is_the_luminance_term(estimate_hu, reference_hu, window, a, b):
    # constant images: no variance or covariance, so SSIM = (2ab + C1) / (a^2 + b^2 + C1)
    shape = (24, 24)
    q = slice_quality(np.full(shape, estimate_hu), np.full(shape, reference_hu), window=window)
    assert q["ssim"] == pytest.approx((2 * a * b + C1) / (a * a + b * b + C1), rel=1e-9)


def wang_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM of Wang et al. 2004 written out: 11x11 Gaussian (sigma 1.5), valid positions."""
    r = np.arange(-5, 6)
    g = np.exp(-(r**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    wx = np.lib.stride_tricks.sliding_window_view(x, (11, 11))
    wy = np.lib.stride_tricks.sliding_window_view(y, (11, 11))

    def mean(a: np.ndarray) -> np.ndarray:
        return (a * w).sum(axis=(-2, -1))

    mx, my = mean(wx), mean(wy)
    vx, vy, cxy = mean(wx * wx) - mx**2, mean(wy * wy) - my**2, mean(wx * wy) - mx * my
    c2 = (0.03 * 1.0) ** 2
    ssim_map = ((2 * mx * my + C1) * (2 * cxy + c2)) / ((mx**2 + my**2 + C1) * (vx + vy + c2))
    return float(ssim_map.mean())


@pytest.mark.parametrize("window", [None, WINDOW])
def test_ssim_matches_the_formula_of_wang_et_al(reference, rng, window) -> None:
    estimate = reference + rng.normal(0.0, 25.0, reference.shape)
    ours = slice_quality(estimate, reference, window=window)["ssim"]
    expected = wang_ssim(to_metric_scale(estimate, window), to_metric_scale(reference, window))
    assert ours == pytest.approx(expected, abs=1e-9)
    assert 0.0 < ours < 1.0


def test_ssim_is_symmetric_and_drops_with_noise(reference, rng) -> None:
    mild = reference + rng.normal(0.0, 10.0, reference.shape)
    strong = reference + rng.normal(0.0, 60.0, reference.shape)
    s_mild = slice_quality(mild, reference, window=WINDOW)["ssim"]
    assert s_mild == pytest.approx(slice_quality(reference, mild, window=WINDOW)["ssim"])
    assert slice_quality(strong, reference, window=WINDOW)["ssim"] < s_mild < 1.0


# --- stacks and the combined report ------------------------------------------------------


def test_stack_is_scored_per_slice_and_averaged(reference, rng) -> None:
    offsets = [4.096, 40.96, 409.6]
    stack_ref = np.stack([reference] * 3, axis=-1)
    stack_est = stack_ref + np.array(offsets)
    per_slice = quality_per_slice(stack_est, stack_ref)
    assert per_slice["rmse_hu"] == pytest.approx(offsets)
    assert per_slice["psnr"] == pytest.approx([20 * math.log10(4096 / d) for d in offsets])
    mean = image_quality(stack_est, stack_ref)
    assert mean["psnr"] == pytest.approx(np.mean(per_slice["psnr"]))
    # slices along axis 0 give the same scores
    moved = image_quality(
        np.moveaxis(stack_est, -1, 0), np.moveaxis(stack_ref, -1, 0), slice_axis=0
    )
    assert moved == pytest.approx(mean)


def test_two_d_image_quality_is_slice_quality(reference, rng) -> None:
    estimate = reference + rng.normal(0.0, 20.0, reference.shape)
    assert image_quality(estimate, reference, window=WINDOW) == pytest.approx(
        slice_quality(estimate, reference, window=WINDOW)
    )


def test_denoising_quality_has_both_scales(reference) -> None:
    q = denoising_quality(reference + 40.0, reference)
    assert list(q) == [f"{m}_{s}" for s in ("full", "window") for m in METRIC_NAMES]
    assert q["rmse_hu_full"] == pytest.approx(40.0)
    # air and bone stay outside the window: only the soft tissue (32^2 - 8^2 of 48^2) counts
    tissue = (32 * 32 - 8 * 8) / 48**2
    assert q["rmse_hu_window"] == pytest.approx(40.0 * math.sqrt(tissue), rel=1e-6)


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("estimate", "reference", "kwargs", "match"),
    [
        (np.zeros((16, 16)), np.zeros((16, 17)), {}, "same shape"),
        (np.zeros(16), np.zeros(16), {}, "2D or 3D"),
        (np.zeros((10, 16)), np.zeros((10, 16)), {}, "at least 11 x 11"),
        (np.full((16, 16), np.nan), np.zeros((16, 16)), {}, "estimate holds NaN"),
        (np.zeros((16, 16)), np.full((16, 16), np.inf), {}, "reference holds NaN"),
        (np.zeros((16, 16)), np.zeros((16, 16)), {"window": (240, -160)}, "low < high"),
        (np.zeros((16, 16)), np.zeros((16, 16)), {"window": (1, 2, 3)}, r"\(low, high\)"),
        (np.zeros((16, 16)), np.zeros((16, 16)), {"window": "soft"}, r"\(low, high\)"),
    ],
)
def test_bad_input_is_refused(estimate, reference, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        image_quality(estimate, reference, **kwargs)


def test_slice_quality_refuses_a_stack() -> None:
    with pytest.raises(ValueError, match="must be 2D"):
        slice_quality(np.zeros((16, 16, 2)), np.zeros((16, 16, 2)))
