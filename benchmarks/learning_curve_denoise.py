"""Learning curve of a denoiser training run against BM3D, extrapolated to the goal.

Reads a run folder of ``ctpipe train denoise`` (``training_log.json`` and ``config.yaml``)
and, on the run's own validation slices (slices of the training patients held out of
training, never the test patient):

* the model's validation PSNR (window [-160, 240] HU and full range) after each epoch,
  from the log;
* the quarter-dose input's PSNR and BM3D's, with BM3D's sigma chosen on training slices
  of the same run (``--bm3d-train-slices`` of them, spread along the datalist), once by
  window PSNR and once by full-range PSNR, each scored on its own metric;
* a fit of ``PSNR(n) = a - b * n ** -c`` to the model's window PSNR over iterations ``n``
  (points from ``--fit-from`` on), and the iterations at which the fit reaches BM3D + 0.5 dB
  (the goal's margin), when it does.

Writes ``learning_curve.png`` (iterations on a log scale) and ``learning_curve.json`` into
the run folder and prints a Markdown table for ``benchmarks/RESULTS.md``.

Run from the repository root with the virtual environment active:

    python benchmarks/learning_curve_denoise.py RUN_DIR [--seconds-per-iteration S]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WINDOW = (-160.0, 240.0)
GOAL_MARGIN_DB = 0.5
#: BM3D sigmas tried for each metric: the window's optimum lies above the full range's.
SIGMA_GRIDS = {
    "window": (0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.05, 0.06),
    "full": (0.008, 0.01, 0.012, 0.015, 0.02, 0.025, 0.03),
}


def model_points(log: dict) -> list[dict[str, float]]:
    """Iteration and validation metrics after each validated epoch."""
    length = int(log["meta"]["epoch_length"])
    points = []
    for epoch in log["epochs"]:
        validation = epoch.get("validation") or {}
        if "psnr" in validation:
            points.append({"iteration": int(epoch["epoch"]) * length, **validation})
    return points


def baselines(run: Path, train_slices: int) -> dict[str, float]:
    """Input and BM3D PSNR on the run's validation slices (BM3D sigma from training slices)."""
    from ctpipe.baselines.bm3d import bm3d_denoise_slice, choose_bm3d_sigma
    from ctpipe.evaluate.run import load_slice_pairs, spread_indices
    from ctpipe.metrics import slice_quality
    from ctpipe.training.denoise.config import load_train_config
    from ctpipe.training.denoise.data import split_pairs

    config = load_train_config(run / "config.yaml")
    split = split_pairs(config.data)
    validation = load_slice_pairs(split.validation)
    train = load_slice_pairs(
        [split.train[i] for i in spread_indices(len(split.train), train_slices)]
    )
    out: dict[str, float] = {"validation_slices": len(validation), "train_slices": len(train)}
    for name, window in (("window", WINDOW), ("full", None)):
        pairs = [(p.low_hu, p.normal_hu) for p in train]
        sigma, _ = choose_bm3d_sigma(pairs, SIGMA_GRIDS[name], window=window, progress=print)
        if sigma == max(SIGMA_GRIDS[name]):
            print(f"warning: BM3D's best {name} sigma is the largest tried ({sigma})")
        scores = [
            slice_quality(bm3d_denoise_slice(p.low_hu, sigma), p.normal_hu, window=window)["psnr"]
            for p in validation
        ]
        inputs = [slice_quality(p.low_hu, p.normal_hu, window=window)["psnr"] for p in validation]
        out[f"bm3d_sigma_{name}"] = sigma
        out[f"bm3d_psnr_{name}"] = float(np.mean(scores))
        out[f"input_psnr_{name}"] = float(np.mean(inputs))
    return out


def fit_power_law(n: np.ndarray, psnr: np.ndarray) -> tuple[float, float, float] | None:
    """Least-squares ``a - b * n ** -c`` (``b, c > 0``); ``None`` with too few points."""
    from scipy.optimize import curve_fit

    if len(n) < 4:
        return None

    def model(x, a, b, c):
        return a - b * np.power(x, -c)

    try:
        params, _ = curve_fit(
            model,
            n,
            psnr,
            p0=(psnr.max() + 0.5, 5.0, 0.3),
            bounds=([psnr.max() - 1, 0, 0.01], [psnr.max() + 20, 1e6, 3.0]),
            maxfev=20000,
        )
    except RuntimeError:
        return None
    return tuple(float(v) for v in params)  # type: ignore[return-value]


def iterations_to(target: float, params: tuple[float, float, float]) -> float:
    """Iterations at which the fitted curve reaches ``target`` (inf when it never does)."""
    a, b, c = params
    if target >= a:
        return math.inf
    return float((b / (a - target)) ** (1.0 / c))


def plot(run: Path, points: list[dict], base: dict, params, target: float) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = np.array([p["iteration"] for p in points], dtype=float)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, name in ((axes[0], "psnr_window", "window"), (axes[1], "psnr", "full")):
        ax.semilogx(n, [p[key] for p in points], "o-", ms=3, label="RED-CNN (validation)")
        ax.axhline(base[f"bm3d_psnr_{name}"], color="k", ls="--", label="BM3D (sigma on train)")
        ax.axhline(base[f"input_psnr_{name}"], color="grey", ls=":", label="quarter-dose input")
        if name == "window":
            ax.axhline(target, color="tab:red", ls="-.", lw=1, label="goal: BM3D + 0.5 dB")
            if params is not None:
                grid = np.logspace(np.log10(n.min()), np.log10(max(n.max() * 30, 1e5)), 200)
                a, b, c = params
                ax.semilogx(grid, a - b * grid**-c, color="tab:orange", lw=1, label="fit")
        ax.set_xlabel("iterations (log)")
        ax.set_ylabel(f"PSNR {name} (dB)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"Learning curve: {run.name}")
    fig.tight_layout()
    path = run / "learning_curve.png"
    fig.savefig(path, dpi=110)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--bm3d-train-slices", type=int, default=6)
    parser.add_argument("--fit-from", type=int, default=1, help="first iteration to fit")
    parser.add_argument("--seconds-per-iteration", type=float, default=None)
    args = parser.parse_args()

    log = json.loads((args.run / "training_log.json").read_text())
    points = model_points(log)
    if not points:
        sys.exit(f"{args.run}: no validated epoch in training_log.json yet")
    cached = args.run / "baselines.json"
    if cached.exists():
        base = json.loads(cached.read_text())
    else:
        base = baselines(args.run, args.bm3d_train_slices)
        cached.write_text(json.dumps(base, indent=1))
    target = base["bm3d_psnr_window"] + GOAL_MARGIN_DB
    fit = [p for p in points if p["iteration"] >= args.fit_from]
    params = fit_power_law(
        np.array([p["iteration"] for p in fit], float), np.array([p["psnr_window"] for p in fit])
    )
    needed = iterations_to(target, params) if params is not None else math.nan
    png = plot(args.run, points, base, params, target)

    print(
        f"validation slices: {base['validation_slices']}; BM3D sigma chosen on "
        f"{base['train_slices']} training slices: window {base['bm3d_sigma_window']:g}, "
        f"full {base['bm3d_sigma_full']:g}"
    )
    print("| iteration | PSNR window | SSIM window | PSNR full | SSIM full |")
    print("|---:|---:|---:|---:|---:|")
    for p in points:
        print(
            f"| {p['iteration']} | {p['psnr_window']:.2f} | {p.get('ssim_window', math.nan):.4f} "
            f"| {p['psnr']:.2f} | {p['ssim']:.4f} |"
        )
    for name in ("window", "full"):
        print(f"| quarter-dose input | {base[f'input_psnr_{name}']:.2f} ({name}) |")
        print(f"| BM3D | {base[f'bm3d_psnr_{name}']:.2f} ({name}) |")
    if params is not None:
        a, b, c = params
        print(
            f"fit: PSNR_window(n) = {a:.2f} - {b:.3g} * n^-{c:.3f}; goal {target:.2f} dB "
            f"reached at n = {needed:,.0f} iterations"
            + (
                f" (~{needed * args.seconds_per_iteration / 3600:.1f} h at "
                f"{args.seconds_per_iteration} s/iteration)"
                if args.seconds_per_iteration and math.isfinite(needed)
                else ""
            )
        )
    (args.run / "learning_curve.json").write_text(
        json.dumps(
            {
                "points": points,
                "baselines": base,
                "fit": params,
                "goal_window_psnr": target,
                "iterations_to_goal": needed,
            },
            indent=1,
        )
    )
    print(f"wrote {png}")


if __name__ == "__main__":
    main()
