"""Seeded mask generators: reproducible, the drawn parameters rebuild the same mask."""

from __future__ import annotations

import numpy as np
import pytest

from ctpipe.inpaint.mask_generators import (
    BoxMask,
    StreakMask,
    StrokeMask,
    draw_box,
    draw_strokes,
    generate_mask,
)


@pytest.mark.parametrize("kind", ["box", "strokes", "streaks"])
def test_same_seed_same_mask_and_parameters_rebuild_it(kind):
    a, params = generate_mask(kind, (96, 80, 4), seed=3)
    b, _ = generate_mask(kind, (96, 80, 4), seed=3)
    c, _ = generate_mask(kind, (96, 80, 4), seed=4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    cls = {"box": BoxMask, "strokes": StrokeMask, "streaks": StreakMask}[kind]
    fields = params["shape"]
    rebuilt = cls(
        **{
            k: tuple(map(tuple, v)) if k == "strokes" else (tuple(v) if isinstance(v, list) else v)
            for k, v in fields.items()
        }
    )
    assert np.array_equal(rebuilt.render((96, 80)), a[:, :, 0])
    assert params["kind"] == kind and params["seed"] == 3


def test_box_is_exactly_its_size():
    mask = BoxMask(center=(10.0, 20.0), size=(6, 4)).render((40, 40))
    rows, cols = np.nonzero(mask)
    assert mask.sum() == 24 and (rows.min(), rows.max(), cols.min(), cols.max()) == (7, 12, 18, 21)


def test_stroke_has_its_width():
    mask = StrokeMask(strokes=(((5.0, 20.0), (30.0, 20.0)),), width=5).render((40, 40))
    assert mask[15].sum() == 5 and mask[15, 18:23].all()  # a horizontal band, 5 pixels across j
    assert not mask[:2].any() and not mask[33:].any()  # ends rounded by half the width


def test_streaks_run_through_the_metal_along_their_angles():
    streak = StreakMask(
        center=(32.0, 32.0),
        radii=(3.0, 3.0),
        orientation=0.0,
        angles=(0.0, 90.0),
        length=20.0,
        width=3,
    )
    mask = streak.render((64, 64))
    assert mask[32, 32] and mask[29:36, 32].all()  # the disc
    assert mask[13, 32] and mask[51, 32] and not mask[10, 32]  # band along i, 20 pixels each way
    assert mask[32, 13] and mask[32, 51] and not mask[32, 54]  # band along j
    assert not mask[20, 20]  # between the bands


def test_region_and_slices_are_respected():
    region = np.zeros((64, 64), bool)
    region[40:50, 40:50] = True
    rng = np.random.default_rng(0)
    for _ in range(10):
        box = draw_box(rng, (64, 64), size=(4, 6), region=region)
        assert region[int(box.center[0]), int(box.center[1])]
    mask, params = generate_mask("box", (64, 64, 6), seed=1, slices=(2, 4), region=region)
    assert [bool(mask[:, :, k].any()) for k in range(6)] == [False, False, True, True, False, False]
    assert params["slices"] == [2, 4]


def test_strokes_stay_in_the_image():
    rng = np.random.default_rng(5)
    for _ in range(20):
        strokes = draw_strokes(rng, (48, 48))
        for line in strokes.strokes:
            assert all(0 <= i <= 47 and 0 <= j <= 47 for i, j in line)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: generate_mask("circle", (8, 8, 1), seed=0),
            "kind must be one of box, strokes, streaks",
        ),
        (
            lambda: generate_mask("box", (64, 64, 3), seed=0, slices=(2, 2)),
            r"slices must be \[start, stop\)",
        ),
        (lambda: BoxMask(center=(1, 1), size=(0, 3)), "size must be two integers >= 1"),
        (
            lambda: StrokeMask(strokes=(((1, 1),),), width=2),
            "at least one polyline of >= 2 vertices",
        ),
        (
            lambda: draw_box(np.random.default_rng(0), (64, 64), region=np.zeros((64, 64), bool)),
            "region has no pixel",
        ),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
