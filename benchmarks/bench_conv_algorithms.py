"""Can another convolution algorithm make RED-CNN inference faster on this CPU?

RED-CNN 32's inference is bound by its 5 x 5, 32 -> 32 convolutions (about 100 GFLOP per
512 x 512 slice). This script times one such layer on a 512 x 512 map, computed directly
(``torch.nn.functional.conv2d``, contiguous and ``channels_last``) and by tiled FFT
(overlap-save: the layer's "valid" cross-correlation as a product of spectra per tile,
which needs about 6x fewer floating-point operations), and checks that both give the same
numbers. It prints seconds per layer and the ratio against direct contiguous fp32, measured
in the same run.

Usage:
    python benchmarks/bench_conv_algorithms.py [--repeats 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.nn import functional as F

CHANNELS = 32
KERNEL = 5
SIZE = 512


def fft_conv2d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, tile: int
) -> torch.Tensor:
    """``F.conv2d(x, weight, bias)`` (no padding) by FFT over tiles of ``tile`` pixels.

    Example:
        >>> x, w, b = torch.randn(1, 2, 20, 20), torch.randn(3, 2, 5, 5), torch.zeros(3)
        >>> bool(torch.allclose(fft_conv2d(x, w, b, 8), F.conv2d(x, w, b), atol=1e-4))
        True
    """
    _, channels, height, width = x.shape
    k = weight.shape[-1]
    step = tile - k + 1
    out_h, out_w = height - k + 1, width - k + 1
    rows, cols = -(-out_h // step), -(-out_w // step)
    padded = F.pad(x, (0, cols * step + k - 1 - width, 0, rows * step + k - 1 - height))
    tiles = padded.unfold(2, tile, step).unfold(3, tile, step)[0]
    tiles = tiles.permute(1, 2, 0, 3, 4).reshape(rows * cols, channels, tile, tile)
    spectra = torch.fft.rfft2(tiles)
    kernel = torch.fft.rfft2(weight, s=(tile, tile)).conj()  # correlation, not convolution
    freqs = tile * (tile // 2 + 1)
    product = torch.bmm(
        kernel.reshape(weight.shape[0], channels, freqs).permute(2, 0, 1).contiguous(),
        spectra.reshape(rows * cols, channels, freqs).permute(2, 1, 0).contiguous(),
    )
    y = torch.fft.irfft2(
        product.permute(2, 1, 0).reshape(rows * cols, -1, tile, tile // 2 + 1), s=(tile, tile)
    )
    y = y[:, :, :step, :step].reshape(rows, cols, -1, step, step)
    y = y.permute(2, 0, 3, 1, 4).reshape(1, -1, rows * step, cols * step)
    return y[:, :, :out_h, :out_w] + bias.view(1, -1, 1, 1)


def best_seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(1, CHANNELS, SIZE, SIZE)
    weight = torch.randn(CHANNELS, CHANNELS, KERNEL, KERNEL) * 0.05
    bias = torch.randn(CHANNELS) * 0.01
    x_cl = x.contiguous(memory_format=torch.channels_last)
    weight_cl = weight.contiguous(memory_format=torch.channels_last)
    print(
        f"torch {torch.__version__}, {args.threads} threads, capability "
        f"{torch.backends.cpu.get_cpu_capability()}; one {CHANNELS}->{CHANNELS} "
        f"{KERNEL}x{KERNEL} layer on {SIZE}x{SIZE}, best of {args.repeats}"
    )
    with torch.no_grad():
        reference = F.conv2d(x, weight, bias)
        rows = [
            ("direct, contiguous fp32", lambda: F.conv2d(x, weight, bias)),
            ("direct, channels_last fp32", lambda: F.conv2d(x_cl, weight_cl, bias)),
        ]
        rows += [
            (f"FFT, tiles of {t}", lambda t=t: fft_conv2d(x, weight, bias, t))
            for t in (32, 64, 128)
        ]
        base = None
        print("| algorithm | s per layer | x direct contiguous | max abs error |")
        print("|---|---:|---:|---:|")
        for name, fn in rows:
            seconds = best_seconds(fn, args.repeats)
            base = base or seconds
            error = float((fn() - reference).abs().max())
            print(f"| {name} | {seconds:.3f} | {base / seconds:.2f} | {error:.1e} |")


if __name__ == "__main__":
    main()
