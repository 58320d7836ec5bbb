"""VAE anomaly detection on held-out CT: synthetic lesions (pixel and slice AUROC), a real tumour.

Measures, in one run, with the shipped VAE (or ``--weights``):

* **Synthetic lesions** (``ctpipe.anomaly.RandomLesions``: one per slice, 10-30 mm across,
  30-80 HU darker or brighter, inside soft tissue) inserted into the normal-dose slices the
  model never saw: AAPM patient L192 (D45 and B30 kernels) and slices 45-74 of the pancreas
  series (the held-out data of ``workflows/training/vae_ct128_cpu.yaml``; the script
  refuses sources the model's training config does not hold out).
  - pixel AUROC: anomaly map at every body pixel of the lesioned slices, lesion vs not;
  - slice AUROC: each slice with and without its lesion, scored by the negative ELBO and
    by the 99th percentile of the map in the body.
  A non-learned reference is scored on the same data: ``|x - median(x)|`` on the same
  grid (a 5 x 5 median, 15 mm), i.e. how far a pixel stands out from its neighbourhood.
* **Real tumour**: the lung CT of ``radiomics_lung`` with its tumour label: pixel AUROC of
  the map on the tumour slices (tumour vs other body pixels) and the rank of the tumour
  slices by negative ELBO among all slices.
* **Speed**: seconds per slice of ``anomaly_volume`` with 1 and 4 posterior draws.

Run from the repository root with the virtual environment active:

    python benchmarks/bench_anomaly.py [--weights CKPT] [--samples 4] [--seed 0] [--json OUT]
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

#: Held-out evaluation series: (name, path under DATA, slices or None for all).
HELD_OUT = (
    ("L192 D45", "aapm_ldct_pairs/L192/full_3mm_D45", None),
    ("L192 B30", "aapm_ldct_pairs/L192/full_3mm_B30", None),
    ("pancreas 45-74", "pancreas_ct_series", (45, 75)),
)


def check_held_out(model, path: Path, slices) -> None:
    """Refuse a source that the model's training config does not list as held out."""
    data = model.checkpoint_record.get("config", {}).get("data")
    if not data:
        return  # a model without its training config: nothing to check against
    resolved = path.resolve()
    for source in data["holdout"]:
        held = Path(source["path"])
        held = (held if held.is_absolute() else REPO / held).resolve()
        if held != resolved and held not in resolved.parents:
            continue
        span = source.get("slices")
        if span is None or (slices is not None and span[0] <= slices[0] and slices[1] <= span[1]):
            return
    sys.exit(f"{path} {slices or ''} is not held out by the model's training config")


def median_reference(hu, spacing, grid):
    """|x - median_5x5(x)| on the model's grid, back on the input grid; and the scored pixels
    (body inside the grid's field of view, as for the VAE)."""
    from scipy.ndimage import median_filter

    from ctpipe.body_mask import body_bbox_centre, body_mask

    body = body_mask(hu)
    images, placement = grid.to_grid(hu, spacing[:2], body_bbox_centre(body))
    deviation = np.abs(images[:, 0] - median_filter(images[:, 0], size=(1, 5, 5)))
    out = grid.from_grid(deviation * grid.window_width, placement)
    fov = placement.fov(grid.size)
    out[~body] = 0.0
    out[~fov] = 0.0
    return out, body & fov[:, :, None]


def lesion_benchmark(model, args) -> dict:
    from ctpipe.anomaly import RandomLesions, auroc, lesion_trial, summarise_trials
    from ctpipe.anomaly.lesions import insert_lesions
    from ctpipe.training.vae.data import read_series
    from ctpipe.vae_generate import model_grid

    grid = model_grid(model)
    trials, reference = [], {"pixel_scores": [], "pixel_labels": [], "clean": [], "lesion": []}
    for name, relative, slices in HELD_OUT:
        path = DATA / relative
        if not path.exists():
            sys.exit(f"benchmark data not found: {path} (set CTPIPE_SHARED_DATA)")
        check_held_out(model, path, slices)
        hu, spacing = read_series(path)
        chosen = list(range(*slices)) if slices else list(range(hu.shape[2]))
        generator = RandomLesions(seed=args.seed + len(trials))
        trial = lesion_trial(
            hu,
            spacing,
            model,
            generator,
            slices=chosen,
            name=name,
            samples=args.samples,
            seed=args.seed,
        )
        trials.append(trial)
        # the same lesions, scored by the median reference
        used = sorted({lesion.slice_index for lesion in trial.lesions})
        clean = hu[:, :, used]
        local = [_at(lesion, used.index(lesion.slice_index)) for lesion in trial.lesions]
        lesioned, mask = insert_lesions(clean, spacing, local)
        ref_clean, _ = median_reference(clean, spacing, grid)
        ref_lesion, scored = median_reference(lesioned, spacing, grid)
        reference["pixel_scores"].append(ref_lesion[scored])
        reference["pixel_labels"].append(mask[scored])
        reference["clean"].append(_p99(ref_clean, scored))
        reference["lesion"].append(_p99(ref_lesion, scored))
        print(f"{name}: {len(trial.lesions)} lesioned slices", flush=True)
    summary = summarise_trials(trials)
    clean, lesion = np.concatenate(reference["clean"]), np.concatenate(reference["lesion"])
    summary["median_reference"] = {
        "pixel_auroc": auroc(
            np.concatenate(reference["pixel_scores"]), np.concatenate(reference["pixel_labels"])
        ),
        "slice_auroc_p99": auroc(
            np.r_[clean, lesion], np.r_[np.zeros(clean.size), np.ones(lesion.size)]
        ),
    }
    summary["lesion_settings"] = RandomLesions(seed=args.seed).settings()
    return summary


def tumour_benchmark(model, args) -> dict:
    """The real lung tumour of radiomics_lung (NRRD, read with SimpleITK)."""
    import SimpleITK as sitk

    from ctpipe.anomaly import anomaly_volume, auroc

    folder = DATA / "radiomics_lung"
    if not folder.is_dir():
        return {"skipped": f"{folder} is absent"}
    image = sitk.ReadImage(str(folder / "lung1_image.nrrd"))
    label = sitk.ReadImage(str(folder / "lung1_label.nrrd"))
    hu = sitk.GetArrayFromImage(image).transpose(2, 1, 0).astype(np.float32)  # (i, j, k)
    tumour = sitk.GetArrayFromImage(label).transpose(2, 1, 0) > 0
    spacing = image.GetSpacing()
    result = anomaly_volume(hu, model, spacing=spacing, samples=args.samples, seed=args.seed)
    slices = np.flatnonzero(tumour.any(axis=(0, 1)))
    scored = (result.body & result.fov[:, :, None])[:, :, slices]
    map_on = result.map_hu[:, :, slices][scored]
    labels_on = tumour[:, :, slices][scored]
    order = np.argsort(-result.neg_elbo)
    ranks = [int(np.flatnonzero(order == k)[0]) + 1 for k in slices]
    has = np.zeros(hu.shape[2], bool)
    has[slices] = True
    return {
        "slices": int(hu.shape[2]),
        "tumour_slices": [int(k) for k in slices],
        "tumour_voxels": int(tumour.sum()),
        "pixel_auroc_tumour_slices": auroc(map_on, labels_on),
        "tumour_map_mean_hu": float(map_on[labels_on].mean()),
        "body_map_mean_hu": float(map_on[~labels_on].mean()),
        "neg_elbo_rank_of_tumour_slices": ranks,
        "slice_auroc_neg_elbo": auroc(result.neg_elbo, has),
    }


def speed_benchmark(model) -> dict:
    from ctpipe.anomaly import anomaly_volume
    from ctpipe.training.vae.data import read_series

    hu, spacing = read_series(DATA / "pancreas_ct_series")
    hu = hu[:, :, 45:65]
    times = {}
    for samples in (1, 4):
        anomaly_volume(hu[:, :, :2], model, spacing=spacing, samples=samples)  # warm-up
        started = time.perf_counter()
        anomaly_volume(hu, model, spacing=spacing, samples=samples)
        times[samples] = (time.perf_counter() - started) / hu.shape[2]
    return {
        "seconds_per_slice_1_draw": times[1],
        "seconds_per_slice_4_draws": times[4],
        "ratio_4_to_1": times[4] / times[1],
    }


def main() -> None:
    import torch

    from ctpipe.checkpoints.vae import load_vae
    from ctpipe.weights import load_default_vae

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="VAE checkpoint (default: the shipped model)")
    parser.add_argument("--samples", type=int, default=4, help="posterior draws per slice")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    model = load_vae(args.weights) if args.weights else load_default_vae()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )
    figures = {
        "model": args.weights or "ctpipe/weights/vae_ct128_cpu.pt",
        "samples": args.samples,
        "seed": args.seed,
        "synthetic_lesions": lesion_benchmark(model, args),
        "lung_tumour": tumour_benchmark(model, args),
        "speed": speed_benchmark(model),
    }
    print(json.dumps(figures, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")


def _at(lesion, k):
    from dataclasses import replace

    return replace(lesion, slice_index=k)


def _p99(map_hu: np.ndarray, body: np.ndarray) -> np.ndarray:
    return np.array(
        [
            np.percentile(map_hu[:, :, k][body[:, :, k]], 99) if body[:, :, k].any() else 0.0
            for k in range(map_hu.shape[2])
        ]
    )


if __name__ == "__main__":
    main()
