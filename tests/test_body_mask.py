from __future__ import annotations

import numpy as np

from ctpipe.body_mask import body_bbox_centre, body_mask
from ctpipe.phantom import make_phantom


def test_body_of_the_phantom_fills_gas_and_drops_a_separate_table():
    hu = make_phantom(shape=(64, 64, 3), seed=0).hu.copy()
    body = hu > -500
    rows = np.flatnonzero(body.any(axis=(0, 2)))
    hu[30:34, 30:34, :] = -1000.0  # gas inside the body
    table = rows[-1] + 3
    hu[5:60, table : table + 2, :] = 300.0  # a table below it, not touching
    mask = body_mask(hu)
    assert mask[body].all()
    assert mask[30:34, 30:34, :].all()
    assert not mask[:, table:, :].any()
    i, j = body_bbox_centre(mask)
    assert abs(i - 31.5) < 4 and abs(j - (rows[0] + rows[-1]) / 2) < 1


def test_empty_slice_gives_empty_mask():
    assert not body_mask(np.full((8, 8, 2), -1000.0)).any()
    assert body_bbox_centre(np.zeros((8, 8, 2), bool)) is None
