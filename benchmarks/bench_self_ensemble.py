"""Test-time self-ensemble of the shipped denoiser: gain and cost, on validation slices.

Scores the shipped RED-CNN with and without the 8-fold self-ensemble
(``SliceInferer(self_ensemble=True)``: flips and 90° rotations averaged) on the held-back
validation slices of the long training run's split (training patients only: the test
patient L192 chooses nothing), with PSNR and SSIM over the full range and in the
[-160, 240] HU window, and the seconds per slice of each, measured in the same run.

Usage:
    python benchmarks/bench_self_ensemble.py [--config CONFIG] [--threads 2]

``CONFIG`` is a denoiser training config whose split gives the validation slices
(default: ``workflows/training/denoise_redcnn32_long.yaml``).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WINDOW = (-160.0, 240.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", default=str(REPO / "workflows/training/denoise_redcnn32_long.yaml")
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch

    from ctpipe.evaluate.run import load_slice_pairs
    from ctpipe.inference import denoise_slice
    from ctpipe.training.denoise.config import load_train_config
    from ctpipe.training.denoise.data import split_pairs
    from ctpipe.weights import load_default_denoiser

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    split = split_pairs(load_train_config(args.config).data)
    pairs = load_slice_pairs(split.validation)
    model = load_default_denoiser()
    rows = {"LDCT input": [], "model": [], "model, self-ensemble x8": []}
    seconds = {"model": [], "model, self-ensemble x8": []}
    for pair in pairs:
        rows["LDCT input"].append(quality_scores(pair.low_hu, pair.normal_hu))
        for name, ensemble in (("model", False), ("model, self-ensemble x8", True)):
            start = time.perf_counter()
            out = denoise_slice(
                pair.low_hu, model, kernel=pair.meta.get("kernel"), self_ensemble=ensemble
            )
            seconds[name].append(time.perf_counter() - start)
            rows[name].append(quality_scores(out, pair.normal_hu))
    print(
        f"{len(pairs)} validation slices of {args.config}; torch {torch.__version__}, "
        f"{args.threads} threads"
    )
    print("| method | PSNR full | SSIM full | PSNR window | SSIM window | s per slice |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, scores in rows.items():
        mean = np.mean(scores, axis=0)
        time_text = f"{np.median(seconds[name]):.2f}" if name in seconds else ""
        print(
            f"| {name} | {mean[0]:.2f} | {mean[1]:.4f} | {mean[2]:.2f} | {mean[3]:.4f} "
            f"| {time_text} |"
        )
    return 0


def quality_scores(image, reference) -> list[float]:
    """PSNR and SSIM over the full range and in the window."""
    from ctpipe.metrics import slice_quality

    full = slice_quality(image, reference)
    window = slice_quality(image, reference, window=WINDOW)
    return [full["psnr"], full["ssim"], window["psnr"], window["ssim"]]


if __name__ == "__main__":
    sys.exit(main())
