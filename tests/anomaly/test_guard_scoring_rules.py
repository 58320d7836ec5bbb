"""``benchmarks/bench_guard_scoring_rules.py``: its rules agree with the guard's own scores."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from ctpipe.anomaly.guard_calibration import GuardCalibration

_BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
NAMES = ("log_rec_coarse", "log_rec_detail", "log_noise_hu", "fat_hu")


@pytest.fixture(scope="module")
def rules():
    sys.path[:0] = [str(_BENCH)]
    spec = importlib.util.spec_from_file_location(
        "scoring_rules", _BENCH / "bench_guard_scoring_rules.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["scoring_rules"] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("scoring_rules", None)
    sys.path.remove(str(_BENCH))


@pytest.fixture(scope="module")
def calibration_slices():
    """Three 'patients' of correlated statistics, each shifted a little."""
    rng = np.random.default_rng(3)
    mixing = np.array([[1, 0.5, 0, 0], [0, 1, 0.3, 0], [0, 0, 1, 0], [0, 0, 0, 10.0]])
    values = [rng.normal(size=(20, 4)) @ mixing + rng.normal(0, 0.2, 4) for _ in range(4)]
    groups = [f"p{k}" for k in range(4) for _ in range(20)]
    return np.concatenate(values), groups


def test_l2_of_the_whitened_statistics_is_the_guards_distance(rules, calibration_slices):
    values, groups = calibration_slices
    fit = GuardCalibration.fit(values, NAMES, groups=groups)
    w = rules.whiten(fit, values[:7] * 1.5)
    l2 = rules.SLICE_RULES["L2 (the guard's)"](w)
    np.testing.assert_allclose(l2, fit.distance(values[:7] * 1.5), rtol=1e-10)


def test_soft_threshold_and_norms_by_hand(rules):
    w = np.array([[3.0, -0.5, -2.0, 0.0], [0.2, 0.1, -0.3, 1.0]])
    np.testing.assert_allclose(rules.soft_threshold(1.0)(w), [np.sqrt(4 + 1), 0.0])
    np.testing.assert_allclose(rules.soft_threshold(2.0)(w), [1.0, 0.0])
    np.testing.assert_allclose(rules.SLICE_RULES["L-infinity (the largest)"](w), [3.0, 1.0])
    np.testing.assert_allclose(
        rules.SLICE_RULES["L4"](w),
        [(81 + 0.0625 + 16) ** 0.25, (0.0016 + 0.0001 + 0.0081 + 1) ** 0.25],
    )
    np.testing.assert_allclose(
        rules.SLICE_RULES["L2 of the three largest"](w),
        [np.sqrt(9 + 4 + 0.25), np.sqrt(1 + 0.09 + 0.04)],
    )


def test_the_l2_rules_threshold_is_the_calibrations_own(rules, calibration_slices):
    """Leave-one-patient-out thresholds, recomputed per rule, match GuardCalibration.fit."""
    values, groups = calibration_slices
    fit = GuardCalibration.fit(values, NAMES, groups=groups)
    fits = {None: (fit, values, groups)}
    settings = {
        k: fit.settings[k] for k in ("shrinkage", "min_std", "slice_quantile", "study_quantile")
    }
    threshold = rules.study_threshold(fits, rules.SLICE_RULES["L2 (the guard's)"], settings)
    assert threshold[None] == pytest.approx(fit.study_threshold, rel=1e-10)
    soft = rules.study_threshold(fits, rules.soft_threshold(1.0), settings)
    assert soft[None] < threshold[None]  # deviations within 1 sd no longer count


def test_study_rules_by_hand(rules, calibration_slices):
    values, groups = calibration_slices
    fit = GuardCalibration.fit(values, NAMES, groups=groups)
    study = values[:5] + np.array([0, 0, 0, 30.0])
    scores = fit.distance(study)
    assert rules.STUDY_RULES["median slice score (the guard's)"](fit, study) == pytest.approx(
        np.median(scores)
    )
    assert rules.STUDY_RULES["mean slice score"](fit, study) == pytest.approx(scores.mean())
    expected = fit.distance(np.median(study, axis=0)[None])[0]
    assert rules.STUDY_RULES["distance of the median statistics"](fit, study) == pytest.approx(
        expected
    )
