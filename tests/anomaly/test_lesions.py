"""Synthetic lesions: the requested HU contrast exactly where the mask says, nothing else."""

from __future__ import annotations

import numpy as np
import pytest

from ctpipe.anomaly.lesions import Lesion, RandomLesions, insert_lesions, lesion_profile
from ctpipe.phantom import make_phantom


def test_contrast_inside_and_nothing_outside(rng):
    hu = rng.normal(60.0, 15.0, (80, 70, 3)).astype(np.float32)
    lesion = Lesion(1, (40.0, 30.0), (9.0, 6.0), contrast_hu=-45.0, angle_deg=30.0, edge_mm=2.0)
    out, mask = insert_lesions(hu, (0.8, 0.8), [lesion])
    diff = out - hu
    weight = lesion_profile(hu.shape[:2], (0.8, 0.8), lesion)
    assert np.array_equal(mask[:, :, 1], weight >= 0.5)
    assert not mask[:, :, [0, 2]].any() and not diff[:, :, [0, 2]].any()
    core = weight == 1.0
    assert core.sum() > 100
    assert np.allclose(diff[:, :, 1][core], -45.0, atol=1e-3)  # the noise inside is kept
    assert not diff[:, :, 1][weight == 0.0].any()  # exactly unchanged outside the edge
    assert -45.0 < diff[:, :, 1][mask[:, :, 1]].mean() < -40.0
    assert hu[40, 30, 1] != out[40, 30, 1]  # the input is not changed in place


def test_ellipse_size_orientation_and_area_by_hand():
    # semi-axes 10 and 5 mm along i (angle 0), 0.5 mm pixels, sharp edge: area pi*10*5 mm^2
    lesion = Lesion(0, (60.0, 60.0), (10.0, 5.0), 50.0, angle_deg=0.0, edge_mm=0.0)
    weight = lesion_profile((121, 121), (0.5, 0.5), lesion)
    assert weight.sum() * 0.25 == pytest.approx(np.pi * 50, rel=0.02)
    assert weight[60 + 19, 60] == 1 and weight[60 + 21, 60] == 0  # 10 mm along i
    assert weight[60, 60 + 9] == 1 and weight[60, 60 + 11] == 0  # 5 mm along j
    rotated = lesion_profile(
        (121, 121),
        (0.5, 0.5),
        Lesion(0, (60.0, 60.0), (10.0, 5.0), 50.0, angle_deg=90.0, edge_mm=0.0),
    )
    assert np.array_equal(rotated, weight.T)


def test_random_lesions_are_seeded_inside_soft_tissue_and_apart():
    phantom = make_phantom(shape=(128, 128, 4), spacing=(1.5, 1.5, 3.0), seed=0)
    generator = RandomLesions(per_slice=2, radius_mm=(4.0, 8.0), seed=3)
    first = generator(phantom.hu, (1.5, 1.5))
    again = RandomLesions(per_slice=2, radius_mm=(4.0, 8.0), seed=3)(phantom.hu, (1.5, 1.5))
    assert first.lesions == again.lesions and np.array_equal(first.hu, again.hu)
    assert len(first.lesions) >= 4
    for lesion in first.lesions:
        assert 30 <= abs(lesion.contrast_hu) <= 80 and 4 <= lesion.radii_mm[0] <= 8
        weight = lesion_profile(phantom.hu.shape[:2], (1.5, 1.5), lesion)
        under = phantom.hu[:, :, lesion.slice_index][weight > 0]
        assert -60 < under.mean() < 190  # soft tissue under the whole lesion, not air or bone
    by_slice: dict[int, list[Lesion]] = {}
    for lesion in first.lesions:
        by_slice.setdefault(lesion.slice_index, []).append(lesion)
    for pair in (v for v in by_slice.values() if len(v) == 2):
        a, b = (lesion_profile((128, 128), (1.5, 1.5), x) > 0 for x in pair)
        assert not (a & b).any()
    assert {lesion.kind for lesion in first.lesions} == {"hypo", "hyper"}


def test_slice_without_tissue_gets_no_lesion():
    air = np.full((32, 32, 2), -1000.0, np.float32)
    trial = RandomLesions(seed=0)(air, (1.0, 1.0))
    assert trial.lesions == () and not trial.mask.any()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"radius_mm": (8.0, 4.0)}, "radius_mm must be \\(low, high\\) with low <= high"),
        ({"kinds": ("cyst",)}, "kinds must be a non-empty choice"),
        ({"elongation": 1.0}, "elongation must be in \\[0, 1\\)"),
        ({"per_slice": 0}, "per_slice must be an integer >= 1"),
    ],
)
def test_bad_generator_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RandomLesions(**kwargs)


def test_bad_lesions():
    with pytest.raises(ValueError, match="radii_mm must be two sizes > 0"):
        Lesion(0, (1.0, 1.0), (0.0, 2.0), 10.0)
    with pytest.raises(ValueError, match="outside the volume's 1 slices"):
        insert_lesions(np.zeros((8, 8, 1)), (1.0, 1.0), [Lesion(3, (4.0, 4.0), (2.0, 2.0), 10.0)])
