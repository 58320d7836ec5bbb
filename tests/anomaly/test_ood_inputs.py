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


# Fourth family (``bench_ood_guard.py --fresh2``).


def test_photon_starvation_streaks_run_laterally_inside_the_body(ood):
    base = _phantom(ood, size=129, slices=1, spacing=(1.0, 1.0, 2.0), bone=False)
    out = ood.photon_starvation(base, seed=1)
    diff = out.hu[:, :, 0] - base.hu[:, :, 0]
    assert not diff[~body_mask(base.hu[:, :, 0])].any()
    core = diff[44:84, 44:84]  # within the body: streaks vary across j far more than along i
    assert np.abs(np.diff(core, axis=1)).mean() > 3 * np.abs(np.diff(core, axis=0)).mean()
    np.testing.assert_array_equal(ood.photon_starvation(base, seed=1).hu, out.hu)


def test_detector_rings_are_round_about_the_image_centre(ood):
    base = _phantom(ood, size=129, slices=1, spacing=(1.0, 1.0, 2.0), bone=False)
    out = ood.detector_rings(base, radii_mm=(20.0,), ring_hu=200.0)
    diff = out.hu[:, :, 0] - base.hu[:, :, 0]
    assert diff[64 + 20, 64] == pytest.approx(200.0) == diff[64, 64 - 20]
    np.testing.assert_allclose(diff, diff.T, atol=1e-3)
    assert diff[64, 64] == pytest.approx(0.0, abs=1e-3)


def test_oral_contrast_fills_soft_tissue_and_fat_only(ood):
    base = _phantom(ood, size=129, slices=2, spacing=(1.0, 1.0, 2.0))
    out = ood.oral_contrast(base, seed=0, contrast_hu=700.0).hu
    changed = out != base.hu
    assert changed.sum() > 200
    assert np.isin(base.hu[changed], (-100.0, 40.0)).all()  # never bone or air
    assert abs(out[changed].mean() - 700.0) < 20.0


def test_sharp_kernel_keeps_flat_regions_and_adds_fine_noise(ood):
    base = _phantom(ood, size=129, slices=1, spacing=(1.0, 1.0, 2.0), bone=False)
    out = ood.sharp_kernel(base, noise_hu=50.0, seed=0).hu[:, :, 0]
    flat = out[54:74, 54:74]
    assert abs(flat.mean() - 40.0) < 5.0 and flat.std() == pytest.approx(50.0, rel=0.15)
    lag1 = np.corrcoef(flat[:, :-1].ravel(), flat[:, 1:].ravel())[0, 1]
    assert abs(lag1) < 0.15  # white, pixel-to-pixel noise


def test_couch_only_has_no_patient(ood):
    base = _phantom(ood, size=129, slices=2, spacing=(4.0, 4.0, 2.0))
    out = ood.couch_only(base).hu
    assert out.shape == base.hu.shape and out.max() < 250.0
    assert (out[60:70, 60:70] < -900).all()  # where the body was: air
    assert ((out > 100) & (out < 250)).any()  # the couch's shell


def test_pixel_representation_wrap_and_zeroed_rows(ood):
    base = ood.Study("b", np.array([[[-1000.0], [-50.0]], [[0.0], [300.0]]], np.float32), (1, 1, 1))
    wrapped = ood.pixel_representation_wrap(base).hu[:, :, 0]
    np.testing.assert_array_equal(wrapped, [[64536.0, 65486.0], [0.0, 300.0]])
    phantom = _phantom(ood, size=129, slices=2, spacing=(1.0, 1.0, 2.0))
    out = ood.zeroed_rows(phantom, seed=0, stripes=2).hu
    zero_rows = np.flatnonzero((out == -1024.0).all(axis=(0, 2)))
    assert 12 <= zero_rows.size <= 24  # two stripes of 6-12 mm
    np.testing.assert_array_equal(np.delete(out, zero_rows, 1), np.delete(phantom.hu, zero_rows, 1))


def test_contrast_tube_is_dense_and_inside_the_body(ood):
    base = _phantom(ood, size=129, slices=2, spacing=(1.0, 1.0, 2.0), bone=False)
    out = ood.contrast_tube(base, seed=2).hu
    tube = out > 1200
    assert tube.sum() > 50 and body_mask(base.hu)[tube].all()


def test_attenuation_ct_is_on_4_mm_pixels(ood):
    base = _phantom(ood, size=128, slices=2, spacing=(1.0, 1.0, 2.0))
    out = ood.attenuation_ct(base, pixel_mm=4.0, noise_hu=0.0)
    assert out.hu.shape == (32, 32, 2) and out.spacing == (4.0, 4.0, 2.0)
    assert abs(out.hu[16, 16, 0] - 40.0) < 5.0


def test_monoenergetic_mapping(ood):
    hu = np.array([-1000.0, -600.0, -200.0, -100.0, 0.0, 50.0, 700.0], np.float32)
    out = ood.monoenergetic_40kev(ood.Study("b", hu[:, None, None], (1, 1, 1))).hu.ravel()
    np.testing.assert_allclose(out, [-1000.0, -640.0, -280.0, -140.0, 0.0, 100.0, 1400.0])


def test_localizer_projects_front_to_back(ood):
    hu = np.full((4, 5, 2), -1000.0, np.float32)
    hu[1:3, 1:4] = 0.0  # 3 pixels of water along j in columns 1 and 2
    out = ood.localizer(ood.Study("b", hu, (2.0, 2.0, 2.0))).hu
    assert out.shape == (4, 2, 2)
    clean = out.mean(axis=2)
    np.testing.assert_allclose(clean[[0, 3]], -1024.0, atol=20.0)  # no tissue: min value
    np.testing.assert_allclose(clean[[1, 2]], 1976.0, atol=20.0)  # the most tissue: max value


def test_fourth_family_normal_variants(ood):
    base = _phantom(ood)
    np.testing.assert_array_equal(ood.mirrored(base).hu, base.hu[::-1])
    drift = ood.calibration_drift(base, 15.0).hu
    assert drift[32, 32, 0] == 55.0 and drift[0, 0, 0] == -1000.0
    padded = ood.circle_padding(base).hu
    assert padded[0, 0, 0] == -3024.0 and padded[32, 0, 0] == -1000.0
    np.testing.assert_array_equal(padded[body_mask(base.hu)], base.hu[body_mask(base.hu)])
    wide = ood.wider_fov(base, 1.15)
    areas = [body_mask(s.hu).sum() * s.spacing[0] ** 2 for s in (base, wide)]
    assert areas[1] == pytest.approx(areas[0], rel=0.05)
    soft = ood.soft_kernel(base, 2.0).hu
    assert np.abs(np.diff(soft, axis=0)).mean() < np.abs(np.diff(base.hu, axis=0)).mean()


# Fifth family (``bench_ood_guard.py --fresh3``).


def test_qa_phantom_has_water_and_its_rods(ood):
    base = _phantom(ood, size=129, slices=10, spacing=(2.0, 2.0, 2.0))
    out = ood.qa_phantom(base, seed=0)
    assert out.hu.shape == (129, 129, 8) and out.spacing == base.spacing
    x, y = ood._grid((129, 129), 2.0)
    for n, value in enumerate((-1000.0, -100.0, -35.0, 120.0, 340.0, 950.0)):
        angle = 2 * np.pi * n / 6
        rod = ood._ellipse(x, y, 60 * np.cos(angle), 60 * np.sin(angle), 6, 6)
        assert abs(out.hu[:, :, 0][rod].mean() - value) < 8.0
    assert abs(out.hu[64, 64, 0]) < 50.0 and out.hu[0, 0, 0] == -1000.0


def test_annotation_text_burns_bright_pixels_into_corners_and_body(ood):
    base = _phantom(ood, size=129, slices=1, spacing=(1.0, 1.0, 2.0))
    out = ood.annotation_text(base).hu[:, :, 0]
    burned = out != base.hu[:, :, 0]
    assert (out[burned] == 3071.0).all()
    assert burned[:40, :20].any() and burned[-40:, -20:].any()  # corners
    assert (burned & body_mask(base.hu[:, :, 0])).sum() > 20  # caliper and ROI on the body
    assert burned.mean() < 0.1


def test_iodine_map_is_enhancement_over_25_hu_per_mg(ood):
    hu = np.full((40, 40, 1), 95.0, np.float32)  # (95 - 45) / 25 = 2 mg/mL
    hu[:, :20] = 20.0  # unenhanced: 0
    out = ood.iodine_map(ood.Study("b", hu, (1.0, 1.0, 1.0)), seed=0).hu[:, :, 0]
    assert abs(out[10:30, 25:35].mean() - 20.0) < 1.0  # 0.1 mg/mL units, noise 4
    assert abs(out[10:30, 3:15].mean()) < 1.0  # unenhanced: 0 plus noise
    assert np.allclose(out, np.round(out))


def test_myelogram_rings_the_vertebra_centroid_and_keeps_bone(ood):
    base = _phantom(ood, size=129, slices=1, spacing=(1.0, 1.0, 2.0), bone=False)
    hu = base.hu.copy()
    x, y = ood._grid((129, 129), 1.0)
    vertebra = ood._ellipse(x, y, 0, 15, 12, 12) & ~ood._ellipse(x, y, 0, 15, 8, 8)
    hu[:, :, 0][vertebra] = 700.0  # a ring of bone around a soft-tissue canal at (64, 79)
    out = ood.myelogram(ood.Study("b", hu, base.spacing), contrast_hu=800.0).hu[:, :, 0]
    r = np.hypot(x, y - 15)
    sac = (r >= 2.5) & (r <= 6.5)
    assert (np.abs(out[sac] - 800.0) < 160.0).mean() > 0.9  # centroid within a pixel
    np.testing.assert_array_equal(out[vertebra], 700.0)
    np.testing.assert_array_equal(out[r < 2.4], hu[:, :, 0][r < 2.4])  # the cord


def test_prone_turns_each_body_front_to_back(ood):
    base = _phantom(ood, size=65, slices=1, spacing=(2.0, 2.0, 2.0))
    out = ood.prone(base).hu[:, :, 0]
    body = body_mask(base.hu[:, :, 0])
    rows = np.flatnonzero(body.any(axis=0))
    low, high = rows[0], rows[-1]
    np.testing.assert_array_equal(out[:, low : high + 1], base.hu[:, low : high + 1, 0][:, ::-1])
    assert out[0, 0] == -1000.0


def test_minip_slab_is_the_minimum_over_neighbouring_slices(ood):
    hu = np.random.default_rng(0).normal(0.0, 50.0, (8, 8, 6)).astype(np.float32)
    out = ood.minip_slab(ood.Study("b", hu, (1.0, 1.0, 5.0)), slab_mm=10.0).hu
    np.testing.assert_array_equal(out[:, :, 2], hu[:, :, 1:4].min(axis=2))
    np.testing.assert_array_equal(out[:, :, 0], hu[:, :, 0:2].min(axis=2))


def test_bone_removed_cuts_bone_only(ood):
    base = _phantom(ood, size=129, slices=1, spacing=(1.0, 1.0, 2.0))  # bone disc: 700 HU
    out = ood.bone_removed(base).hu[:, :, 0]
    x, y = ood._grid((129, 129), 1.0)
    bone = ood._ellipse(x, y, 10, -10, 6, 6)
    assert (out[bone] == -1024.0).all()
    far = np.hypot(x - 10, y + 10) > 12
    np.testing.assert_array_equal(out[far], base.hu[:, :, 0][far])


def test_bismuth_shield_lies_over_the_front_away_from_the_spine(ood):
    base = _phantom(ood, size=129, slices=1, spacing=(1.0, 1.0, 2.0), bone=False)
    hu = base.hu.copy()
    x, y = ood._grid((129, 129), 1.0)
    hu[:, :, 0][ood._ellipse(x, y, 0, -25, 8, 8)] = 700.0  # the spine at low j: front at high j
    out = ood.bismuth_shield(ood.Study("b", hu, base.spacing)).hu[:, :, 0]
    shield = out > 2000
    assert shield.any() and not body_mask(hu[:, :, 0])[shield].any()
    assert y[shield].min() > 40  # beyond the front skin (y = 40 mm)


def test_jpeg_blocks_keep_flat_blocks_and_remove_fine_noise(ood):
    rng = np.random.default_rng(0)
    hu = np.full((32, 32, 1), 40.0, np.float32) + rng.normal(0, 10, (32, 32, 1)).astype(np.float32)
    out = ood.jpeg_blocks(ood.Study("b", hu, (1.0, 1.0, 1.0)), scale=4.0).hu
    assert abs(out.mean() - hu.mean()) < 4.0
    assert out.std() < 0.5 * hu.std()  # the noise's AC coefficients round to 0
    flat = ood.jpeg_blocks(ood.Study("b", np.full((16, 16, 1), 40.0, np.float32), (1, 1, 1)))
    assert np.abs(flat.hu - 40.0).max() <= 4.0  # DC step 64 over 8 x 8: at most 4 HU off


def test_spacing_missing_and_fifth_family_normal_variants(ood):
    base = _phantom(ood, size=65, spacing=(2.0, 2.0, 3.0))
    assert ood.spacing_missing(base).spacing == (1.0, 1.0, 3.0)
    fine = ood.finer_matrix(base, 1.5)
    assert fine.hu.shape[:2] == (98, 98) and fine.spacing[0] == pytest.approx(2.0 / 1.5)
    areas = [body_mask(s.hu).sum() * s.spacing[0] ** 2 for s in (base, fine)]
    assert areas[1] == pytest.approx(areas[0], rel=0.03)
    sharper = ood.sharper_kernel(base).hu
    np.testing.assert_allclose(sharper[30:34, 30:34], base.hu[30:34, 30:34], atol=1e-3)


def test_reduced_dose_raises_noise_by_the_dose_ratio(ood):
    rng = np.random.default_rng(1)
    base = _phantom(ood, size=129, slices=1, spacing=(1.0, 1.0, 2.0), bone=False)
    noisy = base.hu + rng.normal(0.0, 20.0, base.hu.shape).astype(np.float32)
    out = ood.reduced_dose(ood.Study("b", noisy, base.spacing), dose=0.6, seed=0).hu
    added = (out - noisy)[40:90, 40:90, 0]
    assert added.std() == pytest.approx(20.0 * np.sqrt(1 / 0.6 - 1), rel=0.1)


# Sixth family (``bench_ood_guard.py --fresh4``).


def test_inverted_greyscale_is_4095_minus_the_stored_value(ood):
    hu = np.array([[-1024.0, -100.0], [40.0, 3500.0]], np.float32)[:, :, None]
    out = ood.inverted_greyscale(ood.Study("b", hu, (1.0, 1.0, 1.0))).hu[:, :, 0]
    # stored 0, 924, 1064, 4095 (clipped) -> 4095, 3171, 3031, 0 -> minus 1024
    np.testing.assert_array_equal(out, [[3071.0, 2147.0], [2007.0, -1024.0]])


def test_byte_swapped_swaps_the_bytes_of_the_stored_values(ood):
    hu = np.array([[-1024.0, 40.0], [-1000.0, 2000.0]], np.float32)[:, :, None]
    out = ood.byte_swapped(ood.Study("b", hu, (1.0, 1.0, 1.0))).hu[:, :, 0]
    # stored 0x0000, 0x0428, 0x0018, 0x0BD0 -> 0x0000, 0x2804, 0x1800, 0xD00B
    np.testing.assert_array_equal(out, [[-1024.0, 10244.0 - 1024], [6144.0 - 1024, 53259.0 - 1024]])


def test_subtraction_leaves_enhancement_and_rims_of_misregistration(ood):
    base = _phantom(ood, size=129, slices=1, spacing=(1.0, 1.0, 2.0), bone=False)
    out = ood.subtraction(base, enhancement_hu=40.0, shift_mm=1.0, seed=0).hu[:, :, 0]
    x, y = ood._grid((129, 129), 1.0)
    assert abs(np.median(out[ood._ellipse(x, y, 0, 0, 30, 20)]) - 40.0) < 5.0  # soft tissue
    assert np.abs(out[:10, :10]).max() < 1.0  # air minus air
    rim = np.abs(out[64, :])  # across the front and back skin, moved by 1 mm
    assert rim.max() > 300.0


def test_film_mosaic_tiles_shrunk_slices_in_a_grid(ood):
    base = _phantom(ood, size=129, slices=9, spacing=(2.0, 2.0, 2.0))
    out = ood.film_mosaic(base, tiles=3, gap_px=2, sheets=4)
    assert out.hu.shape == (129, 129, 4) and out.spacing == base.spacing
    from scipy.ndimage import label

    bodies, count = label(out.hu[:, :, 0] > -500)
    assert count == 9
    sizes = np.bincount(bodies.ravel())[1:] * 9  # each about a ninth of a slice's body
    whole = (base.hu > -500).sum(axis=(0, 1)).mean() * (41 / 43) ** 2  # cells of 41 + 2 gap
    assert np.all(np.abs(sizes / whole - 1.0) < 0.15)
    assert (out.hu[41:43, :, 0] == -1024.0).all()  # the gap between the first two columns


def test_synthetic_ct_assigns_flat_bulk_densities(ood):
    base = _phantom(ood, size=129, slices=1, spacing=(1.0, 1.0, 2.0))
    noisy = base.hu + np.random.default_rng(0).normal(0, 20, base.hu.shape).astype(np.float32)
    out = ood.synthetic_ct(ood.Study("b", noisy, base.spacing)).hu[:, :, 0]
    assert out[64, 64] == pytest.approx(35.0) and out[0, 0] == pytest.approx(-1000.0)
    x, y = ood._grid((129, 129), 1.0)
    assert out[ood._ellipse(x, y, 10, -10, 2, 2)].mean() == pytest.approx(700.0, abs=1.0)
    assert out[ood._ellipse(x, y, -30, 0, 8, 8)].std() < 1e-3  # no noise left


def test_label_map_labels_tissue_inside_the_body_only(ood):
    base = _phantom(ood, size=129, slices=1, spacing=(1.0, 1.0, 2.0))
    out = ood.label_map(base).hu[:, :, 0]
    assert set(np.unique(out)) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    assert out[0, 0] == 0.0 and out[64, 64] == 3.0 and out[74, 54] == 4.0  # bone at (10, -10)
    x, y = ood._grid((129, 129), 1.0)
    fat = ood._ellipse(x, y, 0, 0, 50, 40) & ~ood._ellipse(x, y, 0, 0, 43, 33)
    assert np.median(out[fat]) == 2.0


def test_dose_report_is_8_bit_text_on_black_with_a_1_mm_spacing(ood):
    base = _phantom(ood, size=256, slices=3, spacing=(0.7, 0.7, 3.0))
    out = ood.dose_report(base, pages=2)
    assert out.hu.shape == (256, 256, 2) and out.spacing == (1.0, 1.0, 3.0)
    assert out.hu.min() == 0.0 and 200 <= out.hu.max() <= 255
    assert 0.01 < (out.hu > 127).mean() < 0.2
    assert not np.array_equal(out.hu[:, :, 0], out.hu[:, :, 1])  # two pages


def test_magnified_view_repeats_pixels_and_keeps_the_spacing(ood):
    base = _phantom(ood, size=129, slices=1, spacing=(2.0, 2.0, 2.0))
    noisy = base.hu + np.random.default_rng(0).normal(0, 10, base.hu.shape).astype(np.float32)
    out = ood.magnified_view(ood.Study("b", noisy, base.spacing), factor=2)
    assert out.hu.shape == base.hu.shape and out.spacing == base.spacing
    image = out.hu[:, :, 0]
    same = image[1:, :] == image[:-1, :]
    assert same[::2].mean() > 0.9 or same[1::2].mean() > 0.9  # pairs of equal rows
    assert abs(_extent(out.hu, 1) - 2 * _extent(base.hu, 1)) <= 2  # twice as tall


def test_wrong_row_length_reads_the_stored_stream_with_longer_rows(ood):
    hu = np.arange(12, dtype=np.float32).reshape(3, 4).T[:, :, None]  # 3 rows j of 4 values i
    out = ood.wrong_row_length(ood.Study("b", hu, (1.0, 1.0, 1.0)), extra=1).hu[:, :, 0]
    # the stored stream 0..11 read as rows of 5: [0..4] [5..9], 10 and 11 lost, row 3 empty
    expected = np.array([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [-1024] * 5]).T
    np.testing.assert_array_equal(out, expected)


def test_sparse_view_streaks_fall_with_more_views(ood):
    base = _phantom(ood, size=65, slices=1, spacing=(2.0, 2.0, 2.0))
    x, y = ood._grid((65, 65), 2.0)
    air = ~ood._ellipse(x, y, 0, 0, 60, 50) & (np.hypot(x, y) < 60)
    streaks = [ood.sparse_view(base, views).hu[:, :, 0][air].std() for views in (20, 180)]
    assert streaks[0] > 2 * streaks[1]
    dense = ood.sparse_view(base, 180).hu[:, :, 0]
    assert abs(np.median(dense[ood._ellipse(x, y, 0, 0, 30, 20)]) - 40.0) < 15.0


def test_ecg_electrodes_lie_in_front_of_the_skin(ood):
    base = _phantom(ood, size=129, slices=3, spacing=(1.0, 1.0, 2.0), bone=False)
    hu = base.hu.copy()
    x, y = ood._grid((129, 129), 1.0)
    hu[:, :, :][ood._ellipse(x, y, 0, 25, 8, 8)] = 700.0  # the spine at high j: front at low j
    out = ood.ecg_electrodes(ood.Study("b", hu, base.spacing), seed=0).hu
    changed = out != hu
    assert not (changed & body_mask(hu) & (y[:, :, None] > -35)).any()  # body kept
    assert (out[:, :, 0] > 2000).any() and not (out[:, :, 1] > 2000).any()  # snaps: every 3rd
    front = y[changed[:, :, 1]]
    assert front.max() < -39.0 and front.min() > -67.0  # wires 3-25 mm before the skin (-40)


def test_sixth_family_normal_variants(ood):
    hu = np.full((40, 40, 1), -1000.0, np.float32)
    hu[5:35, 5:20], hu[5:35, 20:35], hu[0, 0] = -90.0, 1000.0, -1024.0
    hu[0, 1], hu[0, 2] = -600.0, -200.0  # lung and the end of the fat range, outside the body
    out = ood.kvp_100(ood.Study("b", hu, (1.0, 1.0, 1.0))).hu[:, :, 0]  # no own noise: none added
    np.testing.assert_allclose(out[0, :3], [-1024.0, -605.0, -210.0], atol=1e-3)
    np.testing.assert_allclose([out[10, 10], out[10, 30]], [-94.5, 1120.0], atol=1e-3)
    rng = np.random.default_rng(1)
    base = _phantom(ood, size=129, slices=1, spacing=(1.0, 1.0, 2.0), bone=False)
    noisy = ood.Study(
        "b", base.hu + rng.normal(0.0, 20.0, base.hu.shape).astype(np.float32), base.spacing
    )
    added = (ood.thinner_slices(noisy, 2 / 3).hu - noisy.hu)[40:90, 40:90, 0]
    assert added.std() == pytest.approx(20.0 * np.sqrt(1.5 - 1), rel=0.1)
    smooth = ood.iterative_recon(noisy, 0.5).hu[40:90, 40:90, 0]
    assert 0.5 < smooth.std() / noisy.hu[40:90, 40:90, 0].std() < 0.8
    lower = ood.table_lower(base, 20.0)
    rows = [np.flatnonzero(body_mask(s.hu[:, :, 0]).any(axis=0)) for s in (base, lower)]
    assert rows[1][0] - rows[0][0] == 20 and lower.spacing == base.spacing


# Seventh family (``bench_ood_guard.py --fresh5``).


def test_late_offset_reads_the_stored_stream_from_half_a_row_on(ood):
    hu = np.arange(12, dtype=np.float32).reshape(3, 4).T[:, :, None]  # 3 rows j of 4 values i
    out = ood.late_offset(ood.Study("b", hu, (1.0, 1.0, 1.0)), fraction=0.5).hu[:, :, 0]
    # the stream 0..11 read from 2 on in rows of 4: [2 3 4 5] [6 7 8 9] [10 11 -1024 -1024]
    expected = np.array([[2, 3, 4, 5], [6, 7, 8, 9], [10, 11, -1024, -1024]]).T
    np.testing.assert_array_equal(out, expected)


def test_bit_errors_hit_the_given_share_with_random_stored_values(ood):
    base = ood.Study("b", np.zeros((200, 200, 3), np.float32), (1.0, 1.0, 1.0))
    out = ood.bit_errors(base, rate=0.01, seed=0).hu
    hit = out != 0.0
    assert 0.008 < hit.mean() < 0.012
    assert out.min() >= -1024.0 and out.max() <= 3071.0 and out[hit].std() > 1000.0


def test_superposed_levels_average_each_slice_with_the_farthest(ood):
    hu = np.stack([np.full((4, 4), v, np.float32) for v in (0.0, 10.0, 20.0)], axis=2)
    out = ood.superposed_levels(ood.Study("b", hu, (1.0, 1.0, 1.0))).hu
    assert out[0, 0].tolist() == [10.0, 5.0, 10.0]  # (0+20)/2, (10+0)/2 (middle: slice 0), (20+0)/2
    with pytest.raises(ValueError, match="one slice"):
        ood.superposed_levels(ood.Study("b", hu[:, :, :1], (1.0, 1.0, 1.0)))


def test_over_smoothed_blurs_an_edge_over_its_fwhm(ood):
    hu = np.full((101, 11, 1), -1000.0, np.float32)
    hu[50:] = 0.0  # a step along i at 50 (0.5 mm pixels)
    out = ood.over_smoothed(ood.Study("b", hu, (0.5, 0.5, 1.0)), fwhm_mm=5.0).hu[:, 5, 0]
    # a Gaussian edge: 10 % to 90 % over 2.563 sigma = 1.088 FWHM = 5.44 mm = 10.9 pixels
    rise = np.interp([-900.0, -100.0], out, np.arange(101))
    assert rise[1] - rise[0] == pytest.approx(10.9, abs=0.6)
    assert out[0] == pytest.approx(-1000.0) and out[-1] == pytest.approx(0.0)


def test_limited_angle_smears_more_than_a_full_arc(ood):
    base = _phantom(ood, size=65, slices=1, spacing=(2.0, 2.0, 2.0))
    x, y = ood._grid((65, 65), 2.0)
    inside = ood._ellipse(x, y, 0, 0, 30, 20)
    full = ood.limited_angle(base, arc_deg=180.0, views=180).hu[:, :, 0]
    part = ood.limited_angle(base, arc_deg=90.0, views=90).hu[:, :, 0]
    assert abs(np.median(full[inside]) - 40.0) < 15.0  # a full arc recovers the HU
    error = [np.abs(image - base.hu[:, :, 0]).mean() for image in (full, part)]
    assert error[1] > 3 * error[0]


def test_inpainted_hole_is_smooth_and_the_rest_unchanged(ood):
    rng = np.random.default_rng(0)
    base = _phantom(ood, size=129, slices=1, spacing=(1.0, 1.0, 2.0), bone=False)
    noisy = base.hu + rng.normal(0, 20, base.hu.shape).astype(np.float32)
    out = ood.inpainted_hole(ood.Study("b", noisy, base.spacing), diameter_mm=30.0).hu[:, :, 0]
    x, y = ood._grid((129, 129), 1.0)
    hole = np.hypot(x, y) <= 12.0
    steps = np.abs(np.diff(out, axis=0))[hole[:-1] & hole[1:]]  # noise alone: about 23 HU
    assert steps.mean() < 5.0 and abs(out[hole].mean() - 40.0) < 10.0
    far = np.hypot(x, y) > 16.0
    np.testing.assert_array_equal(out[far], noisy[:, :, 0][far])


def test_venous_enhancement_raises_soft_tissue_only(ood):
    base = _phantom(ood, size=129, slices=1, spacing=(1.0, 1.0, 2.0))
    out = ood.venous_enhancement(base, enhancement_hu=30.0).hu[:, :, 0]
    x, y = ood._grid((129, 129), 1.0)
    core = ood._ellipse(x, y, -15, 5, 10, 10)  # soft tissue (40 HU) away from edges
    assert np.allclose(out[core], 70.0, atol=0.5)
    fat = ood._ellipse(x, y, 0, 0, 49, 39) & ~ood._ellipse(x, y, 0, 0, 48, 38)  # 4 mm from tissue
    assert np.allclose(out[fat], -100.0, atol=0.5)
    assert np.allclose(out[ood._ellipse(x, y, 10, -10, 3, 3)], 700.0, atol=0.5)  # bone
    assert (out[:5, :5] == -1000.0).all()


def test_twice_finer_matrix_only_for_fine_pixels(ood):
    base = _phantom(ood, size=65, slices=1, spacing=(0.8, 0.8, 2.0))
    fine = ood.twice_finer_matrix(base)
    assert fine.hu.shape == (130, 130, 1) and fine.spacing == (0.4, 0.4, 2.0)
    with pytest.raises(ValueError, match="pixels of 2 mm"):
        ood.twice_finer_matrix(_phantom(ood, size=65))


def test_blanket_lies_in_front_of_the_skin(ood):
    base = _phantom(ood, size=129, slices=1, spacing=(1.0, 1.0, 2.0), bone=False)
    hu = base.hu.copy()
    x, y = ood._grid((129, 129), 1.0)
    hu[ood._ellipse(x, y, 0, 25, 8, 8)] = 700.0  # the spine at high j: the front at low j
    out = ood.blanket(ood.Study("b", hu, base.spacing), gap_mm=10.0, thickness_mm=8.0).hu
    changed = out[:, :, 0] != hu[:, :, 0]
    assert changed.any() and not (changed & (hu[:, :, 0] > -500)).any()  # none in the body
    for i, j in zip(*np.nonzero(changed), strict=True):  # 10-18 mm in front of its skin
        skin = np.argmax(hu[i, :, 0] > -500)
        assert 10 <= skin - j <= 18
    assert abs(np.mean(out[:, :, 0][changed]) + 750.0) < 10.0


# Eighth family (``bench_ood_guard.py --fresh6``).


def test_blank_slices_are_all_air(ood):
    out = ood.blank_slices(_phantom(ood))
    assert out.hu.shape == (65, 65, 4) and (out.hu == -1024.0).all()


def test_dense_bolus_is_a_2500_hu_vein_with_streaks_in_the_body(ood):
    base = _phantom(ood, size=129, slices=1, spacing=(1.0, 1.0, 2.0), bone=False)
    out = ood.dense_bolus(base, seed=0).hu[:, :, 0]
    # the body spans i 14-114 and j 24-104 (pixels): the vein at 20 % of each from the start
    ci, cj = 14 + 0.2 * 100, 24 + 0.2 * 80
    assert out[round(ci), round(cj)] == 2500.0
    assert (out == 2500.0).sum() == pytest.approx(np.pi * 16, rel=0.25)  # 8 mm across
    changed = (out != base.hu[:, :, 0]) & (out != 2500.0)
    assert changed.any() and (base.hu[:, :, 0][changed] > -500).all()  # streaks in the body
    assert out[changed].max() - 40.0 > 100.0 and out[changed].min() - 40.0 < -100.0


def test_preview_upscaled_repeats_block_means(ood):
    hu = np.arange(64, dtype=np.float32).reshape(8, 8)[:, :, None]
    out = ood.preview_upscaled(ood.Study("b", hu, (1.0, 1.0, 1.0)), factor=4).hu[:, :, 0]
    assert out[0, 0] == out[3, 3] == hu[:4, :4].mean()
    assert out[4, 7] == hu[4:, 4:].mean() and len(np.unique(out)) == 4


def test_stretched_makes_the_body_taller_only(ood):
    base = _phantom(ood, size=129, slices=1, spacing=(1.0, 1.0, 2.0))
    out = ood.stretched(base, factor=1.3)
    assert abs(_extent(out.hu, 1) - 1.3 * _extent(base.hu, 1)) <= 2
    assert abs(_extent(out.hu, 0) - _extent(base.hu, 0)) <= 1
    assert out.spacing == base.spacing


def test_shifted_band_rolls_rows_about_the_body_centre(ood):
    base = _phantom(ood, size=129, slices=1, spacing=(1.0, 1.0, 2.0))
    out = ood.shifted_band(base, rows_mm=10.0, shift_mm=20.0).hu[:, :, 0]
    middle = 64  # the body's centre along j
    np.testing.assert_array_equal(out[:, middle], np.roll(base.hu[:, middle, 0], 20))
    np.testing.assert_array_equal(out[:, middle + 10], base.hu[:, middle + 10, 0])


def test_banding_alternates_inside_the_body_only(ood):
    base = _phantom(ood, size=129, slices=1, spacing=(1.0, 1.0, 2.0), bone=False)
    out = ood.banding(base, period_mm=6.0, amplitude_hu=15.0).hu[:, :, 0]
    difference = out - base.hu[:, :, 0]
    assert set(np.unique(difference)) == {-15.0, 0.0, 15.0}
    assert (difference[base.hu[:, :, 0] < -500] == 0).all()
    column = difference[20:110, 64]  # inside the body: 3 pixels bright, 3 dark
    assert (np.abs(column) == 15.0).all() and abs(column.mean()) <= 2.0


def test_kvp_140_lowers_positive_hu_and_lifts_fat(ood):
    hu = np.array([[-1000.0, -100.0], [40.0, 1000.0]], np.float32)[:, :, None]
    out = ood.kvp_140(ood.Study("b", hu, (1.0, 1.0, 1.0))).hu[:, :, 0]
    np.testing.assert_allclose(out, [[-1000.0, -97.0], [36.8, 920.0]], rtol=1e-6)


def test_slimmer_narrows_the_body_across_only(ood):
    base = _phantom(ood, size=129, slices=1, spacing=(1.0, 1.0, 2.0))
    out = ood.slimmer(base, scale=0.9)
    assert abs(_extent(out.hu, 0) - 0.9 * _extent(base.hu, 0)) <= 2
    assert abs(_extent(out.hu, 1) - _extent(base.hu, 1)) <= 1


# Ninth family (``bench_ood_guard.py --fresh7``).


def _trunk(ood, size: int = 161, slices: int = 3, pixel: float = 2.0):
    """A large trunk (fat rim, soft tissue, a vertebra at high ``j``) in air, 2 mm pixels."""
    x, y = ood._grid((size, size), pixel)
    hu = np.full((size, size, slices), -1000.0, np.float32)
    for k in range(slices):
        hu[:, :, k][ood._ellipse(x, y, 0, 0, 140 + 2 * k, 100)] = -100.0
        hu[:, :, k][ood._ellipse(x, y, 0, 0, 134 + 2 * k, 94)] = 40.0
        hu[:, :, k][ood._ellipse(x, y, 0, 70, 10, 10)] = 700.0
    return ood.Study("trunk", hu, (pixel, pixel, 2.0))


def test_gamma_mapped_keeps_the_ends_and_brightens_between(ood):
    hu = np.array([[-1024.0, 3071.0], [0.0, -2000.0]], np.float32)[:, :, None]
    out = ood.gamma_mapped(ood.Study("b", hu, (1.0, 1.0, 1.0)))
    assert out.hu.dtype == np.float32 and out.spacing == (1.0, 1.0, 1.0)
    # 0 HU: t = 1024 / 4095, sqrt(t) * 4095 - 1024 = sqrt(1024 * 4095) - 1024 = 1023.75
    np.testing.assert_allclose(out.hu[:, :, 0], [[-1024.0, 3071.0], [1023.75, -1024.0]], atol=0.01)
    ramp = np.linspace(-1024.0, 3071.0, 50, dtype=np.float32)[:, None, None]
    mapped = ood.gamma_mapped(ood.Study("r", ramp, (1.0, 1.0, 1.0))).hu.ravel()
    assert (np.diff(mapped) > 0).all() and (mapped[1:-1] > ramp.ravel()[1:-1]).all()


def test_ct_colonography_puts_air_loops_deep_in_the_body_on_every_slice(ood):
    from scipy.ndimage import distance_transform_edt, label

    base = _trunk(ood)
    out = ood.ct_colonography(base, seed=0)
    assert out.hu.shape == base.hu.shape and out.spacing == base.spacing
    changed = out.hu != base.hu
    body = body_mask(base.hu)
    assert changed.any() and not (changed & ~body).any()
    assert set(np.unique(out.hu[changed])) <= {-1000.0, 40.0}
    air = changed & (out.hu == -1000.0)
    for k in range(base.hu.shape[2]):  # the same loops (tubes) on every slice
        np.testing.assert_array_equal(changed[:, :, k], changed[:, :, 0])
        depth = distance_transform_edt(body[:, :, k], sampling=base.spacing[:2])
        assert depth[changed[:, :, k]].min() >= 30.0  # 30 mm or more from the skin
    loops, count = label(air[:, :, 0])
    assert 4 <= count <= 6
    areas = np.bincount(loops.ravel())[1:] * 4.0  # mm², 2 mm pixels
    assert (areas > np.pi * 11.0**2).all() and (areas < np.pi * 21.0**2).all()  # 25-40 mm
    again = ood.ct_colonography(base, seed=0).hu
    np.testing.assert_array_equal(again, out.hu)
    assert not np.array_equal(ood.ct_colonography(base, seed=1).hu, out.hu)


def test_posterised_values_are_steps_near_the_input(ood):
    rng = np.random.default_rng(0)
    hu = rng.uniform(-1024.0, 3071.0, (16, 16, 2)).astype(np.float32)
    out = ood.posterised(ood.Study("b", hu, (1.0, 1.0, 1.0)), step_hu=32.0).hu
    assert out.dtype == np.float32
    np.testing.assert_array_equal(np.mod(out, 32.0), 0.0)
    assert np.abs(out - hu).max() <= 16.0 and len(np.unique(out)) <= 4096 // 32 + 1


def test_mirrored_half_is_symmetric_about_the_body_centre(ood):
    base = _phantom(ood, size=129, slices=2, spacing=(1.0, 1.0, 2.0))  # bone at i + 10 mm
    out = ood.mirrored_half(base).hu
    for k in range(2):
        rows = np.flatnonzero(body_mask(base.hu[:, :, k]).any(axis=1))
        total = rows[0] + rows[-1]
        for i in range(rows[0], rows[-1] + 1):
            np.testing.assert_array_equal(out[i, :, k], out[total - i, :, k])
        right = np.arange(129) * 2 >= total
        np.testing.assert_array_equal(out[right, :, k], base.hu[right, :, k])
    assert out[64 - 10, 54, 0] == 700.0 and base.hu[64 - 10, 54, 0] == 40.0  # bone mirrored


def test_water_immersion_fills_the_air_around_the_body_in_the_circle(ood):
    base = _phantom(ood, size=65, slices=2)
    hu = base.hu.copy()
    hu[30:34, 58:61] = 300.0  # the couch: kept
    out = ood.water_immersion(ood.Study("b", hu, base.spacing)).hu
    body = body_mask(hu)
    np.testing.assert_array_equal(out[body], hu[body])
    x, y = ood._grid((65, 65), 2.0)
    circle = (np.hypot(x, y) <= 64.0)[:, :, None]
    outside_air = ~body & (hu < -500)
    assert (out[outside_air & circle] == 0.0).all()
    assert (out[outside_air & ~circle] == -1000.0).all() and out[0, 0, 0] == -1000.0
    assert (out[30:34, 58:61] == 300.0).all()
    small = ood.water_immersion(ood.Study("b", hu, base.spacing), radius_mm=56.0).hu
    assert (small[outside_air & (np.hypot(x, y) > 56.0)[:, :, None]] == -1000.0).all()


def test_gain_field_scales_attenuation_smoothly_and_keeps_air(ood):
    hu = np.full((65, 65, 2), 0.0, np.float32)
    hu[:, :8] = -1000.0
    out = ood.gain_field(ood.Study("b", hu, (2.0, 2.0, 2.0)), strength=0.10, seed=0).hu
    assert (out[:, :8] == -1000.0).all()
    np.testing.assert_array_equal(out[:, :, 0], out[:, :, 1])  # the same on every slice
    gain = (out[:, 8:, 0] + 1000.0) / 1000.0
    assert 0.9 - 1e-6 <= gain.min() < 0.97 and 1.03 < gain.max() <= 1.1 + 1e-6
    assert np.abs(np.diff(gain, axis=0)).max() < 0.02  # smooth: < 20 HU between neighbours
    base = _phantom(ood)
    body = ood.gain_field(base, strength=0.10, seed=3).hu
    assert (np.abs(body - base.hu) <= 0.10 * (base.hu + 1000.0) + 1e-3).all()


def test_arms_down_add_arms_beside_the_body_and_keep_it(ood):
    base = _phantom(ood, size=129, slices=2, spacing=(2.0, 2.0, 2.0))
    out = ood.arms_down(base, seed=0).hu
    body = body_mask(base.hu)
    np.testing.assert_array_equal(out[body], base.hu[body])
    for k in range(2):
        rows, columns = np.nonzero(body[:, :, k])
        changed = np.argwhere(out[:, :, k] != base.hu[:, :, k])
        left, right = changed[changed[:, 0] < rows.min()], changed[changed[:, 0] > rows.max()]
        assert len(left) + len(right) == len(changed) and len(left) == len(right)
        assert (rows.min() - left[:, 0]).min() * 2.0 >= 14.0  # 15 mm from the body
        assert abs(left[:, 1].mean() - (columns.min() + columns.max()) / 2) < 1.0
        bone = (out[:, :, k] > 500) & ~body[:, :, k]
        assert 2 * 20 <= bone.sum() <= 2 * 40  # two discs 12 mm across (2 mm pixels)
    assert ood.arms_down(base).spacing == base.spacing  # room enough: the same field of view


def test_arms_down_widen_a_full_field_of_view_until_the_arms_fit(ood):
    small = _phantom(ood, size=65, slices=1)  # the body nearly fills the image
    out = ood.arms_down(small)
    assert out.hu.shape == small.hu.shape
    factor = out.spacing[0] / small.spacing[0]
    assert 1.0 < factor <= 2.0 and out.spacing[1] == out.spacing[0]
    body = body_mask(out.hu)[:, :, 0]
    bone = (out.hu[:, :, 0] > 500) & ~body
    rows = np.nonzero(body)[0]
    beside = np.nonzero(bone)[0]
    assert (beside < rows.min()).any() and (beside > rows.max()).any()  # an arm on each side
    narrower = ood.arms_down(small, size_mm=(20.0, 20.0), gap_mm=5.0)
    assert narrower.spacing[0] < out.spacing[0]  # smaller arms need less widening


def test_nasogastric_tube_is_small_inside_the_body(ood):
    base = _phantom(ood, size=129, slices=2, spacing=(1.0, 1.0, 2.0), bone=False)
    out = ood.nasogastric_tube(base).hu
    body = body_mask(base.hu)
    for k in range(2):
        changed = np.argwhere(out[:, :, k] != base.hu[:, :, k])
        assert len(changed) and body[:, :, k][tuple(changed.T)].all()
        assert (np.ptp(changed, axis=0) <= 5).all()  # 5 mm across at 1 mm pixels
        rows, columns = np.nonzero(body[:, :, k])
        centre = changed.mean(axis=0)
        assert abs(centre[0] - (rows.min() + np.ptp(rows) / 3)) < 1.0
        assert abs(centre[1] - (columns.min() + np.ptp(columns) / 4)) < 1.0
        values = out[:, :, k][tuple(changed.T)]
        assert set(np.unique(values)) == {-1000.0, 100.0}


# Tenth family (``bench_ood_guard.py --fresh8``).


def _noisy(ood, base, sigma: float = 10.0, seed: int = 1):
    """``base`` with correlated noise of ``sigma`` added inside its body."""
    body = body_mask(base.hu)
    noise = ood._noise(np.random.default_rng(seed), base.hu.shape, sigma) * body
    return ood.Study(base.name, (base.hu + noise).astype(np.float32), base.spacing)


def test_pneumoperitoneum_is_air_under_the_front_wall_in_the_middle_columns(ood):
    base = _trunk(ood)  # 2 mm pixels, no noise: the air is exactly -1000 HU
    out = ood.pneumoperitoneum(base, depth_mm=15.0)
    assert out.hu.dtype == np.float32 and out.spacing == base.spacing
    body = body_mask(base.hu)
    changed = out.hu != base.hu
    assert changed.any() and not (changed & ~body).any()
    assert (out.hu[changed] == -1000.0).all()
    for k in range(base.hu.shape[2]):
        rows = np.flatnonzero(body[:, :, k].any(axis=1))
        columns = np.flatnonzero(changed[:, :, k].any(axis=1))
        assert abs(columns.size - 0.6 * rows.size) <= 2  # the middle 60 % of the width
        assert abs(columns.mean() - rows.mean()) <= 1.0
        for i in columns:
            front = np.argmax(body[i, :, k])
            depth = (np.flatnonzero(changed[i, :, k]) - front) * 2.0
            np.testing.assert_array_equal(depth, np.arange(8.0, 23.0, 2.0))  # 8 to 23 mm
    noisy = _noisy(ood, base)
    air = ood.pneumoperitoneum(noisy).hu[changed]
    sigma = ood._own_noise(noisy.hu.astype(np.float64), body)
    assert abs(air.mean() + 1000.0) < 1.0 and 0.7 * sigma < air.std() < 1.3 * sigma


def test_ascites_fills_soft_tissue_20_to_45_mm_inside_the_body(ood):
    from scipy.ndimage import distance_transform_edt

    base = _trunk(ood, slices=2)
    x, y = ood._grid((161, 161), 2.0)
    for k in range(2):
        base.hu[:, :, k][ood._ellipse(x, y, -105, 0, 8, 8)] = -800.0  # lung-like, in the band
    out = ood.ascites(base, depth_mm=25.0, fluid_hu=10.0)
    body = body_mask(base.hu)
    changed = out.hu != base.hu
    assert changed.any() and (out.hu[changed] == 10.0).all()  # no noise in the base
    for k in range(2):
        depth = distance_transform_edt(body[:, :, k], sampling=(2.0, 2.0))
        soft = (np.abs(base.hu[:, :, k]) <= 200.0) & body[:, :, k]
        band = soft & (depth >= 20.0) & (depth <= 45.0)
        np.testing.assert_array_equal(changed[:, :, k], band)
    assert (out.hu[base.hu == -800.0] == -800.0).all() and (out.hu[base.hu == 700.0] == 700.0).all()


def test_ascites_counts_only_real_outside_not_the_image_edge(ood):
    hu = np.full((60, 80, 1), 40.0, np.float32)
    hu[:, :10] = -1000.0  # the body fills the image but for its first 10 rows j
    out = ood.ascites(ood.Study("b", hu, (1.0, 1.0, 1.0)), depth_mm=25.0).hu
    changed = np.flatnonzero((out != hu)[:, :, 0].any(axis=0))
    np.testing.assert_array_equal(changed, np.arange(29, 55))  # 20 to 45 mm from row 9
    assert (out[:, 29:55] == 10.0).all()  # the whole width: the image's edges are no outside


def test_white_noise_texture_swaps_correlated_noise_for_white_noise_of_its_level(ood):
    from scipy.ndimage import binary_erosion

    x, y = ood._grid((241, 241), 0.5)  # 1.5 mm is 3 pixels
    hu = np.full((241, 241, 2), -1000.0, np.float32)
    hu[ood._ellipse(x, y, 0, 0, 50, 40)] = 40.0
    base = _noisy(ood, ood.Study("b", hu, (0.5, 0.5, 2.0)), sigma=20.0)
    out = ood.white_noise_texture(base, seed=0)
    body = body_mask(base.hu)
    np.testing.assert_array_equal(out.hu[~body], base.hu[~body])
    inner = binary_erosion(body, np.ones((21, 21, 1), bool))  # 5 mm from the skin

    def neighbours(volume):
        noise = volume - 40.0
        pair = inner[:-1] & inner[1:]
        return np.corrcoef(noise[:-1][pair], noise[1:][pair])[0, 1]

    assert abs(out.hu[inner].mean() - 40.0) < 2.0
    assert neighbours(base.hu) > 0.4 and neighbours(out.hu) < 0.2
    own = ood._own_noise(base.hu.astype(np.float64), body)
    assert abs(ood._own_noise(out.hu.astype(np.float64), body) / own - 1.0) < 0.15
    assert own < (out.hu[inner] - 40.0).std() < 1.3 * own
    assert not np.array_equal(ood.white_noise_texture(base, seed=1).hu, out.hu)


def test_alternating_offset_flickers_the_body_slice_by_slice(ood):
    base = _noisy(ood, _phantom(ood, slices=4))
    out = ood.alternating_offset(base, offset_hu=25.0)
    body = body_mask(base.hu)
    diff = out.hu.astype(np.float64) - base.hu
    for k in range(4):
        inside = body[:, :, k]
        np.testing.assert_allclose(diff[:, :, k][inside], 25.0 if k % 2 == 0 else -25.0, atol=1e-3)
        assert (diff[:, :, k][~inside] == 0.0).all()


def test_biopsy_needle_is_a_thin_line_with_streaks_at_half_the_dose(ood):
    base = _noisy(ood, _trunk(ood, size=321, slices=2, pixel=1.0))
    out = ood.biopsy_needle(base, seed=0)
    assert out.hu.dtype == np.float32 and out.spacing == base.spacing
    body = body_mask(base.hu)
    ii, jj = ood._mm_grid(base.hu.shape, base.spacing)
    theta = np.deg2rad(30.0)
    for k in range(2):
        columns = np.flatnonzero(body[:, :, k].any(axis=0))
        cj = round((columns.min() + columns.max()) / 2)
        ei = np.flatnonzero(body[:, cj, k]).max() + 0.5  # the body's right edge, mm
        along = -(ii - ei) * np.cos(theta) + (jj - cj) * np.sin(theta)
        across = (ii - ei) * np.sin(theta) + (jj - cj) * np.cos(theta)
        bright = out.hu[:, :, k] > 2500
        assert (np.abs(across[bright]) <= 1.0).all()  # within 1 mm of the line
        assert along[bright].min() < 1.0 and 98.0 < along[bright].max() <= 100.6  # 100 mm
        assert 100 <= bright.sum() <= 200  # about 1.2 mm wide
        points = np.argwhere(bright).astype(np.float64)
        axis = np.linalg.svd(points - points.mean(axis=0))[2][0]
        angle = np.degrees(np.arctan2(abs(axis[1]), abs(axis[0])))
        assert abs(angle - 30.0) < 1.5 and (points[:, 1] >= cj - 1).all()  # tilted to high j
        diff = out.hu[:, :, k].astype(np.float64) - base.hu[:, :, k]
        near = (along > 0) & (along < 100) & body[:, :, k]
        assert diff[near & (np.abs(across - 3.0) < 0.5)].mean() > 150.0  # a bright band
        assert diff[near & (np.abs(across - 6.0) < 0.5)].mean() < -150.0  # a dark band
        far = body[:, :, k] & (np.abs(across) > 15.0)
        own = ood._own_noise(base.hu.astype(np.float64), body)
        assert abs(diff[far].mean()) < 1.0 and abs(diff[far].std() / own - 1.0) < 0.1
        assert (diff[~body[:, :, k] & ~bright] == 0.0).all()


def test_directional_motion_blur_is_a_box_filter_along_j(ood):
    from scipy.ndimage import uniform_filter1d

    for pixel, size in ((2.0, 5), (1.0, 11), (3.0, 3)):
        base = _noisy(ood, _phantom(ood, size=65, slices=2, spacing=(pixel, pixel, 2.0)))
        out = ood.directional_motion_blur(base, length_mm=10.0)
        assert out.hu.dtype == np.float32 and out.spacing == base.spacing
        expected = uniform_filter1d(base.hu.astype(np.float64), size, axis=1, mode="nearest")
        np.testing.assert_allclose(out.hu, expected, atol=1e-3)
    base = _noisy(ood, _phantom(ood, size=65, slices=2))  # air on 12 rows at each end of j
    out = ood.directional_motion_blur(base, length_mm=10.0).hu
    np.testing.assert_allclose(out.sum(axis=1), base.hu.sum(axis=1), rtol=1e-6)
    across = np.repeat(np.linspace(-1000.0, 500.0, 65, dtype=np.float32)[:, None, None], 65, 1)
    flat = ood.directional_motion_blur(ood.Study("b", across, (2.0, 2.0, 2.0))).hu
    np.testing.assert_allclose(flat, across, atol=1e-3)  # nothing moves along i


def test_more_subcutaneous_fat_grows_the_body_by_a_ring_of_fat_and_skin(ood):
    from scipy.ndimage import distance_transform_edt

    base = _phantom(ood, size=161, slices=2, spacing=(1.0, 1.0, 2.0))  # no noise
    out = ood.more_subcutaneous_fat(base, thickness_mm=15.0).hu
    body = body_mask(base.hu)
    np.testing.assert_array_equal(out[body], base.hu[body])  # the old body unchanged
    for k in range(2):
        outside = distance_transform_edt(~body[:, :, k])
        changed = out[:, :, k] != base.hu[:, :, k]
        np.testing.assert_array_equal(changed, (outside > 0) & (outside <= 15.0))
        np.testing.assert_array_equal(out[:, :, k][changed & (outside <= 13.0)], -100.0)
        np.testing.assert_array_equal(out[:, :, k][changed & (outside > 13.0)], 40.0)  # skin
        rows = np.flatnonzero(body_mask(out[:, :, k]).any(axis=1))
        old = np.flatnonzero(body[:, :, k].any(axis=1))
        assert rows[0] == old[0] - 15 and rows[-1] == old[-1] + 15  # 15 mm wider each side
    noisy = _noisy(ood, base)
    fat = ood.more_subcutaneous_fat(noisy).hu
    ring = (fat != noisy.hu) & (fat < -50)
    own = ood._own_noise(noisy.hu.astype(np.float64), body)
    assert abs(fat[ring].mean() + 100.0) < 1.0 and 0.7 * own < fat[ring].std() < 1.3 * own


def test_more_subcutaneous_fat_is_cut_at_the_image_edge(ood):
    base = _phantom(ood, size=65, slices=1)  # 14 mm of air beside the body along i
    out = ood.more_subcutaneous_fat(base, thickness_mm=20.0)
    assert out.hu.shape == base.hu.shape and out.spacing == base.spacing
    np.testing.assert_array_equal(out.hu[:7, 32, 0], -100.0)  # fat up to the edge: no skin
    np.testing.assert_array_equal(out.hu[-7:, 32, 0], -100.0)


def test_positioning_board_is_a_flat_plate_directly_below_the_body(ood):
    base = _phantom(ood, size=129, slices=2, spacing=(1.0, 1.0, 2.0))  # no noise
    out = ood.positioning_board(base, thickness_mm=8.0)
    assert out.spacing == base.spacing  # room enough below the body
    body = body_mask(base.hu)
    np.testing.assert_array_equal(body_mask(out.hu), body)  # apart from the body
    for k in range(2):
        lowest = np.flatnonzero(body[:, :, k].any(axis=0)).max()
        changed = out.hu[:, :, k] != base.hu[:, :, k]
        rows = np.flatnonzero(changed.any(axis=0))
        np.testing.assert_array_equal(rows, np.arange(lowest + 3, lowest + 11))  # 2 mm, 8 mm
        assert changed[:, rows].all()  # 400 mm wide: cut at the image's edges
        assert (out.hu[:, :, k][changed] == -200.0).all()
    narrow = ood.positioning_board(base, width_mm=60.0).hu
    columns = np.flatnonzero((narrow != base.hu)[:, :, 0].any(axis=1))
    np.testing.assert_array_equal(columns, np.arange(64 - 30, 64 + 31))  # centred on the body


def test_positioning_board_widens_a_full_field_of_view(ood):
    full = _phantom(ood, size=65, slices=1)
    base = ood.Study("b", full.hu[:, :56].copy(), full.spacing)  # 6 rows below the body
    out = ood.positioning_board(base, thickness_mm=8.0)
    factor = out.spacing[0] / base.spacing[0]
    assert 1.0 < factor <= 2.0 and out.spacing[1] == out.spacing[0]
    body = body_mask(out.hu)[:, :, 0]
    lowest = np.flatnonzero(body.any(axis=0)).max()
    plate = np.flatnonzero((np.abs(out.hu[:, :, 0] + 200.0) < 1e-3).all(axis=0))
    assert plate.size == max(1, round(8.0 / out.spacing[1])) and plate[-1] < 56
    assert plate[0] == lowest + 1 + max(1, round(2.0 / out.spacing[1]))
