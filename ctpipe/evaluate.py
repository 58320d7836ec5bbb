"""Score denoisers on paired low-dose / normal-dose CT slices; write tables and figures.

A *method* is any callable ``hu_2d -> hu_2d`` (one 2D slice in HU in, the denoised slice
in HU out): the identity (:data:`LDCT_INPUT`, the low-dose input scored as it is), the
BM3D baseline (:class:`ctpipe.baselines.BM3DDenoiser`), or a trained network wrapped by
the caller. This module never imports model code.

:func:`evaluate_denoisers` runs every method on every slice and scores its output against
the normal-dose slice with :func:`ctpipe.metrics.denoising_quality` (PSNR, SSIM, RMSE on
the full range [-1024, 3072] HU and in the display window [-160, 240] HU).
:func:`evaluate_ldct_baselines` adds the protocol of the baseline study: choose BM3D's
sigma on the training split, then score "LDCT input", "BM3D" and any extra methods on the
test split. :func:`write_evaluation` writes, each atomically:

* ``metrics.csv``: one row per method, mean and standard deviation over slices of each
  metric (``<metric>_<scale>_mean``, ``..._std``) and seconds per slice;
* ``metrics_per_slice.csv``: one row per method and slice;
* ``metrics.md``: the summary table as Markdown (mean ± std), plus the extra tables (e.g.
  the BM3D sigma search) and the settings;
* ``metrics.json``: everything above plus the run record (settings, versions, timings);
* ``figures/<slice>.png``: per chosen slice, the input, each output and the reference in
  the display window, and below each its difference to the reference in a symmetric HU
  range, titled with PSNR and SSIM.

Slices are arrays indexed ``(i, j)`` = (column, row) like ctpipe volumes; figures show
them as the DICOM display does (rows down, columns across). Standard deviations are over
slices (``ddof=0``).

Example:
    >>> import numpy as np
    >>> ref = np.zeros((32, 32), dtype=np.float32)
    >>> pairs = [SlicePair(ref + 20.0, ref, name="s0")]
    >>> result = evaluate_denoisers(pairs, {LDCT_INPUT: identity, "zero": np.zeros_like})
    >>> [round(row["rmse_hu_full_mean"], 1) for row in result.summary()]
    [20.0, 0.0]
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from ctpipe.io.atomic import atomic_path
from ctpipe.metrics import METRIC_NAMES, denoising_quality
from ctpipe.transforms import DISPLAY_WINDOW

__all__ = [
    "BM3D",
    "LDCT_INPUT",
    "METRIC_COLUMNS",
    "EvaluationResult",
    "SlicePair",
    "evaluate_denoisers",
    "evaluate_ldct_baselines",
    "identity",
    "load_slice_pairs",
    "spread_indices",
    "write_comparison_figure",
    "write_evaluation",
]

#: Name of the identity method: the low-dose input scored as it is.
LDCT_INPUT = "LDCT input"
#: Name of the BM3D baseline.
BM3D = "BM3D"
#: Metric columns of the results, ``<metric>_<scale>``, in report order.
METRIC_COLUMNS = tuple(f"{m}_{s}" for s in ("full", "window") for m in METRIC_NAMES)
#: Default half-width (HU) of the difference maps' colour range.
DIFF_RANGE_HU = 100.0

HuFunction = Callable[[np.ndarray], np.ndarray]

_HEADINGS = {
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "rmse": "RMSE (unit)",
    "rmse_hu": "RMSE (HU)",
}
_DIGITS = {"psnr": 2, "ssim": 4, "rmse": 5, "rmse_hu": 2}


def identity(hu_2d: np.ndarray) -> np.ndarray:
    """The :data:`LDCT_INPUT` method: return the slice unchanged (a float32 copy)."""
    return np.array(hu_2d, dtype=np.float32)


@dataclass(frozen=True)
class SlicePair:
    """One low-dose slice and its normal-dose reference, both 2D HU arrays ``(i, j)``.

    Args:
        low_hu: The low-dose (e.g. quarter-dose) slice in HU.
        normal_hu: The normal-dose slice at the same position, in HU, same shape.
        name: A short label, used in tables and figure file names.
        meta: JSON-serialisable facts to record (patient, kernel, z, files, ...).

    Raises:
        ValueError: If a slice is not 2D, the shapes differ, or a value is not finite.
    """

    low_hu: np.ndarray
    normal_hu: np.ndarray
    name: str
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        low = np.asarray(self.low_hu, dtype=np.float32)
        normal = np.asarray(self.normal_hu, dtype=np.float32)
        if low.ndim != 2 or normal.shape != low.shape:
            raise ValueError(
                f"slice pair {self.name!r}: low_hu and normal_hu must be 2D of one shape, "
                f"got {low.shape} and {normal.shape}"
            )
        for label, array in (("low_hu", low), ("normal_hu", normal)):
            if not np.isfinite(array).all():
                raise ValueError(f"slice pair {self.name!r}: {label} holds NaN or infinity")
        object.__setattr__(self, "low_hu", low)
        object.__setattr__(self, "normal_hu", normal)
        object.__setattr__(self, "meta", dict(self.meta))

    @classmethod
    def from_datalist_entry(cls, entry: Mapping[str, Any]) -> SlicePair:
        """Read one entry of :func:`ctpipe.io.find_aapm_pairs` (``image``/``label`` files).

        Raises:
            InputError: If a file cannot be read as a CT slice (the file is named).
            ValueError: If an entry lacks ``image`` or ``label``, or a file holds several
                slices.
        """
        from ctpipe.io.dicom_volume import read_dicom_volume

        missing = [key for key in ("image", "label") if key not in entry]
        if missing:
            raise ValueError(f"datalist entry lacks {missing}: {dict(entry)!r}")
        slices = []
        for key in ("image", "label"):
            hu = read_dicom_volume(entry[key]).hu
            if hu.ndim != 3 or hu.shape[2] != 1:
                raise ValueError(f"{entry[key]}: expected one slice, got shape {hu.shape}")
            slices.append(hu[:, :, 0])
        meta = {k: v for k, v in entry.items() if isinstance(v, (str, int, float))}
        return cls(slices[0], slices[1], name=_entry_name(entry), meta=meta)


def _entry_name(entry: Mapping[str, Any]) -> str:
    parts = [str(entry.get("patient", "")), str(entry.get("kernel", ""))]
    if "z" in entry:
        parts.append(f"z{float(entry['z']):g}")
    name = "_".join(p for p in parts if p)
    return name or Path(str(entry["image"])).stem


def load_slice_pairs(datalist: Sequence[Mapping[str, Any]]) -> list[SlicePair]:
    """Read every entry of an AAPM datalist into a :class:`SlicePair`."""
    return [SlicePair.from_datalist_entry(entry) for entry in datalist]


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


@dataclass
class EvaluationResult:
    """Scores of several methods on the same slices.

    Attributes:
        methods: Method names in report order.
        slices: Name and meta of each slice, in order.
        per_slice: One row per (method, slice): ``method``, ``slice`` (index), ``name``,
            each of :data:`METRIC_COLUMNS`, and ``seconds`` (time of the method call).
        window: The display window (HU) of the ``*_window`` metrics and of the figures.
        record: JSON-serialisable settings and facts of the run (saved in metrics.json).
        tables: Extra tables to report, title -> rows (e.g. the BM3D sigma search).
        figure_outputs: Slice index -> method -> output HU, for the figure slices.
    """

    methods: list[str]
    slices: list[dict[str, Any]]
    per_slice: list[dict[str, Any]]
    window: tuple[float, float] = DISPLAY_WINDOW
    record: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    figure_outputs: dict[int, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    figure_pairs: dict[int, SlicePair] = field(default_factory=dict, repr=False)

    def summary(self) -> list[dict[str, Any]]:
        """One row per method: ``method``, ``n_slices``, ``<metric>_mean``/``_std``, time."""
        rows = []
        for method in self.methods:
            mine = [r for r in self.per_slice if r["method"] == method]
            row: dict[str, Any] = {"method": method, "n_slices": len(mine)}
            for column in METRIC_COLUMNS:
                values = np.array([r[column] for r in mine], dtype=np.float64)
                with np.errstate(invalid="ignore"):  # PSNR inf (equal images): std nan
                    row[f"{column}_mean"] = float(np.mean(values)) if len(values) else math.nan
                    row[f"{column}_std"] = float(np.std(values)) if len(values) else math.nan
            row["seconds_per_slice"] = float(np.mean([r["seconds"] for r in mine] or [math.nan]))
            rows.append(row)
        return rows

    def to_markdown(self) -> str:
        """The summary table (mean ± std over slices), the extra tables and the settings."""
        window = f"[{self.window[0]:g}, {self.window[1]:g}] HU"
        n = len(self.slices)
        lines = [
            f"Mean ± std over {n} slice(s). *Full*: HU clipped to [-1024, 3072] and mapped "
            f"to [0, 1]; *window*: HU clipped to {window} and mapped to [0, 1]; data_range 1. "
            f"RMSE (unit) is on that [0, 1] scale, RMSE (HU) = RMSE (unit) x range width. "
            f"SSIM: 11x11 Gaussian window, sigma 1.5 (Wang et al. 2004).",
            "",
        ]
        headers = ["Method"]
        headers += [f"{_HEADINGS[m]} full" for m in METRIC_NAMES]
        headers += [f"{_HEADINGS[m]} window" for m in METRIC_NAMES]
        headers.append("s/slice")
        body = []
        for row in self.summary():
            cells = [row["method"]]
            for column in METRIC_COLUMNS:
                digits = _DIGITS[column.rsplit("_", 1)[0]]
                mean, std = row[f"{column}_mean"], row[f"{column}_std"]
                cells.append(f"{mean:.{digits}f} ± {std:.{digits}f}")
            cells.append(f"{row['seconds_per_slice']:.2f}")
            body.append(cells)
        lines += _markdown_table(headers, body)
        for title, rows in self.tables.items():
            if rows:
                lines += ["", f"**{title}**", ""]
                lines += _markdown_table(
                    list(rows[0]), [[_fmt_cell(r[k]) for k in rows[0]] for r in rows]
                )
        scalars = {k: v for k, v in self.record.items() if isinstance(v, (str, int, float))}
        if scalars:
            lines += ["", "**Settings**", ""]
            lines += [f"- {key}: {_fmt_cell(value)}" for key, value in scalars.items()]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-serialisable data (non-finite floats become strings)."""
        return _json_safe(
            {
                "methods": self.methods,
                "window_hu": list(self.window),
                "summary": self.summary(),
                "tables": self.tables,
                "record": self.record,
                "slices": self.slices,
                "per_slice": self.per_slice,
            }
        )


def _fmt_cell(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (np.floating, np.integer)):
        return _json_safe(value.item())
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


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
    start = time.perf_counter()
    output = method(pair.low_hu.copy())
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
            (:func:`write_evaluation`).
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


# --- writing -------------------------------------------------------------------------------


def _csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


def _write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as temp:
        temp.write_text(text, encoding="utf-8")
    return path


def _figure_name(index: int, pair: SlicePair) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", pair.name).strip("_")
    return f"slice_{index:03d}_{safe}.png" if safe else f"slice_{index:03d}.png"


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in ("ctpipe", "numpy", "scikit-image", "bm3d", "monai", "torch"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def _cpu_name() -> str:
    """The CPU model (from /proc/cpuinfo on Linux) and the number of logical CPUs."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} logical CPU(s)"


def write_evaluation(
    result: EvaluationResult,
    output_dir: str | PathLike[str],
    *,
    diff_range_hu: float = DIFF_RANGE_HU,
) -> dict[str, Path]:
    """Write the tables (CSV, Markdown, JSON) and the figures of ``result``, atomically.

    Args:
        result: From :func:`evaluate_denoisers` or :func:`evaluate_ldct_baselines`.
        output_dir: Folder to write to (created when missing).
        diff_range_hu: Difference maps show [-diff_range_hu, +diff_range_hu] HU.

    Returns:
        Kind -> path: ``csv``, ``per_slice_csv``, ``markdown``, ``json`` and
        ``figure:<slice index>`` for each figure.
    """
    output = Path(output_dir)
    result.record.setdefault("versions", _versions())
    result.record.setdefault("cpu", _cpu_name())
    paths: dict[str, Path] = {}
    for index, pair in sorted(result.figure_pairs.items()):
        path = output / "figures" / _figure_name(index, pair)
        scores = {r["method"]: r for r in result.per_slice if r["slice"] == index}
        write_comparison_figure(
            path,
            pair,
            result.figure_outputs[index],
            scores=scores,
            window=result.window,
            diff_range_hu=diff_range_hu,
        )
        paths[f"figure:{index}"] = path
    paths["csv"] = _write_text(output / "metrics.csv", _csv_text(result.summary()))
    paths["per_slice_csv"] = _write_text(
        output / "metrics_per_slice.csv", _csv_text(result.per_slice)
    )
    paths["markdown"] = _write_text(output / "metrics.md", result.to_markdown())
    data = result.to_dict()
    data["files"] = {key: str(path.relative_to(output)) for key, path in paths.items()}
    paths["json"] = _write_text(output / "metrics.json", json.dumps(data, indent=2) + "\n")
    return paths


def write_comparison_figure(
    path: str | PathLike[str],
    pair: SlicePair,
    outputs: Mapping[str, np.ndarray],
    *,
    scores: Mapping[str, Mapping[str, float]] | None = None,
    window: tuple[float, float] = DISPLAY_WINDOW,
    diff_range_hu: float = DIFF_RANGE_HU,
) -> Path:
    """Draw input, outputs and reference over their differences to the reference; save PNG.

    The top row shows the low-dose input, each method's output (except
    :data:`LDCT_INPUT`, which is the input) and the normal-dose reference, all in
    ``window``; the bottom row shows ``image - reference`` under each image, in
    [-diff_range_hu, diff_range_hu] HU. Titles give PSNR and SSIM on the full range and in
    the window (computed here when ``scores`` lacks them).

    Args:
        path: PNG to write (atomically; its folder is created).
        pair: The slice pair.
        outputs: Method name -> output HU, same shape as the pair.
        scores: Method name -> metrics as from :func:`ctpipe.metrics.denoising_quality`.
        window: Display window (HU).
        diff_range_hu: Half-width of the difference maps' range, > 0.

    Returns:
        ``path``.

    Raises:
        ValueError: If ``diff_range_hu`` is not positive or an output's shape differs.
    """
    if not (math.isfinite(diff_range_hu) and diff_range_hu > 0):
        raise ValueError(f"diff_range_hu must be a positive number, got {diff_range_hu}")
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    panels: list[tuple[str, np.ndarray]] = [(LDCT_INPUT, pair.low_hu)]
    panels += [(name, np.asarray(out)) for name, out in outputs.items() if name != LDCT_INPUT]
    for name, image in panels:
        if image.shape != pair.normal_hu.shape:
            raise ValueError(
                f"output of {name!r} has shape {image.shape}, the pair {pair.normal_hu.shape}"
            )
    scores = dict(scores or {})
    columns = len(panels) + 1
    figure = Figure(figsize=(3.2 * columns, 7.0), layout="constrained")
    axes = figure.subplots(2, columns, squeeze=False)
    low, high = window
    for column, (name, image) in enumerate(panels):
        quality = scores.get(name) or denoising_quality(image, pair.normal_hu, window=window)
        shown = axes[0, column].imshow(image.T, cmap="gray", vmin=low, vmax=high)
        axes[0, column].set_title(
            f"{name}\nPSNR {quality['psnr_full']:.2f} dB, SSIM {quality['ssim_full']:.3f}\n"
            f"window: {quality['psnr_window']:.2f} dB, {quality['ssim_window']:.3f}",
            fontsize=9,
        )
        difference = axes[1, column].imshow(
            (image - pair.normal_hu).T, cmap="RdBu_r", vmin=-diff_range_hu, vmax=diff_range_hu
        )
        axes[1, column].set_title(
            f"{name} - reference\nRMSE {quality['rmse_hu_full']:.1f} HU", fontsize=9
        )
    axes[0, -1].imshow(pair.normal_hu.T, cmap="gray", vmin=low, vmax=high)
    axes[0, -1].set_title("Reference (normal dose)", fontsize=9)
    axes[1, -1].set_visible(False)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    figure.colorbar(shown, ax=axes[0, :].tolist(), shrink=0.8, label="HU")
    figure.colorbar(difference, ax=axes[1, :].tolist(), shrink=0.8, label="difference (HU)")
    figure.suptitle(
        f"{pair.name}\nimages in [{low:g}, {high:g}] HU, differences in ±{diff_range_hu:g} HU; "
        f"PSNR/SSIM on the full range [-1024, 3072] HU and in the window"
    )
    path = Path(path)
    with atomic_path(path) as temp:
        figure.savefig(temp, format="png", dpi=140)
    return path
