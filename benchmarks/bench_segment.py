"""Per-class Dice and HD95 of a segmenter on the shared labelled CT, masks aligned by geometry.

Cases (from ``../shared/data``):

* **dcmqi_ct3slice** (the test set, never trained on): 3 GE slices (512 x 512, 0.81 mm,
  1 mm apart) with manual-looking liver and thoracic spine masks (``liver_seg.nrrd``
  value 1, ``spine_seg.nrrd`` value 2) and the DICOM Segmentation ``liver_SEG.dcm``. The
  masks are read with SimpleITK/highdicom and resampled onto the CT grid by their
  geometry (:func:`ctpipe.evaluate.segmentation.mask_on_grid`); the DICOM-SEG liver is
  scored too, as a check that both references agree.
* **totalseg A / B**: TotalSegmentator's example cases with its v2 labels (a model's
  output) mapped to the class map by the training config's ``label_values``. Both are
  the shipped model's training data: their scores show how well it fits what it saw.

For each case and class: Dice (MONAI ``DiceMetric``; the NumPy Dice is computed too and
must agree to 1e-6), HD95 in mm (MONAI), reference and predicted volumes (mL), and the
segmentation time.

Run from the repository root with the virtual environment active:

    python benchmarks/bench_segment.py [--weights CKPT] [--json OUT]
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

#: TotalSegmentator v2 label values of each class of the default class map.
TOTALSEG_VALUES = {
    "liver": (5,),
    "spleen": (1,),
    "kidney_right": (2,),
    "kidney_left": (3,),
    "spine": tuple(range(26, 51)),
    "lung_right": (12, 13, 14),
    "lung_left": (10, 11),
}


def cases() -> list[dict]:
    """The evaluation cases: CT path, reference masks, and whether it was trained on."""
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
            "extra": {"liver (DICOM-SEG)": ("liver", dcmqi / "liver_SEG.dcm", (1,))},
        },
        {
            "name": "totalseg A (training case)",
            "image": totalseg / "example_ct_sm.nii.gz",
            "masks": {n: (totalseg / "example_seg.nii.gz", v) for n, v in TOTALSEG_VALUES.items()},
        },
        {
            "name": "totalseg B (training case)",
            "image": totalseg / "example_ct_dicom",
            "masks": {
                n: (totalseg / "example_seg_dicom.nii.gz", v) for n, v in TOTALSEG_VALUES.items()
            },
        },
    ]


def score_case(case: dict, model, config) -> list[dict]:
    from ctpipe.evaluate.segmentation import (
        dice_per_class,
        hd95_per_class,
        mask_on_grid,
        numpy_dice,
        reference_labels,
    )
    from ctpipe.io.reader import load_ct
    from ctpipe.segment import segment_volume

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the NRRD/SEG files beside the slices
        image = load_ct(case["image"])
    class_map = dict(config.class_map)
    reference = reference_labels(case["masks"], image, class_map)
    start = time.perf_counter()
    labels = segment_volume(
        image, model, config=config, sw_batch_size=8, **model.checkpoint_record["inference"]
    ).numpy()
    seconds = time.perf_counter() - start
    affine = image.affine.numpy()
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    voxel_ml = float(np.prod(spacing)) / 1000
    scored = {
        name: class_map[name] for name in case["masks"] if (reference == class_map[name]).any()
    }
    dice = dice_per_class(labels, reference, scored)
    hd95 = hd95_per_class(labels, reference, scored, spacing)
    rows = []
    for name, value in scored.items():
        check = numpy_dice(labels == value, reference == value)
        if abs(check - dice[name]) > 1e-6:
            raise AssertionError(f"{name}: MONAI Dice {dice[name]} != NumPy Dice {check}")
        rows.append(
            {
                "case": case["name"],
                "class": name,
                "reference": "mask",
                "dice": dice[name],
                "hd95_mm": hd95[name],
                "reference_ml": float((reference == value).sum() * voxel_ml),
                "predicted_ml": float((labels == value).sum() * voxel_ml),
                "seconds": seconds,
            }
        )
    for label, (name, path, values) in case.get("extra", {}).items():
        mask = np.isin(mask_on_grid(path, image), values)
        value = class_map[name]
        rows.append(
            {
                "case": case["name"],
                "class": label,
                "reference": path.name,
                "dice": numpy_dice(labels == value, mask),
                "hd95_mm": hd95_per_class(labels == value, mask, {"x": 1}, spacing)["x"],
                "reference_ml": float(mask.sum() * voxel_ml),
                "predicted_ml": float((labels == value).sum() * voxel_ml),
                "seconds": seconds,
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| case | class | Dice | HD95 (mm) | reference (mL) | predicted (mL) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['class']} | {r['dice']:.3f} | {r['hd95_mm']:.1f} | "
            f"{r['reference_ml']:.1f} | {r['predicted_ml']:.1f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="segmenter checkpoint (default: the shipped model)")
    parser.add_argument("--json", help="also write the rows as JSON")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    if args.weights:
        from ctpipe.checkpoints.segmenter import load_segmenter

        model, config = load_segmenter(args.weights)
    else:
        from ctpipe.weights import load_default_segmenter

        model, config = load_default_segmenter()
    rows = []
    for case in cases():
        rows += score_case(case, model, config)
        print(f"{case['name']}: {rows[-1]['seconds']:.1f} s", file=sys.stderr)
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} "
        f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}"
    )
    print(f"date: {time.strftime('%Y-%m-%d')}")
    print(f"weights: {args.weights or 'shipped default'}")
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
