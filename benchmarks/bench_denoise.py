"""Denoising speed on CPU (and CUDA when present): RED-CNN per slice and per volume vs BM3D.

Measures, in one run:

* seconds per 512x512 slice for the shipped RED-CNN (32 filters), the paper's RED-CNN
  (96 filters; random weights, speed does not depend on them) and BM3D (sigma 0.02);
* seconds for a 100-slice 512x512 volume through ``denoise_volume`` for the shipped model
  (measured), and for the others extrapolated from their per-slice time (marked as such);
* the shipped model's inference paths on one slice: ``contiguous`` fp32 (the reference),
  ``channels_last`` fp32 (the CPU default) and bf16 autocast, each with its time and its
  PSNR against the normal-dose slice on a quarter-dose AAPM slice of a training patient
  (L143), full range and window, next to fp32's (the rule: within 0.05 dB).

Run from the repository root with the virtual environment active:

    python benchmarks/bench_denoise.py [--repeats 3] [--volume-slices 100]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = Path(os.environ.get("CTPIPE_SHARED_DATA", REPO.parent / "shared" / "data"))


def timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    from ctpipe.baselines.bm3d import bm3d_denoise_slice
    from ctpipe.inference import denoise_slice, denoise_volume
    from ctpipe.io.reader import load_ct
    from ctpipe.nets import build_denoiser
    from ctpipe.weights import load_default_denoiser

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--volume-slices", type=int, default=100)
    args = parser.parse_args()
    series = DATA / "pancreas_ct_series"
    if not series.is_dir():
        sys.exit(f"benchmark data not found: {series} (set CTPIPE_SHARED_DATA)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        volume = load_ct(series)[:, :, : args.volume_slices]
    slice_hu = volume[:, :, volume.shape[2] // 2].numpy()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    shipped = load_default_denoiser(map_location=device)
    paper = build_denoiser("redcnn", filters=96).to(device).eval()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads), device {device}"
    )
    print(f"volume {tuple(volume.shape)} from {series.name}; {args.repeats} timed repeats\n")
    per_slice = {
        "RED-CNN 32 filters (shipped)": timed(
            lambda: denoise_slice(slice_hu, shipped), args.repeats
        ),
        "RED-CNN 32 filters, contiguous fp32": timed(
            lambda: denoise_slice(slice_hu, shipped, memory_format="contiguous"), args.repeats
        ),
        "RED-CNN 96 filters (paper)": timed(lambda: denoise_slice(slice_hu, paper), args.repeats),
        "BM3D sigma 0.02": timed(lambda: bm3d_denoise_slice(slice_hu, 0.02), args.repeats),
    }
    started = time.perf_counter()
    denoise_volume(volume, shipped, batch_size=4)
    volume_seconds = time.perf_counter() - started
    bm3d = statistics.median(per_slice["BM3D sigma 0.02"])
    n = volume.shape[2]
    print(f"| method | s per 512x512 slice (median) | ratio vs BM3D | s per {n}-slice volume |")
    print("|---|---:|---:|---:|")
    for name, times in per_slice.items():
        median = statistics.median(times)
        whole = (
            f"{volume_seconds:.1f} (measured)"
            if "shipped" in name
            else f"{median * n:.0f} (extrapolated)"
        )
        print(f"| {name} | {median:.2f} | {median / bm3d:.3f} | {whole} |")
    paths(shipped, args.repeats)


def paths(model, repeats: int) -> None:
    """Time and accuracy of the shipped model's inference paths against contiguous fp32."""
    from ctpipe.inference import denoise_slice
    from ctpipe.io.reader import load_ct
    from ctpipe.metrics import slice_quality

    pair = DATA / "aapm_ldct_pairs" / "L143"
    quarter = sorted((pair / "quarter_3mm_B30").glob("*.IMA"))[0]
    full = pair / "full_3mm_B30" / quarter.name.replace("QD", "FD")
    full = full if full.exists() else sorted((pair / "full_3mm_B30").glob("*.IMA"))[0]
    slice_hu = load_ct(quarter)[:, :, 0].numpy()
    normal_hu = load_ct(full)[:, :, 0].numpy()

    variants = {
        "contiguous fp32": {"memory_format": "contiguous", "amp": False},
        "channels_last fp32": {"memory_format": "channels_last", "amp": False},
        "contiguous bf16 autocast": {"memory_format": "contiguous", "amp": True},
        "channels_last bf16 autocast": {"memory_format": "channels_last", "amp": True},
    }
    print(f"\nquarter dose {quarter.name}, normal dose {full.name}")
    print("| path | s per slice (median) | x contiguous fp32 | PSNR full (dB) | PSNR window (dB) |")
    print("|---|---:|---:|---:|---:|")
    base = None
    for name, settings in variants.items():
        median = statistics.median(
            timed(lambda s=settings: denoise_slice(slice_hu, model, **s), repeats)
        )
        base = base or median
        out = denoise_slice(slice_hu, model, **settings)
        full_psnr = slice_quality(out, normal_hu)["psnr"]
        window_psnr = slice_quality(out, normal_hu, window=(-160, 240))["psnr"]
        print(
            f"| {name} | {median:.2f} | {base / median:.2f} | {full_psnr:.3f} | {window_psnr:.3f} |"
        )


if __name__ == "__main__":
    main()
