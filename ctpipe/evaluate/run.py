"""Run denoisers on paired low-dose / normal-dose CT slices and score their outputs.

A *method* is any callable ``hu_2d -> hu_2d`` (one 2D slice in HU in, the denoised slice
in HU out): the identity (:data:`LDCT_INPUT`, the low-dose input scored as it is), the
BM3D baseline (:class:`ctpipe.baselines.BM3DDenoiser`), or a trained network wrapped by
the caller. A method with a ``kernel`` keyword also gets the slice's reconstruction kernel
(``pair.meta["kernel"]``), as a kernel-matched denoiser needs. This module never imports
model code.

:func:`evaluate_denoisers` runs every method on every :class:`SlicePair` and scores its
output against the normal-dose slice with :func:`ctpipe.metrics.denoising_quality` (PSNR,
SSIM, RMSE on the full range [-1024, 3072] HU and in the display window [-160, 240] HU).
:func:`evaluate_ldct_baselines` adds the protocol of the baseline study: choose BM3D's
sigma on the training split, then score "LDCT input", "BM3D" and any extra methods on the
test split. Both return a :class:`ctpipe.evaluate.report.EvaluationResult`.

Slices are arrays indexed ``(i, j)`` = (column, row) like ctpipe volumes.

Example:
    >>> import numpy as np
    >>> ref = np.zeros((32, 32), dtype=np.float32)
    >>> pairs = [SlicePair(ref + 20.0, ref, name="s0")]
    >>> result = evaluate_denoisers(pairs, {LDCT_INPUT: identity, "zero": np.zeros_like})
    >>> [round(row["rmse_hu_full_mean"], 1) for row in result.summary()]
    [20.0, 0.0]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ctpipe.evaluate.pairs import LDCT_INPUT, SlicePair, load_slice_pairs
from ctpipe.evaluate.report import EvaluationResult
from ctpipe.metrics import denoising_quality
from ctpipe.transforms import DISPLAY_WINDOW

__all__ = [
    "BM3D",
    "LDCT_INPUT",
    "HuFunction",
    "SlicePair",
    "evaluate_denoisers",
    "evaluate_ldct_baselines",
    "identity",
    "load_slice_pairs",
    "spread_indices",
]

#: Name of the BM3D baseline.
BM3D = "BM3D"

HuFunction = Callable[[np.ndarray], np.ndarray]


def identity(hu_2d: np.ndarray) -> np.ndarray:
    """The :data:`LDCT_INPUT` method: return the slice unchanged (a float32 copy)."""
    return np.array(hu_2d, dtype=np.float32)


def spread_indices(count: int, limit: int | None) -> list[int]:
    """Indices of at most ``limit`` items spread evenly over ``count`` (all when None).

    Example:
        >>> spread_indices(11, 4), spread_indices(3, None), spread_indices(3, 10)
        ([0, 3, 7, 10], [0, 1, 2], [0, 1, 2])
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1 or None, got {limit}")
    if limit is None or limit >= count:
        return list(range(count))
    return sorted({round(float(v)) for v in np.linspace(0, count - 1, limit)})


def _check_methods(methods: Mapping[str, HuFunction]) -> dict[str, HuFunction]:
    if not isinstance(methods, Mapping) or not methods:
        raise ValueError(
            f"methods must be a non-empty mapping of name -> callable hu_2d -> hu_2d, "
            f"got {methods!r}"
        )
    for name, method in methods.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"method names must be non-empty strings, got {name!r}")
        if not callable(method):
            raise TypeError(f"method {name!r} must be callable hu_2d -> hu_2d, got {method!r}")
    return dict(methods)


def _run_method(name: str, method: HuFunction, pair: SlicePair) -> tuple[np.ndarray, float]:
    kernel = {"kernel": pair.meta.get("kernel")} if _takes_kernel(method) else {}
    start = time.perf_counter()
    output = method(pair.low_hu.copy(), **kernel)
    seconds = time.perf_counter() - start
    output = np.asarray(output, dtype=np.float32)
    if output.shape != pair.low_hu.shape:
        raise ValueError(
            f"method {name!r} returned shape {output.shape} for slice {pair.name!r} of shape "
            f"{pair.low_hu.shape}; a method must map a 2D HU slice to one of the same shape"
        )
    if not np.isfinite(output).all():
        raise ValueError(f"method {name!r} returned NaN or infinity for slice {pair.name!r}")
    return output, seconds


def _takes_kernel(method: HuFunction) -> bool:
    """Whether ``method`` accepts the slice's ``kernel`` keyword (a kernel-matched model)."""
    import inspect

    try:
        return "kernel" in inspect.signature(method).parameters
    except (TypeError, ValueError):  # builtins and some callables have no signature
        return False


def evaluate_denoisers(
    pairs: Sequence[SlicePair],
    methods: Mapping[str, HuFunction],
    *,
    window: tuple[float, float] = DISPLAY_WINDOW,
    figure_slices: Sequence[int] = (),
    progress: Callable[[str], None] | None = None,
) -> EvaluationResult:
    """Run every method on every low-dose slice and score it against the normal dose.

    Args:
        pairs: The slices to score on (e.g. the test split).
        methods: Name -> callable ``hu_2d -> hu_2d``, in report order; include
            ``{LDCT_INPUT: identity}`` to report the input itself.
        window: Display window (HU) of the windowed metrics and of the figures.
        figure_slices: Indices into ``pairs`` whose outputs are kept for figures
            (:func:`~ctpipe.evaluate.report.write_evaluation`).
        progress: Called with one line of text per slice (e.g. ``print``).

    Returns:
        The :class:`EvaluationResult`.

    Raises:
        ValueError: If ``pairs`` or ``methods`` is empty, a figure index is out of range, or
            a method returns an output of another shape or with NaN/infinity.
        TypeError: If a method is not callable.
    """
    methods = _check_methods(methods)
    pairs = list(pairs)
    if not pairs:
        raise ValueError("pairs must hold at least one SlicePair")
    figure_slices = _check_figure_slices(figure_slices, len(pairs))
    per_slice: list[dict[str, Any]] = []
    figure_outputs: dict[int, dict[str, np.ndarray]] = {i: {} for i in figure_slices}
    for index, pair in enumerate(pairs):
        for name, method in methods.items():
            output, seconds = _run_method(name, method, pair)
            quality = denoising_quality(output, pair.normal_hu, window=window)
            per_slice.append(
                {"method": name, "slice": index, "name": pair.name, **quality, "seconds": seconds}
            )
            if index in figure_outputs:
                figure_outputs[index][name] = output
        if progress is not None:
            scores = ", ".join(
                f"{r['method']} {r['psnr_full']:.2f} dB" for r in per_slice if r["slice"] == index
            )
            progress(f"slice {index + 1}/{len(pairs)} {pair.name}: PSNR {scores}")
    return EvaluationResult(
        methods=list(methods),
        slices=[{"name": p.name, **p.meta} for p in pairs],
        per_slice=per_slice,
        window=(float(window[0]), float(window[1])),
        figure_outputs=figure_outputs,
        figure_pairs={i: pairs[i] for i in figure_slices},
    )


def _check_figure_slices(figure_slices: Sequence[int], count: int) -> list[int]:
    chosen = []
    for index in figure_slices:
        if not isinstance(index, (int, np.integer)) or not -count <= index < count:
            raise ValueError(
                f"figure slice index must be an integer in [0, {count - 1}] (there are "
                f"{count} slices), got {index!r}"
            )
        chosen.append(int(index) % count)
    return sorted(set(chosen))


def evaluate_ldct_baselines(
    test_pairs: Sequence[SlicePair],
    *,
    train_pairs: Sequence[SlicePair] = (),
    bm3d_sigma: float | None = None,
    bm3d_grid: Sequence[float] | None = None,
    use_bm3d: bool = True,
    extra_methods: Mapping[str, HuFunction] | None = None,
    window: tuple[float, float] = DISPLAY_WINDOW,
    figure_slices: Sequence[int] = (0,),
    progress: Callable[[str], None] | None = None,
) -> EvaluationResult:
    """Score "LDCT input", "BM3D" (sigma chosen on the training split) and extra methods.

    Args:
        test_pairs: The slices to score on.
        train_pairs: Training slices on which BM3D's sigma is chosen by grid search
            (:func:`ctpipe.baselines.choose_bm3d_sigma`); unused when ``bm3d_sigma`` is
            given or ``use_bm3d`` is False.
        bm3d_sigma: A fixed sigma (unit scale) instead of the search.
        bm3d_grid: Sigmas to search; :data:`ctpipe.baselines.DEFAULT_SIGMA_GRID` when None.
        use_bm3d: False leaves BM3D out.
        extra_methods: Name -> callable ``hu_2d -> hu_2d`` (e.g. trained networks), scored
            after the baselines.
        window: Display window (HU) of the windowed metrics and the figures.
        figure_slices: Indices into ``test_pairs`` to draw figures of.
        progress: Called with one line of text per step.

    Returns:
        The result; its ``record`` holds the chosen sigma and the slice counts, and its
        ``tables`` the sigma search.

    Raises:
        ValueError: If BM3D's sigma is to be searched but ``train_pairs`` is empty, a name
            of ``extra_methods`` clashes with a baseline, or as
            :func:`evaluate_denoisers`.
        ImportError: If BM3D is used and the ``bm3d`` package is missing.
    """
    methods: dict[str, HuFunction] = {LDCT_INPUT: identity}
    record: dict[str, Any] = {
        "test_slices": len(test_pairs),
        "train_slices_for_bm3d_sigma": 0,
    }
    tables: dict[str, list[dict[str, Any]]] = {}
    if use_bm3d:
        from ctpipe.baselines.bm3d import DEFAULT_SIGMA_GRID, BM3DDenoiser, choose_bm3d_sigma

        if bm3d_sigma is None:
            if not train_pairs:
                raise ValueError(
                    "choosing BM3D's sigma needs training pairs; give train_pairs, or a "
                    "fixed bm3d_sigma, or use_bm3d=False"
                )
            grid = DEFAULT_SIGMA_GRID if bm3d_grid is None else bm3d_grid
            start = time.perf_counter()
            bm3d_sigma, search = choose_bm3d_sigma(
                [(p.low_hu, p.normal_hu) for p in train_pairs], grid, progress=progress
            )
            record["bm3d_sigma_search_seconds"] = round(time.perf_counter() - start, 2)
            record["train_slices_for_bm3d_sigma"] = len(train_pairs)
            record["bm3d_sigma_train_slices"] = [p.name for p in train_pairs]
            tables["BM3D sigma search (training split, full-range PSNR)"] = search
            record["bm3d_sigma_chosen_on"] = "training split: mean full-range PSNR"
        else:
            record["bm3d_sigma_chosen_on"] = "given"
        denoiser = BM3DDenoiser(sigma=bm3d_sigma)
        methods[BM3D] = denoiser
        record.update({f"bm3d_{k}": v for k, v in denoiser.settings().items() if k != "method"})
        if progress is not None:
            progress(f"BM3D sigma = {denoiser.sigma:g} ({denoiser.sigma_hu:.2f} HU)")
    for name, method in (extra_methods or {}).items():
        if name in methods:
            raise ValueError(
                f"extra method name {name!r} clashes with a baseline ({', '.join(methods)}); "
                f"rename it"
            )
        methods[name] = method
    result = evaluate_denoisers(
        test_pairs, methods, window=window, figure_slices=figure_slices, progress=progress
    )
    result.record.update(record)
    result.tables.update(tables)
    return result
