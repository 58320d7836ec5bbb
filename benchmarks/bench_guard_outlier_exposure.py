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
  (each whitened by a calibration fitted without it), every normal variant of every
  family built again from those two patients (:func:`trained_variant_builders`, whitened the same
  way), and the other families' normal variants. The five in-distribution studies are
  never trained on, but the families' normal variants are built from the same patients'
  images (a mild leak, stated in the output).
* **Classifiers** (scikit-learn): logistic regression and gradient-boosted trees, with
  balanced class weights; and a **fused score**, the guard's distance plus
  :data:`FUSED_WEIGHT` times the trees' logit, chosen on the first eight families and
  fixed (committed) before the ninth (``--fresh7``) was scored; kept as it was, with the
  ninth family's normal variants among the trained patients' ones, before the tenth
  (``--fresh8``) was scored. No threshold is fitted;
  the AUROCs are compared with the shipped guard's on the same studies, and each cell
  also counts the family's normal-variant studies that score above every
  in-distribution study (would-be false alarms at any threshold that passes them all).
* **At a threshold:** the fused score's study threshold is set as the guard's is, the
  99th percentile of the calibration slices' scores, each calibration patient's slices
  scored out of fold (by trees trained without them and without the normal variants
  built from them); a second table counts, per family left out, the normal studies, OOD
  studies and normal variants it flags, beside the shipped guard at its stored threshold.
* **Caveat:** the guard's statistics were themselves chosen with most families in view,
  so only the newest family is unseen by every part of this.

Run from the repository root, after ``bench_ood_guard.py --json`` for each family::

    python benchmarks/bench_guard_outlier_exposure.py runs/tuned.json runs/held-out.json ...
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from guard_summary import is_ood, slice_and_study_auroc  # noqa: E402

#: Calibration sources of trained patients: their slices are the training negatives.
TRAINED = ("L143_B30", "pancreas[45:75]")
#: The fused score: the guard's distance plus this times the trees' logit.
FUSED_WEIGHT = 0.5


def trained_variant_builders() -> dict[str, Callable]:
    """Every family's normal variants, as builders of a study from a base study."""
    import ood_inputs as oi

    return {
        "20 HU noise": lambda b: oi.heavy_noise(b, 20.0),
        "10 HU noise": lambda b: oi.heavy_noise(b, 10.0),
        "35 HU noise": lambda b: oi.heavy_noise(b, 35.0),
        "off centre": oi.off_centre,
        "tighter field of view": oi.fov_crop,
        "body x0.85": lambda b: oi.resized_body(b, 0.85),
        "body x1.1": lambda b: oi.resized_body(b, 1.1),
        "shifted 40 mm": oi.shifted,
        "mirrored": oi.mirrored,
        "smoother kernel": oi.soft_kernel,
        "calibration +15 HU": oi.calibration_drift,
        "-3024 outside the scan circle": oi.circle_padding,
        "field of view x1.15": oi.wider_fov,
        "calibration -5 HU": lambda b: oi.calibration_drift(b, -5.0),
        "turned 3°": lambda b: oi.off_centre(b, (0.0, 0.0), 3.0),
        "60 % dose": lambda b: oi.reduced_dose(b, 0.6),
        "slightly sharper kernel": oi.sharper_kernel,
        "1.5 x finer matrix": oi.finer_matrix,
        "ECG electrodes": oi.ecg_electrodes,
        "100 kVp": oi.kvp_100,
        "thinner slices": oi.thinner_slices,
        "iterative reconstruction": oi.iterative_recon,
        "table 20 mm lower": oi.table_lower,
        "portal venous phase": oi.venous_enhancement,
        "matrix twice as fine": oi.twice_finer_matrix,
        "a blanket": oi.blanket,
        "140 kVp": oi.kvp_140,
        "slimmer patient": oi.slimmer,
        "arms down": oi.arms_down,
        "a nasogastric tube": oi.nasogastric_tube,
    }


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
    fused_weight: float | None = None,
) -> dict[str, Separation]:
    """Per family: how a classifier trained without it separates it (:class:`Separation`).

    Args:
        families: ``family -> [(kind, whitened statistics of one study's slices)]``.
        negatives: Whitened normal slices always trained on.
        make: A new scikit-learn classifier.
        fused_weight: ``None``: score by the classifier's probability; else by the guard's
            distance plus this times the classifier's logit.

    Returns:
        ``family ->`` its :class:`Separation` from the family's in-distribution studies.
    """
    results = {}
    for test in families:
        model = _fit(families, test, [negatives], make)
        scores = [(k, _score(model, w, fused_weight)) for k, w in families[test]]
        results[test] = _separation(scores)
    return results


def _fit(
    families: dict[str, list[tuple[str, np.ndarray]]],
    test: str,
    negatives: list[np.ndarray],
    make: Callable[[], object],
    patients: dict[str, list[str | None]] | None = None,
    without: str | None = None,
):
    """A classifier of the other families' OOD slices against ``negatives`` and their variants.

    With ``without``, the normal variants built from that patient (``patients`` names each
    study's) are left out too.
    """
    train = [
        (k, w)
        for f, studies in families.items()
        if f != test
        for n, (k, w) in enumerate(studies)
        if without is None or patients[f][n] != without or is_ood(k)
    ]
    positives = [w for k, w in train if is_ood(k)]
    normals = [*negatives, *(w for k, w in train if k.startswith("normal: "))]
    x = np.concatenate([*normals, *positives])
    y = np.r_[np.zeros(sum(len(n) for n in normals)), np.ones(sum(len(p) for p in positives))]
    return make().fit(features(x), y)


def operating_points(
    families: dict[str, list[tuple[str, np.ndarray]]],
    patients: dict[str, list[str | None]],
    negatives: dict[str, np.ndarray],
    calibration: dict[str, np.ndarray],
    make: Callable[[], object],
    fused_weight: float,
    quantile: float = 0.99,
) -> dict[str, tuple[float, int, int, int, int, int, int]]:
    """Per family left out: the fused score's study threshold and what it flags.

    The threshold is set as the guard's is (``quantile`` of the calibration slices' scores,
    each patient's slices scored out of fold): each calibration patient's slices are scored
    by a classifier trained without them and without the normal variants built from them.

    Args:
        families: As :func:`leave_one_family_out`'s.
        patients: ``family ->`` the calibration patient each study was built from (or
            ``None``), in the order of ``families``.
        negatives: Trained patient -> its whitened normal slices (and their variants).
        calibration: Calibration patient -> its slices, whitened without it.
        make: A new scikit-learn classifier.
        fused_weight: The weight of the classifier's logit.
        quantile: The share of calibration slices below the threshold.

    Returns:
        ``family -> (threshold, normal studies flagged, of, OOD flagged, of, normal
        variants flagged, of)``; a study is flagged when its median slice score is above.
    """
    results = {}
    for test in families:
        reference = []
        for source, slices in calibration.items():
            kept = [n for p, n in negatives.items() if p != source]
            model = _fit(families, test, kept, make, patients, source)
            reference.append(_score(model, slices, fused_weight))
        threshold = float(np.quantile(np.concatenate(reference), quantile))
        model = _fit(families, test, list(negatives.values()), make)
        medians = [(k, np.median(_score(model, w, fused_weight))) for k, w in families[test]]
        counts = []
        for group in ("ID", "ood", "normal: "):
            chosen = [m for k, m in medians if _group(k) == group]
            counts += [sum(m > threshold for m in chosen), len(chosen)]
        results[test] = (threshold, *counts)
    return results


def _group(kind: str) -> str:
    return "ID" if kind == "ID" else "normal: " if kind.startswith("normal: ") else "ood"


def _score(model, whitened: np.ndarray, fused_weight: float | None) -> np.ndarray:
    """The classifier's probability, or the guard's distance plus its weighted logit."""
    probability = model.predict_proba(features(whitened))[:, 1]
    if fused_weight is None:
        return probability
    p = np.clip(probability, 1e-6, 1 - 1e-6)
    return np.linalg.norm(whitened, axis=1) + fused_weight * np.log(p / (1 - p))


@dataclass(frozen=True)
class Separation:
    """How one score separates a family's studies from the in-distribution ones.

    Attributes:
        slice_auroc: OOD slices against in-distribution slices.
        study_auroc: OOD studies against in-distribution studies.
        variants_auroc: Normal-variant studies against in-distribution studies (NaN
            without variants; 0.5: no false-alarm tendency).
        oods_above: OOD studies above every in-distribution study, of ``oods``.
        variants_above: Normal variants above every in-distribution study, of ``variants``.
    """

    slice_auroc: float
    study_auroc: float
    variants_auroc: float
    oods_above: int
    oods: int
    variants_above: int
    variants: int


def _separation(scores: list[tuple[str, np.ndarray]]) -> Separation:
    ids = [s for k, s in scores if k == "ID"]
    oods = [s for k, s in scores if is_ood(k)]
    variants = [s for k, s in scores if k.startswith("normal: ")]
    slice_auc, study_auc = slice_and_study_auroc(ids, oods)
    variants_auc = slice_and_study_auroc(ids, variants)[1] if variants else np.nan
    highest = max(np.median(s) for s in ids)
    return Separation(
        slice_auc,
        study_auc,
        variants_auc,
        sum(np.median(s) > highest for s in oods),
        len(oods),
        sum(np.median(s) > highest for s in variants),
        len(variants),
    )


def _cells(result: dict[str, Separation]) -> list[str]:
    """One table row's cells: each family's figures, then the totals over the families."""
    cells = [
        f"{r.slice_auroc:.3f} / {r.study_auroc:.3f}"
        + (f" ({r.variants_auroc:.2f}, {r.variants_above}/{r.variants})" if r.variants else "")
        for r in result.values()
    ]
    totals = [sum(getattr(r, a) for r in result.values()) for a in Separation.__annotations__]
    return [*cells, f"{totals[3]}/{totals[4]}", f"{totals[5]}/{totals[6]}"]


def trained_variants(loaded, weights: str, config: str, fits: dict) -> dict[str, np.ndarray]:
    """Every normal variant built from each trained patient, whitened without the patient.

    Variants that cannot be made of a patient (a finer matrix of pixels already 1 mm) are
    left out, and said so on stderr.
    """
    import bench_guard_scoring_rules as rules
    from ood_inputs import Study

    from ctpipe.anomaly.guard import OODGuard
    from ctpipe.checkpoints.vae import load_vae
    from ctpipe.training.vae.config import load_vae_config
    from ctpipe.training.vae.data import source_volumes

    guard = OODGuard(load_vae(weights), max_slices=16)
    whitened: dict[str, list[np.ndarray]] = {}
    for name, hu, spacing in source_volumes(load_vae_config(config).data.calibration):
        if name not in TRAINED:
            continue
        for kind, build in trained_variant_builders().items():
            try:
                study = build(Study(name, hu, spacing))
            except ValueError as error:
                print(f"left out: {kind} of {name}: {error}", file=sys.stderr)
                continue
            values = guard.statistics(study.hu, study.spacing).select(loaded.shipped.statistics)
            whitened.setdefault(name, []).append(rules.whiten(fits[name], values))
    return {name: np.concatenate(arrays) for name, arrays in whitened.items()}


def main(argv: Sequence[str] | None = None) -> int:
    import bench_guard_scoring_rules as rules
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from ctpipe.anomaly.guard_calibration import GuardCalibration

    loaded = rules.load_rescoring(argv, __doc__.splitlines()[0])
    pool, columns, shipped = loaded.pool, loaded.columns, loaded.shipped
    calibration, fits = {}, {}
    for source in pool:
        others = np.concatenate([pool[k][:, columns] for k in pool if k != source])
        fits[source] = GuardCalibration.fit(others, shipped.statistics, **loaded.settings)
        calibration[source] = rules.whiten(fits[source], pool[source][:, columns])
    variants = trained_variants(loaded, loaded.weights, loaded.config, fits)
    by_patient = {p: np.concatenate([calibration[p], variants[p]]) for p in TRAINED}
    negatives = list(by_patient.values())
    families: dict[str, list[tuple[str, np.ndarray]]] = {}
    patients: dict[str, list[str | None]] = {}
    for family, kind, left_out, values in loaded.studies:
        whitened = rules.whiten(loaded.fits[left_out][0], values)
        families.setdefault(family, []).append((kind, whitened))
        patients.setdefault(family, []).append(left_out)
    guard = {
        f: _separation([(k, np.linalg.norm(w, axis=1)) for k, w in s]) for f, s in families.items()
    }
    trees = lambda: HistGradientBoostingClassifier(  # noqa: E731
        max_iter=200, class_weight="balanced", random_state=0
    )
    makers = {
        "the guard (L2 of the whitened statistics)": None,
        "logistic regression": (
            lambda: LogisticRegression(C=0.1, max_iter=2000, class_weight="balanced"),
            None,
        ),
        "gradient-boosted trees": (trees, None),
        f"fused: the guard + {FUSED_WEIGHT:g} x the trees' logit": (trees, FUSED_WEIGHT),
    }
    print(
        "each family scored by a classifier trained on the others; slice / study AUROC "
        "(normal variants: study AUROC, 0.5 means no false-alarm tendency; and how many "
        "score above every in-distribution study)\n"
        "caveat: the families' normal variants trained on are built from the test studies' "
        f"patients\nnegatives: {sum(len(n) for n in negatives)} slices of trained patients, "
        "their normal variants included\n"
    )
    print(
        f"| score | {' | '.join(families)} | OOD studies above every normal one "
        "| normal variants above every normal study |"
    )
    print(f"|---|{'---:|' * (len(families) + 2)}")
    all_negatives = np.concatenate(negatives)
    for label, maker in makers.items():
        result = (
            guard
            if maker is None
            else leave_one_family_out(families, all_negatives, maker[0], maker[1])
        )
        print(f"| {label} | {' | '.join(_cells(result))} |", flush=True)
    _print_operating_points(
        operating_points(families, patients, by_patient, calibration, trees, FUSED_WEIGHT),
        {f: [(k, np.median(np.linalg.norm(w, axis=1))) for k, w in s] for f, s in families.items()},
        shipped.study_threshold,
    )
    return 0


def _print_operating_points(fused: dict, guard: dict, guard_threshold: float) -> None:
    """Each family's flags by the fused score at its own threshold, beside the guard's."""
    print(
        "\nat a threshold: the fused score's (the 99th percentile of the calibration slices' "
        "out-of-fold scores) and the shipped guard's (its stored study threshold, "
        f"{guard_threshold:.2f}, on the same whitened statistics); flagged / studies\n"
    )
    print(
        "| family | fused threshold | normal studies | OOD | normal variants "
        "| the guard: normal | OOD | normal variants |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    totals = np.zeros(12, int)
    for family, (threshold, *counts) in fused.items():
        medians = guard[family]
        mine = []
        for group in ("ID", "ood", "normal: "):
            chosen = [m for k, m in medians if _group(k) == group]
            mine += [sum(m > guard_threshold for m in chosen), len(chosen)]
        totals += np.r_[counts, mine]
        cells = [f"{a}/{b}" for a, b in zip(counts[::2], counts[1::2], strict=True)]
        cells += [f"{a}/{b}" for a, b in zip(mine[::2], mine[1::2], strict=True)]
        print(f"| {family} | {threshold:.2f} | {' | '.join(cells)} |")
    cells = [f"{a}/{b}" for a, b in zip(totals[::2], totals[1::2], strict=True)]
    print(f"| **all** | | {' | '.join(cells)} |")


if __name__ == "__main__":
    sys.exit(main())
