"""The result of an evaluation and its report: tables in CSV, Markdown and JSON, plus figures.

:class:`EvaluationResult` holds the per-slice scores of several methods and summarises
them (mean and standard deviation over slices, ``ddof=0``). :func:`write_evaluation`
writes, each atomically:

* ``metrics.csv``: one row per method, mean and standard deviation over slices of each
  metric (``<metric>_<scale>_mean``, ``..._std``) and seconds per slice;
* ``metrics_per_slice.csv``: one row per method and slice;
* ``metrics.md``: the summary table as Markdown (mean ± std), plus the extra tables (e.g.
  the BM3D sigma search) and the settings;
* ``metrics.json``: everything above plus the run record (settings, versions, timings);
* ``figures/<slice>.png``: per chosen slice, the comparison figure of
  :func:`ctpipe.evaluate.figure.write_comparison_figure`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ctpipe.evaluate.figure import DIFF_RANGE_HU, write_comparison_figure
from ctpipe.io.atomic import atomic_path
from ctpipe.metrics import METRIC_NAMES
from ctpipe.transforms import DISPLAY_WINDOW

if TYPE_CHECKING:
    from ctpipe.evaluate.pairs import SlicePair

__all__ = ["METRIC_COLUMNS", "EvaluationResult", "write_evaluation"]

#: Metric columns of the results, ``<metric>_<scale>``, in report order.
METRIC_COLUMNS = tuple(f"{m}_{s}" for s in ("full", "window") for m in METRIC_NAMES)

_HEADINGS = {
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "rmse": "RMSE (unit)",
    "rmse_hu": "RMSE (HU)",
}
_DIGITS = {"psnr": 2, "ssim": 4, "rmse": 5, "rmse_hu": 2}


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
        result: From :func:`~ctpipe.evaluate.run.evaluate_denoisers` or
            :func:`~ctpipe.evaluate.run.evaluate_ldct_baselines`.
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
