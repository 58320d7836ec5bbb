"""RED-CNN at the paper's width (96 filters) trained on a GPU in one call, and its inference timed.

Issue 14, point 6: on a lent GPU (the ``device`` tool: one call of at most 10 minutes, 15
minutes of device time per session, no network, nothing of ``../shared`` on it), train
the paper's configuration on this project's data and measure inference per 512 x 512
slice. It runs in three steps:

1. **Here, on the CPU:** pack the run's pairs into one compressed file small enough to
   travel with the device tool's ``carry`` (64 MiB)::

       python benchmarks/gpu_redcnn96.py pack \\
           --config workflows/training/denoise_redcnn32_kernelval.yaml --out gpu_pack/pairs.npz

   The training and validation pairs of the config's split (real AAPM pairs of the
   training patients, validation slices held back by kernel) and its simulated pairs (read
   from the simulation cache, spread evenly over every series until ``--budget-mib`` is
   reached) are stored as int16 HU (rounded, not clipped). The test patient (L192) is
   never packed. The default budget, 40 MiB, leaves room for the working tree (about
   19 MB) within the carry's 64 MiB; the kernel-split config gives 18 real training pairs,
   3 validation pairs and 41 of its 212 simulated pairs (39.5 MiB).
2. **On the GPU** (``run`` tool, ``carry: ["gpu_pack"]``, ``timeout_s`` about 580)::

       PYTHONUNBUFFERED=1 python3 benchmarks/gpu_redcnn96.py run --minutes 5 --out $OUT

   The device image has torch, numpy and scikit-image but not MONAI, pydicom or
   SimpleITK: this step imports only the ctpipe modules that need none of them (checked by
   running it with those imports blocked).

   RED-CNN 96 trains from scratch with bf16 autocast and ``channels_last`` (random patches
   cut on the device, flips and 90 degree turns, sampling balanced over the pack's groups,
   Adam with a cosine decay over the time budget), is scored on the validation slices
   (whole slices, mirror-padded as :class:`ctpipe.inference.SliceInferer` does) and saved as
   a ctpipe checkpoint (``$OUT/redcnn96_gpu.pt``, ``load_denoiser`` reads it). Then each
   inference path is timed on one 512 x 512 slice: fp32, ``channels_last``, bf16 autocast,
   ``torch.compile`` and CUDA graphs (``mode="reduce-overhead"``), in ms per slice and
   TFLOP/s (2 x multiply-adds over time). Everything goes to ``$OUT/gpu_run.json``.
3. **Back here:** ``ctpipe evaluate denoise --data ../shared/data/aapm_ldct_pairs
   --split-manifest data_manifests/aapm_ldct_pairs_shared.yaml --weights
   OUT/redcnn96_gpu.pt ctpipe/weights/redcnn32_aapm_cpu.pt --bm3d-sigma 0.02`` scores it on
   L192 against BM3D and the shipped model in one run.

``run`` works on a CPU too (slowly; bf16 is emulated there): ``tests/test_gpu_redcnn96.py``
runs both steps for a few iterations of a tiny network.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: HU a pack can store (int16, rounded); not clipped to the model's range, as in training.
HU_LIMITS = (-32768, 32767)
#: What ``pack`` records in each pack, so that it overwrites its own packs and nothing else.
WRITTEN_BY = "benchmarks/gpu_redcnn96.py"
#: The files ``run`` writes into ``--out``.
RUN_OUTPUTS = ("redcnn96_gpu.pt", "gpu_run.json")


# --- pack (CPU) ----------------------------------------------------------------------------


def pack_arrays(
    low: Sequence[np.ndarray],
    high: Sequence[np.ndarray],
    groups: Sequence[str],
    roles: Sequence[str],
    path: str | Path,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write pairs of 2-D HU slices to one compressed ``.npz`` as int16 HU, atomically.

    Slices of other sizes than the first are refused (one stack per file). An existing
    file at ``path`` is replaced only when it is a pack this script wrote.

    Args:
        low: The low-dose slices (HU).
        high: Their normal-dose references (HU).
        groups: Each pair's sampling group (``real/sharp``, ``simulated/smooth``, ...).
        roles: ``train`` or ``validation`` for each pair.
        path: The file to write (its folder is created).
        meta: Facts to store beside them (JSON).

    Raises:
        ValueError: Slices of several shapes, an unknown role, or ``path`` is a file that
            is not a pack of this script.
    """
    from ctpipe.io.atomic import atomic_path

    shapes = {a.shape for a in (*low, *high)}
    if len(shapes) != 1:
        raise ValueError(f"every slice must have one shape, got {sorted(shapes)}")
    if not {*roles} <= {"train", "validation"}:
        raise ValueError(f"roles must be train or validation, got {sorted(set(roles))}")
    to_int = lambda s: np.clip(np.rint(s), *HU_LIMITS).astype(np.int16)  # noqa: E731
    path = Path(path)
    if path.exists() and not _is_pack(path):
        raise ValueError(f"{path}: exists and is not a pack of {WRITTEN_BY}; not overwritten")
    with atomic_path(path) as tmp, open(tmp, "wb") as stream:  # a handle: no suffix added
        np.savez_compressed(
            stream,
            low=np.stack([to_int(s) for s in low]),
            high=np.stack([to_int(s) for s in high]),
            groups=np.array(groups),
            roles=np.array(roles),
            meta=np.array(json.dumps({**dict(meta or {}), "written_by": WRITTEN_BY})),
        )
    return path


def _is_pack(path: Path) -> bool:
    """Whether ``path`` is a pack :func:`pack_arrays` wrote."""
    try:
        with np.load(path) as data:
            return json.loads(str(data["meta"])).get("written_by") == WRITTEN_BY
    except (OSError, ValueError, KeyError, AttributeError):
        return False


def pack_config(config_path: str, out: str, budget_mib: float) -> Path:
    """Pack the training and validation pairs of a denoiser training config (see the module)."""
    from ctpipe.evaluate.run import load_slice_pairs
    from ctpipe.training.denoise.config import load_train_config
    from ctpipe.training.denoise.data import sampling_group, split_pairs

    split = split_pairs(load_train_config(config_path).data)
    real, val = load_slice_pairs(split.train), load_slice_pairs(split.validation)
    low = [p.low_hu for p in (*real, *val)]
    high = [p.normal_hu for p in (*real, *val)]
    groups = [sampling_group(e) for e in (*split.train, *split.validation)]
    roles = ["train"] * len(real) + ["validation"] * len(val)
    per_pair = 2 * low[0].size * 2 / 2.2  # bytes: two int16 slices, about 2.2 x compressed
    keep = max(int(budget_mib * 2**20 / per_pair) - len(low), 0)
    while True:
        chosen = _spread(len(split.simulated), keep)
        sim = [split.simulated[i] for i in chosen]
        meta = {"config": config_path, "real_train": len(real), "validation": len(val)}
        meta |= {"simulated": f"{len(chosen)} of {len(split.simulated)}"}
        path = pack_arrays(
            low + [np.asarray(e["image"])[0] for e in sim],
            high + [np.asarray(e["label"])[0] for e in sim],
            groups + [sampling_group(e) for e in sim],
            roles + ["train"] * len(sim),
            out,
            meta,
        )
        size = path.stat().st_size / 2**20
        if size <= budget_mib or keep == 0:
            return path
        keep = int(keep * budget_mib / size * 0.97)  # compressed worse than guessed


def _spread(count: int, keep: int) -> list[int]:
    """``keep`` indices spread evenly over ``range(count)`` (all when ``keep >= count``).

    Example:
        >>> _spread(10, 3)
        [0, 4, 9]
    """
    if keep >= count:
        return list(range(count))
    return sorted({round(v) for v in np.linspace(0, count - 1, keep)}) if keep else []


# --- run (GPU) -----------------------------------------------------------------------------


def load_pack(path: str | Path, device: Any) -> dict[str, Any]:
    """A pack's slices on ``device`` as unit-scale float32 ``(N, 1, H, W)`` tensors."""
    import torch

    from ctpipe.transforms import hu_to_unit

    data = np.load(path)
    roles, groups = data["roles"], data["groups"]
    out: dict[str, Any] = {"meta": json.loads(str(data["meta"]))}
    for role in ("train", "validation"):
        keep = roles == role
        out[role] = {
            key: torch.from_numpy(hu_to_unit(data[key][keep].astype(np.float32)))
            .unsqueeze(1)
            .to(device)
            for key in ("low", "high")
        }
        out[role]["groups"] = groups[keep].tolist()
    return out


def balanced_weights(groups: Sequence[str]) -> np.ndarray:
    """Sampling weight of each slice: every group gets the same share.

    Example:
        >>> balanced_weights(["a", "a", "b"]).tolist()
        [0.25, 0.25, 0.5]
    """
    names, counts = np.unique(groups, return_counts=True)
    per_group = dict(zip(names.tolist(), counts.tolist(), strict=True))
    weights = np.array([1.0 / per_group[g] for g in groups])
    return weights / weights.sum()


def random_patches(
    low: Any, high: Any, weights: Any, batch: int, size: int, generator: Any
) -> tuple[Any, Any]:
    """``batch`` random ``size`` x ``size`` patch pairs, each turned and flipped at random."""
    import torch

    _, _, height, width = low.shape
    device = low.device
    idx = torch.multinomial(weights, batch, replacement=True, generator=generator).to(device)
    top = torch.randint(0, height - size + 1, (batch,), generator=generator).to(device)
    left = torch.randint(0, width - size + 1, (batch,), generator=generator).to(device)
    steps = torch.arange(size, device=device)
    rows = (top[:, None] + steps)[:, :, None]
    cols = (left[:, None] + steps)[:, None, :]
    x = low[idx[:, None, None], 0, rows, cols].unsqueeze(1)
    y = high[idx[:, None, None], 0, rows, cols].unsqueeze(1)
    turns = int(torch.randint(0, 4, (1,), generator=generator))
    x, y = torch.rot90(x, turns, (2, 3)), torch.rot90(y, turns, (2, 3))
    if bool(torch.randint(0, 2, (1,), generator=generator)):
        x, y = x.flip(3), y.flip(3)
    return x.contiguous(), y.contiguous()


def whole_slice(model: Any, x: Any, radius: int) -> Any:
    """The model on whole slices, mirror-padded by its receptive radius (as at inference).

    :class:`ctpipe.inference.SliceInferer` does the same, through MONAI, which the GPU
    machine's image lacks; on a whole slice the two agree.
    """
    from torch.nn import functional as F

    padded = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    return model(padded)[..., radius:-radius, radius:-radius] if radius else model(x)


def validation_scores(model: Any, val: Mapping[str, Any], radius: int) -> dict[str, float]:
    """Mean PSNR (full range and [-160, 240] HU window) on the validation slices, in fp32."""
    import torch

    from ctpipe.metrics import slice_quality
    from ctpipe.transforms import DISPLAY_WINDOW, unit_to_hu

    scores: dict[str, list[float]] = {"psnr": [], "psnr_window": []}
    model.eval()
    with torch.no_grad():
        for k in range(val["low"].shape[0]):
            out = whole_slice(model, val["low"][k : k + 1].float(), radius)
            estimate = unit_to_hu(out[0, 0].float().cpu().numpy())
            reference = unit_to_hu(val["high"][k, 0].cpu().numpy())
            scores["psnr"].append(slice_quality(estimate, reference)["psnr"])
            window = slice_quality(estimate, reference, window=DISPLAY_WINDOW)
            scores["psnr_window"].append(window["psnr"])
    model.train()
    return {key: float(np.mean(v)) for key, v in scores.items()} if scores["psnr"] else {}


def train(
    pack: Mapping[str, Any],
    *,
    filters: int,
    patch: int,
    batch: int,
    seconds: float,
    max_iterations: int | None,
    lr: float,
    bf16: bool,
    channels_last: bool,
    seed: int,
    log: Callable[[str], None] = print,
) -> tuple[Any, dict[str, Any]]:
    """Train RED-CNN on a pack for ``seconds`` (or ``max_iterations``); the model and a record.

    The learning rate falls along half a cosine from ``lr`` to ``lr / 100`` over the time
    budget (the fraction of ``seconds`` used), so the run ends decayed whatever its speed.
    """
    import torch

    from ctpipe.nets.redcnn import REDCNN

    device = pack["train"]["low"].device
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = REDCNN(filters=filters, predict_residual=False).to(device)
    memory = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    weights = torch.as_tensor(balanced_weights(pack["train"]["groups"]), dtype=torch.float)
    losses, started, iteration = [], time.perf_counter(), 0
    while True:
        elapsed = time.perf_counter() - started
        if elapsed >= seconds or (max_iterations is not None and iteration >= max_iterations):
            break
        fraction = min(elapsed / seconds, 1.0)
        for group in optimizer.param_groups:
            group["lr"] = lr / 100 + (lr - lr / 100) * 0.5 * (1 + math.cos(math.pi * fraction))
        x, y = random_patches(
            pack["train"]["low"], pack["train"]["high"], weights, batch, patch, generator
        )
        x, y = x.to(memory_format=memory), y.to(memory_format=memory)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.mse_loss(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        iteration += 1
        if iteration % 100 == 0 or iteration == 1:
            losses.append((iteration, float(loss.detach())))
            log(f"iteration {iteration}, {elapsed:.0f} s, loss {losses[-1][1]:.3g}")
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - started
    record = {
        "iterations": iteration,
        "seconds": round(wall, 1),
        "patches_per_second": round(iteration * batch / wall, 1),
        "filters": filters,
        "patch": patch,
        "batch": batch,
        "lr": lr,
        "bf16": bf16,
        "channels_last": channels_last,
        "seed": seed,
        "losses": losses,
    }
    return model, record


def macs(model: Any, size: int) -> int:
    """Multiply-adds of one forward pass of a RED-CNN on a ``size`` x ``size`` input."""
    import torch

    total = 0

    def count(module, inputs, output):
        nonlocal total
        kernel = module.weight[0, 0].numel()
        transposed = isinstance(module, torch.nn.ConvTranspose2d)
        pixels = (inputs[0] if transposed else output).shape[-2:].numel()
        total += module.in_channels * module.out_channels * kernel * pixels

    hooks = [m.register_forward_hook(count) for m in [*model.encoder, *model.decoder]]
    first = next(model.parameters())
    with torch.no_grad():
        model(torch.zeros(1, 1, size, size, device=first.device))
    for hook in hooks:
        hook.remove()
    return total


def time_inference(
    model: Any,
    size: int,
    repeats: int,
    log: Callable[[str], None] = print,
    only: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """ms per ``size`` x ``size`` slice (mirror-padded input) for each inference path.

    Each path is timed after warm-up; a path that fails (no compiler, no CUDA) is recorded
    with its error instead, and the others go on.
    """
    import copy

    import torch

    device = next(model.parameters()).device
    radius = model.receptive_radius
    padded = size + 2 * radius
    work = 2 * macs(model, padded)
    x = torch.rand(1, 1, padded, padded, device=device)

    def path(memory, bf16, mode=None):
        net = copy.deepcopy(model).eval().to(memory_format=memory)
        if mode is not None:
            net = torch.compile(net, mode=mode)
        inp = x.to(memory_format=memory)

        def step():
            with torch.no_grad(), torch.autocast(device.type, torch.bfloat16, enabled=bf16):
                return net(inp)

        return step

    cl, cf = torch.channels_last, torch.contiguous_format
    paths = {
        "fp32": lambda: path(cf, False),
        "fp32 channels_last": lambda: path(cl, False),
        "bf16 channels_last": lambda: path(cl, True),
        "bf16 channels_last compile": lambda: path(cl, True, "default"),
        "bf16 channels_last compile + CUDA graphs": lambda: path(cl, True, "reduce-overhead"),
    }
    rows = []
    for name, build in paths.items():
        if only is not None and name not in only:
            continue
        if "CUDA graphs" in name and device.type != "cuda":
            rows.append({"path": name, "error": "needs CUDA"})
            continue
        try:
            step = build()
            for _ in range(3):  # warm-up (and compilation)
                step()
            ms = _timed_ms(step, repeats, device)
        except Exception as err:  # one path failing must not lose the others
            rows.append({"path": name, "error": f"{type(err).__name__}: {err}"[:300]})
            log(f"{name}: failed ({type(err).__name__})")
            continue
        rows.append({"path": name, "ms": round(ms, 3), "tflops": work / ms / 1e9})
        log(f"{name}: {ms:.2f} ms per {size} x {size} slice, {work / ms / 1e9:.1f} TFLOP/s")
    return rows


def _timed_ms(step: Callable[[], Any], repeats: int, device: Any) -> float:
    """Median milliseconds of ``step`` over ``repeats`` runs (CUDA synchronised)."""
    import torch

    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train, score, save and time (the ``run`` command); returns what it writes as JSON."""
    import torch

    from ctpipe.checkpoints.file import save_checkpoint
    from ctpipe.io.atomic import atomic_path

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    out = Path(args.out)
    earlier = [name for name in RUN_OUTPUTS if (out / name).exists()]
    if earlier:  # before the training, not after it
        raise SystemExit(f"{out}: already holds {', '.join(earlier)}; give an empty --out")
    out.mkdir(parents=True, exist_ok=True)
    pack = load_pack(args.pack, device)
    log = lambda line: print(line, flush=True)  # noqa: E731
    model, record = train(
        pack,
        filters=args.filters,
        patch=args.patch,
        batch=args.batch,
        seconds=args.minutes * 60,
        max_iterations=args.max_iterations,
        lr=args.lr,
        bf16=not args.fp32,
        channels_last=True,
        seed=args.seed,
        log=log,
    )
    model = model.float().to(memory_format=torch.contiguous_format)
    scores = validation_scores(model, pack["validation"], model.receptive_radius)
    log(f"validation: {scores}")
    weights = save_checkpoint(
        out / "redcnn96_gpu.pt",
        model.cpu(),
        model_name="redcnn",
        config={
            "pack": pack["meta"],
            "training": {k: v for k, v in record.items() if k != "losses"},
        },
        iteration=record["iterations"],
        metrics=scores,
    )
    model.to(device)
    result = {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor(),
        "torch": torch.__version__,
        "pack": pack["meta"],
        "training": record,
        "validation": scores,
        "weights": str(weights),
        "inference": time_inference(model, args.size, args.repeats, log, args.paths),
    }
    with atomic_path(out / "gpu_run.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    pack = commands.add_parser("pack", help="pack a training config's pairs (CPU, here)")
    pack.add_argument("--config", default="workflows/training/denoise_redcnn32_kernelval.yaml")
    pack.add_argument("--out", default="gpu_pack/pairs.npz")
    pack.add_argument("--budget-mib", type=float, default=40.0)
    go = commands.add_parser("run", help="train, score, save and time (on the GPU)")
    go.add_argument("--pack", default="gpu_pack/pairs.npz")
    go.add_argument("--out", required=True)
    go.add_argument("--minutes", type=float, default=5.0, help="training time budget")
    go.add_argument("--max-iterations", type=int, default=None)
    go.add_argument("--filters", type=int, default=96)
    go.add_argument("--patch", type=int, default=64)
    go.add_argument("--batch", type=int, default=128)
    go.add_argument("--lr", type=float, default=2e-4)
    go.add_argument("--fp32", action="store_true", help="train without bf16 autocast")
    go.add_argument("--seed", type=int, default=0)
    go.add_argument("--size", type=int, default=512, help="slice size for the timings")
    go.add_argument("--repeats", type=int, default=20)
    go.add_argument("--device", default=None, help="default: cuda when available")
    go.add_argument("--paths", nargs="*", default=None, help="time only these paths")
    args = parser.parse_args(argv)
    if args.command == "pack":
        path = pack_config(args.config, args.out, args.budget_mib)
        print(f"{path}: {path.stat().st_size / 2**20:.1f} MiB")
        return 0
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
