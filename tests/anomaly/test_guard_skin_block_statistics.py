"""The guard's fifth-version statistics (a dense layer outside the body, the JPEG block grid),
each against a hand computation on a tiny synthetic slice."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ctpipe.anomaly.guard_compression_statistics import block_ratio
from ctpipe.anomaly.guard_skin_statistics import skin_layer_area, skin_layer_statistic


def test_skin_layer_area_counts_dense_pixels_in_the_band_outside_the_body():
    ii, jj = np.mgrid[:161, :161]
    body = ((ii - 80) / 50.0) ** 2 + ((jj - 80) / 35.0) ** 2 <= 1  # 1 mm pixels
    hu = np.where(body, 40.0, -1000.0)
    shield = (np.abs(ii - 80) <= 20) & (jj == 80 - 35 - 8)  # 41 pixels, 8 mm before the skin
    hu[shield] = 2500.0
    hu[(np.abs(ii - 80) <= 40) & (jj == 80 + 35 + 5)] = 300.0  # a mattress: below 500 HU
    hu[0:3, 0:3] = 3000.0  # far from the body (> 30 mm): ignored
    hu[80, 80] = 3000.0  # inside the body: ignored
    assert skin_layer_area(hu, body, (1.0, 1.0)) == float(shield.sum())
    assert skin_layer_area(hu, body, (0.5, 2.0)) == float(shield.sum())  # 1 mm² per pixel
    assert skin_layer_area(hu, np.zeros_like(body), (1.0, 1.0)) == 0.0


def test_skin_layer_statistic_on_a_1_mm_grid_in_logs():
    body = np.zeros((80, 80), bool)
    body[20:60, 30:60] = True
    hu = np.where(body, 40.0, -1000.0)
    hu[20:60, 22] = 2500.0  # 40 pixels of 1 mm, 8 mm before the skin
    assert skin_layer_statistic(hu, body, (1.0, 1.0)) == pytest.approx(math.log(41))
    fine = np.repeat(np.repeat(hu, 2, axis=0), 2, axis=1)  # the same slice on 0.5 mm pixels
    fine_body = np.repeat(np.repeat(body, 2, axis=0), 2, axis=1)
    assert skin_layer_statistic(fine, fine_body, (0.5, 0.5)) == pytest.approx(math.log(41))
    assert skin_layer_statistic(np.where(body, 40.0, -1000.0), body, (1.0, 1.0)) == 0.0


def test_block_ratio_compares_block_edges_with_block_middles():
    ii, _ = np.mgrid[:64, :64]
    hu = 40.0 + 2.0 * (ii % 2)  # every neighbour pair along i differs by 2 HU, along j by 0
    body = np.ones((64, 64), bool)
    assert block_ratio(hu, body, (1.0, 1.0)) == pytest.approx(0.0)
    stepped = hu + 8.0 * (ii % 8 == 0)  # a step at the first row of every block
    # edges (7, 8) along i: |(40 + 8) - 42| = 6 HU; middles (3, 4): 2; along j both 0
    assert block_ratio(stepped, body, (1.0, 1.0)) == pytest.approx(math.log(6 / 2))
    shifted = hu + 8.0 * (ii % 8 == 1)  # the same steps off the JPEG grid: edges not moved
    assert block_ratio(shifted, body, (1.0, 1.0)) == pytest.approx(0.0)
    repeated = np.repeat(np.random.default_rng(0).normal(40, 10, (32, 64)), 2, axis=0)
    assert abs(block_ratio(repeated, body, (1.0, 1.0))) < 0.1  # pixels repeated twice
    assert block_ratio(hu, np.zeros_like(body), (1.0, 1.0)) == 0.0  # no tissue
    small = np.ones((16, 16), bool)  # 2 x 16 edge pairs per axis: too few for a ratio
    assert block_ratio(stepped[:16, :16], small, (1.0, 1.0)) == 0.0
