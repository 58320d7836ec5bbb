"""The slice grid: windowing, resizing to a pixel size, centring, and the way back."""

from __future__ import annotations

import numpy as np
import pytest

from ctpipe.slice_grid import GridPlacement, SliceGrid
from ctpipe.transforms import window


def test_constant_slice_maps_to_its_window_value():
    grid = SliceGrid(size=(32, 32), pixel_mm=2.0, window=(-100.0, 300.0))
    hu = np.full((50, 40, 2), 100.0, np.float32)  # 50 x 40 pixels of 1 mm: 25 x 20 on the grid
    images, placement = grid.to_grid(hu, (1.0, 1.0))
    assert images.shape == (2, 1, 32, 32) and images.dtype == np.float32
    assert placement.resized_hw == (20, 25)  # rows are j (40 mm), columns are i (50 mm)
    inside = images[0, 0, 6:26, 4:29]  # the centred 20 x 25 block (offsets -6, -4)
    assert np.allclose(inside, 0.5)
    assert images[0, 0].sum() == pytest.approx(0.5 * 20 * 25)  # padding is 0


def test_orientation_rows_are_j_and_columns_are_i():
    grid = SliceGrid(size=(16, 16), pixel_mm=1.0)
    hu = np.full((16, 16), -1000.0, np.float32)
    hu[12, 3] = 1000.0  # column i = 12, row j = 3
    images, _ = grid.to_grid(hu, (1.0, 1.0))
    assert np.unravel_index(np.argmax(images[0, 0]), (16, 16)) == (3, 12)


def test_downsampling_averages_like_area_resampling():
    grid = SliceGrid(size=(8, 8), pixel_mm=4.0, window=(0.0, 100.0))
    rng = np.random.default_rng(0)
    hu = rng.uniform(0, 100, (32, 32)).astype(np.float32)
    images, _ = grid.to_grid(hu, (1.0, 1.0))
    # anti-aliased bilinear down by 4 is a triangle filter: close to the 4 x 4 block mean
    block = window(hu, (0.0, 100.0)).T.reshape(8, 4, 8, 4).mean(axis=(1, 3))
    assert np.abs(images[0, 0] - block).mean() < 0.05


def test_centre_puts_the_body_in_the_middle_and_round_trips():
    grid = SliceGrid(size=(32, 32), pixel_mm=2.0)
    hu = np.full((100, 80, 1), -1000.0, np.float32)
    hu[60:80, 10:30] = 40.0  # off-centre block, centre (69.5, 19.5)
    images, placement = grid.to_grid(hu, (1.0, 1.0), centre=(69.5, 19.5))
    rows, cols = np.nonzero(images[0, 0] > 0.3)
    assert abs(rows.mean() - 15.5) <= 0.6 and abs(cols.mean() - 15.5) <= 0.6
    back = grid.from_grid(images, placement)
    assert back.shape == hu.shape
    fov = placement.fov(grid.size)
    assert fov[69, 19] and not fov[5, 75]
    expected = window(hu, grid.window)
    # away from the block's edges the round trip is exact; outside the grid it is the fill
    assert np.allclose(back[64:76, 14:26, 0], expected[64:76, 14:26, 0], atol=1e-5)
    assert np.all(back[~fov, 0] == 0.0)


def test_placement_offsets_and_fov_by_hand():
    grid = SliceGrid(size=(4, 4), pixel_mm=1.0)
    p = grid.placement((6, 8), (1.0, 1.0), centre=(2.5, 3.5))
    assert p == GridPlacement((6, 8), (8, 6), (2, 1), (1.0, 1.0))
    assert p.fov(grid.size).T.astype(int).tolist() == [
        [0] * 6,
        [0] * 6,
        [0, 1, 1, 1, 1, 0],
        [0, 1, 1, 1, 1, 0],
        [0, 1, 1, 1, 1, 0],
        [0, 1, 1, 1, 1, 0],
        [0] * 6,
        [0] * 6,
    ]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": (0, 4)}, "size must be two integers >= 1"),
        ({"pixel_mm": -1.0}, "pixel_mm must be a finite number > 0"),
        ({"window": (100.0, 0.0)}, "window must be \\(low, high\\) with high > low"),
    ],
)
def test_bad_grid_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SliceGrid(**kwargs)


def test_bad_maps_shape():
    grid = SliceGrid(size=(8, 8))
    placement = grid.placement((8, 8), (3.0, 3.0))
    with pytest.raises(ValueError, match=r"maps must be shaped \(k, 1, 8, 8\)"):
        grid.from_grid(np.zeros((1, 1, 8, 7)), placement)
    with pytest.raises(ValueError, match="volume_hu must be"):
        grid.to_grid(np.zeros((2, 2, 2, 2)), (1.0, 1.0))
