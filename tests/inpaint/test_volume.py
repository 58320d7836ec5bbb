"""inpaint_volume: known voxels bit for bit, every mode and blend, records and errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ctpipe.inpaint.search import SearchSettings
from ctpipe.inpaint.volume import InpaintSettings, inpaint_slice, inpaint_volume
from ctpipe.phantom import make_phantom

WINDOW = (-1024.0, 1024.0)
FAST = InpaintSettings(search=SearchSettings(iterations=8), pool_size=32, margin=3)


@pytest.fixture(scope="module")
def volume():
    hu = make_phantom(shape=(40, 40, 5), seed=0).hu.astype(np.float32)
    mask = np.zeros(hu.shape, bool)
    mask[10:14, 12:17, 1:4] = True  # one part on three consecutive slices
    mask[30:33, 30:32, 0] = True  # another, on one slice
    return hu, mask


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"mode": "independent", "blend": "plain"},
        {"init": "random", "group_size": 1, "consistency_weight": 0.0},
    ],
)
def test_known_voxels_are_kept_and_holes_filled(gan, volume, changes):
    g, d = gan
    hu, mask = volume
    result = inpaint_volume(
        hu, mask, g, d, window=WINDOW, settings=dataclasses.replace(FAST, **changes)
    )
    assert result.hu.dtype == np.float32 and result.hu.shape == hu.shape
    assert np.array_equal(result.hu[~mask], hu[~mask])
    assert not np.allclose(result.hu[mask], hu[mask])
    assert np.isfinite(result.hu).all()
    assert [s.k for s in result.slices] == [0, 1, 2, 3]
    assert [s.hole_pixels for s in result.slices] == [6, 20, 20, 20]
    assert len(result.tiles) == 2 and all(t["size"] == 16 for t in result.tiles)
    assert all(
        s.iterations >= 1 and s.context_mae_hu >= 0 and 0 <= s.realism <= 1 for s in result.slices
    )


def test_sequence_mode_searches_a_key_slice_then_follows(gan, volume):
    g, d = gan
    hu, mask = volume
    settings = dataclasses.replace(
        FAST,
        search=SearchSettings(iterations=8, tolerance=0),
        follow=SearchSettings(iterations=3, tolerance=0),
        group_size=1,
    )
    result = inpaint_volume(hu, mask, g, d, window=WINDOW, settings=settings)
    # slice 0: the one-slice part (8 steps); slice 1: the key slice of the other part (8);
    # slices 2 and 3 follow it with 3 steps each
    assert [s.iterations for s in result.slices] == [8, 8, 3, 3]
    assert result.to_dict()["parameters"]["settings"]["follow"]["iterations"] == 3


def test_plain_fill_is_the_generated_hu_inside_the_window(gan, volume):
    g, d = gan
    hu, mask = volume
    result = inpaint_volume(
        hu, mask, g, d, window=(-200.0, 300.0), settings=dataclasses.replace(FAST, blend="plain")
    )
    assert result.hu[mask].min() >= -200.0 - 1e-3 and result.hu[mask].max() <= 300.0 + 1e-3


def test_record_and_reproducibility(gan, volume):
    g, d = gan
    hu, mask = volume
    first = inpaint_volume(hu, mask, g, d, window=WINDOW, settings=FAST)
    again = inpaint_volume(hu, mask, g, d, window=WINDOW, settings=FAST)
    assert np.array_equal(first.hu, again.hu)
    record = first.to_dict()
    assert record["parameters"]["window_hu"] == list(WINDOW)
    assert record["parameters"]["settings"]["search"]["iterations"] == 8
    assert len(record["parameters"]["generator_sha256"]) == 64
    assert record["hole_pixels"] == int(mask.sum()) and len(record["slices"]) == 4


def test_large_hole_is_inpainted_at_reduced_resolution(gan):
    g, d = gan
    hu = make_phantom(shape=(64, 64, 2), seed=1).hu.astype(np.float32)
    mask = np.zeros(hu.shape, bool)
    mask[20:40, 22:42, :] = True  # 20 pixels + 2 x 3 margin > 16: scale 2
    result = inpaint_volume(hu, mask, g, d, window=WINDOW, settings=FAST)
    assert [(t["size"], t["scale"]) for t in result.tiles] == [(32, 2)]
    assert np.array_equal(result.hu[~mask], hu[~mask])


def test_window_comes_from_the_checkpoint_record(gan, volume):
    g, _ = gan
    hu, mask = volume
    g.checkpoint_record = {"window": [-500.0, 500.0]}
    try:
        result = inpaint_volume(hu, mask, g, None, settings=FAST)
    finally:
        del g.checkpoint_record
    assert result.parameters["window_hu"] == [-500.0, 500.0]
    assert result.parameters["discriminator_sha256"] is None


def test_slice_api(gan, volume):
    g, d = gan
    hu, mask = volume
    result = inpaint_slice(hu[:, :, 1], mask[:, :, 1], g, d, window=WINDOW, settings=FAST)
    assert result.hu.shape == (40, 40)
    assert np.array_equal(result.hu[~mask[:, :, 1]], hu[:, :, 1][~mask[:, :, 1]])


@pytest.mark.parametrize(
    ("mask_change", "kwargs", "match"),
    [
        (lambda m: m[:, :, :2], {}, r"mask shape must equal the CT's \(40, 40, 5\)"),
        (lambda m: np.zeros_like(m), {}, "at least one pixel to inpaint"),
        (lambda m: m, {"window": None}, "window must be the model's HU"),
    ],
)
def test_errors(gan, volume, mask_change, kwargs, match):
    g, d = gan
    hu, mask = volume
    options = {"window": WINDOW, "settings": FAST, **kwargs}
    with pytest.raises(ValueError, match=match):
        inpaint_volume(hu, mask_change(mask), g, d, **options)


def test_settings_rules():
    with pytest.raises(ValueError, match="blend must be 'poisson' or 'plain', got 'alpha'"):
        InpaintSettings(blend="alpha")
    assert InpaintSettings().to_dict()["search"]["betas"] == [0.9, 0.999]
    assert InpaintSettings().to_dict()["follow"]["iterations"] == 20
    with pytest.raises(ValueError, match="first_group must be >= 1, got 0"):
        InpaintSettings(first_group=0)
    with pytest.raises(ValueError, match="match_norm must be 'l1' or 'l2', got 'l0'"):
        InpaintSettings(match_norm="l0")
