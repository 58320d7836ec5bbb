"""The out-of-distribution guard: calibration (checked against scipy), statistics, verdicts,
and calibrated weights files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ctpipe.anomaly.guard import (
    GUARD_RECORD_KEY,
    GuardCalibration,
    OODGuard,
    calibrate_guard,
    write_calibrated_weights,
)
from ctpipe.anomaly.guard_statistics import STATISTICS, choose_slices, noise_std, slice_statistics
from ctpipe.checkpoints.file import save_checkpoint
from ctpipe.checkpoints.vae import VAE_FORMAT, load_vae
from ctpipe.nets.vae import VAE
from ctpipe.phantom import make_phantom
from tests.anomaly.conftest import GRID


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    return save_checkpoint(
        tmp_path_factory.mktemp("guard") / "vae.pt",
        VAE((32, 32), latent_dim=4, channels=(4, 8)),
        model_name="vae",
        config={"loss": {"sigma": 0.1}},
        extra={"grid": GRID.to_dict()},
        checkpoint_format=VAE_FORMAT,
    )


def _studies(count: int, slices: int = 6) -> list[tuple[str, np.ndarray, tuple]]:
    spacing = (2.0, 2.0, 3.0)
    return [
        (f"p{seed}", make_phantom((96, 80, slices), spacing, seed=seed, noise_hu=12.0).hu, spacing)
        for seed in range(count)
    ]


def test_fit_with_groups_takes_thresholds_from_leave_one_group_out_scores(rng):
    from scipy.spatial.distance import mahalanobis

    names = ("log_kl", "log_rec_detail")
    blocks = [rng.normal(loc=shift, size=(40, 2)) for shift in (0.0, 0.7, -0.5)]
    values = np.concatenate(blocks)
    groups = [name for name in "abc" for _ in range(40)]
    cal = GuardCalibration.fit(values, names, shrinkage=0.0, min_std={}, groups=groups)
    held_out = []
    for n, block in enumerate(blocks):  # each group scored by the others' mean and covariance
        others = np.concatenate([b for m, b in enumerate(blocks) if m != n])
        inverse = np.linalg.inv(np.cov(others.T))
        held_out += [mahalanobis(v, others.mean(axis=0), inverse) for v in block]
    np.testing.assert_allclose(cal.reference, np.sort(held_out))
    assert cal.study_threshold == pytest.approx(np.quantile(held_out, 0.99))
    np.testing.assert_allclose(cal.mean, values.mean(axis=0))  # the fit itself uses all
    in_sample = GuardCalibration.fit(values, names, shrinkage=0.0, min_std={})
    assert cal.study_threshold > in_sample.study_threshold
    assert cal.settings["reference_scores"] == "leave-one-group-out"
    two = GuardCalibration.fit(values[:80], names, groups=groups[:80])  # too few: in-sample
    assert two.settings["reference_scores"] == "in-sample"
    with pytest.raises(ValueError, match="groups must name"):
        GuardCalibration.fit(values, names, groups=groups[:10])


def test_fit_matches_numpy_and_the_distance_matches_scipy(rng):
    from scipy.spatial.distance import mahalanobis

    values = rng.normal(size=(300, 3)) @ np.array([[1.0, 0.5, 0.0], [0, 1, 0.3], [0, 0, 2.0]])
    names = ("log_kl", "log_rec_detail", "log_rec_coarse")
    cal = GuardCalibration.fit(values, names, shrinkage=0.0, min_std={}, study_quantile=0.95)
    np.testing.assert_allclose(cal.mean, values.mean(axis=0))
    np.testing.assert_allclose(cal.covariance, np.cov(values.T), rtol=1e-9)
    point = np.array([[1.0, -2.0, 0.5]])
    expected = mahalanobis(point[0], values.mean(axis=0), np.linalg.inv(np.cov(values.T)))
    assert cal.distance(point)[0] == pytest.approx(expected)
    own = cal.distance(values)
    assert cal.slice_threshold == pytest.approx(np.quantile(own, 0.99))
    assert cal.study_threshold == pytest.approx(np.quantile(own, 0.95))
    assert cal.percentile(np.array([cal.slice_threshold]))[0] == pytest.approx(99.0, abs=0.5)


def test_shrinkage_and_floors_widen_a_narrow_calibration(rng):
    values = np.column_stack([rng.normal(0, 1, 100), np.full(100, -9.2)])  # no metal at all
    cal = GuardCalibration.fit(values, ("log_kl", "log_metal_fraction"), shrinkage=0.5)
    covariance = np.asarray(cal.covariance)
    assert covariance[1, 1] == pytest.approx(1.0)  # the metal floor: 1 sd of log fraction
    assert covariance[0, 0] == pytest.approx(np.var(values[:, 0], ddof=1))
    metal = cal.z_scores(np.array([[0.0, -4.6]]))[0, 1]  # 1 % of the body is metal
    assert metal == pytest.approx(4.6, abs=0.01)


def test_calibration_survives_a_round_trip_and_refuses_bad_input(rng):
    cal = GuardCalibration.fit(rng.normal(size=(50, 2)), ("log_kl", "log_noise_hu"))
    assert GuardCalibration.from_dict(cal.to_dict()) == cal
    with pytest.raises(ValueError, match=r"values must be \(slices >= 4, 2\)"):
        GuardCalibration.fit(rng.normal(size=(3, 2)), ("log_kl", "log_noise_hu"))
    with pytest.raises(ValueError, match="statistics must name some of"):
        GuardCalibration.fit(rng.normal(size=(50, 1)), ("log_kll",))
    with pytest.raises(ValueError, match="slice_quantile must be in"):
        GuardCalibration.fit(rng.normal(size=(50, 1)), ("log_kl",), slice_quantile=1.5)
    with pytest.raises(ValueError, match="values must be finite"):
        GuardCalibration.fit(np.full((50, 1), np.nan), ("log_kl",))
    broken = {**cal.to_dict(), "covariance": [[1.0, 2.0], [2.0, 1.0]]}
    with pytest.raises(ValueError, match="positive definite"):
        GuardCalibration.from_dict(broken)
    with pytest.raises(ValueError, match="not a guard calibration"):
        GuardCalibration.from_dict({"mean": [0.0]})


@pytest.mark.parametrize("sigma", [5.0, 40.0])
def test_noise_estimate_ignores_planes_and_finds_the_noise(rng, sigma):
    ramp = np.add.outer(np.arange(128.0), 2 * np.arange(128.0))  # a plane: no noise
    assert noise_std(ramp, np.ones_like(ramp, bool)) == pytest.approx(0.0, abs=1e-9)
    noisy = ramp + rng.normal(0.0, sigma, ramp.shape)
    assert noise_std(noisy, np.ones_like(ramp, bool)) == pytest.approx(sigma, rel=0.05)
    assert noise_std(noisy, np.zeros_like(ramp, bool)) == 0.0


def test_slice_statistics_see_metal_air_and_noise(tiny_vae):
    hu = make_phantom((96, 80, 4), (2.0, 2.0, 3.0), seed=0, noise_hu=10.0).hu
    stats = slice_statistics(hu, (2.0, 2.0, 3.0), tiny_vae, GRID, sigma=0.1, max_slices=3)
    assert stats.names == STATISTICS and stats.values.shape == (3, len(STATISTICS))
    assert stats.slices.tolist() == choose_slices(4, 3).tolist() == [0, 2, 3]
    metal = hu.copy()
    metal[40:44, 40:44] = 3071.0
    shifted = hu + 1024.0  # the intercept left out
    noisy = hu + np.random.default_rng(0).normal(0.0, 150.0, hu.shape).astype(np.float32)
    base = slice_statistics(hu, (2.0, 2.0, 3.0), tiny_vae, GRID, sigma=0.1)
    for changed, name, direction in (
        (metal, "log_metal_fraction", 1),
        (shifted, "log_air_fraction", -1),
        (noisy, "log_noise_hu", 1),
    ):
        other = slice_statistics(changed, (2.0, 2.0, 3.0), tiny_vae, GRID, sigma=0.1)
        assert np.all(direction * (other.column(name) - base.column(name)) > 1.0), name
    with pytest.raises(KeyError, match="no statistic 'kl'"):
        base.column("kl")


def test_guard_passes_studies_like_its_calibration_and_flags_others(weights):
    model = load_vae(weights)
    calibration = calibrate_guard(model, _studies(8))  # 2 x 22 statistics: >= 44 slices
    assert calibration.settings["slices"] == 48 and calibration.sources[0] == "p0: 6 slices"
    guard = OODGuard(model, calibration)
    spacing = (2.0, 2.0, 3.0)
    like = make_phantom((96, 80, 6), spacing, seed=9, noise_hu=12.0).hu
    verdict = guard.score(like, spacing)
    assert not verdict.flagged and verdict.warning() is None
    shifted = guard.score(like + 1024.0, spacing)  # stored values read as HU
    assert shifted.flagged and shifted.study_score > 3 * shifted.study_threshold
    assert shifted.reasons[0][0] == "log_air_fraction" and shifted.reasons[0][1] < 0
    warning = shifted.warning()
    assert warning.startswith(f"out of distribution: guard score {shifted.study_score:.1f} >")
    assert "air around the body" in warning and "6 of 6 slices unusual" in warning
    record = shifted.to_dict()
    assert record["flagged"] is True and len(record["slice_scores"]) == 6
    lenient = OODGuard(model, calibration, study_threshold=1e9)
    assert lenient.score(like + 1024, spacing).flagged is False


def test_calibrated_weights_carry_the_calibration(weights, tmp_path):
    model = load_vae(weights)
    with pytest.raises(ValueError, match="hold no guard calibration; add one with"):
        OODGuard(model)
    calibration = calibrate_guard(model, _studies(8))  # 2 x 22 statistics: >= 44 slices
    out = write_calibrated_weights(weights, calibration, tmp_path / "calibrated.pt")
    reloaded = load_vae(out)
    assert GuardCalibration.from_dict(reloaded.checkpoint_record[GUARD_RECORD_KEY]) == calibration
    for a, b in zip(model.state_dict().values(), reloaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert OODGuard(reloaded).calibration == calibration
    with pytest.raises(ValueError, match="study_threshold must be > 0"):
        OODGuard(reloaded, study_threshold=0.0)


def test_independent_statistics_add_their_squared_z_to_the_distance(rng):
    from scipy.spatial.distance import mahalanobis

    values = rng.normal(size=(400, 3)) @ np.array([[1.0, 0.6, 0.8], [0, 1, 0.3], [0, 0, 2.0]])
    names = ("log_kl", "log_rec_detail", "rim_bone_fraction")
    cal = GuardCalibration.fit(
        values, names, shrinkage=0.0, min_std={}, independent=("rim_bone_fraction",)
    )
    covariance = np.asarray(cal.covariance)
    assert covariance[2, 0] == covariance[0, 2] == covariance[2, 1] == 0.0
    assert covariance[2, 2] == pytest.approx(values[:, 2].var(ddof=1))
    point = np.array([0.5, -1.0, 3.0])
    first_two = np.cov(values[:, :2].T)
    rest = mahalanobis(point[:2], values[:, :2].mean(axis=0), np.linalg.inv(first_two))
    z = (point[2] - values[:, 2].mean()) / values[:, 2].std(ddof=1)
    assert cal.distance(point[None])[0] == pytest.approx(np.hypot(rest, z))
    assert cal.settings["independent"] == ["rim_bone_fraction"]


def test_guard_scores_a_volume_stored_in_ras_order_as_its_lps_array(weights):
    """With its affine, a RAS-stored copy scores as the LPS array; without, it does not."""
    from ctpipe.io.geometry import lps_to_ras

    model = load_vae(weights)
    guard = OODGuard(model, calibrate_guard(model, _studies(8)))
    spacing = (2.0, 2.0, 3.0)
    lps = make_phantom((96, 80, 6), spacing, seed=9, noise_hu=12.0).hu
    lps_affine = lps_to_ras(np.diag([*spacing, 1.0]))
    flip = np.array([[-1, 0, 0, 95], [0, -1, 0, 79], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
    ras = np.ascontiguousarray(lps[::-1, ::-1, :])
    reference = guard.statistics(lps, spacing)
    turned = guard.statistics(ras, (9.0, 9.0, 9.0), affine_ras=lps_affine @ flip)
    assert np.array_equal(turned.values, reference.values)  # spacing from the affine
    assert guard.score(ras, spacing, affine_ras=lps_affine @ flip).study_score == pytest.approx(
        guard.score(lps, spacing).study_score
    )
    as_stored = guard.statistics(ras, spacing)  # the body upside down to the VAE
    assert not np.allclose(as_stored.column("log_rec_coarse"), reference.column("log_rec_coarse"))
