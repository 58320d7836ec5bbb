"""The held-out input builders of ``benchmarks/ood_inputs.py`` do what they claim."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from ctpipe.body_mask import body_mask

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "ood_inputs.py"


@pytest.fixture(scope="module")
def ood():
    spec = importlib.util.spec_from_file_location("ood_inputs", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["ood_inputs"] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("ood_inputs", None)


def _phantom(ood, size: int = 65, slices: int = 4, spacing=(2.0, 2.0, 2.0), bone: bool = True):
    """A trunk-like ellipse (fat, soft tissue, a bone) in air, a little wider on each slice."""
    x, y = ood._grid((size, size), spacing[0])
    hu = np.full((size, size, slices), -1000.0, np.float32)
    for k in range(slices):
        hu[:, :, k][ood._ellipse(x, y, 0, 0, 50 + k, 40)] = -100.0
        hu[:, :, k][ood._ellipse(x, y, 0, 0, 44 + k, 34)] = 40.0
        if bone:
            hu[:, :, k][ood._ellipse(x, y, 10, -10, 6, 6)] = 700.0
    return ood.Study("phantom", hu, spacing)


def _extent(hu: np.ndarray, axis: int) -> int:
    """Width of the body (pixels) along ``axis`` of the first slice."""
    present = np.flatnonzero(body_mask(hu[:, :, 0]).any(axis=1 - axis))
    return int(present[-1] - present[0] + 1)


def test_paediatric_halves_the_body_in_place(ood):
    base = _phantom(ood)
    child = ood.paediatric(base, scale=0.5)
    assert child.hu.shape == base.hu.shape and child.spacing == base.spacing
    for axis in (0, 1):
        assert abs(_extent(child.hu, axis) - _extent(base.hu, axis) / 2) <= 1.5
    centre = body_mask(child.hu[:, :, 0]).nonzero()
    assert abs(np.mean(centre[0]) - 32) < 1 and abs(np.mean(centre[1]) - 32) < 1
    assert child.hu.min() >= -1024.0


@pytest.mark.parametrize("plane, axis", [("coronal", 1), ("sagittal", 0)])
def test_reformat_slices_are_planes_of_the_volume(ood, plane, axis):
    base = _phantom(ood, slices=6)
    out = ood.reformat(base, plane, slices=1000)  # every plane through the body
    present = np.flatnonzero((base.hu > -500).any(axis=(1 - axis, 2)))
    assert out.hu.shape == (65, 6, len(present))
    for n, p in enumerate(present):
        np.testing.assert_array_equal(out.hu[:, :, n], np.take(base.hu, p, axis=axis))
    assert out.spacing == (2.0, 2.0, 2.0)


def test_reformat_resamples_thick_slices_to_square_pixels(ood):
    base = _phantom(ood, slices=6, spacing=(2.0, 2.0, 5.0))
    out = ood.reformat(base, "coronal", slices=4)
    assert out.hu.shape == (65, 15, 4)  # 6 slices of 5 mm on 2 mm pixels
    assert out.spacing[:2] == (2.0, 2.0)


def test_cone_beam_cups_the_centre_and_rings_are_radial(ood):
    base = _phantom(ood, slices=1, bone=False)
    out = ood.cone_beam(base, cupping_hu=150.0, ring_hu=40.0, seed=3)
    diff = out.hu[:, :, 0] - base.hu[:, :, 0]
    assert diff[32, 32] == pytest.approx(-150.0, abs=1.0)  # rings start 10 mm out
    np.testing.assert_allclose(diff, diff[::-1, :], atol=1e-3)
    np.testing.assert_allclose(diff, diff[:, ::-1], atol=1e-3)
    assert not diff[base.hu[:, :, 0] < -500].any()  # air untouched
    np.testing.assert_array_equal(ood.cone_beam(base, seed=3).hu, out.hu)
    assert not np.array_equal(ood.cone_beam(base, seed=4).hu, out.hu)


def test_display_window_images(ood):
    base = _phantom(ood)
    clipped = ood.lung_window(base).hu
    assert clipped.min() >= -1350.0 and clipped.max() == 150.0
    inside = (base.hu > -1350) & (base.hu < 150)
    np.testing.assert_array_equal(clipped[inside], base.hu[inside])
    display = ood.display_8bit(base).hu
    assert set(np.unique(display)) == {0.0, 38.0, 128.0, 255.0}  # air, -100, 40, 700 HU
    np.testing.assert_array_equal(display, np.round(display))


def test_contrast_raises_organs_not_fat_or_bone(ood):
    base = _phantom(ood, size=129, spacing=(1.0, 1.0, 2.0))
    out = ood.contrast_oversaturated(base, boost_hu=300.0).hu[:, :, 0]
    hu = base.hu[:, :, 0]
    assert out[64 - 20, 64] - hu[64 - 20, 64] == pytest.approx(300.0, abs=1.0)  # soft tissue
    assert out[64, 64 + 37] == hu[64, 64 + 37] == -100.0  # fat
    assert out[64 + 10, 64 - 10] == hu[64 + 10, 64 - 10] == 700.0  # bone
    assert out[0, 0] == -1000.0


def test_slab_mip_is_the_maximum_over_neighbouring_slices(ood):
    rng = np.random.default_rng(0)
    hu = rng.normal(0.0, 100.0, (8, 8, 7)).astype(np.float32)
    base = ood.Study("noise", hu, (1.0, 1.0, 5.0))
    out = ood.slab_mip(base, slab_mm=20.0, sigma_mm=0.0).hu  # +- 2 slices
    for k in range(7):
        np.testing.assert_array_equal(out[:, :, k], hu[:, :, max(k - 2, 0) : k + 3].max(axis=2))
    smooth = ood.slab_mip(base, slab_mm=20.0, sigma_mm=1.5).hu
    assert np.abs(np.diff(smooth, axis=0)).mean() < np.abs(np.diff(out, axis=0)).mean()


@pytest.mark.parametrize("modality", ["PET", "SPECT"])
def test_emission_map_is_positive_and_seeded(ood, modality):
    base = _phantom(ood, slices=2)
    out = ood.emission_map(base, modality, seed=1)
    assert out.hu.shape == base.hu.shape and out.hu.min() >= 0.0
    assert out.hu[0, 0, 0] == 0.0  # no activity in air
    np.testing.assert_array_equal(ood.emission_map(base, modality, seed=1).hu, out.hu)
    assert not np.array_equal(ood.emission_map(base, modality, seed=2).hu, out.hu)
    body = base.hu > -500
    assert out.hu[body].mean() > 10 * out.hu[~body].mean()


def test_small_fov_zooms_on_the_body_centre(ood):
    base = _phantom(ood)
    out = ood.small_fov(base, fov_mm=40.0, matrix=80)
    assert out.hu.shape == (80, 80, 4) and out.spacing[:2] == (0.5, 0.5)
    assert (out.hu > -500).all()  # inside the body: no air left
    assert out.hu[40, 40, 0] == pytest.approx(40.0)


def test_rotated_90_swaps_rows_and_columns(ood):
    base = ood.Study("b", _phantom(ood).hu, (1.0, 2.0, 3.0))
    out = ood.rotated_90(base)
    np.testing.assert_array_equal(out.hu, np.rot90(base.hu, axes=(0, 1)))
    assert out.spacing == (2.0, 1.0, 3.0)


def test_lower_leg_is_seeded(ood):
    leg = ood.lower_leg(slices=2, matrix=128)
    assert leg.hu.shape == (128, 128, 2) and leg.spacing[0] == pytest.approx(160 / 128)
    np.testing.assert_array_equal(ood.lower_leg(slices=2, matrix=128).hu, leg.hu)
    assert leg.hu.max() > 1000.0  # cortical bone


@pytest.mark.parametrize(
    "filename, shape, modality",
    [
        ("examples_overlay.dcm", (484, 300, 2), "MR"),
        ("examples_rgb_color.dcm", (320, 240, 2), "US"),
    ],
)
def test_pydicom_image(ood, filename, shape, modality):
    study = ood.pydicom_image(filename)
    assert study.hu.shape == shape and modality in study.name
    np.testing.assert_array_equal(study.hu[:, :, 0], study.hu[:, :, 1])


def test_fov_crop_keeps_the_whole_body_on_finer_pixels(ood):
    base = _phantom(ood)
    out = ood.fov_crop(base, margin_mm=10.0)
    assert out.hu.shape == base.hu.shape and out.spacing[0] < base.spacing[0]
    body = body_mask(out.hu).any(axis=2)
    assert not (body[0].any() or body[-1].any() or body[:, 0].any() or body[:, -1].any())
    area = [body_mask(s.hu).sum() * s.spacing[0] ** 2 for s in (base, out)]
    assert area[1] == pytest.approx(area[0], rel=0.05)  # the same body, in mm^2


def test_fov_crop_on_a_non_square_matrix_and_when_the_body_fills_it(ood):
    base = _phantom(ood)
    wide = ood.Study("wide", base.hu[:, 8:-8], base.spacing)  # 65 x 49 pixels
    out = ood.fov_crop(wide, margin_mm=4.0)
    assert out.hu.shape == wide.hu.shape and out.spacing[0] < wide.spacing[0]
    centre = np.argwhere(body_mask(out.hu[:, :, 0])).mean(axis=0)
    np.testing.assert_allclose(centre, [32.0, 24.0], atol=0.5)
    with pytest.raises(ValueError, match="fills the field of view"):
        ood.fov_crop(wide, margin_mm=40.0)


def test_off_centre_moves_the_body(ood):
    base = _phantom(ood)
    out = ood.off_centre(base, shift_mm=(10.0, -6.0), angle_deg=0.0)
    before, after = (np.argwhere(body_mask(s.hu[:, :, 0])).mean(axis=0) for s in (base, out))
    np.testing.assert_allclose(after - before, [5.0, -3.0], atol=0.2)
    turned = ood.off_centre(base, shift_mm=(0.0, 0.0), angle_deg=6.0)
    assert body_mask(turned.hu).sum() == pytest.approx(body_mask(base.hu).sum(), rel=0.03)
