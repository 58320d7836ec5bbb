"""Training throughput of RED-CNN on this CPU: patches per second for each training recipe.

One training step is what ``SupervisedTrainer`` does per iteration: forward, MSE loss,
backward and an Adam step, on a batch of random unit-scale patches (speed does not depend
on the values). Each recipe varies one or more of:

* ``filters`` (32, the shipped model; 96, the paper);
* ``precision``: ``fp32`` or ``bf16`` (``torch.autocast("cpu", torch.bfloat16)``);
* ``channels_last`` memory format for the network and batch;
* ``compile``: ``torch.compile`` of the network (default inductor backend);
* ``threads`` (``torch.set_num_threads``), ``patch`` size and ``batch`` size.

Each row also gives the arithmetic rate reached, from the network's multiply-adds per patch
(counted layer by layer; a training step costs about three forward passes), next to a
float32 matrix product (``torch.mm`` 2048 x 2048) timed in the same run on the same
threads: how close the recipe is to what this CPU's cores can do at all.

Recipes are timed round-robin (``--rounds`` rounds of ``--steps`` steps each, after a
warm-up), so a load that comes and goes on a shared machine hits them all alike; the
figure is the median round. Ratios are against the first recipe, today's recipe
(``workflows/training/denoise_redcnn_cpu.yaml``: 32 filters, fp32, 55 x 55 patches,
batch 16, 2 threads). Patches of another size are compared by pixels per second too.

Run from the repository root with the virtual environment active:

    python benchmarks/bench_train_denoise.py [--rounds 5] [--steps 5] [--only 32]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


@dataclass(frozen=True)
class Recipe:
    filters: int = 32
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    threads: int = 2
    patch: int = 55
    batch: int = 16

    def label(self) -> str:
        parts = [f"f{self.filters}", self.precision]
        if self.channels_last:
            parts.append("CL")
        if self.compile:
            parts.append("compile")
        parts += [f"t{self.threads}", f"p{self.patch}", f"b{self.batch}"]
        return " ".join(parts)


REFERENCE = Recipe()


def recipes(filters: int) -> list[Recipe]:
    base = replace(REFERENCE, filters=filters)
    if filters > 32:  # 9x the work per patch: the main settings only
        return [
            base,
            replace(base, threads=1),
            replace(base, channels_last=True),
            replace(base, channels_last=True, batch=64),
            replace(base, channels_last=True, batch=64, compile=True),
        ]
    return [
        base,
        replace(base, threads=1),
        replace(base, precision="bf16"),
        replace(base, channels_last=True),
        replace(base, batch=32),
        replace(base, batch=64),
        replace(base, channels_last=True, batch=32),
        replace(base, channels_last=True, batch=64),
        replace(base, channels_last=True, batch=128),
        replace(base, channels_last=True, batch=64, threads=1),
        replace(base, channels_last=True, batch=64, patch=64),
        replace(base, channels_last=True, batch=64, compile=True),
        replace(base, channels_last=True, batch=64, precision="bf16"),
    ]


class Step:
    """One recipe's network, optimizer and batch, ready to time."""

    def __init__(self, recipe: Recipe, seed: int = 0) -> None:
        from ctpipe.nets.redcnn import REDCNN

        torch.manual_seed(seed)
        self.recipe = recipe
        net = REDCNN(filters=recipe.filters)
        fmt = torch.channels_last if recipe.channels_last else torch.contiguous_format
        self.net = net.to(memory_format=fmt)
        self.forward = torch.compile(self.net) if recipe.compile else self.net
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-4)
        shape = (recipe.batch, 1, recipe.patch, recipe.patch)
        self.x = torch.rand(shape).contiguous(memory_format=fmt)
        self.y = (self.x + 0.01 * torch.randn(shape)).contiguous(memory_format=fmt)

    def __call__(self, steps: int) -> float:
        torch.set_num_threads(self.recipe.threads)
        autocast = (
            torch.autocast("cpu", dtype=torch.bfloat16)
            if self.recipe.precision == "bf16"
            else contextlib.nullcontext()
        )
        started = time.perf_counter()
        for _ in range(steps):
            self.optimizer.zero_grad(set_to_none=True)
            with autocast:
                out = self.forward(self.x)
            loss = torch.nn.functional.mse_loss(out.float(), self.y)
            loss.backward()
            self.optimizer.step()
        return time.perf_counter() - started


def macs_per_patch(filters: int, patch: int) -> int:
    """Multiply-adds of one RED-CNN forward pass on a ``patch`` x ``patch`` input."""
    from gpu_redcnn96 import macs  # a script beside this one

    from ctpipe.nets.redcnn import REDCNN

    return macs(REDCNN(filters=filters), patch)


def matmul_gflops(threads: int, size: int = 2048, repeats: int = 5) -> float:
    """float32 ``torch.mm`` rate on ``threads`` threads, GFLOP/s (the median of repeats)."""
    torch.set_num_threads(threads)
    a, b = torch.rand(size, size), torch.rand(size, size)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - started)
    return 2 * size**3 / statistics.median(times) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5, help="training steps per round")
    parser.add_argument("--only", type=int, choices=(32, 96), help="one width only")
    args = parser.parse_args()

    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}"
    )
    for filters in (32, 96) if args.only is None else (args.only,):
        candidates = recipes(filters)
        steps = [Step(r) for r in candidates]
        for step in steps:  # warm-up (and compilation)
            step(2)
        times: dict[Recipe, list[float]] = {r: [] for r in candidates}
        for _ in range(args.rounds):
            for step in steps:
                times[step.recipe].append(step(args.steps) / args.steps)
        print(f"\n## RED-CNN {filters} filters ({args.rounds} rounds x {args.steps} steps)")
        peak = {t: matmul_gflops(t) for t in (1, 2)}
        print(
            f"torch.mm float32 2048 x 2048: {peak[1]:.0f} GFLOP/s on 1 thread, {peak[2]:.0f} on 2"
        )
        print(
            "| recipe | s/step | patches/s | Mpixel/s | x reference (patches) | x (pixels) "
            "| GFLOP/s | of torch.mm |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        ref = None
        for recipe in candidates:
            per_step = statistics.median(times[recipe])
            patches = recipe.batch / per_step
            pixels = patches * recipe.patch**2
            ref = ref or (patches, pixels)
            gflops = 3 * 2 * macs_per_patch(filters, recipe.patch) * patches / 1e9
            print(
                f"| {recipe.label()} | {per_step:.3f} | {patches:.1f} | {pixels / 1e6:.2f} "
                f"| {patches / ref[0]:.2f} | {pixels / ref[1]:.2f} | {gflops:.0f} "
                f"| {gflops / peak[recipe.threads]:.0%} |"
            )


if __name__ == "__main__":
    main()
