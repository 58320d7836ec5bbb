"""Outlier exposure for the guard: a classifier of its statistics, one family left out.

The shipped guard scores a slice by the distance of its statistics from normal CT, and
each new family of inputs has found kinds it misses. Outlier exposure (Hendrycks et al.,
ICLR 2019) instead learns from examples of what is *not* normal. This benchmark asks
whether that generalises to kinds it never saw: for each family of ``bench_ood_guard.py``'s
reports, a classifier is trained on the **other** families' out-of-distribution slices
against normal slices, and scores the left-out family against the five in-distribution
studies (slice and study AUROC, as the benchmark computes them).

* **Features:** the guard's statistics whitened by the calibration that scored the study
  (the guard's L2 norm of them is its score), and their absolute values.
* **Normal slices for training:** the calibration slices of the two *trained* patients
  (each whitened by a calibration fitted without it) and the other families' normal
  variants. The five in-distribution studies are never trained on, but the normal
  variants are built from the same patients' images (a mild leak, stated in the output).
* **Classifiers** (scikit-learn): logistic regression and gradient-boosted trees, with
  balanced class weights. No threshold is fitted; the AUROCs are compared with the
  shipped guard's on the same studies.
* **Caveat:** the guard's statistics were themselves chosen with most families in view,
  so only the newest family is unseen by every part of this.

Run from the repository root, after ``bench_ood_guard.py --json`` for each family::

    python benchmarks/bench_guard_outlier_exposure.py runs/tuned.json runs/held-out.json ...
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from guard_summary import is_ood, slice_and_study_auroc  # noqa: E402

#: Calibration sources of trained patients: their slices are the training negatives.
TRAINED = ("L143_B30", "pancreas[45:75]")


def features(whitened: np.ndarray) -> np.ndarray:
    """Whitened statistics and their absolute values (both directions count), clipped at 50.

    Example:
        >>> features(np.array([[-2.0, 80.0]])).tolist()
        [[-2.0, 50.0, 2.0, 50.0]]
    """
    return np.clip(np.c_[whitened, np.abs(whitened)], -50.0, 50.0)


def leave_one_family_out(
    families: dict[str, list[tuple[str, np.ndarray]]],
    negatives: np.ndarray,
    make: Callable[[], object],
) -> dict[str, tuple[float, float, float]]:
    """Per family: slice and study AUROC of a classifier trained without it.

    Args:
        families: ``family -> [(kind, whitened statistics of one study's slices)]``.
        negatives: Whitened normal slices always trained on.
        make: A new scikit-learn classifier.

    Returns:
        ``family -> (slice AUROC, study AUROC, study AUROC of its normal variants)``,
        each against the family's in-distribution studies (NaN without variants).
    """
    results = {}
    for test in families:
        train = [(k, w) for f, studies in families.items() if f != test for k, w in studies]
        positives = [w for k, w in train if is_ood(k)]
        normals = [negatives] + [w for k, w in train if k.startswith("normal: ")]
        x = np.concatenate([*normals, *positives])
        y = np.r_[np.zeros(sum(len(n) for n in normals)), np.ones(sum(len(p) for p in positives))]
        model = make().fit(features(x), y)
        scores = [(k, model.predict_proba(features(w))[:, 1]) for k, w in families[test]]
        results[test] = _separation(scores)
    return results


def _separation(scores: list[tuple[str, np.ndarray]]) -> tuple[float, float, float]:
    ids = [s for k, s in scores if k == "ID"]
    oods = [s for k, s in scores if is_ood(k)]
    variants = [s for k, s in scores if k.startswith("normal: ")]
    slice_auc, study_auc = slice_and_study_auroc(ids, oods)
    return slice_auc, study_auc, slice_and_study_auroc(ids, variants)[1] if variants else np.nan


def main(argv: Sequence[str] | None = None) -> int:
    import bench_guard_scoring_rules as rules
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from ctpipe.anomaly.guard_calibration import GuardCalibration

    loaded = rules.load_rescoring(argv, __doc__.splitlines()[0])
    pool, columns, shipped = loaded.pool, loaded.columns, loaded.shipped
    negatives = []
    for source in TRAINED:
        others = np.concatenate([pool[k][:, columns] for k in pool if k != source])
        fit = GuardCalibration.fit(others, shipped.statistics, **loaded.settings)
        negatives.append(rules.whiten(fit, pool[source][:, columns]))
    families: dict[str, list[tuple[str, np.ndarray]]] = {}
    for family, kind, left_out, values in loaded.studies:
        whitened = rules.whiten(loaded.fits[left_out][0], values)
        families.setdefault(family, []).append((kind, whitened))
    guard = {
        f: _separation([(k, np.linalg.norm(w, axis=1)) for k, w in s]) for f, s in families.items()
    }
    makers = {
        "the guard (L2 of the whitened statistics)": None,
        "logistic regression": lambda: LogisticRegression(
            C=0.1, max_iter=2000, class_weight="balanced"
        ),
        "gradient-boosted trees": lambda: HistGradientBoostingClassifier(
            max_iter=200, class_weight="balanced", random_state=0
        ),
    }
    print(
        "each family scored by a classifier trained on the others; slice / study AUROC "
        "(normal variants' study AUROC: 0.5 means no false-alarm tendency)\n"
        "caveat: the normal variants trained on are built from the test studies' patients\n"
    )
    print(f"| score | {' | '.join(families)} |")
    print(f"|---|{'---:|' * len(families)}")
    for label, make in makers.items():
        result = (
            guard
            if make is None
            else leave_one_family_out(families, np.concatenate(negatives), make)
        )
        cells = [
            f"{s:.3f} / {t:.3f} ({v:.2f})" if np.isfinite(v) else f"{s:.3f} / {t:.3f}"
            for s, t, v in result.values()
        ]
        print(f"| {label} | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
