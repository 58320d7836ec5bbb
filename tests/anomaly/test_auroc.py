"""AUROC against a hand count of pairs, scikit-learn and MONAI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ctpipe.anomaly.auroc import auroc


def pair_count(scores, labels) -> float:
    """P(positive > negative) + P(tie) / 2 by counting every pair."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return (greater + 0.5 * ties) / (pos.size * neg.size)


def test_hand_computed_example():
    # positives 0.35, 0.8; negatives 0.1, 0.4: pairs won 0.35>0.1, 0.8>0.1, 0.8>0.4 -> 3/4
    assert auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75


def test_matches_pair_count_sklearn_and_monai_with_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 600)
    scores = np.round(rng.normal(labels * 0.7, 1.0), 1)  # rounding makes many ties
    value = auroc(scores, labels)
    assert value == pytest.approx(pair_count(scores, labels), abs=1e-12)
    from monai.metrics import compute_roc_auc

    monai_value = compute_roc_auc(torch.tensor(scores), torch.tensor(labels))
    assert value == pytest.approx(float(monai_value), abs=1e-12)
    sklearn = pytest.importorskip("sklearn.metrics")
    assert value == pytest.approx(sklearn.roc_auc_score(labels, scores), abs=1e-12)


def test_perfect_inverted_and_boolean_labels():
    scores = np.arange(10.0)
    labels = scores >= 5
    assert auroc(scores, labels) == 1.0
    assert auroc(-scores, labels) == 0.0


@pytest.mark.parametrize(
    ("scores", "labels", "match"),
    [
        ([1.0, 2.0], [1, 1], "needs both classes, got 2 positive and 0 negative"),
        ([1.0, 2.0], [0, 2], "labels must be 0/1 or booleans"),
        ([1.0, np.nan], [0, 1], "scores must be finite"),
        ([1.0, 2.0, 3.0], [0, 1], "the same size"),
    ],
)
def test_refusals(scores, labels, match):
    with pytest.raises(ValueError, match=match):
        auroc(np.array(scores), np.array(labels))
