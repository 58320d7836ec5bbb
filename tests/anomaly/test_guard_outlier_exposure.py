"""``benchmarks/bench_guard_outlier_exposure.py``: leave-one-family-out scoring is honest."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

_BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def oe():
    sys.path[:0] = [str(_BENCH)]
    path = _BENCH / "bench_guard_outlier_exposure.py"
    spec = importlib.util.spec_from_file_location("outlier_exposure", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]
    sys.path.remove(str(_BENCH))


def test_kinds_and_features(oe):
    assert oe.is_ood("bit errors") and not oe.is_ood("ID") and not oe.is_ood("normal: 140 kVp")
    np.testing.assert_array_equal(oe.features(np.array([[1.0, -3.0]])), [[1.0, -3.0, 1.0, 3.0]])


def _families(rng, shift_of):
    """Two families; each OOD kind shifts one statistic of 3 by ``shift_of[family]``."""
    ids = [("ID", rng.normal(0, 1, (6, 3))) for _ in range(5)]
    out = {}
    for family, (axis, shift) in shift_of.items():
        studies = list(ids)
        for _ in range(5):
            w = rng.normal(0, 1, (6, 3))
            w[:, axis] += shift
            studies.append(("moved", w))
        studies.append(("normal: variant", rng.normal(0, 1, (6, 3))))
        out[family] = studies
    return out


def test_separation_matches_scikit_learn(oe):
    rng = np.random.default_rng(0)
    scores = [("ID", rng.normal(0, 1, 4)) for _ in range(3)] + [("x", rng.normal(1, 1, 4))] * 2
    result = oe._separation(scores)
    slice_auc, study_auc, variants = result.slice_auroc, result.study_auroc, result.variants_auroc
    neg = np.concatenate([s for k, s in scores if k == "ID"])
    pos = np.concatenate([s for k, s in scores if k == "x"])
    assert slice_auc == pytest.approx(
        roc_auc_score(np.r_[np.zeros(12), np.ones(8)], np.r_[neg, pos])
    )
    medians = [np.median(s) for _, s in scores]
    assert study_auc == pytest.approx(roc_auc_score([0, 0, 0, 1, 1], medians))
    assert np.isnan(variants) and result.variants == 0
    above = 2 * (np.median(pos[:4]) > max(medians[:3]))  # the same OOD study twice
    assert (result.oods_above, result.oods) == (above, 2)


def test_variants_above_every_in_distribution_study_are_counted(oe):
    ids = [("ID", np.array([1.0, 2.0, 3.0])), ("ID", np.array([2.0, 4.0, 9.0]))]  # medians 2, 4
    variants = [("normal: a", np.full(3, v)) for v in (1.0, 3.0, 4.5, 7.0)]
    oods = [("x", np.full(3, 9.0)), ("y", np.full(3, 3.5))]
    result = oe._separation([*ids, *oods, *variants])
    assert (result.variants_above, result.variants) == (2, 4)  # 4.5 and 7: above 4
    assert (result.oods_above, result.oods) == (1, 2)  # 9 is, 3.5 is not
    expected = roc_auc_score([0, 0, 1, 1, 1, 1], [2, 4, 1, 3, 4.5, 7])
    assert result.variants_auroc == pytest.approx(expected)
    cells = oe._cells({"f": result, "g": result})
    assert cells[-2:] == ["2/4", "4/8"]


def test_the_fused_score_adds_the_weighted_logit_to_the_distance(oe):
    class Fixed:
        def predict_proba(self, x):
            p = np.array([0.5, 0.9])[: len(x)]
            return np.c_[1 - p, p]

    whitened = np.array([[3.0, 4.0], [0.0, 1.0]])
    fused = oe._score(Fixed(), whitened, 2.0)
    np.testing.assert_allclose(fused, [5.0 + 0.0, 1.0 + 2.0 * np.log(9.0)])
    np.testing.assert_allclose(oe._score(Fixed(), whitened, None), [0.5, 0.9])


def test_a_family_is_never_trained_on_when_it_is_scored(oe):
    """Kinds that move another statistic than the trained ones are only found by |w|."""
    rng = np.random.default_rng(1)
    families = _families(rng, {"a": (0, 6.0), "b": (0, 6.0), "c": (2, -6.0)})
    negatives = rng.normal(0, 1, (200, 3))
    result = oe.leave_one_family_out(families, negatives, lambda: LogisticRegression(max_iter=1000))
    assert result["a"].study_auroc == 1.0 and result["b"].study_auroc == 1.0  # seen elsewhere
    assert result["c"].slice_auroc < 0.75  # a kind moving statistic 2 downwards: never seen


class _Recorder:
    """A classifier of constant probability 0.5 (logit 0) that records what it saw."""

    log: ClassVar[list] = []

    def fit(self, x, y):
        self.train = {tuple(row) for row in x}
        return self

    def predict_proba(self, x):
        _Recorder.log.append((self.train, [tuple(row) for row in x]))
        return np.full((len(x), 2), 0.5)


def test_the_fused_threshold_scores_each_calibration_patient_out_of_fold(oe):
    rng = np.random.default_rng(2)
    study = lambda shift=0.0: rng.normal(shift, 1, (4, 3))  # noqa: E731
    families = {
        f: [("ID", study()), ("moved", study(5.0)), ("normal: v", study()), ("normal: w", study())]
        for f in ("a", "b")
    }
    patients = {f: [None, "p1", "p1", "p2"] for f in families}
    negatives = {"p1": rng.normal(0, 1, (6, 3)), "p2": rng.normal(0, 1, (6, 3))}
    calibration = {"p1": negatives["p1"][:3], "p2": negatives["p2"][:3], "u": study()}
    _Recorder.log = []
    result = oe.operating_points(families, patients, negatives, calibration, _Recorder, 0.5)
    for train, query in _Recorder.log:
        assert not train & set(query)  # nothing scored was trained on
    by_query = {q[0]: train for train, q in _Recorder.log}  # the last: family "b" left out
    p1_variant = tuple(oe.features(families["a"][2][1])[0])  # a variant of p1 in family "a"
    assert p1_variant not in by_query[tuple(oe.features(calibration["p1"])[0])]
    assert p1_variant in by_query[tuple(oe.features(calibration["p2"])[0])]
    reference = np.linalg.norm(np.concatenate(list(calibration.values())), axis=1)
    threshold, *counts = result["a"]
    assert threshold == pytest.approx(np.quantile(reference, 0.99))  # logit 0: the distance
    medians = [np.median(np.linalg.norm(w, axis=1)) for _, w in families["a"]]
    flagged = [int(m > threshold) for m in medians]
    assert counts == [flagged[0], 1, flagged[1], 1, flagged[2] + flagged[3], 2]
