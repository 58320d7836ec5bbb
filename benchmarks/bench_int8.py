"""Int8 post-training quantisation of a RED-CNN: speed and PSNR against float32.

Quantises the eight 32 -> 32 middle layers of a RED-CNN (the first convolution, 1 -> F,
and the last transposed convolution, F -> 1, stay float32: 8 bits over the unit range
would be 16 HU steps at the input and the output) with PyTorch's FX graph mode
(``x86`` engine, per-channel weights, its default observers), calibrated on 6 training
slices of the config's split. Scores both on the config's validation slices (PSNR over the
full range and in the [-160, 240] HU window, ``ctpipe.metrics.slice_quality``) and times
one whole-slice forward pass of each, best of ``--repeats``, in the same run.

Usage:
    python benchmarks/bench_int8.py [CHECKPOINT] [--config CONFIG] [--threads 2] [--repeats 3]

``CHECKPOINT`` defaults to the shipped denoiser; ``CONFIG`` (a denoiser training config)
to ``workflows/training/denoise_redcnn32_kernelval.yaml``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WINDOW = (-160.0, 240.0)


def plain_redcnn(model):
    """RED-CNN's forward (``predict_residual=False``) without its input checks (FX traces it)."""
    import torch.nn.functional as F
    from torch import nn

    class Plain(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x):
            return F.relu(self.model._last_layer_output(x) + x)

    return Plain().eval()


def quantise(model, calibration):
    """The int8 model: middle layers quantised, calibrated on ``calibration`` (unit)."""
    import torch
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    last = f"decoder.{len(model.decoder) - 1}"
    mapping = (
        get_default_qconfig_mapping("x86")
        .set_module_name("model.encoder.0", None)
        .set_module_name(f"model.{last}", None)
    )
    prepared = prepare_fx(plain_redcnn(copy.deepcopy(model)), mapping, (calibration[0],))
    with torch.no_grad():
        for batch in calibration:
            prepared(batch)
    return convert_fx(prepared)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?")
    parser.add_argument(
        "--config", default=str(REPO / "workflows/training/denoise_redcnn32_kernelval.yaml")
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    from ctpipe.checkpoints.denoiser import load_denoiser
    from ctpipe.evaluate.run import load_slice_pairs
    from ctpipe.training.denoise.config import load_train_config
    from ctpipe.training.denoise.data import split_pairs
    from ctpipe.weights import weights_path

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    model = load_denoiser(args.checkpoint or weights_path())
    data = load_train_config(args.config).data
    split = split_pairs(dataclasses.replace(data, simulated=None))  # real pairs only
    calibration = [unit_batch(p.low_hu) for p in load_slice_pairs(split.train[::3][:6])]
    int8 = quantise(model, calibration)
    fp32 = plain_redcnn(model).to(memory_format=torch.channels_last)
    print(
        f"{Path(args.checkpoint or weights_path()).name}; validation slices of {args.config}; "
        f"torch {torch.__version__}, {args.threads} threads, engine x86"
    )
    print("| slice | float32 PSNR full / window | int8 PSNR full / window | s float32 | s int8 |")
    print("|---|---:|---:|---:|---:|")
    for entry, pair in zip(split.validation, load_slice_pairs(split.validation), strict=True):
        x = unit_batch(pair.low_hu)
        scores, seconds = [], []
        for net, batch in ((fp32, x.contiguous(memory_format=torch.channels_last)), (int8, x)):
            out, best = timed(net, batch, args.repeats)
            scores.append(quality(out, pair.normal_hu))
            seconds.append(best)
        print(
            f"| {entry.get('patient')} {entry.get('kernel')} | {scores[0]} | {scores[1]} "
            f"| {seconds[0]:.2f} | {seconds[1]:.2f} |"
        )
    return 0


def unit_batch(hu):
    """A 2-D HU slice as a unit-scale ``(1, 1, H, W)`` float32 tensor."""
    import torch

    from ctpipe.transforms import hu_to_unit

    return torch.from_numpy(hu_to_unit(np.asarray(hu, dtype=np.float32)))[None, None]


def timed(net, batch, repeats: int):
    """The HU output of ``net`` and its best wall time of ``repeats`` passes."""
    import torch

    from ctpipe.transforms import unit_to_hu

    best = float("inf")
    with torch.no_grad():
        for _ in range(repeats):
            start = time.perf_counter()
            out = net(batch)
            best = min(best, time.perf_counter() - start)
    return unit_to_hu(out[0, 0].contiguous().numpy()), best


def quality(image, reference) -> str:
    from ctpipe.metrics import slice_quality

    full = slice_quality(image, reference)["psnr"]
    window = slice_quality(image, reference, window=WINDOW)["psnr"]
    return f"{full:.2f} / {window:.2f}"


if __name__ == "__main__":
    sys.exit(main())
