"""Tile planning: one tile per hole part, scaled down when the part is large."""

from __future__ import annotations

import numpy as np
import pytest

from ctpipe.inpaint.tiles import downsample, plan_tiles, upsample


def test_small_part_gets_a_full_resolution_tile_with_its_margin():
    footprint = np.zeros((100, 90), bool)
    footprint[40:50, 60:75] = True
    (tile,) = plan_tiles(footprint, patch=32, margin=6)
    assert (tile.size, tile.scale, tile.part) == (32, 1, 1)
    window = np.zeros_like(footprint)
    window[tile.window] = True
    rows, cols = np.nonzero(footprint)
    assert window[rows.min() - 6 : rows.max() + 7, cols.min() - 6 : cols.max() + 7].all()


def test_large_part_gets_a_scaled_tile_and_tiles_stay_inside():
    footprint = np.zeros((100, 100), bool)
    footprint[0:40, 90:100] = True  # 40 pixels + margins needs 2 x 32
    (tile,) = plan_tiles(footprint, patch=32, margin=4)
    assert (tile.size, tile.scale) == (64, 2)
    assert tile.i0 >= 0 and tile.i0 + 64 <= 100 and tile.j0 >= 0 and tile.j0 + 64 <= 100


def test_parts_are_eight_connected():
    footprint = np.zeros((64, 64), bool)
    footprint[10, 10] = footprint[11, 11] = True  # diagonal neighbours: one part
    footprint[40, 40] = True
    assert [t.part for t in plan_tiles(footprint, patch=16, margin=2)] == [1, 2]


def test_errors():
    footprint = np.zeros((40, 40), bool)
    footprint[:, 5:35] = True
    with pytest.raises(ValueError, match="needs a 64-pixel tile, larger than the 40 x 40 slice"):
        plan_tiles(footprint, patch=32, margin=2)
    with pytest.raises(ValueError, match="smaller than the generator's 64 x 64"):
        plan_tiles(np.ones((40, 40), bool), patch=64, margin=2)
    with pytest.raises(ValueError, match="margin must be in"):
        plan_tiles(footprint, patch=16, margin=8)


def test_downsample_and_upsample():
    image = np.arange(16.0).reshape(4, 4)
    known = np.ones((4, 4), bool)
    known[0, 0] = False
    small, small_known = downsample(image, known, 2)
    assert small.tolist() == [[2.5, 4.5], [10.5, 12.5]]
    assert small_known.tolist() == [[False, True], [True, True]]
    assert np.allclose(upsample(np.full((3, 2, 2), 7.0), 2), 7.0)
    ramp = np.add.outer(np.arange(8.0), np.arange(8.0))  # linear: bilinear keeps it inside
    up = upsample(downsample(ramp, np.ones((8, 8), bool), 2)[0], 2)
    assert np.allclose(up[1:-1, 1:-1], ramp[1:-1, 1:-1])
