"""Weight averaging of a denoiser run's checkpoints, scored on validation slices.

Stochastic weight averaging (Izmailov et al., UAI 2018) takes the mean of the network
weights saved along a run at a constant learning rate; it often generalises better than
any single checkpoint at no cost at inference. This script scores every checkpoint given
and the mean of the last ``k`` of them, for each ``k`` in ``--windows``, on the held-back
validation slices of the run's split (training patients only: the test patient chooses
nothing), with PSNR and SSIM over the full range and in the [-160, 240] HU window, the
mean over all slices and the PSNR per reconstruction kernel.

Usage:
    python benchmarks/bench_weight_average.py CONFIG CKPT [CKPT ...] [--windows 2 4 6]
        [--save-mean K OUT.pt] [--bm3d-sigma 0.02 0.025]

``CONFIG`` is the run's training config (its split gives the validation slices); the
checkpoints are in training order. ``--save-mean`` writes the mean of the last ``K`` as a
ctpipe checkpoint (network and record) that ``load_denoiser`` reads.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_self_ensemble import quality_scores  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--windows", type=int, nargs="*", default=[2, 4, 6])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--save-mean", nargs=2, metavar=("K", "OUT"))
    parser.add_argument(
        "--bm3d-sigma", type=float, nargs="*", default=[], help="BM3D rows at these sigmas"
    )
    args = parser.parse_args()
    import torch

    from ctpipe.baselines.bm3d import bm3d_denoise_slice
    from ctpipe.checkpoints.average import average_checkpoints
    from ctpipe.checkpoints.denoiser import load_denoiser
    from ctpipe.evaluate.run import load_slice_pairs
    from ctpipe.training.denoise.config import load_train_config
    from ctpipe.training.denoise.data import split_pairs

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    entries = split_pairs(load_train_config(args.config).data).validation
    pairs = load_slice_pairs(entries)
    kernels = [str(e.get("kernel")) for e in entries]
    groups = sorted(set(kernels))
    print(
        f"{len(pairs)} validation slices of {args.config} ({', '.join(kernels)}); "
        f"torch {torch.__version__}"
    )
    by_kernel = "".join(f" {k}: full / window |" for k in groups)
    print(f"| weights | PSNR full | SSIM full | PSNR window | SSIM window |{by_kernel}")
    print("|---|---:|---:|---:|---:|" + "---:|" * len(groups))
    _row("LDCT input", [quality_scores(p.low_hu, p.normal_hu) for p in pairs], kernels)
    for sigma in args.bm3d_sigma:
        denoised = [bm3d_denoise_slice(p.low_hu, sigma) for p in pairs]
        scores = [quality_scores(d, p.normal_hu) for d, p in zip(denoised, pairs, strict=True)]
        _row(f"BM3D sigma {sigma}", scores, kernels)
    for path in args.checkpoints:
        _row(Path(path).name, _score_model(load_denoiser(path), pairs), kernels)
    for k in args.windows:
        if 2 <= k <= len(args.checkpoints):
            mean = average_checkpoints(args.checkpoints[-k:], REPO / "runs" / ".mean.pt")
            _row(f"mean of the last {k}", _score_model(load_denoiser(mean), pairs), kernels)
    if args.save_mean:
        k, out = int(args.save_mean[0]), args.save_mean[1]
        print("wrote", average_checkpoints(args.checkpoints[-k:], out))
    return 0


def _score_model(model, pairs) -> list[list[float]]:
    from ctpipe.inference import denoise_slice

    return [
        quality_scores(denoise_slice(p.low_hu, model, kernel=p.meta.get("kernel")), p.normal_hu)
        for p in pairs
    ]


def _row(name: str, scores: list[list[float]], kernels: list[str]) -> None:
    """A table row: the mean over all slices, then full / window PSNR per kernel."""
    mean = np.mean(scores, axis=0)
    text = f"| {name} | {mean[0]:.3f} | {mean[1]:.4f} | {mean[2]:.3f} | {mean[3]:.4f} |"
    for kernel in sorted(set(kernels)):
        group = np.mean([s for s, k in zip(scores, kernels, strict=True) if k == kernel], axis=0)
        text += f" {group[0]:.2f} / {group[2]:.2f} |"
    print(text)


if __name__ == "__main__":
    sys.exit(main())
