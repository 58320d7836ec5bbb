"""The guard's sixth-version statistics against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ctpipe.anomaly.guard_impulse_statistics import (
    IMPULSE_FLOOR,
    impulse_fraction,
    impulse_statistic,
)
from ctpipe.anomaly.guard_noise_map_statistics import QUIET_RATIO_MIN, quiet_tissue_ratio


def _tissue(size: int = 40) -> tuple[np.ndarray, np.ndarray]:
    return np.full((size, size), 40.0), np.ones((size, size), bool)


def test_an_isolated_pixel_beyond_all_neighbours_counts(tmp_path):
    hu, body = _tissue()
    hu[5, 5] = 40.0 + 601.0  # above all 8 by 601 HU
    hu[20, 20] = 40.0 - 700.0  # below all 8
    hu[30, 10] = 40.0 + 599.0  # not far enough
    assert impulse_fraction(hu, body) == pytest.approx(2 / 1600)
    assert impulse_statistic(hu, body) == pytest.approx(math.log(2 / 1600 + IMPULSE_FLOOR))


def test_a_line_or_a_pair_is_no_impulse():
    hu, body = _tissue()
    hu[10, 5:30] = 1500.0  # a thin cortex: each pixel has a neighbour on the line
    hu[25, 25] = hu[25, 26] = 2000.0  # two pixels side by side
    hu[33, 3] = hu[34, 4] = 2000.0  # two pixels touching at a corner
    assert impulse_fraction(hu, body) == 0.0


def test_only_the_body_counts_and_an_empty_body_gives_zero():
    hu, body = _tissue()
    hu[5, 5] = 3000.0
    body[:10, :10] = False
    assert impulse_fraction(hu, body) == 0.0
    assert impulse_fraction(hu, np.zeros_like(body)) == 0.0


def test_random_bit_errors_are_found_at_their_rate():
    rng = np.random.default_rng(0)
    hu = rng.normal(40.0, 20.0, (256, 256))
    hit = rng.random(hu.shape) < 0.002
    hu[hit] = rng.integers(0, 4096, int(hit.sum())) - 1024.0
    # a random stored value lies more than 600 HU beyond soft tissue about 2/3 of the time
    assert impulse_fraction(hu, np.ones(hu.shape, bool)) == pytest.approx(0.002 * 0.66, rel=0.2)


def _noisy(rng, size=200, sigma=15.0):
    return rng.normal(40.0, sigma, (size, size)), np.ones((size, size), bool)


def test_quiet_ratio_of_uniform_noise_is_near_zero():
    hu, body = _noisy(np.random.default_rng(1))
    # 400 blocks of 10 x 10: the 5th percentile of their median |residual| over the median
    assert -0.3 < quiet_tissue_ratio(hu, body, (1.0, 1.0)) < 0.0


def test_quiet_ratio_sees_a_region_with_half_the_noise():
    rng = np.random.default_rng(2)
    hu, body = _noisy(rng)
    hu[:60, :50] = rng.normal(40.0, 7.5, (60, 50))  # 30 of 400 blocks: 7.5 % > 5 %
    assert quiet_tissue_ratio(hu, body, (1.0, 1.0)) == pytest.approx(math.log(0.5), abs=0.12)


def test_quiet_ratio_of_a_flat_patch_is_the_minimum_and_air_is_left_out():
    rng = np.random.default_rng(3)
    hu, body = _noisy(rng)
    hu[:60, :60] = -1000.0  # air in the body (a lung): not soft tissue, no effect
    base = quiet_tissue_ratio(hu, body, (1.0, 1.0))
    assert -0.3 < base < 0.0
    hu[100:150, 100:150] = 40.0  # a flat patch of 25 blocks
    assert quiet_tissue_ratio(hu, body, (1.0, 1.0)) == pytest.approx(math.log(QUIET_RATIO_MIN))


def test_quiet_ratio_blocks_follow_the_pixel_size_and_need_enough_blocks():
    rng = np.random.default_rng(4)
    hu, body = _noisy(rng, size=60)
    # 0.5 mm pixels: 20-pixel blocks, 9 of them: too few for a ratio
    assert quiet_tissue_ratio(hu, body, (0.5, 0.5)) == 0.0
    # 1 mm pixels: 36 blocks of 10 pixels
    assert quiet_tissue_ratio(hu, body, (1.0, 1.0)) != 0.0
