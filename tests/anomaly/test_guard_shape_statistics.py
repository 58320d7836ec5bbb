"""The guard's body shape and intensity statistics, each against a hand computation on a
tiny synthetic slice (counted pixel by pixel, not with the function under test)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ctpipe.anomaly.guard_statistics import (
    STATISTICS,
    body_shape,
    bright_blob_area,
    dense_core_area,
    fat_hu,
    fine_texture,
    flat_fraction,
    halo_fraction,
    radial_drop,
    rim_fraction,
    ring_power,
    ring_ratio,
    slice_statistics,
    streak_ratio,
    top_clip_fraction,
)
from tests.anomaly.conftest import GRID


def test_body_shape_is_area_in_cm2_and_log_width_over_height_in_mm():
    body = np.zeros((20, 30), bool)
    body[3:13, 5:25] = True  # 10 rows (first axis) x 20 columns
    area, aspect = body_shape(body, (1.5, 0.5))
    assert area == pytest.approx(10 * 20 * 1.5 * 0.5 / 100)  # 1.5 cm²
    assert aspect == pytest.approx(math.log((10 * 1.5) / (20 * 0.5)))  # 15 mm wide, 10 mm high
    turned = body_shape(body.T, (0.5, 1.5))  # the same body turned by 90 degrees
    assert turned[0] == pytest.approx(area) and turned[1] == pytest.approx(-aspect)
    assert body_shape(np.zeros((4, 4), bool), (1.0, 1.0)) == (0.0, 0.0)


def test_top_clip_fraction_counts_the_pile_at_the_maximum_inside_the_body():
    hu = np.full((10, 10), 40.0)
    body = np.zeros((10, 10), bool)
    body[2:8, 2:8] = True  # 36 pixels
    hu[2, 2:8] = 150.0  # 6 body pixels clipped at 150
    hu[0, 0] = 900.0  # outside the body: ignored
    hu[3, 2] = 149.7  # within 0.5 of the maximum
    assert top_clip_fraction(hu, body) == pytest.approx(7 / 36)
    hu[4, 4] = 151.0  # a single brighter pixel: the pile is no longer at the maximum
    assert top_clip_fraction(hu, body) == pytest.approx(1 / 36)


def test_radial_drop_is_core_median_minus_outer_median_of_tissue():
    ii, jj = np.mgrid[:61, :61]
    r2 = (ii - 30) ** 2 + (jj - 30) ** 2
    body = r2 <= 30**2
    radius = math.sqrt(body.sum() / math.pi)  # about 30 pixels
    image = np.where(r2 <= (0.3 * radius) ** 2, -100.0, 60.0)  # cupping-like dark core
    image[(r2 > (0.3 * radius) ** 2) & (r2 < (0.5 * radius) ** 2)] = 20.0
    image[30, 55] = 900.0  # bone in the outer part: not tissue, left out
    core = (r2 < (0.5 * radius) ** 2) & body
    expected = np.median(image[core]) - 60.0
    assert radial_drop(image, body, -150.0, 250.0) == pytest.approx(expected)
    flat = np.full_like(image, 40.0)
    assert radial_drop(flat, body, -150.0, 250.0) == 0.0


def test_rim_fraction_is_the_bone_share_of_a_band_under_the_skin():
    # a 41 x 41 square body of 1 mm pixels: the band 2 < depth <= 4 mm holds the rings at
    # depths 3 and 4 (pixels 2 and 3 in from the edge), 4 * (35 + 33) + ... counted below
    body = np.pad(np.ones((41, 41), bool), 1)
    depth = np.zeros(body.shape)
    for i, j in zip(*np.nonzero(body), strict=True):
        # the distance to the nearest background pixel of a square: its nearest side
        depth[i, j] = min(i, j, body.shape[0] - 1 - i, body.shape[1] - 1 - j)
    band = (depth > 2) & (depth <= 4)
    hu = np.zeros(body.shape)
    hu[3:6, :] = 1000.0  # bone along one side, 3 rows deep
    expected = (hu[band] > 300).sum() / band.sum()
    assert 0 < expected < 0.5
    assert rim_fraction(hu, body, (1.0, 1.0), (2.0, 4.0)) == pytest.approx(expected)


def test_slice_statistics_see_a_head_a_clip_and_contrast(tiny_vae):
    x, y = np.mgrid[:120, :120] - 59.5
    spacing = (2.0, 2.0, 3.0)
    trunk = np.full((120, 120, 1), -1000.0, np.float32)
    trunk[((x / 55) ** 2 + (y / 38) ** 2 <= 1)] = 40.0  # wider than deep, 110 x 76 mm
    trunk[((x / 10) ** 2 + ((y - 20) / 10) ** 2 <= 1)] = 400.0  # a vertebra
    trunk += np.random.default_rng(0).normal(0.0, 10.0, trunk.shape).astype(np.float32)
    head = np.full((120, 120, 1), -1000.0, np.float32)
    outer = (x / 38) ** 2 + (y / 46) ** 2 <= 1
    head[outer] = 1000.0  # a skull
    head[(x / 32) ** 2 + (y / 40) ** 2 <= 1] = 35.0  # brain inside it
    clipped = np.minimum(trunk, 150.0)
    organs = (trunk > 0) & (trunk < 100)
    contrast = trunk + np.where(organs, 300.0, 0.0).astype(np.float32)

    def stats(hu):
        values = slice_statistics(hu, spacing, tiny_vae, GRID, sigma=0.1)
        return dict(zip(STATISTICS, values.values[0], strict=True))

    t, h, c, o = stats(trunk), stats(head), stats(clipped), stats(contrast)
    assert t["body_aspect"] > 0 > h["body_aspect"]
    assert h["rim_bone_fraction"] > 0.5 > 0.05 > t["rim_bone_fraction"]
    assert math.exp(t["log_body_area"]) - 1 == pytest.approx(np.pi * 55 * 38 * 4 / 100, rel=0.03)
    assert c["log_top_clip"] > t["log_top_clip"] + 3
    assert o["log_bright_fraction"] > t["log_bright_fraction"] + 2


def test_flat_fraction_counts_body_pixels_with_a_constant_neighbourhood():
    rng = np.random.default_rng(0)
    hu = rng.normal(40.0, 10.0, (20, 20))
    body = np.zeros((20, 20), bool)
    body[2:18, 2:18] = True  # 256 pixels
    hu[5:11, 5:9] = -1024.0  # a painted 6 x 4 patch: its inner 4 x 2 pixels see only it
    hu[0:2, :] = -1024.0  # outside the body: ignored
    expected = 0
    for i, j in zip(*np.nonzero(body), strict=True):
        block = hu[max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2]
        expected += block.max() - block.min() < 0.5
    assert expected == 8
    assert flat_fraction(hu, body) == pytest.approx(8 / 256)
    assert flat_fraction(hu, np.zeros_like(body)) == 0.0


def test_halo_fraction_is_the_ghost_share_of_the_band_outside_the_body():
    # a 1 mm grid; the body a square, a ghost of -550 HU 6 mm deep above it (second axis)
    hu = np.full((80, 80), -1000.0)
    body = np.zeros((80, 80), bool)
    body[20:60, 20:60] = True
    hu[body] = -100.0
    hu[20:60, 14:20] = -550.0  # the ghost, outside the body mask
    depth = np.full(hu.shape, np.inf)  # Euclidean distance (mm) to the body, by hand
    for i, j in zip(*np.nonzero(~body), strict=True):
        di = max(20 - i, 0, i - 59)
        dj = max(20 - j, 0, j - 59)
        depth[i, j] = math.hypot(di, dj)
    band = (depth > 1.0) & (depth <= 12.0)
    from scipy.ndimage import gaussian_filter

    smooth = gaussian_filter(hu, 1.0)  # the documented 1 mm smoothing
    expected = ((smooth[band] > -800) & (smooth[band] < -300)).mean()
    assert 0.05 < expected < 0.2
    assert halo_fraction(hu, body, (1.0, 1.0)) == pytest.approx(expected)
    assert halo_fraction(np.where(body, -100.0, -1000.0), body, (1.0, 1.0)) == 0.0


def test_bright_blob_area_is_the_largest_uniform_bright_lumen_away_from_bone():
    hu = np.full((100, 100), 40.0)
    body = np.ones((100, 100), bool)
    hu[10:40, 10:40] = 450.0  # a 30 x 30 mm lumen on 1 mm pixels
    hu[60:70, 60:70] = 450.0  # a smaller one
    hu[60:70, 20:30] = 450.0  # the same size, but next to cortex ...
    hu[71:73, 20:30] = 1200.0  # ... 2 mm away: left out
    # by hand: the documented smoothing, SD window and ranges, counted inside the big
    # square (the others are smaller, or within 5 mm of cortex)
    area = bright_blob_area(hu, body, (1.0, 1.0))
    from scipy.ndimage import gaussian_filter

    smooth = gaussian_filter(hu, 1.0)
    sd = np.sqrt(np.maximum(gaussian_filter(hu**2, 1.5) - gaussian_filter(hu, 1.5) ** 2, 0))
    core = (smooth >= 350) & (smooth <= 700) & (sd < 60)
    assert area == pytest.approx(core[:50, :50].sum())  # the big lumen, not the others
    assert 400 < area < 900
    coarse = bright_blob_area(hu[::2, ::2], body[::2, ::2], (2.0, 2.0))  # 2 mm pixels
    assert coarse == pytest.approx(area, rel=0.25)
    assert bright_blob_area(np.full((20, 20), 40.0), np.ones((20, 20), bool), (1.0, 1.0)) == 0.0


def test_dense_core_area_counts_pixels_deeper_than_2_mm_inside_dense_tissue():
    hu = np.full((80, 80), 40.0)
    body = np.ones((80, 80), bool)
    hu[10:30, 10:22] = 1800.0  # a 20 x 12 mm contrast-filled lumen on 1 mm pixels
    hu[50:53, 5:75] = 1500.0  # cortex 3 mm thick: no pixel lies more than 2 mm inside it
    hu[60:70, 60:70] = 3071.0  # metal: above the dense range
    # by hand: the 1 mm smoothing keeps the lumen's edge on its own pixels (a pixel just
    # inside reaches 40 + 1760 * 0.69 > 600, one just outside 40 + 1760 * 0.31 < 600), and
    # a pixel d pixels in from the edge lies d + 1 mm from the nearest pixel outside
    inside = 0
    for i in range(10, 30):
        for j in range(10, 22):
            inside += min(i - 10, 29 - i, j - 10, 21 - j) + 1 > 2.0
    assert inside == 16 * 8
    assert dense_core_area(hu, body, (1.0, 1.0)) == pytest.approx(inside)
    assert dense_core_area(hu, np.zeros_like(body), (1.0, 1.0)) == 0.0
    assert dense_core_area(np.full((9, 9), 40.0), np.ones((9, 9), bool), (1.0, 1.0)) == 0.0


def test_fat_hu_is_the_median_of_the_fat_and_says_when_there_is_none():
    hu = np.full((60, 60), 40.0)
    body = np.ones((60, 60), bool)
    hu[:, :20] = -110.0  # subcutaneous fat, 20 mm deep
    hu[:, 20:30] = -80.0  # fat with more water in it, 10 mm
    # by hand: 1200 pixels at -110 against 600 at -80, the edges' smoothed values (within
    # 2 sd of the steps) on both sides of the median: the median is -110
    assert fat_hu(hu, body, (1.0, 1.0)) == pytest.approx(-110.0, abs=0.5)
    shifted = fat_hu(hu - 30.0, body, (1.0, 1.0))  # a 40 keV-like image: fat darker
    assert shifted == pytest.approx(-140.0, abs=0.5)
    assert fat_hu(np.full((30, 30), 40.0), np.ones((30, 30), bool), (1.0, 1.0)) == -250.0


def test_fine_texture_keeps_thin_lines_and_drops_edges():
    hu = np.full((40, 40), 40.0)
    hu[:, 20:] = 180.0  # an enhanced organ's edge: kept by the 5 mm median, so no texture
    hu[10, :] += 100.0  # a 1 mm streak across both
    texture, region = fine_texture(hu, np.ones((40, 40), bool), (1.0, 1.0))
    assert texture[10, 5] == pytest.approx(100.0) and texture[10, 30] == pytest.approx(100.0)
    assert np.abs(texture[20:, :]).max() == 0.0  # the edge is not texture ...
    assert not region[25, 19:21].any() and region[25, 5]  # ... and is left out


def test_ring_power_and_ratio_by_hand():
    # a ring of +10 HU, 1 mm wide at 12 mm about the centre of a 41 x 41 grid of 1 mm
    ii, jj = np.mgrid[:41, :41]
    r = np.hypot(ii - 20, jj - 20)
    texture = np.where(r.astype(int) == 12, 10.0, 0.0)
    region = np.ones((41, 41), bool)
    counts = np.bincount(r.astype(int).ravel())
    kept = counts >= 10
    expected = (counts[12] * 10.0**2) / counts[kept].sum()  # one ring, its mean 10, n pixels
    assert ring_power(texture, region, (20.0, 20.0), (1.0, 1.0)) == pytest.approx(expected)
    # the same ring is diluted about a point 25 mm off: the ratio is far above 0
    assert ring_ratio(texture, region, (1.0, 1.0)) > 1.5
    assert ring_ratio(np.zeros((41, 41)), region, (1.0, 1.0)) == 0.0


def test_streak_ratio_sees_lines_in_one_direction_only():
    rng = np.random.default_rng(1)
    noise = rng.normal(0.0, 15.0, (80, 80))
    region = np.ones((80, 80), bool)
    lines = noise.copy()
    lines[:, 20] += 60.0
    lines[:, 47] -= 60.0  # two streaks along the first axis
    grid = noise.copy()
    grid[:, 20] += 60.0
    grid[40, :] += 60.0  # one along each axis: still directional, twice
    base = streak_ratio(noise, region)
    assert base < 1.2  # isotropic noise: every direction alike, up to chance
    assert streak_ratio(lines, region) > base + 1.5
    assert streak_ratio(grid, region) > base + 1.0
    # by hand for the lines: along the first axis the two line sums hold 80 * 60 each
    variance = lines.var()
    assert (80 * 60.0) ** 2 / (80 * variance) > 50  # a line's p² / (n v), against ~1 for noise
    assert streak_ratio(noise, np.zeros_like(region)) == 0.0
