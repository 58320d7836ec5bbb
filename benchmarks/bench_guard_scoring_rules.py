"""The guard's scoring rules: does another norm or study summary separate better?

The guard scores a slice by the Mahalanobis distance (the L2 norm of the whitened
statistics) and a study by the median of its slices' scores. Subtle inputs (a myelogram,
a contrast-filled tube, motion doubling) move one or two statistics by 2-3 standard
deviations, which the L2 norm of twenty statistics dilutes. This benchmark rescores the
studies of ``bench_ood_guard.py``'s reports with other rules on the **same statistics and
calibrations** and prints each family's slice and study AUROC and the false alarms:

* slice rules on the whitened statistics ``w``: L2 (the guard's), a soft threshold
  ``sqrt(sum(max(|w| - t, 0)^2))`` (deviations within ``t`` standard deviations ignored),
  the L4 norm, the largest ``|w|`` (L-infinity), and the L2 norm of the three largest;
* study rules: the median (the guard's), the mean or the 75th percentile of the slice
  scores, and the distance of the study's median or mean statistics.

Each rule gets its own study threshold, fitted as the guard's is (the 99th percentile of
leave-one-patient-out scores of the calibration slices). The calibration slices'
statistics are computed again from ``--config``'s sources with the shipped VAE (about a
minute); the reports must have been scored by the same weights (checked by sha256).

Run from the repository root, after ``bench_ood_guard.py --json`` for each family::

    python benchmarks/bench_guard_scoring_rules.py runs/tuned.json runs/held-out.json ...
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from guard_summary import is_ood, slice_and_study_auroc  # noqa: E402

from ctpipe.anomaly.auroc import auroc  # noqa: E402
from ctpipe.anomaly.guard_calibration import GuardCalibration  # noqa: E402

#: Calibration patients scored leave-one-out (as in ``bench_ood_guard.py``).
UNSEEN = ("totalseg", "radiomics_lung", "dcmqi")

SliceRule = Callable[[np.ndarray], np.ndarray]


def whiten(calibration: GuardCalibration, values: np.ndarray) -> np.ndarray:
    """``(slices, statistics)`` whitened by the calibration: ``L^-1 (x - mean)``.

    ``L`` is the Cholesky factor of the calibration's covariance, so the L2 norm of a row
    is the guard's Mahalanobis distance.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> cal = GuardCalibration.fit(rng.normal(size=(50, 2)), ("log_kl", "log_rec_detail"))
        >>> x = rng.normal(size=(3, 2))
        >>> bool(np.allclose(np.linalg.norm(whiten(cal, x), axis=1), cal.distance(x)))
        True
    """
    return _whiten(np.asarray(calibration.mean), np.asarray(calibration.covariance), values)


def _whiten(mean: np.ndarray, covariance: np.ndarray, values: np.ndarray) -> np.ndarray:
    difference = np.atleast_2d(np.asarray(values, np.float64)) - mean
    return np.linalg.solve(np.linalg.cholesky(covariance), difference.T).T


def soft_threshold(t: float) -> SliceRule:
    """``sqrt(sum(max(|w| - t, 0)^2))``: deviations within ``t`` count for nothing.

    Example:
        >>> soft_threshold(1.0)(np.array([[3.0, -0.5, -2.0]])).tolist()
        [2.23606797749979]
    """
    return lambda w: np.sqrt((np.maximum(np.abs(w) - t, 0.0) ** 2).sum(axis=1))


SLICE_RULES: Mapping[str, SliceRule] = {
    "L2 (the guard's)": lambda w: np.sqrt((w**2).sum(axis=1)),
    "soft threshold 1 sd": soft_threshold(1.0),
    "soft threshold 1.5 sd": soft_threshold(1.5),
    "soft threshold 2 sd": soft_threshold(2.0),
    "L4": lambda w: ((w**4).sum(axis=1)) ** 0.25,
    "L-infinity (the largest)": lambda w: np.abs(w).max(axis=1),
    "L2 of the three largest": lambda w: np.sqrt(np.sort(w**2, axis=1)[:, -3:].sum(axis=1)),
}
#: Study rules: ``(calibration, statistics of a study's slices) -> study score``.
STUDY_RULES: Mapping[str, Callable[[GuardCalibration, np.ndarray], float]] = {
    "median slice score (the guard's)": lambda c, v: float(np.median(c.distance(v))),
    "mean slice score": lambda c, v: float(np.mean(c.distance(v))),
    "75th percentile": lambda c, v: float(np.quantile(c.distance(v), 0.75)),
    "distance of the median statistics": lambda c, v: float(c.distance(np.median(v, 0))[0]),
    "distance of the mean statistics": lambda c, v: float(c.distance(v.mean(axis=0))[0]),
}


def calibration_pool(weights: str, config: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """Every statistic of the calibration slices, per source, with the VAE of ``weights``."""
    from ctpipe.anomaly.guard import OODGuard
    from ctpipe.checkpoints.vae import load_vae
    from ctpipe.training.vae.config import load_vae_config
    from ctpipe.training.vae.data import source_volumes

    guard = OODGuard(load_vae(weights), max_slices=None)
    pool, names = {}, []
    for name, hu, spacing in source_volumes(load_vae_config(config).data.calibration):
        statistics = guard.statistics(hu, spacing)
        pool[name], names = statistics.values, list(statistics.names)
    return pool, names


def leave_one_out_fits(
    pool: Mapping[str, np.ndarray], columns: Sequence[int], shipped: GuardCalibration
) -> dict[str | None, tuple[GuardCalibration, np.ndarray, list[str]]]:
    """The shipped calibration and a refit without each unseen patient, with their slices."""
    keys = ("shrinkage", "min_std", "slice_quantile", "study_quantile")
    settings = {k: shipped.settings[k] for k in keys}
    fits = {}
    for left_out in (None, *UNSEEN):
        kept = [k for k in pool if k != left_out]
        values = np.concatenate([pool[k] for k in kept])[:, columns]
        groups = [k for k in kept for _ in range(len(pool[k]))]
        fit = GuardCalibration.fit(values, shipped.statistics, groups=groups, **settings)
        fits[left_out] = (shipped if left_out is None else fit, values, groups)
    return fits


def study_threshold(fits, rule: SliceRule, settings: Mapping) -> dict[str | None, float]:
    """Per calibration, the 99th percentile of leave-one-patient-out slice scores by ``rule``."""
    thresholds = {}
    for left_out, (fit, values, groups) in fits.items():
        labels, reference = np.asarray(groups), np.empty(len(groups))
        for group in np.unique(labels):
            inside = labels == group
            # the moments GuardCalibration.fit uses for its own leave-one-group-out scores
            # (a full fit would refuse groups of fewer slices than twice the statistics)
            mean, covariance = _moments(values[~inside], fit.statistics, settings)
            reference[inside] = rule(_whiten(mean, covariance, values[inside]))
        thresholds[left_out] = float(np.quantile(reference, fit.settings["study_quantile"]))
    return thresholds


def _moments(
    values: np.ndarray, statistics: Sequence[str], settings: Mapping
) -> tuple[np.ndarray, np.ndarray]:
    from ctpipe.anomaly.guard_calibration import DEFAULT_INDEPENDENT
    from ctpipe.anomaly.guard_calibration import _moments as calibration_moments

    floors = np.array([settings["min_std"].get(name, 0.0) for name in statistics])
    alone = np.array([name in DEFAULT_INDEPENDENT for name in statistics])
    return calibration_moments(values, settings["shrinkage"], floors, alone)


@dataclass(frozen=True)
class Rescoring:
    """Reports of one guard, with what rescoring them needs.

    Attributes:
        reports: ``(path, header, guard_summary studies)`` of each report.
        shipped: The stored calibration of ``--weights``.
        names: Every statistic the guard computes; ``columns`` index the shipped ones.
        pool: Every statistic of the calibration slices, per source.
        fits: :func:`leave_one_out_fits`.
        settings: The shipped calibration's fit settings.
        studies: ``(family, kind, calibration key, statistics in the guard's order)``.
        weights: ``--weights``: the VAE that scored the reports.
        config: ``--config``: its training config, which names the calibration sources.
    """

    reports: list
    shipped: GuardCalibration
    names: list[str]
    columns: list[int]
    pool: dict[str, np.ndarray]
    fits: dict
    settings: dict
    studies: list[tuple[str, str, str | None, np.ndarray]]
    weights: str
    config: str


def load_rescoring(argv: Sequence[str] | None, description: str) -> Rescoring:
    """Parse ``REPORT... [--weights] [--config]``, check the reports, refit the calibrations.

    Raises:
        SystemExit: The reports disagree or were scored by other weights.
    """
    import guard_summary

    from ctpipe.anomaly.guard import OODGuard
    from ctpipe.checkpoints.vae import load_vae
    from ctpipe.weights import DEFAULT_VAE, weights_path

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("reports", nargs="+", type=Path, help="bench_ood_guard.py --json files")
    parser.add_argument("--weights", default=str(weights_path(DEFAULT_VAE)))
    parser.add_argument(
        "--config", default=str(REPO / "workflows/training/vae_ct128_cpu_stage2.yaml")
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    reports = [(path, *guard_summary.load_report(path)) for path in args.reports]
    guard_summary.check_reports(reports)
    digest = hashlib.sha256(Path(args.weights).read_bytes()).hexdigest()
    if reports[0][1]["weights_sha256"] != digest:
        sys.exit(f"{args.reports[0]}: scored by other weights than {args.weights}")
    shipped = OODGuard(load_vae(args.weights)).calibration
    pool, names = calibration_pool(args.weights, args.config)
    columns = [names.index(name) for name in shipped.statistics]
    keys = ("shrinkage", "min_std", "slice_quantile", "study_quantile")
    studies = []
    for path, header, _ in reports:
        for row in json.loads(path.read_text(encoding="utf-8"))["studies"]:
            values = _guard_columns(np.asarray(row["statistics"], np.float64), header, shipped)
            if values is None:
                sys.exit(f"{path}: {row['name']}: statistics that fit no guard column")
            calibration = row["calibration"]
            left_out = None if calibration == "shipped" else calibration.removeprefix("without ")
            studies.append((header["family"], row["kind"], left_out, values))
    return Rescoring(
        reports=reports,
        shipped=shipped,
        names=names,
        columns=columns,
        pool=pool,
        fits=leave_one_out_fits(pool, columns, shipped),
        settings={k: shipped.settings[k] for k in keys},
        studies=studies,
        weights=args.weights,
        config=args.config,
    )


def _guard_columns(values: np.ndarray, header: Mapping, shipped: GuardCalibration):
    """A study's statistics in the guard's order, or ``None`` when they cannot be matched.

    Reports of the benchmark's families hold the guard's statistics; the tuned family's
    hold every statistic computed, named in its header's ``all_statistics``.
    """
    if values.shape[1] == len(shipped.statistics):
        return values
    every = header.get("all_statistics", ())
    if values.shape[1] != len(every) or not set(shipped.statistics) <= set(every):
        return None
    return values[:, [every.index(name) for name in shipped.statistics]]


def main(argv: Sequence[str] | None = None) -> int:
    loaded = load_rescoring(argv, __doc__.splitlines()[0])
    fits, settings, studies = loaded.fits, loaded.settings, loaded.studies
    families = list(dict.fromkeys(f for f, *_ in studies))
    header = " | ".join(families)
    print(f"| slice rule (study: median) | {header} | pooled | OOD flagged | variants flagged |")
    print(f"|---|{'---:|' * (len(families) + 3)}")
    for label, rule in SLICE_RULES.items():
        thresholds = study_threshold(fits, rule, settings)
        scored = [(f, kind, rule(whiten(fits[left][0], v)), left) for f, kind, left, v in studies]
        cells, pooled = [], ([], [])
        for family in families:
            ids = [s for f, k, s, _ in scored if k == "ID" and f == family]
            oods = [s for f, k, s, _ in scored if f == family and is_ood(k)]
            cells.append("{:.3f} / {:.3f}".format(*slice_and_study_auroc(ids, oods)))
            pooled = (ids, pooled[1] + oods)
        alarms = sum(
            np.median(s) > thresholds[left] for _, k, s, left in scored if k.startswith("normal: ")
        )
        flagged = sum(np.median(s) > thresholds[left] for _, k, s, left in scored if is_ood(k))
        normals = sum(k.startswith("normal: ") for _, k, *_ in scored)
        oods = sum(is_ood(k) for _, k, *_ in scored)
        pooled_cell = "{:.3f} / {:.3f}".format(*slice_and_study_auroc(*pooled))
        counts = f"{flagged} / {oods} | {alarms} / {normals}"
        print(f"| {label} | {' | '.join(cells)} | {pooled_cell} | {counts} |")
    print(f"\n| study rule (slice: L2) | {' | '.join(families)} | pooled |")
    print(f"|---|{'---:|' * (len(families) + 1)}")
    for label, rule in STUDY_RULES.items():
        cells, ids_all, oods_all = [], [], []
        for family in families:
            mine = [(k, rule(fits[left][0], v)) for f, k, left, v in studies if f == family]
            ids = [t for k, t in mine if k == "ID"]
            oods = [t for k, t in mine if is_ood(k)]
            labels = np.r_[np.zeros(len(ids)), np.ones(len(oods))]
            cells.append(f"{auroc(np.r_[ids, oods], labels):.3f}")
            ids_all, oods_all = ids, oods_all + oods
        labels = np.r_[np.zeros(len(ids_all)), np.ones(len(oods_all))]
        pooled = auroc(np.r_[ids_all, oods_all], labels)
        print(f"| {label} | {' | '.join(cells)} | {pooled:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
