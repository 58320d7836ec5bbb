"""The out-of-distribution guard: slice and study AUROC, detection per kind, false alarms.

**In-distribution (ID) studies** are normal-dose CT of patients the VAE never trained on,
each scored by a calibration that did not see it:

* AAPM patient L192 (D45 and B30 kernels), held out of training *and* of the shipped
  calibration (the script refuses to run otherwise), scored by the shipped calibration;
* the three never-trained patients of the calibration (``totalseg``, ``radiomics_lung``,
  ``dcmqi``), each scored by a calibration refitted without it, with the same settings
  (leave one patient out).

**Out-of-distribution (OOD) studies** are built by ``benchmarks/ood_inputs.py``: phantoms
(a head, a neck, two thighs, ctpipe's abdominal phantom, Shepp-Logan in HU), pydicom's
``MR_small.dcm`` (as given, and claimed at 3.5 mm pixels), and from each of L192 D45,
L192 B30, ``radiomics_lung`` and ``dcmqi``: MR-like T1 and T2 intensity maps, heavy noise
(150 HU), metal with streaks, the intercept left out, an image normalised to [0, 1], and
thigh-like discs cut out of it. A study made from a patient is scored by the calibration
that did not see that patient.

**Scores**, each fitted the same way (the shipped guard's settings) on the same slices:

* **guard**: the shipped guard's statistics (:data:`ctpipe.anomaly.guard.GUARD_STATISTICS`);
* **guard + KL**: the same with the KL of the posterior;
* **negative ELBO**: the seed's score alone, as a z-score (higher: more OOD);
* **VAE reconstruction only** and **input statistics only**: each group of the guard alone.

Slice AUROC pools every scored slice (ID against OOD); study AUROC scores each study by
its median. At each calibration's study threshold it also reports which studies are
flagged.

**Held-out inputs** (``--held-out``): the figures above were reached while the guard's
statistics, calibration settings and threshold were being chosen with those OOD inputs in
view. ``--held-out`` scores instead a second family of ``ood_inputs`` that played no part
in those choices (child-sized bodies, reformats, cone-beam artifacts, display-window and
8-bit images, contrast oversaturation, slab MIPs, PET/SPECT-like maps, small fields of
view, turned slices, real head CT, MR, NM and ultrasound images from pydicom) and normal
variants that should pass (20 HU of noise, a tighter field of view, the patient off
centre), with the frozen guard: the stored calibration and threshold for studies made
from L192 or from scratch, and for those made from a calibration patient the refit that
leaves it out, with the shipped settings (as above). Each held-out study is scored on at
most 16 slices, spread evenly; the normal studies are the same 5 as above.

**Fresh inputs** (``--fresh``): a third family, fixed (committed) before the guard's
second version was designed and scored once with it: wrong rescale slopes (2, 0.5), HU
shifted by -1000, hip prostheses with beam hardening between them, dental-like metal,
motion doubling, truncation at the field of view's edge, an angiography-like arterial
phase, a black mask burned in, one half of the body, 10 mm average slabs, and pydicom's two
real head CTs resampled into a 410 mm body field of view; normal variants that should pass:
10 and 35 HU of added noise, the body scaled by 0.85 and 1.1, the patient 50 mm off centre.
Scored like the held-out family (same calibrations, at most 16 slices per study).

**Fourth family** (``--fresh2``): fixed (committed) before the guard's third version was
designed and scored once with it; none of its kinds is in an earlier family: photon
starvation streaks, strong detector-fault rings, dense oral contrast in bowel loops, a sharp
bone kernel, the couch alone (slices past the patient), signed values read as unsigned, stripes
of zeroed rows, a contrast-filled tube, a PET-CT attenuation CT on 4 mm pixels, a 40 keV
monoenergetic image, and a localizer presented as an axial slice; normal variants that should
pass: the image mirrored, a smoother kernel, a calibration 15 HU off, -3024 outside the scan
circle, a 15 % wider field of view. Scored like the held-out family.

**Fifth family** (``--fresh3``): fixed (committed) before the guard's fourth version was
designed and scored once with it; none of its kinds is in an earlier family: a QA water
phantom with rods, burned-in annotations, a dual-energy iodine map, a CT myelogram, a prone
scan (body front to back), a 10 mm slab MinIP, a CTA with the bones removed, a bismuth
breast shield, strong lossy JPEG compression, and missing pixel spacing read as 1 mm;
normal variants that should pass: the calibration 5 HU off, the patient turned by 3
degrees, 60 % of the dose, a slightly sharper kernel, a 1.5 times finer matrix. Scored like
the held-out family.

**Sixth family** (``--fresh4``): fixed (committed) before the guard's fifth version was
designed, to be scored once with it; none of its kinds is in an earlier family: an inverted
grey scale (MONOCHROME1 read as MONOCHROME2), byte-swapped values (big endian read as
little), a subtraction series, a film sheet of 3 x 3 slices, an MR-derived synthetic CT, a
tissue label map, a dose report screen capture, a magnified view saved with its old pixel
spacing, pixel data read with rows one pixel too long, and a sparse-view reconstruction (60
views); normal variants that should pass: ECG electrodes and leads, 100 kVp, thinner slices
(2/3 of the thickness), a moderate iterative reconstruction, the table 20 mm lower. Scored
like the held-out family.

**Seventh family** (``--fresh5``): fixed (committed) before any change to the guard's fifth
version, to be scored once with it; none of its kinds is in an earlier family: pixel data
read from an offset half a row late (the image wrapped), bit errors (0.2 % of the pixels
random), two levels of the body superposed, an image smoothed by a 5 mm Gaussian, a
limited-angle reconstruction (120 degrees), a disc of the body filled by biharmonic
inpainting; normal variants that should pass: a portal venous phase, a matrix twice as
fine (bases of pixels up to 1 mm), a blanket over the body. Scored like the held-out family.

**Eighth family** (``--fresh6``): fixed (committed) before the guard's sixth version was
designed; none of its kinds is in an earlier family: blank slices (every pixel -1024 HU), a
dense venous contrast bolus with its streaks, a 4x preview scaled up again, non-square
pixels declared square (the body 1.3 times taller), a band of rows shifted sideways,
detector banding (+-15 HU stripes); normal variants that should pass: 140 kVp, a patient
10 % slimmer. Scored like the held-out family.

**Ninth family** (``--fresh7``): fixed (committed) before the guard's seventh version was
designed; none of its kinds is in an earlier family: gamma-mapped values (a VOI LUT with
gamma 0.5 saved as HU), CT colonography (4-6 air-filled loops of colon), posterised values
(32 HU steps), a mirrored half (one half of the body replaced by the other, flipped), the
patient in a water bath, a gain field (a smooth 10 % inhomogeneity of attenuation, as an MR
bias field); normal variants that should pass: the arms down beside the body, a nasogastric
tube. Scored like the held-out family.

**Tenth family** (``--fresh8``): fixed (committed) before the guard's seventh version was
designed; none of its kinds is in an earlier family: pneumoperitoneum (free air under the
front abdominal wall), ascites (fluid filling the abdomen's periphery), a white noise texture
(the base's correlated noise swapped for white noise of its level), slice-to-slice flicker
(+-25 HU on alternating slices), a biopsy needle in a half-dose CT-fluoroscopy image, motion
blur front to back (a 10 mm box along ``j``); normal variants that should pass: 15 mm more
subcutaneous fat, a radiotherapy positioning board under the patient. Scored like the
held-out family.

Run from the repository root with the virtual environment active:

    python benchmarks/bench_ood_guard.py [--weights PT] [--config YAML] [--json OUT]
    python benchmarks/bench_ood_guard.py --held-out [--json OUT]
    python benchmarks/bench_ood_guard.py --fresh [--json OUT]
    python benchmarks/bench_ood_guard.py --fresh2 [--json OUT]
    python benchmarks/bench_ood_guard.py --fresh3 [--json OUT]
    python benchmarks/bench_ood_guard.py --fresh4 [--json OUT]
    python benchmarks/bench_ood_guard.py --fresh5 [--json OUT]
    python benchmarks/bench_ood_guard.py --fresh6 [--json OUT]
    python benchmarks/bench_ood_guard.py --fresh7 [--json OUT]
    python benchmarks/bench_ood_guard.py --fresh8 [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
DATA = Path(os.environ.get("CTPIPE_SHARED_DATA", REPO.parent / "shared" / "data"))

import ood_inputs  # noqa: E402  (a module beside this script)
from ood_families import FAMILIES, ood_studies  # noqa: E402

from ctpipe.anomaly.guard_calibration import GUARD_STATISTICS  # noqa: E402
from ctpipe.anomaly.guard_statistics import INPUT_STATISTICS  # noqa: E402

#: The patient held out of training and calibration: (name, path under DATA).
HELD_OUT = (
    ("L192 D45", "aapm_ldct_pairs/L192/full_3mm_D45"),
    ("L192 B30", "aapm_ldct_pairs/L192/full_3mm_B30"),
)
#: Calibration sources of patients never trained on: scored leave-one-patient-out.
UNSEEN = ("totalseg", "radiomics_lung", "dcmqi")
#: Calibration sources whose slices also make OOD studies.
BASES = ("radiomics_lung", "dcmqi")
#: Calibration sources with contiguous slices: reformats and slab MIPs of them.
CONTIGUOUS = ("radiomics_lung", "totalseg")
#: Held-out studies are scored on at most this many slices, spread evenly.
HELD_OUT_SLICES = 16
#: Held-out kinds whose values are not CT numbers at all.
NOT_CT_VALUES = ("MR (real)", "NM", "ultrasound", "PET/SPECT")
#: The other scores (statistics, or the negative ELBO alone).
ABLATIONS = {
    "guard + KL": (*GUARD_STATISTICS[:2], "log_kl", *GUARD_STATISTICS[2:]),
    "guard v1 (five statistics)": GUARD_STATISTICS[:5],
    "guard v2 (eleven statistics)": GUARD_STATISTICS[:11],
    "guard v4 (eighteen statistics)": GUARD_STATISTICS[:18],
    "VAE reconstruction only": ("log_rec_coarse", "log_rec_detail"),
    "input statistics only": INPUT_STATISTICS,
}


def check_held_out(record: dict, relative: str) -> None:
    """Refuse an ID source that the model's training config does not hold out."""
    data = record.get("config", {}).get("data")
    if not data:
        return
    target = (DATA / relative).resolve()
    for source in data["holdout"]:
        held = Path(source["path"])
        held = (held if held.is_absolute() else REPO / held).resolve()
        if held == target or held in target.parents:
            return
    sys.exit(f"{target} is not held out by the model's training config: refusing to score it")


class Scorer:
    """One score, fitted on the calibration slices with one patient left out or none."""

    def __init__(self, names, pool, columns, settings) -> None:
        from ctpipe.anomaly.guard_calibration import GuardCalibration

        self.index = [names.index(c) for c in columns]
        self.columns = columns
        self.fits = {}
        for left_out in (None, *UNSEEN):
            kept = [k for k in pool if k != left_out]
            values = np.concatenate([pool[k] for k in kept])
            groups = [k for k in kept for _ in range(len(pool[k]))]
            self.fits[left_out] = GuardCalibration.fit(
                values[:, self.index], columns, groups=groups, **settings
            )

    def __call__(self, values: np.ndarray, left_out: str | None) -> np.ndarray:
        return self.fits[left_out].distance(values[:, self.index])

    def threshold(self, left_out: str | None) -> float:
        return self.fits[left_out].study_threshold


class ElboScorer:
    """The negative ELBO as a z-score against the same calibration slices."""

    def __init__(self, names, pool) -> None:
        self.column = names.index("neg_elbo")
        self.moments = {}
        for left_out in (None, *UNSEEN):
            values = np.concatenate([v[:, self.column] for k, v in pool.items() if k != left_out])
            self.moments[left_out] = (values.mean(), values.std())

    def __call__(self, values: np.ndarray, left_out: str | None) -> np.ndarray:
        mean, std = self.moments[left_out]
        return (values[:, self.column] - mean) / std

    def threshold(self, left_out: str | None) -> float:
        return float("nan")


def main() -> int:
    from ctpipe.anomaly.guard import OODGuard
    from ctpipe.checkpoints.vae import load_vae
    from ctpipe.training.vae.config import load_vae_config
    from ctpipe.training.vae.data import read_series, source_volumes
    from ctpipe.weights import DEFAULT_VAE, weights_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(weights_path(DEFAULT_VAE)))
    parser.add_argument(
        "--config", default=str(REPO / "workflows/training/vae_ct128_cpu_stage2.yaml")
    )
    parser.add_argument("--json", help="write every statistic and score here")
    for family, (_, _, help_text) in FAMILIES.items():
        parser.add_argument(f"--{family}", action="store_true", help=help_text)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    model = load_vae(args.weights)
    guard = OODGuard(model, max_slices=None)
    config = load_vae_config(args.config)
    started = time.perf_counter()
    volumes = {name: (hu, spacing) for name, hu, spacing in source_volumes(config.data.calibration)}
    for name, _ in HELD_OUT:
        if any("L192" in str(s.path) for s in config.data.calibration):
            sys.exit(f"{name}: L192 is in the calibration sources: refusing to score it")
    pool = {name: guard.statistics(hu, spacing).values for name, (hu, spacing) in volumes.items()}
    names = guard.statistics(np.full((8, 8, 1), -1000.0, np.float32), (1, 1, 1)).names
    shipped = guard.calibration
    keys = ("shrinkage", "min_std", "slice_quantile", "study_quantile")
    settings = {k: shipped.settings[k] for k in keys}
    guard_scorer = Scorer(names, pool, shipped.statistics, settings)
    refit = guard_scorer.fits[None]
    if not np.allclose(refit.mean, shipped.mean) or not np.isclose(
        refit.study_threshold, shipped.study_threshold
    ):
        print("note: the stored calibration differs from a refit on --config's sources")
    scorers = {"guard (shipped)": guard_scorer, "negative ELBO (z)": ElboScorer(names, pool)}
    for label, columns in ABLATIONS.items():
        scorers[label] = Scorer(names, pool, columns, settings)
    studies = []
    for name, relative in HELD_OUT:
        check_held_out(model.checkpoint_record, relative)
        hu, spacing = read_series(DATA / relative, allow_irregular=True)
        studies.append(("ID", None, ood_inputs.Study(name, hu, spacing)))
    bases = [(None, s) for _, _, s in studies]
    bases += [(name, ood_inputs.Study(name, *volumes[name])) for name in BASES]
    chosen = [family for family in FAMILIES if getattr(args, family.replace("-", "_"))]
    if chosen:
        family = chosen[-1]  # the newest family when several are named
        header = guard_header(args.weights, shipped, family)
        return held_out(
            guard, guard_scorer, shipped, pool, studies, bases, volumes, args.json, family, header
        )
    rows = []

    def add(kind: str, left_out: str | None, name: str, values: np.ndarray) -> None:
        scores = {k: scorer(values, left_out).tolist() for k, scorer in scorers.items()}
        study = float(np.median(scores["guard (shipped)"]))
        z = np.median(guard_scorer.fits[left_out].z_scores(values[:, guard_scorer.index]), 0)
        top = np.argsort(-np.abs(z))[:2]
        rows.append(
            {
                "name": name,
                "kind": kind,
                "calibration": "shipped" if left_out is None else f"without {left_out}",
                "slices": int(values.shape[0]),
                "study_score": study,
                "flagged": study > guard_scorer.threshold(left_out),
                "why": ", ".join(f"{shipped.statistics[i]} {z[i]:+.1f} sd" for i in top),
                "scores": scores,
                "statistics": values.tolist(),
            }
        )

    for kind, left_out, study in studies:
        add(kind, left_out, study.name, guard.statistics(study.hu, study.spacing).values)
    for name in UNSEEN:
        add("ID", name, f"{name} (left out)", pool[name])
    for kind, left_out, study in ood_studies(bases):
        add(kind, left_out, study.name, guard.statistics(study.hu, study.spacing).values)
    seconds = time.perf_counter() - started
    speed = _speed(guard, volumes["radiomics_lung"])
    print_report(rows, scorers, shipped, seconds, speed)
    if args.json:
        dump = {**guard_header(args.weights, shipped, "tuned"), "studies": rows}
        dump["all_statistics"] = list(names)
        Path(args.json).write_text(json.dumps(dump), encoding="utf-8")
    return 0


def guard_header(weights: str, shipped, family: str) -> dict:
    """What a JSON report was scored with: the family, the weights file and its guard.

    ``benchmarks/guard_summary.py`` pools reports only when their headers agree.
    """
    import hashlib

    return {
        "family": family,
        "weights": Path(weights).name,
        "weights_sha256": hashlib.sha256(Path(weights).read_bytes()).hexdigest(),
        "statistics": list(shipped.statistics),
        "study_threshold": float(shipped.study_threshold),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def held_out(
    guard,
    guard_scorer,
    shipped,
    pool,
    studies,
    bases,
    volumes,
    json_path,
    family="held-out",
    header=None,
) -> int:
    """Score the held-out (or fresh) family and its normal variants with the frozen guard."""
    from ctpipe.anomaly.guard import OODGuard

    started = time.perf_counter()
    guard_scorer.fits[None] = shipped  # the stored calibration, not a refit
    sampled = OODGuard(guard.model, shipped, max_slices=HELD_OUT_SLICES)
    bases = [*bases, ("totalseg", ood_inputs.Study("totalseg", *volumes["totalseg"]))]
    contiguous = [(name, ood_inputs.Study(name, *volumes[name])) for name in CONTIGUOUS]

    def add(kind: str, left_out: str | None, name: str, values: np.ndarray) -> None:
        fit = guard_scorer.fits[left_out]
        rows.append(_held_out_row(fit, shipped, kind, left_out, name, values))

    def columns(scoring_guard, study: ood_inputs.Study) -> np.ndarray:
        return scoring_guard.statistics(study.hu, study.spacing).select(shipped.statistics)

    rows: list[dict] = []
    for kind, _, study in studies:
        add(kind, None, study.name, columns(guard, study))
    for name in UNSEEN:
        add("ID", name, f"{name} (left out)", pool[name][:, guard_scorer.index])
    build, variants, _ = FAMILIES[family]
    normal_kinds = [kind for kind, _ in variants]
    family_studies = build(bases, contiguous)
    for kind, left_out, study in family_studies:
        add(kind, left_out, study.name, columns(sampled, study))
    print_held_out(rows, shipped, time.perf_counter() - started, normal_kinds, family)
    if json_path:
        dump = {**(header or {"family": family}), "studies": rows}
        Path(json_path).write_text(json.dumps(dump), encoding="utf-8")
    return 0


def _held_out_row(fit, shipped, kind, left_out, name, values) -> dict:
    """One study's guard scores under its calibration ``fit`` and under the stored one."""
    scores = fit.distance(values)
    z = np.median(fit.z_scores(values), axis=0)
    top = np.argsort(-np.abs(z))[:2]
    stored = float(np.median(shipped.distance(values)))
    return {
        "name": name,
        "kind": kind,
        "calibration": "shipped" if left_out is None else f"without {left_out}",
        "slices": int(values.shape[0]),
        "study_score": float(np.median(scores)),
        "flagged": bool(np.median(scores) > fit.study_threshold),
        "stored_score": stored,
        "stored_flagged": stored > shipped.study_threshold,
        "why": ", ".join(f"{shipped.statistics[i]} {z[i]:+.1f} sd" for i in top),
        "scores": scores.tolist(),
        "statistics": values.tolist(),
    }


def _aurocs(negatives: list[dict], positives: list[dict]) -> tuple[float, float]:
    """Slice and study AUROC of the guard's scores, positives against negatives.

    A row's study score is the median of its slice scores, as
    :func:`guard_summary.slice_and_study_auroc` takes it.
    """
    from guard_summary import slice_and_study_auroc

    return slice_and_study_auroc(
        [np.asarray(r["scores"]) for r in negatives], [np.asarray(r["scores"]) for r in positives]
    )


def print_held_out(rows, shipped, seconds, normal_kinds, family="held-out") -> None:
    ids = [r for r in rows if r["kind"] == "ID"]
    normals = [r for r in rows if r["kind"] in normal_kinds]
    oods = [r for r in rows if r not in ids and r not in normals]
    print(
        f"machine: {platform.platform()}, {platform.processor() or 'cpu'}, {os.cpu_count()} cores"
    )
    print(f"date: {time.strftime('%Y-%m-%d')}; frozen guard: {', '.join(shipped.statistics)}")
    print(f"stored study threshold: {shipped.study_threshold:.2f}")
    for label, group in (("ID", ids), (f"{family} OOD", oods), ("normal variants", normals)):
        print(f"{label}: {len(group)} studies, {sum(r['slices'] for r in group)} slices")
    print(f"time (building and scoring): {seconds:.0f} s\n")
    print(f"| {family} comparison | slice AUROC | study AUROC |")
    print("|---|---:|---:|")
    small_ct = [r for r in oods if r["name"].startswith("CT_small.dcm")]
    others = [r for r in oods if r not in small_ct]
    ct_like = [r for r in oods if r["kind"] not in NOT_CT_VALUES]
    for label, negatives, positives in (
        (f"{family} OOD vs the normal studies", ids, oods),
        (f"{family} OOD vs the normal studies and the normal variants", ids + normals, oods),
        ("the same, CT_small.dcm counted as normal", ids + small_ct, others),
        (f"only {family} studies with CT-like values vs the normal studies", ids, ct_like),
        ("normal variants vs the normal studies (0.5: alike)", ids, normals),
    ):
        slice_auc, study_auc = _aurocs(negatives, positives)
        print(f"| {label} | {slice_auc:.3f} | {study_auc:.3f} |")
    print("\n| kind | studies | flagged | flagged (stored calibration) | study AUROC | scores |")
    print("|---|---:|---:|---:|---:|---|")
    for kind in dict.fromkeys(r["kind"] for r in rows):
        group = [r for r in rows if r["kind"] == kind]
        scores = [r["study_score"] for r in group]
        auc = "" if kind == "ID" else f"{_aurocs(ids, group)[1]:.3f}"
        print(
            f"| {kind} | {len(group)} | {sum(r['flagged'] for r in group)} | "
            f"{sum(r['stored_flagged'] for r in group)} | {auc} | "
            f"{min(scores):.1f}-{max(scores):.1f} |"
        )
    false_alarms = sum(r["flagged"] for r in normals)
    print(f"\nfalse-positive rate on the normal variants: {false_alarms}/{len(normals)}")
    print_study_table(rows)


def _speed(guard, lung) -> float:
    """Seconds of the workflow's guard (64 slices at most) on the 48-slice lung CT."""
    from ctpipe.anomaly.guard import OODGuard

    workflow_guard = OODGuard(guard.model, guard.calibration, max_slices=64)
    started = time.perf_counter()
    workflow_guard.score(*lung)
    return time.perf_counter() - started


def print_report(rows, scorers, shipped, seconds, speed) -> None:
    from ctpipe.anomaly.auroc import auroc

    ids = [r for r in rows if r["kind"] == "ID"]
    oods = [r for r in rows if r["kind"] != "ID"]
    cores = os.cpu_count()
    print(f"machine: {platform.platform()}, {platform.processor() or 'cpu'}, {cores} cores")
    print(f"calibration: {'; '.join(shipped.sources)}")
    print(f"statistics: {', '.join(shipped.statistics)}; settings: {dict(shipped.settings)}")
    slices = sum(r["slices"] for r in ids), sum(r["slices"] for r in oods)
    print(f"ID: {len(ids)} studies, {slices[0]} slices; ", end="")
    print(f"OOD: {len(oods)} studies, {slices[1]} slices")
    print(f"scoring time: {seconds:.0f} s; guard on the 48-slice lung CT: {speed:.2f} s\n")
    print("| score | slice AUROC | study AUROC |")
    print("|---|---:|---:|")
    for key in scorers:
        id_slices = np.concatenate([r["scores"][key] for r in ids])
        ood_slices = np.concatenate([r["scores"][key] for r in oods])
        labels = np.r_[np.zeros(id_slices.size), np.ones(ood_slices.size)]
        slice_auc = auroc(np.r_[id_slices, ood_slices], labels)
        studies = [np.median(r["scores"][key]) for r in ids + oods]
        study_auc = auroc(np.asarray(studies), np.r_[np.zeros(len(ids)), np.ones(len(oods))])
        print(f"| {key} | {slice_auc:.3f} | {study_auc:.3f} |")
    print(f"\nAt the study threshold (shipped: {shipped.study_threshold:.2f}):\n")
    print("| kind | studies | flagged |")
    print("|---|---:|---:|")
    for kind in dict.fromkeys(r["kind"] for r in rows):
        group = [r for r in rows if r["kind"] == kind]
        print(f"| {kind} | {len(group)} | {sum(r['flagged'] for r in group)} |")
    print_study_table(rows)


def print_study_table(rows) -> None:
    """One line per study: kind, calibration, slices, guard score, verdict, largest z."""
    print("\n| study | kind | calibration | slices | guard score | flagged | largest z |")
    print("|---|---|---|---:|---:|---|---|")
    for r in rows:
        print(
            f"| {r['name']} | {r['kind']} | {r['calibration']} | {r['slices']} | "
            f"{r['study_score']:.1f} | {'yes' if r['flagged'] else 'no'} | {r['why']} |"
        )


if __name__ == "__main__":
    sys.exit(main())
