"""Denoise-then-segment: Dice of the shipped segmenter at full, quarter and denoised dose.

For each case, the shipped segmenter (or ``--weights``) segments three versions of the
same CT, and each result is scored against the case's reference labels (per class, Dice
with MONAI's ``DiceMetric``):

1. **full dose**: the CT as acquired;
2. **quarter dose**: quarter dose simulated in the projection domain
   (:class:`ctpipe.simulate.LowDoseSimulator`, dose fraction 0.25, ``--seed``);
3. **denoised**: the quarter-dose CT denoised by the shipped RED-CNN
   (:func:`ctpipe.weights.load_default_denoiser`, :func:`ctpipe.inference.denoise_volume`).

It also reports how much the quarter-dose and denoised labels differ from the full-dose
labels (Dice against the full-dose prediction), which isolates the effect of the noise
from the model's own errors.

Cases: ``dcmqi_ct3slice`` (3 GE slices, liver and spine masks; never trained on) and
TotalSegmentator's DICOM case ``example_ct_dicom`` (20 slices; one of the segmenter's two
training cases, so its full-dose Dice is optimistic).

Run from the repository root with the virtual environment active:

    python benchmarks/bench_denoise_segment.py [--weights CKPT] [--seed 0] [--json OUT]
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
DATA = Path(os.environ.get("CTPIPE_SHARED_DATA", REPO.parent / "shared" / "data"))

from bench_segment import TOTALSEG_VALUES  # noqa: E402  (benchmarks/ is the script's folder)

DOSE = 0.25


def cases() -> list[dict]:
    dcmqi = DATA / "dcmqi_ct3slice"
    totalseg = DATA / "totalseg_example"
    return [
        {
            "name": "dcmqi_ct3slice (test)",
            "image": dcmqi,
            "masks": {
                "liver": (dcmqi / "liver_seg.nrrd", (1,)),
                "spine": (dcmqi / "spine_seg.nrrd", (2,)),
            },
        },
        {
            "name": "totalseg B (training case)",
            "image": totalseg / "example_ct_dicom",
            "masks": {
                name: (totalseg / "example_seg_dicom.nii.gz", TOTALSEG_VALUES[name])
                for name in ("liver", "spleen", "spine")
            },
        },
    ]


def run_case(case: dict, segmenter, config, denoiser, seed: int) -> list[dict]:
    from monai.data import MetaTensor

    from ctpipe.evaluate.segmentation import dice_per_class, reference_labels
    from ctpipe.inference import denoise_volume
    from ctpipe.io.reader import load_ct
    from ctpipe.segment import segment_volume
    from ctpipe.simulate import LowDoseSimulator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the NRRD/SEG files beside the slices
        full = load_ct(case["image"])
    class_map = dict(config.class_map)
    reference = reference_labels(case["masks"], full, class_map)
    scored = {name: class_map[name] for name in case["masks"]}
    spacing = [float(s) for s in np.linalg.norm(full.affine.numpy()[:3, :3], axis=0)]
    start = time.perf_counter()
    quarter_hu = LowDoseSimulator(dose_fraction=DOSE).simulate_volume(full.numpy(), spacing, seed)
    simulate_s = time.perf_counter() - start
    quarter = MetaTensor(quarter_hu, affine=full.affine.clone(), meta=dict(full.meta))
    start = time.perf_counter()
    denoised = denoise_volume(quarter, denoiser, batch_size=4)
    denoise_s = time.perf_counter() - start
    settings = segmenter.checkpoint_record["inference"]
    labels = {
        version: segment_volume(image, segmenter, config=config, sw_batch_size=8, **settings)
        .numpy()
        .astype(np.uint8)
        for version, image in (
            ("full dose", full),
            ("quarter dose", quarter),
            ("denoised", denoised),
        )
    }
    noise = {
        version: float(np.std((image.numpy() - full.numpy())[reference > 0]))
        for version, image in (("quarter dose", quarter), ("denoised", denoised))
    }
    rows = []
    for version, predicted in labels.items():
        against_reference = dice_per_class(predicted, reference, scored)
        against_full = dice_per_class(predicted, labels["full dose"], scored)
        for name in scored:
            rows.append(
                {
                    "case": case["name"],
                    "version": version,
                    "class": name,
                    "dice": against_reference[name],
                    "dice_vs_full_dose_labels": against_full[name],
                    "noise_std_hu_in_organs": noise.get(version, 0.0),
                    "simulate_s": simulate_s,
                    "denoise_s": denoise_s,
                }
            )
    return rows


def table(rows: list[dict]) -> str:
    classes = list(dict.fromkeys((r["case"], r["class"]) for r in rows))
    versions = list(dict.fromkeys(r["version"] for r in rows))
    lines = [
        "| case | class | "
        + " | ".join(f"Dice {v}" for v in versions)
        + " | "
        + " | ".join(f"agreement {v}" for v in versions[1:])
        + " |",
        "|---|---|" + "---:|" * (2 * len(versions) - 1),
    ]
    for case, name in classes:
        cells = {r["version"]: r for r in rows if (r["case"], r["class"]) == (case, name)}
        lines.append(
            f"| {case} | {name} | "
            + " | ".join(f"{cells[v]['dice']:.3f}" for v in versions)
            + " | "
            + " | ".join(f"{cells[v]['dice_vs_full_dose_labels']:.3f}" for v in versions[1:])
            + " |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="segmenter checkpoint (default: the shipped model)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated noise")
    parser.add_argument("--json", help="also write the rows as JSON")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    from ctpipe.weights import load_default_denoiser

    if args.weights:
        from ctpipe.checkpoints.segmenter import load_segmenter

        segmenter, config = load_segmenter(args.weights)
    else:
        from ctpipe.weights import load_default_segmenter

        segmenter, config = load_default_segmenter()
    denoiser = load_default_denoiser()
    rows = []
    for case in cases():
        rows += run_case(case, segmenter, config, denoiser, args.seed)
        r = rows[-1]
        print(
            f"{case['name']}: simulate {r['simulate_s']:.1f} s, denoise {r['denoise_s']:.1f} s",
            file=sys.stderr,
        )
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, torch threads "
        f"{torch.get_num_threads()}"
    )
    print(f"date: {time.strftime('%Y-%m-%d')}; dose fraction {DOSE}, seed {args.seed}")
    print(table(rows))
    noise = {(r["case"], r["version"]): r["noise_std_hu_in_organs"] for r in rows}
    for (case, version), std in noise.items():
        if version != "full dose":
            print(f"{case}: {version} minus full dose, std in the reference organs {std:.1f} HU")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
