"""GAN inpainting on held-out CT: faster starts, slice sequences, and classical baselines.

Three measurements in one run, on data never used to train the shipped DCGAN (AAPM
patient L192 and pancreas slices 100-133), with seeded masks (box, strokes, streaks):

A. **Pool vs random start** (Lahiri et al.: about 5x). 64 x 64 tiles cut around body
   pixels of 23 held-out slices, one mask of each kind per tile. The same latent search
   (Yeh et al.; Adam with a ``--warmup``-step learning-rate ramp, ``--iterations`` steps,
   no early stop) runs from random latents and from the nearest of ``--pool`` samples.
   Per case, the *target* is the masked-region error (MAE in HU, generator output vs
   truth, both clipped to the model window) that the random start reaches after all
   steps, plus 5 %. Reported: the steps and the wall time each start needs to reach it
   (pool matching time included), the same with the context loss as the criterion, and
   the steps to reach coarser and finer levels set by either start (a level curve).
B. **Slice sequence vs each slice from scratch** (Lahiri et al.: about 80x on video).
   Pancreas slices ``--b-slices`` (default 100-131, 3 mm apart) with ``--b-masks``
   (default 3) seeded tube masks of each kind, each the same on every slice; steps,
   seconds and slices within target are summed over a kind's masks, errors and flicker
   averaged. *Scratch, run*: every slice from a random latent in one batch with the
   search's own stopping rule (what ``ctpipe inpaint --mode independent --init random``
   does). *Scratch, oracle*: the same from all ``--iterations`` steps traced, each
   slice's cost taken (to its favour) as the steps until it first reaches its target
   (as in A), which no real run knows. *Sequence*: a key slice searched in full from its
   pool match, then groups of W = 4 slices, each from the previous group's latent with
   group consistency, either searched in full (the earlier design) or by ``--follow``
   steps. Reported: slice-steps and wall time of each, the speed-ups against both
   scratch counts, the error against the scratch targets, and flicker: the mean absolute
   HU change of the filled pixels between neighbouring slices (the truth's own flicker
   for reference).
C. **Quality vs classical inpainting**: the full ``inpaint_volume`` (pool start, search
   with its early stop, Poisson and plain blending) against scikit-image biharmonic and
   OpenCV Telea / Navier-Stokes on the same 23 whole held-out slices and masks. PSNR and
   SSIM in the masked region only, in the model window [-1024, 1024] HU and in the
   soft-tissue window [-160, 240] HU.

Run from the repository root with the virtual environment active (about 30 minutes on 2
CPU cores):

    OMP_NUM_THREADS=1 python benchmarks/bench_inpaint.py [--iterations 1000] [--pool 2048]

The follow settings were chosen on training slices (``--parts B --b-slices 50:82``), not
on the held-out ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = Path(os.environ.get("CTPIPE_SHARED_DATA", REPO.parent / "shared" / "data"))
KINDS = ("box", "strokes", "streaks")
TOLERANCE = 1.05  # a target is the random start's final error plus 5 %
SOFT_TISSUE = (-160.0, 240.0)
BODY_HU = -500.0


# --- data ------------------------------------------------------------------------------------


def held_out_slices() -> list[tuple[str, np.ndarray]]:
    """The 11 L192 full-dose slices and every 3rd pancreas slice of 100-133, in HU (i, j)."""
    from ctpipe.io.reader import load_ct

    slices = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kernel in ("D45", "B30"):
            volume = np.asarray(
                load_ct(
                    DATA / "aapm_ldct_pairs" / "L192" / f"full_3mm_{kernel}", allow_irregular=True
                )
            )
            slices += [(f"L192 {kernel} k{k}", volume[:, :, k]) for k in range(volume.shape[2])]
        pancreas = np.asarray(load_ct(DATA / "pancreas_ct_series"), dtype=np.float32)
    slices += [(f"pancreas k{k}", pancreas[:, :, k]) for k in range(100, 134, 3)]
    return slices, pancreas


def body_region(image: np.ndarray) -> np.ndarray:
    from scipy.ndimage import binary_erosion

    return binary_erosion(image > BODY_HU, iterations=12)


# --- A: pool vs random start -----------------------------------------------------------------


def tile_cases(slices, size: int, seed: int):
    """One 64 x 64 tile per slice and kind: (truth in [-1, 1], known mask)."""
    from ctpipe.inpaint.mask_generators import generate_mask

    rng = np.random.default_rng(seed)
    truths, knowns, names = [], [], []
    centre = np.zeros((size, size), bool)
    centre[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = True
    for n, (name, image) in enumerate(slices):
        body = body_region(image)
        candidates = np.argwhere(body)
        for m, kind in enumerate(KINDS):
            i, j = candidates[rng.integers(len(candidates))]
            i0 = int(np.clip(i - size // 2, 0, image.shape[0] - size))
            j0 = int(np.clip(j - size // 2, 0, image.shape[1] - size))
            hole, _ = generate_mask(kind, (size, size, 1), seed=seed + 100 * n + m, region=centre)
            truths.append(image[i0 : i0 + size, j0 : j0 + size])
            knowns.append(~hole[:, :, 0])
            names.append(f"{name} {kind}")
    return np.stack(truths), np.stack(knowns), names


def traced_search(gan, images, known, truth, z0, settings):
    """Run the search, recording per step the hole MAE (HU), context loss and time."""
    from ctpipe.inpaint.losses import context_loss

    scale = (gan.window[1] - gan.window[0]) / 2
    hole = 1.0 - known
    pixels = hole.flatten(1).sum(1)
    errors, contexts, times = [], [], []
    start = time.perf_counter()

    def record(step, z, generated):
        errors.append(((generated - truth).abs() * hole).flatten(1).sum(1) / pixels * scale)
        contexts.append(context_loss(generated, images, known))
        times.append(time.perf_counter() - start)

    from ctpipe.inpaint.search import latent_search

    with torch.no_grad():
        generated = gan.generator(z0)
        record(0, z0, generated)
        times[0] = 0.0
    result = latent_search(
        gan.generator, gan.discriminator, images, known, z0, settings, callback=record
    )
    return torch.stack(errors), torch.stack(contexts), np.array(times), result


def first_reach(trace: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """Per case, the first step whose value is <= target (len(trace) if never)."""
    hit = (trace <= target[None]).numpy()
    steps = np.where(hit.any(0), hit.argmax(0), len(trace))
    return steps


def part_a(gan, slices, pool, args) -> dict:
    from ctpipe.inpaint.init import nearest_latents
    from ctpipe.inpaint.search import SearchSettings
    from ctpipe.transforms import hu_to_tanh

    size = gan.generator.image_size
    truths, knowns, names = tile_cases(slices, size, args.seed)
    truth = torch.as_tensor(hu_to_tanh(truths, gan.window), dtype=torch.float32)[:, None]
    known = torch.as_tensor(knowns, dtype=torch.float32)[:, None]
    images = truth * known
    settings = SearchSettings(iterations=args.iterations, tolerance=0, warmup=args.warmup)
    z_random = torch.randn(
        len(names), gan.generator.latent_size, generator=torch.Generator().manual_seed(args.seed)
    )
    started = time.perf_counter()
    match = nearest_latents(pool, images, known)
    matching = time.perf_counter() - started
    err_r, ctx_r, t_r, _ = traced_search(gan, images, known, truth, z_random, settings)
    err_p, ctx_p, t_p, _ = traced_search(gan, images, known, truth, match.z, settings)
    target_err = err_r[-1] * TOLERANCE
    target_ctx = ctx_r[-1] * TOLERANCE
    out = {"cases": len(names), "matching_s": matching, "pool_s": pool.seconds}
    for label, (trace_r, trace_p, target) in {
        "masked-region MAE": (err_r, err_p, target_err),
        "context loss": (ctx_r, ctx_p, target_ctx),
    }.items():
        steps_r, steps_p = first_reach(trace_r, target), first_reach(trace_p, target)
        time_r = t_r[np.minimum(steps_r, len(t_r) - 1)]
        time_p = t_p[np.minimum(steps_p, len(t_p) - 1)] + matching
        out[label] = {
            "steps_random": steps_r,
            "steps_pool": steps_p,
            "never_pool": int((steps_p >= len(trace_p)).sum()),
            "seconds_random": time_r,
            "seconds_pool": time_p,
        }
    out["levels"] = level_curve(err_r, err_p, ctx_r, ctx_p)
    out["mae_random_final"] = err_r[-1].numpy()
    out["mae_pool_final"] = err_p[-1].numpy()
    out["mae_pool_start"] = err_p[0].numpy()
    out["mae_random_start"] = err_r[0].numpy()
    out["kinds"] = [n.rsplit(" ", 1)[1] for n in names]
    return out


def level_curve(err_r, err_p, ctx_r, ctx_p, after=(50, 100, 200, 500)) -> list[list]:
    """Steps of each start to reach a level, for coarse to fine levels, from both sides.

    A better start's speed-up depends on the level asked for, and on whose level it is:
    per tile, the level is the random start's best value after ``s`` steps (+5 %), the
    pool start's best value after ``s`` steps (+5 %), or the worse of the two final values
    (+5 %: a level both reach). Each row holds, for the masked-region MAE and the context
    loss, the mean and median steps of both starts and how many never reach it (counted
    as one more step than the run has).
    """
    best = {
        key: (np.minimum.accumulate(r.numpy(), 0), np.minimum.accumulate(p.numpy(), 0))
        for key, (r, p) in {"mae": (err_r, err_p), "ctx": (ctx_r, ctx_p)}.items()
    }
    last = len(err_r) - 1
    marks = [s for s in after if s < last] + [last]
    levels = [(f"random after {s}", lambda b, s=s: b[0][s]) for s in marks]
    levels += [(f"pool after {s}", lambda b, s=s: b[1][s]) for s in marks]
    levels.append(("worse final", lambda b: np.maximum(b[0][-1], b[1][-1])))
    rows = []
    for name, level in levels:
        row = [name]
        for key, (trace_r, trace_p) in {"mae": (err_r, err_p), "ctx": (ctx_r, ctx_p)}.items():
            target = torch.as_tensor(level(best[key]) * TOLERANCE)
            steps_r, steps_p = first_reach(trace_r, target), first_reach(trace_p, target)
            never = (int((steps_r > last).sum()), int((steps_p > last).sum()))
            row.append((steps_r, steps_p, never))
        rows.append(row)
    return rows


def table(header: list[str], rows: list[list[str]]) -> None:
    """Print a Markdown table (first column left-aligned, the others right-aligned)."""
    print("   | " + " | ".join(header) + " |")
    print("   |---|" + "---:|" * (len(header) - 1))
    for row in rows:
        print("   | " + " | ".join(row) + " |")


def ratio(slow: float, fast: float) -> str:
    """``slow / fast`` as ``"12.3x"``; with under one step for ``fast``, a bound (per step)."""
    return f"{slow / fast:.1f}x" if fast >= 1 else f">= {slow:.1f}x"


def report_a(a: dict) -> None:
    mae = {
        k: np.mean(a[f"mae_{k}"])
        for k in ("random_start", "random_final", "pool_start", "pool_final")
    }
    print(f"\nA. Pool vs random start: {a['cases']} tiles (64 x 64), one per slice and mask kind")
    print(f"   pool drawn once in {a['pool_s']:.2f} s; matching all tiles {a['matching_s']:.2f} s")
    print(
        f"   masked-region MAE (HU): random {mae['random_start']:.1f} -> "
        f"{mae['random_final']:.1f}; pool {mae['pool_start']:.1f} -> {mae['pool_final']:.1f}"
    )
    rows = []
    for label in ("masked-region MAE", "context loss"):
        r = a[label]
        steps_r, steps_p = r["steps_random"], r["steps_pool"]
        secs_r, secs_p = np.mean(r["seconds_random"]), np.mean(r["seconds_pool"])
        rows.append(
            [
                label,
                f"{np.median(steps_r):.0f} / {np.mean(steps_r):.0f}",
                f"{np.median(steps_p):.0f} / {np.mean(steps_p):.0f}",
                ratio(np.mean(steps_r), np.mean(steps_p)),
                f"{secs_r:.2f}",
                f"{secs_p:.2f}",
                f"{secs_r / max(secs_p, 1e-9):.1f}x",
                f"{r['never_pool']} of {a['cases']}",
            ]
        )
    header = [
        "criterion",
        "steps random (median / mean)",
        "steps pool (median / mean)",
        "speed-up steps (means)",
        "s random (mean)",
        "s pool (mean, matching incl.)",
        "speed-up time",
        "pool never reached",
    ]
    table(header, rows)
    print("   Steps to reach a level (+5 %): mean / median, random vs pool; never reached")
    rows = []
    for name, *cells in a["levels"]:
        row = [name]
        for steps_r, steps_p, (never_r, never_p) in cells:
            mean_r, mean_p = steps_r.mean(), steps_p.mean()
            med_r, med_p = np.median(steps_r), np.median(steps_p)
            row.append(
                f"{mean_r:.0f} vs {mean_p:.0f} ({ratio(mean_r, mean_p)}) / {med_r:.0f} vs "
                f"{med_p:.0f} ({ratio(med_r, med_p)}); {never_r} / {never_p}"
            )
        rows.append(row)
    table(["level", "masked-region MAE", "context loss"], rows)


# --- B: sequence vs scratch ------------------------------------------------------------------


def tube_case(gan, volume: np.ndarray, kind: str, seed: int):
    """One mask of ``kind``, the same on every slice, and the 64 x 64 tile around it.

    ``None`` when the mask does not fit one full-resolution tile.
    """
    from ctpipe.inpaint.mask_generators import generate_mask
    from ctpipe.inpaint.tiles import plan_tiles
    from ctpipe.transforms import hu_to_tanh

    body = body_region(volume[:, :, volume.shape[2] // 2])
    # one connected shape that fits one 64 x 64 tile (a single, short stroke)
    options = (
        {"strokes": (1, 1), "vertices": (3, 4), "step": (5.0, 8.0)} if kind == "strokes" else {}
    )
    mask, _ = generate_mask(kind, volume.shape, seed=seed, region=body, **options)
    tiles = plan_tiles(mask[:, :, 0], patch=gan.generator.image_size, margin=8)
    if len(tiles) != 1 or tiles[0].scale != 1:
        return None  # part B needs masks that fit one full-resolution tile
    (tile,) = tiles
    crops = np.moveaxis(volume[tile.window[0], tile.window[1], :], 2, 0)
    hole = np.moveaxis(mask[tile.window[0], tile.window[1], :], 2, 0)
    truth = torch.as_tensor(hu_to_tanh(crops, gan.window), dtype=torch.float32)[:, None]
    known = torch.as_tensor(~hole, dtype=torch.float32)[:, None]
    return crops, hole, truth, known, tile, mask


def hole_mae(
    generated: torch.Tensor, truth: torch.Tensor, known: torch.Tensor, gan
) -> torch.Tensor:
    """Per slice, the mean absolute error (HU, in the window) over the hole."""
    scale = (gan.window[1] - gan.window[0]) / 2
    hole = 1.0 - known
    return ((generated - truth).abs() * hole).flatten(1).sum(1) / hole.flatten(1).sum(1) * scale


def part_b(gan, pancreas, pool, args) -> list[dict]:
    """Per mask kind, ``--b-masks`` tube masks (seeded), their results pooled."""
    from ctpipe.inpaint.search import SearchSettings

    first, stop = (int(v) for v in args.b_slices.split(":"))
    volume = pancreas[:, :, first:stop]
    search = SearchSettings(iterations=args.iterations, warmup=args.warmup)
    rows = []
    for m, kind in enumerate(KINDS):
        seeds = [args.seed + 7 + m + 100 * n for n in range(20 * args.b_masks)]
        fitting = (case for case in (tube_case(gan, volume, kind, s) for s in seeds) if case)
        cases = [
            b_case(gan, volume, case, pool, search, args, args.seed + m)
            for _, case in zip(range(args.b_masks), fitting, strict=False)
        ]
        if len(cases) < args.b_masks:
            sys.exit(f"part B: fewer than {args.b_masks} {kind} masks fit one tile")
        rows.append(pool_cases(kind, cases))
    return rows


def b_case(gan, volume, case, pool, search, args, seed: int) -> dict:
    """Scratch (run and oracle) and sequences on one tube mask."""
    from ctpipe.baselines.inpaint_classical import inpaint_classical
    from ctpipe.inpaint.init import nearest_latents
    from ctpipe.inpaint.search import SearchSettings, latent_search
    from ctpipe.inpaint.sequence import inpaint_sequence

    crops, hole, truth, known, tile, mask = case
    images, count = truth * known, truth.shape[0]
    z0 = torch.randn(
        count, gan.generator.latent_size, generator=torch.Generator().manual_seed(seed)
    )
    # scratch, as a run: every slice from a random latent in one batch, the search's
    # own stopping rule (what `ctpipe inpaint --mode independent --init random` does)
    run = latent_search(gan.generator, gan.discriminator, images, known, z0, search)
    # scratch, oracle: all steps traced; each slice's cost is the steps until it first
    # reaches its target (its error after all steps, plus 5 %), which no real run knows
    err_s, _, t_s, scratch = traced_search(
        gan, images, known, truth, z0, dataclasses.replace(search, tolerance=0)
    )
    target = err_s[-1] * TOLERANCE
    oracle_steps = first_reach(err_s, target)
    per_slice_step = t_s[-1] / (len(t_s) - 1) / count  # seconds per slice-step, batched
    classical = inpaint_classical(
        volume[tile.window[0], tile.window[1], :],
        mask[tile.window[0], tile.window[1], :],
        "biharmonic",
    )
    entries = {
        "scratch (oracle)": {
            "steps": int(oracle_steps.sum()),
            "seconds": float(oracle_steps.sum() * per_slice_step),
            "mae": err_s[-1],
            "generated": scratch.generated,
        },
        "scratch (run)": {
            "steps": run.iterations * count,
            "seconds": run.seconds,
            "mae": hole_mae(run.generated, truth, known, gan),
            "generated": run.generated,
        },
    }
    follows = {"groups in full": None} | {
        f"follow {n}": SearchSettings(iterations=n, tolerance=0, warmup=0, lr=args.follow_lr)
        for n in args.follow
    }
    for label, follow in follows.items():
        started = time.perf_counter()
        key = nearest_latents(pool, images[:1], known[:1]).z
        sequence = inpaint_sequence(
            gan.generator,
            gan.discriminator,
            images,
            known,
            key,
            search,
            group_size=4,
            consistency_weight=0.5,
            first_group=4 if follow is None else 1,
            follow=follow,
        )
        entries[f"sequence, {label}"] = {
            "steps": sum(size * steps for _, size, steps in sequence.groups),
            "seconds": time.perf_counter() - started,
            "mae": hole_mae(sequence.generated, truth, known, gan),
            "generated": sequence.generated,
            "key_steps": sequence.groups[0][2],
        }
    for entry in entries.values():
        entry["within"] = int((entry["mae"] <= target).sum())
        entry["mae"] = float(entry["mae"].mean())
        entry["flicker"] = flicker(crops, hole, filled_hu(entry.pop("generated"), gan.window))
    return {
        "slices": count,
        "hole_pixels": int(hole[0].sum()),
        "entries": entries,
        "flicker_truth": flicker(crops, hole, crops),
        "flicker_biharmonic": flicker(crops, hole, np.moveaxis(classical, 2, 0)),
    }


def pool_cases(kind: str, cases: list[dict]) -> dict:
    """One row per kind: steps, seconds and slices within target summed; the rest averaged."""
    entries = {}
    for label in cases[0]["entries"]:
        values = [c["entries"][label] for c in cases]
        entries[label] = {
            "steps": sum(v["steps"] for v in values),
            "seconds": sum(v["seconds"] for v in values),
            "within": sum(v["within"] for v in values),
            "mae": float(np.mean([v["mae"] for v in values])),
            "flicker": float(np.mean([v["flicker"] for v in values])),
        }
        if "key_steps" in values[0]:
            entries[label]["key_steps"] = [v["key_steps"] for v in values]
    return {
        "kind": kind,
        "masks": len(cases),
        "slices": sum(c["slices"] for c in cases),
        "hole_pixels": [c["hole_pixels"] for c in cases],
        "entries": entries,
        "flicker_truth": float(np.mean([c["flicker_truth"] for c in cases])),
        "flicker_biharmonic": float(np.mean([c["flicker_biharmonic"] for c in cases])),
    }


def filled_hu(generated: torch.Tensor, window) -> np.ndarray:
    from ctpipe.transforms import tanh_to_hu

    return tanh_to_hu(generated[:, 0].numpy().astype(np.float64), window)


def flicker(truth: np.ndarray, hole: np.ndarray, values: np.ndarray) -> float:
    """Mean |x_k - x_(k-1)| over pixels in the hole of both slices, in HU."""
    both = hole[1:] & hole[:-1]
    clipped = np.clip(values, -1024, 1024)
    return float(np.abs(clipped[1:] - clipped[:-1])[both].mean())


def report_b(rows: list[dict], args) -> None:
    print(
        f"\nB. Slice sequence vs each slice from scratch: pancreas slices {args.b_slices}, "
        "tube masks; speed-ups against the oracle count and against the run"
    )
    for r in rows:
        print(
            f"\n   {r['kind']}: {r['masks']} masks x {r['slices'] // r['masks']} slices, "
            f"{r['hole_pixels']} hole pixels; flicker "
            f"(HU) of the truth {r['flicker_truth']:.1f}, "
            f"of biharmonic {r['flicker_biharmonic']:.1f}"
        )
        oracle, run = r["entries"]["scratch (oracle)"], r["entries"]["scratch (run)"]
        lines = []
        for label, e in r["entries"].items():
            lines.append(
                [
                    label + (f" (key slice {e['key_steps']} steps)" if "key_steps" in e else ""),
                    f"{e['steps']}",
                    f"{e['seconds']:.1f}",
                    f"{oracle['steps'] / e['steps']:.1f}x / {run['steps'] / e['steps']:.1f}x",
                    f"{oracle['seconds'] / e['seconds']:.1f}x / "
                    f"{run['seconds'] / e['seconds']:.1f}x",
                    f"{e['mae']:.1f}",
                    f"{e['within']} of {r['slices']}",
                    f"{e['flicker']:.1f}",
                ]
            )
        header = ["method", "slice-steps", "s", "speed-up steps", "speed-up time"]
        table([*header, "MAE HU", "slices within target", "flicker HU"], lines)


# --- C: quality vs classical -----------------------------------------------------------------


def masked_metrics(
    truth: np.ndarray, result: np.ndarray, hole: np.ndarray, window
) -> tuple[float, float]:
    """PSNR and SSIM over the hole's pixels, both clipped to ``window`` and scaled to [0, 1]."""
    from skimage.metrics import structural_similarity

    from ctpipe.transforms import window as to_window

    a, b = to_window(truth.astype(np.float64), window), to_window(result.astype(np.float64), window)
    mse = float(np.mean((a[hole] - b[hole]) ** 2))
    psnr = 10 * np.log10(1.0 / mse) if mse > 0 else float("inf")
    rows, cols = np.nonzero(hole)
    box = (
        slice(max(rows.min() - 7, 0), rows.max() + 8),
        slice(max(cols.min() - 7, 0), cols.max() + 8),
    )
    _, ssim_map = structural_similarity(a[box], b[box], data_range=1.0, full=True)
    return psnr, float(ssim_map[hole[box]].mean())


def part_c(gan, slices, pool, args) -> dict:
    from ctpipe.baselines.inpaint_classical import inpaint_classical_slice
    from ctpipe.inpaint.mask_generators import generate_mask
    from ctpipe.inpaint.volume import InpaintSettings, inpaint_volume

    methods = ("gan poisson", "gan plain", "biharmonic", "telea", "ns")
    scores = {m: {k: [] for k in KINDS} for m in methods}
    seconds = {m: 0.0 for m in methods}
    count = 0
    steps = []
    for n, (_, image) in enumerate(slices):
        body = body_region(image)
        for m, kind in enumerate(KINDS):
            hole, _ = generate_mask(
                kind, (*image.shape, 1), seed=args.seed + 1000 + 10 * n + m, region=body
            )
            hole = hole[:, :, 0]
            count += 1
            outputs = {}
            for blend in ("poisson", "plain"):
                started = time.perf_counter()
                result = inpaint_volume(
                    image[:, :, None],
                    hole[:, :, None],
                    gan.generator,
                    gan.discriminator,
                    window=gan.window,
                    settings=InpaintSettings(mode="independent", blend=blend, seed=args.seed),
                    pool=pool,
                )
                seconds[f"gan {blend}"] += time.perf_counter() - started
                outputs[f"gan {blend}"] = result.hu[:, :, 0]
                if blend == "poisson":
                    steps.append(sum(s.iterations for s in result.slices))
            for method in ("biharmonic", "telea", "ns"):
                started = time.perf_counter()
                outputs[method] = inpaint_classical_slice(image, hole, method)
                seconds[method] += time.perf_counter() - started
            for method, out in outputs.items():
                assert np.array_equal(out[~hole], image[~hole].astype(np.float32))
                scores[method][kind].append(
                    (
                        *masked_metrics(image, out, hole, gan.window),
                        *masked_metrics(image, out, hole, SOFT_TISSUE),
                        float(np.abs(out[hole] - image[hole]).mean()),
                    )
                )
    return {"scores": scores, "seconds": seconds, "cases": count, "steps": steps}


def report_c(c: dict, window) -> None:
    print(f"\nC. Quality in the masked region: {c['cases']} cases (whole slices, 3 mask kinds)")
    w = f"[{window[0]:g}, {window[1]:g}]"
    rows = []
    for method, by_kind in c["scores"].items():
        mean = np.array([v for kind in KINDS for v in by_kind[kind]]).mean(axis=0)
        rows.append(
            [method, f"{mean[0]:.2f}", f"{mean[1]:.3f}", f"{mean[2]:.2f}", f"{mean[3]:.3f}"]
            + [f"{mean[4]:.1f}", f"{c['seconds'][method] / c['cases']:.2f}"]
        )
    header = [f"method (mean of {c['cases']})", f"PSNR {w}", f"SSIM {w}", "PSNR [-160, 240]"]
    table([*header, "SSIM [-160, 240]", "MAE HU", "s per case"], rows)
    print(f"   By mask kind (PSNR / SSIM in {w}):")
    rows = []
    for method, by_kind in c["scores"].items():
        cells = [np.array(by_kind[kind]).mean(axis=0) for kind in KINDS]
        rows.append([method, *(f"{v[0]:.2f} / {v[1]:.3f}" for v in cells)])
    table(["method", *KINDS], rows)
    if c.get("steps"):
        print(
            f"   GAN search steps per case: mean {np.mean(c['steps']):.0f}, max {max(c['steps'])}"
        )


def warm_up(gan) -> None:
    """One short search first, so that no timed run pays for first-call set-up."""
    from ctpipe.inpaint.search import SearchSettings, latent_search

    size = gan.generator.image_size
    known = torch.ones(4, 1, size, size)
    known[..., : size // 2, :] = 0
    latent_search(
        gan.generator,
        gan.discriminator,
        torch.zeros(4, 1, size, size),
        known,
        torch.randn(4, gan.generator.latent_size),
        SearchSettings(iterations=10),
    )


def main() -> None:
    from ctpipe.checkpoints.gan import load_gan
    from ctpipe.inpaint.init import LatentPool
    from ctpipe.weights import DEFAULT_GAN, weights_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(weights_path(DEFAULT_GAN)))
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--pool", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parts", default="ABC", help="which parts to run, e.g. AB")
    parser.add_argument(
        "--warmup", type=int, default=50, help="learning-rate warm-up steps of every search"
    )
    parser.add_argument(
        "--b-slices", default="100:132", help="pancreas slices of part B, START:STOP"
    )
    parser.add_argument(
        "--follow", type=int, nargs="+", default=[5, 10, 20], help="part B: follow steps"
    )
    parser.add_argument("--follow-lr", type=float, default=0.03, help="part B: follow lr")
    parser.add_argument("--b-masks", type=int, default=3, help="part B: masks per kind")
    parser.add_argument("--max-slices", type=int, default=None, help="use fewer slices (a trial)")
    args = parser.parse_args()
    if not (DATA / "pancreas_ct_series").is_dir():
        sys.exit(f"benchmark data not found: {DATA} (set CTPIPE_SHARED_DATA)")
    torch.manual_seed(args.seed)
    gan = load_gan(args.weights)
    slices, pancreas = held_out_slices()
    slices = slices[: args.max_slices]
    pool = LatentPool.from_generator(gan.generator, args.pool, seed=args.seed)
    warm_up(gan)
    machine = platform.processor() or platform.machine()
    print(
        f"machine: {machine}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s); weights {args.weights} (window {gan.window}); "
        f"{args.iterations} steps, pool {args.pool}, seed {args.seed}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print(f"held-out slices: {len(slices)} ({', '.join(name for name, _ in slices)})")
    if "A" in args.parts:
        report_a(part_a(gan, slices, pool, args))
    if "B" in args.parts:
        report_b(part_b(gan, pancreas, pool, args), args)
    if "C" in args.parts:
        report_c(part_c(gan, slices, pool, args), gan.window)


if __name__ == "__main__":
    main()
