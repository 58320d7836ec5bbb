"""The ``ctpipe evaluate`` command group: score denoisers on paired low/normal-dose CT.

``ctpipe evaluate denoise --data AAPM_ROOT`` pairs the quarter- and full-dose slices of an
AAPM Low Dose CT tree, splits them by patient (the split manifest's ``train``/``test``
splits, or ``--train-patients``/``--test-patients``), chooses BM3D's sigma on a few
training slices, and scores "LDCT input", "BM3D" and each ``--weights`` model on the test
slices. It writes ``metrics.csv``, ``metrics_per_slice.csv``, ``metrics.md``,
``metrics.json`` and ``figures/*.png`` to ``--output`` (see :mod:`ctpipe.evaluate`).

Heavy modules are imported inside the handler so that ``ctpipe --help`` stays fast.
Exit status: 0 on success, 2 when the input or the settings cannot be used.

Example:
    >>> from ctpipe.cli.common import parse_args
    >>> argv = ["evaluate", "denoise", "--data", "/d", "--max-slices", "4"]
    >>> args = parse_args(add_evaluate_parser, argv)
    >>> args.func is run_denoise, args.max_slices, args.train_slices
    (True, 4, 6)
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ctpipe.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    SubParsers,
    add_command,
    add_command_group,
    positive_int,
)

__all__ = ["add_evaluate_parser", "load_weight_methods", "run_denoise"]


#: Training slices (spread over the training split) on which BM3D's sigma is chosen.
DEFAULT_TRAIN_SLICES = 6


def add_evaluate_parser(
    subparsers: SubParsers,
) -> argparse.ArgumentParser:
    """Add the ``evaluate`` command group (``denoise``) to a CLI."""
    evaluate, commands = add_command_group(
        subparsers,
        "evaluate",
        help="score denoisers against normal-dose CT (PSNR, SSIM, RMSE)",
        description="Score denoisers against normal-dose CT: PSNR, SSIM and RMSE over the "
        "full HU range and in the display window, as tables and figures.",
    )
    _add_denoise(commands)
    return evaluate


def _sigma(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not (math.isfinite(value) and 0 < value < 1):
        raise argparse.ArgumentTypeError(
            f"must be a noise std in unit scale, 0 < sigma < 1 (HU / 4096), got {text!r}"
        )
    return value


def _add_denoise(commands: SubParsers) -> None:
    p = add_command(commands, "denoise", run_denoise)
    p.add_argument(
        "--data", type=Path, required=True, metavar="AAPM_ROOT", help="AAPM layout root folder"
    )
    p.add_argument(
        "--split-manifest",
        type=Path,
        metavar="MANIFEST",
        help="data manifest whose 'train' and 'test' splits are used (and whose sha256 "
        "the paired files are checked against), e.g. "
        "data_manifests/aapm_ldct_pairs_shared.yaml",
    )
    p.add_argument(
        "--test-patients",
        nargs="+",
        metavar="ID",
        help="test patients (default: the manifest's 'test' split)",
    )
    p.add_argument(
        "--train-patients",
        nargs="+",
        metavar="ID",
        help="training patients for BM3D's sigma (default: the manifest's 'train' split, "
        "or every patient not in the test split)",
    )
    p.add_argument("--thickness", help="keep only this slice thickness, e.g. 3mm")
    p.add_argument("--kernel", help="keep only this reconstruction kernel, e.g. D45")
    p.add_argument(
        "--weights",
        nargs="+",
        type=Path,
        default=[],
        metavar="FILE",
        help="trained denoiser checkpoints to score as well",
    )
    p.add_argument(
        "--device", default="cpu", help="torch device of --weights models (default: cpu)"
    )
    p.add_argument(
        "--output",
        type=Path,
        default=Path("ctpipe_evaluation"),
        metavar="DIR",
        help="output folder (default: %(default)s)",
    )
    p.add_argument(
        "--max-slices",
        type=positive_int,
        metavar="N",
        help="score at most N test slices, spread evenly over the split (default: all)",
    )
    p.add_argument(
        "--train-slices",
        type=positive_int,
        default=DEFAULT_TRAIN_SLICES,
        metavar="N",
        help="training slices, spread evenly over the split, on which BM3D's sigma is "
        "chosen (default: %(default)s)",
    )
    p.add_argument(
        "--bm3d-grid",
        nargs="+",
        type=_sigma,
        metavar="SIGMA",
        help="BM3D sigmas to search, unit scale (HU / 4096) (default: "
        "0.004 0.006 0.008 0.01 0.012 0.015 0.02 0.025)",
    )
    bm3d = p.add_mutually_exclusive_group()
    bm3d.add_argument(
        "--bm3d-sigma", type=_sigma, metavar="SIGMA", help="use this BM3D sigma, no search"
    )
    bm3d.add_argument("--no-bm3d", action="store_true", help="leave BM3D out")
    p.add_argument(
        "--figure-slices",
        nargs="+",
        type=int,
        default=[0],
        metavar="I",
        help="test slice indices (after --max-slices) to draw figures of (default: 0)",
    )
    p.add_argument(
        "--diff-range-hu",
        type=float,
        default=100.0,
        metavar="HU",
        help="difference maps show [-HU, HU] (default: %(default)s)",
    )


def _fail(error: BaseException) -> int:
    print(f"ctpipe evaluate denoise: error: {error}", file=sys.stderr)
    return EXIT_ERROR


def _split(args: argparse.Namespace) -> tuple[list[str], list[str], Any]:
    """Return (train patients, test patients, manifest or None) from the arguments."""
    from ctpipe.io.manifest import load_manifest

    manifest = load_manifest(args.split_manifest) if args.split_manifest else None
    splits = dict(manifest.splits) if manifest is not None else {}
    test = list(args.test_patients or splits.get("test", ()))
    if not test:
        where = (
            f"the manifest {args.split_manifest} has no 'test' split (it has "
            f"{sorted(splits) or 'none'})"
            if manifest is not None
            else "no --split-manifest is given"
        )
        raise ValueError(f"no test patients: {where}; name them with --test-patients")
    train = list(args.train_patients or splits.get("train", ()))
    return train, test, manifest


def _load_pairs(args: argparse.Namespace) -> tuple[list[Any], list[Any], dict[str, Any]]:
    """Find, split and read the slice pairs; return (train, test, record)."""
    from ctpipe.evaluate import load_slice_pairs, spread_indices
    from ctpipe.io.aapm import find_aapm_pairs, split_by_patient

    train_ids, test_ids, manifest = _split(args)
    overlap = sorted(set(train_ids) & set(test_ids))
    if overlap:
        raise ValueError(f"patients {overlap} are in both the training and the test split")
    datalist = find_aapm_pairs(
        args.data, thickness=args.thickness, kernel=args.kernel, manifest=manifest
    )
    if not args.train_patients and manifest is None:
        train_ids = sorted({e["patient"] for e in datalist} - set(test_ids))
    present = {e["patient"] for e in datalist}
    missing = sorted(set(test_ids) - present)
    if missing:
        raise ValueError(
            f"test patients {missing} have no pairs under {args.data} (patients with pairs: "
            f"{sorted(present)})"
        )
    datalist = [e for e in datalist if e["patient"] in set(train_ids) | set(test_ids)]
    parts = split_by_patient(datalist, {"train": train_ids, "test": test_ids})
    test_entries = [parts["test"][i] for i in spread_indices(len(parts["test"]), args.max_slices)]
    need_train = not args.no_bm3d and args.bm3d_sigma is None
    train_entries = (
        [parts["train"][i] for i in spread_indices(len(parts["train"]), args.train_slices)]
        if need_train
        else []
    )
    if need_train and not train_entries:
        raise ValueError(
            f"no training pairs to choose BM3D's sigma on (training patients: "
            f"{train_ids or 'none'}); give --train-patients, --bm3d-sigma or --no-bm3d"
        )
    record = {
        "data": str(args.data),
        "split_manifest": str(args.split_manifest) if args.split_manifest else "none",
        "train_patients": ", ".join(train_ids),
        "test_patients": ", ".join(test_ids),
        "thickness": args.thickness or "all",
        "kernel": args.kernel or "all",
        "train_slices_available": len(parts["train"]),
        "test_slices_available": len(parts["test"]),
    }
    return load_slice_pairs(train_entries), load_slice_pairs(test_entries), record


def load_weight_methods(
    paths: Sequence[Path], device: str = "cpu"
) -> dict[str, Callable[[Any], Any]]:
    """Load each checkpoint with ``ctpipe.checkpoints.denoiser.load_denoiser`` as a method.

    ``load_denoiser(path)`` must return a :class:`ctpipe.nets.Denoiser` (a torch module on
    unit-normalised ``(B, 1, H, W)``) or a tuple whose first item is one. Each becomes a
    method ``hu_2d -> hu_2d`` named ``"<class> (<file name>)"``.

    Raises:
        ImportError: If ``ctpipe.checkpoints.denoiser.load_denoiser`` is not available.
        TypeError: If ``load_denoiser`` returns something other than a torch module.
    """
    if not paths:
        return {}
    try:
        from ctpipe.checkpoints.denoiser import load_denoiser
    except ImportError as error:
        raise ImportError(
            f"--weights needs ctpipe.checkpoints.denoiser.load_denoiser, which this ctpipe "
            f"lacks ({error}); evaluate without --weights, or install a ctpipe that has "
            f"the training module"
        ) from error
    methods: dict[str, Callable[[Any], Any]] = {}
    for path in paths:
        loaded = load_denoiser(path)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        name = f"{type(model).__name__} ({Path(path).name})"
        if name in methods:
            name = f"{name} #{len(methods) + 1}"
        methods[name] = _hu_function(model, device, path)
    return methods


def _hu_function(model: Any, device: str, path: Path) -> Callable[[Any], Any]:
    """Wrap a denoiser as ``hu_2d -> hu_2d`` through the pipeline's one inferer.

    The function also takes the slice's ``kernel``, for a kernel-matched denoiser.
    """
    import torch

    from ctpipe.inference import SliceInferer, denoise_slice

    if not isinstance(model, torch.nn.Module):
        raise TypeError(
            f"{path}: load_denoiser returned {type(model).__name__}, expected a torch "
            f"module (ctpipe.nets.Denoiser)"
        )
    inferer = SliceInferer(device=device)

    def denoise(hu_2d: Any, kernel: str | None = None) -> Any:
        return denoise_slice(hu_2d, model, kernel=kernel, inferer=inferer)

    return denoise


def run_denoise(args: argparse.Namespace) -> int:
    """Score LDCT input, BM3D and trained denoisers on AAPM low/normal-dose pairs.

    Pair the quarter- and full-dose slices of an AAPM Low Dose CT tree, choose BM3D's sigma
    on training slices (grid search, mean full-range PSNR), and score 'LDCT input' (the
    low-dose slice as it is), 'BM3D' and each --weights model on the test slices. Writes
    metrics.csv, metrics_per_slice.csv, metrics.md, metrics.json and figures/*.png to
    --output.

    Returns:
        0 when the results are written, 2 when the input or the settings cannot be used.

    Example:
        >>> args = argparse.Namespace(data=Path("missing"), split_manifest=None,
        ...     test_patients=["L192"], train_patients=None, thickness=None, kernel=None,
        ...     weights=[], device="cpu", output=Path("out"), max_slices=None,
        ...     train_slices=6, bm3d_grid=None, bm3d_sigma=None, no_bm3d=False,
        ...     figure_slices=[0], diff_range_hu=100.0)
        >>> run_denoise(args)
        2
    """
    from ctpipe.errors import CTPipeError

    try:
        return _run_denoise(args)
    except (CTPipeError, ImportError, OSError, TypeError, ValueError) as error:
        if getattr(args, "debug", False):
            raise
        return _fail(error)


def _run_denoise(args: argparse.Namespace) -> int:
    import time

    from ctpipe.evaluate import evaluate_ldct_baselines, write_evaluation

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    start = time.perf_counter()
    extra = load_weight_methods(args.weights, args.device)
    train, test, record = _load_pairs(args)
    progress(
        f"{len(test)} test slice(s), {len(train)} training slice(s) for BM3D's sigma, "
        f"methods: LDCT input{'' if args.no_bm3d else ', BM3D'}"
        + "".join(f", {name}" for name in extra)
    )
    result = evaluate_ldct_baselines(
        test,
        train_pairs=train,
        bm3d_sigma=args.bm3d_sigma,
        bm3d_grid=args.bm3d_grid,
        use_bm3d=not args.no_bm3d,
        extra_methods=extra,
        figure_slices=args.figure_slices,
        progress=progress,
    )
    result.record.update(record)
    result.record["weights"] = [str(p) for p in args.weights]
    result.record["total_seconds"] = round(time.perf_counter() - start, 1)
    paths = write_evaluation(result, args.output, diff_range_hu=args.diff_range_hu)
    print(result.to_markdown())
    print(f"wrote {args.output}: " + ", ".join(p.name for p in paths.values()))
    return EXIT_OK
