"""Pool the guard's benchmark reports: AUROC per family, over all families and per kind.

``bench_ood_guard.py`` scores one family of inputs per run (``--json`` writes every study's
slice scores). This script reads the reports of several runs made with the same guard and
prints, in Markdown:

* each family's slice and study AUROC (its out-of-distribution studies against the five
  in-distribution studies, which every run scores alike), with the studies flagged;
* the same over **all families pooled**;
* the same over the kinds **issue 18 names** (head and neck, legs, MR, phantoms, heavy
  noise, metal streaks, wrong HU scaling), wherever a family holds one;
* a catalogue of every out-of-distribution kind, sorted from the best caught to the worst
  (what a user can rely on the guard for, and what it misses), and of the normal variants
  (false alarms).

It refuses reports scored by different weights or guards, two reports of one family, and
reports whose in-distribution studies disagree.

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/bench_ood_guard.py --json runs/tuned.json
    OMP_NUM_THREADS=1 python benchmarks/bench_ood_guard.py --held-out --json runs/held-out.json
    ...
    python benchmarks/guard_summary.py runs/tuned.json runs/held-out.json ... [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ctpipe.anomaly.auroc import auroc  # noqa: E402

#: The kinds of input issue 18 names, and the benchmark's kinds (in any family) that are one.
ISSUE_KINDS: Mapping[str, tuple[str, ...]] = {
    "head and neck": ("head/neck", "head CT (real)", "head CT in a body FOV"),
    "legs": ("legs",),
    "MR": ("MR", "MR (real)"),
    "phantoms": ("phantom", "QA phantom"),
    "heavy noise": ("heavy noise",),
    "metal streaks": ("metal", "hip metal", "dental metal"),
    "wrong HU scaling": ("wrong HU", "wrong slope", "HU -1000"),
}
#: Header keys that must agree between pooled reports.
GUARD_KEYS = ("weights_sha256", "statistics", "study_threshold")
#: The in-distribution kind and the prefix of the normal variants' kinds.
ID_KIND = "ID"
NORMAL_PREFIX = "normal: "
#: The guard's own scores in a report of the tuned family (which holds several scores).
GUARD_SCORE_KEY = "guard (shipped)"


@dataclass(frozen=True)
class Study:
    """One scored study of a report: its family, kind, slice scores and verdict."""

    family: str
    name: str
    kind: str
    scores: np.ndarray
    study_score: float
    flagged: bool

    @property
    def is_normal(self) -> bool:
        """An in-distribution study or a normal variant (should not be flagged)."""
        return not is_ood(self.kind)


def is_ood(kind: str) -> bool:
    """An out-of-distribution kind: neither the normal studies nor a normal variant.

    Example:
        >>> is_ood("bit errors"), is_ood("ID"), is_ood("normal: 140 kVp")
        (True, False, False)
    """
    return kind != ID_KIND and not kind.startswith(NORMAL_PREFIX)


def load_report(path: Path) -> tuple[dict, list[Study]]:
    """The header and studies of one ``bench_ood_guard.py --json`` report.

    Raises:
        SystemExit: The file is not such a report (named, with the problem).
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        sys.exit(f"{path}: not a readable JSON report ({error})")
    missing = [key for key in ("family", *GUARD_KEYS, "studies") if key not in data]
    if missing:
        sys.exit(
            f"{path}: no {', '.join(missing)} in the report; score it again with this "
            "version of bench_ood_guard.py --json"
        )
    header = {key: value for key, value in data.items() if key != "studies"}
    return header, [_study(header["family"], row) for row in data["studies"]]


def _study(family: str, row: Mapping) -> Study:
    scores = row["scores"]
    if isinstance(scores, Mapping):  # the tuned family's report holds every score
        scores = scores[GUARD_SCORE_KEY]
    return Study(
        family=family,
        name=row["name"],
        kind=row["kind"],
        scores=np.asarray(scores, dtype=np.float64),
        study_score=float(row["study_score"]),
        flagged=bool(row["flagged"]),
    )


def check_reports(reports: Sequence[tuple[Path, dict, list[Study]]]) -> list[Study]:
    """The in-distribution studies, once the reports are found to agree.

    Raises:
        SystemExit: The reports were scored by different guards, repeat a family or
            disagree on the in-distribution studies.
    """
    first_path, first, first_studies = reports[0]
    ids = [s for s in first_studies if s.kind == ID_KIND]
    families: dict[str, Path] = {}
    for path, header, studies in reports:
        if header["family"] in families:
            sys.exit(
                f"{path}: family {header['family']} again (also in {families[header['family']]})"
            )
        families[header["family"]] = path
        for key in GUARD_KEYS:
            if header[key] != first[key]:
                sys.exit(f"{path}: {key} differs from {first_path}'s: another guard")
        other = {s.name: s.study_score for s in studies if s.kind == ID_KIND}
        mine = {s.name: s.study_score for s in ids}
        if other.keys() != mine.keys() or any(
            not np.isclose(other[name], mine[name], rtol=1e-6) for name in mine
        ):
            sys.exit(f"{path}: its in-distribution studies differ from {first_path}'s")
    if not ids:
        sys.exit(f"{first_path}: no in-distribution studies")
    return ids


def separation(ids: Sequence[Study], positives: Sequence[Study]) -> tuple[float, float]:
    """Slice and study AUROC of ``positives`` against the in-distribution studies.

    Every slice of every study counts at slice level; each study's score (the median of its
    slices' scores) at study level, as ``bench_ood_guard.py`` computes them.

    Example:
        >>> a = Study("f", "a", "ID", np.array([1.0, 2.0]), 1.5, False)
        >>> b = Study("f", "b", "k", np.array([1.5, 3.0]), 2.25, True)
        >>> separation([a], [b])
        (0.875, 1.0)
    """
    return slice_and_study_auroc([s.scores for s in ids], [s.scores for s in positives])


def slice_and_study_auroc(
    negatives: Sequence[np.ndarray], positives: Sequence[np.ndarray]
) -> tuple[float, float]:
    """Slice and study AUROC of studies given as their slices' scores.

    Every slice counts at slice level; each study's median slice score at study level.

    Example:
        >>> slice_and_study_auroc([np.array([1.0, 2.0])], [np.array([1.5, 3.0])])
        (0.875, 1.0)
    """
    neg, pos = np.concatenate(negatives), np.concatenate(positives)
    slice_auc = auroc(np.r_[neg, pos], np.r_[np.zeros(neg.size), np.ones(pos.size)])
    medians = np.asarray([np.median(s) for s in [*negatives, *positives]])
    labels = np.r_[np.zeros(len(negatives)), np.ones(len(positives))]
    return slice_auc, auroc(medians, labels)


def summary(ids: Sequence[Study], studies: Sequence[Study]) -> dict:
    """Every figure this script prints, as plain data (``--json`` writes it)."""
    oods = [s for s in studies if not s.is_normal]
    normals = [s for s in studies if s.kind.startswith(NORMAL_PREFIX)]

    def row(group: Sequence[Study]) -> dict:
        slice_auc, study_auc = separation(ids, group)
        return {
            "studies": len(group),
            "slices": int(sum(s.scores.size for s in group)),
            "flagged": int(sum(s.flagged for s in group)),
            "slice_auroc": slice_auc,
            "study_auroc": study_auc,
        }

    families = dict.fromkeys(s.family for s in oods)
    named = {
        label: [s for s in oods if s.kind in kinds]
        for label, kinds in ISSUE_KINDS.items()
        if any(s.kind in kinds for s in oods)
    }
    kinds = {}
    for family, kind in dict.fromkeys((s.family, s.kind) for s in oods):
        group = [s for s in oods if (s.family, s.kind) == (family, kind)]
        kinds[f"{family}: {kind}"] = {**row(group), "scores": [s.study_score for s in group]}
    variants = {}
    for family, kind in dict.fromkeys((s.family, s.kind) for s in normals):
        group = [s for s in normals if (s.family, s.kind) == (family, kind)]
        variants[f"{family}: {kind}"] = {
            "studies": len(group),
            "flagged": int(sum(s.flagged for s in group)),
            "highest": max(s.study_score for s in group),
        }
    in_named = {id(s) for group in named.values() for s in group}
    return {
        "in_distribution": {s.name: s.study_score for s in ids},
        "families": {f: row([s for s in oods if s.family == f]) for f in families},
        "all_families": row(oods),
        "all_families_vs_normal_variants_too": dict(
            zip(("slice_auroc", "study_auroc"), separation([*ids, *normals], oods), strict=True)
        ),
        "issue_kinds": {label: row(group) for label, group in named.items()},
        "issue_kinds_pooled": row([s for group in named.values() for s in group]),
        "other_kinds_pooled": row([s for s in oods if id(s) not in in_named]),
        "kinds": kinds,
        "normal_variants": variants,
    }


def print_summary(result: dict, header: Mapping) -> None:
    """The summary as Markdown tables."""
    print(f"guard: {header['weights']} (sha256 {header['weights_sha256'][:12]}), ", end="")
    print(
        f"{len(header['statistics'])} statistics, study threshold {header['study_threshold']:.2f}"
    )
    ids = list(result["in_distribution"].values())
    print(f"in distribution: {len(ids)} studies, scores {min(ids):.1f}-{max(ids):.1f}\n")
    print("| OOD inputs | studies | slices | flagged | slice AUROC | study AUROC |")
    print("|---|---:|---:|---:|---:|---:|")
    lines = [(f"family: {f}", r) for f, r in result["families"].items()]
    lines += [("**all families pooled**", result["all_families"])]
    both = result["all_families_vs_normal_variants_too"]
    lines += [
        (
            "the same, the normal variants counted as normal studies",
            {**result["all_families"], **both},
        )
    ]
    lines += [(f"issue's kind: {k}", r) for k, r in result["issue_kinds"].items()]
    lines += [("**the issue's kinds pooled**", result["issue_kinds_pooled"])]
    lines += [("the other kinds pooled", result["other_kinds_pooled"])]
    for label, r in lines:
        print(
            f"| {label} | {r['studies']} | {r['slices']} | {r['flagged']} | "
            f"{r['slice_auroc']:.3f} | {r['study_auroc']:.3f} |"
        )
    print("\n| kind (family) | studies | flagged | slice AUROC | study AUROC | study scores |")
    print("|---|---:|---:|---:|---:|---|")
    ranked = sorted(
        result["kinds"].items(),
        key=lambda item: (-item[1]["flagged"] / item[1]["studies"], -item[1]["study_auroc"]),
    )
    for label, r in ranked:
        print(
            f"| {label} | {r['studies']} | {r['flagged']} | {r['slice_auroc']:.3f} | "
            f"{r['study_auroc']:.3f} | {min(r['scores']):.1f}-{max(r['scores']):.1f} |"
        )
    print("\n| normal variant (family) | studies | flagged | highest score |")
    print("|---|---:|---:|---:|")
    for label, r in result["normal_variants"].items():
        print(f"| {label} | {r['studies']} | {r['flagged']} | {r['highest']:.1f} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, help="bench_ood_guard.py --json files")
    parser.add_argument("--json", type=Path, help="write the summary here too")
    args = parser.parse_args(argv)
    reports = [(path, *load_report(path)) for path in args.reports]
    ids = check_reports(reports)
    studies = [s for _, _, group in reports for s in group if s.kind != ID_KIND]
    result = summary(ids, studies)
    print_summary(result, reports[0][1])
    if args.json:
        partial = args.json.with_name(f".{args.json.name}.partial")
        header = {k: v for k, v in reports[0][1].items() if k not in ("family", "date")}
        partial.write_text(json.dumps({**header, **result}, indent=1), encoding="utf-8")
        partial.replace(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
