"""HTML reports: one page per study, an index page per batch; self-contained, no scripts.

:func:`write_study_report` renders a study's run record (``run.json``): its warnings
(e.g. a series that the DICOM node received incomplete), the input, the previews side by
side (input, each image step's result, the difference, the label overlay, all in the
display window), the metrics, each step's model (file and sha256), settings and time, the
library versions and the outputs. :func:`write_batch_index`
lists every series of a batch with its status, time and error, linking each report.
Text from DICOM headers and error messages is escaped.

Example:
    >>> import tempfile
    >>> record = {"status": "done", "workflow": {"name": "w"}, "input": {"path": "ct/"},
    ...           "steps": {}, "timings": {"total": 1.5}, "versions": {}, "outputs": {}}
    >>> html = write_study_report(record, tempfile.mkdtemp() + "/report.html").read_text()
    >>> "<h1>ctpipe report: w</h1>" in html
    True
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from html import escape
from os import PathLike
from pathlib import Path
from typing import Any

from ctpipe.io.atomic import atomic_path

__all__ = ["write_batch_index", "write_study_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.done { color: #176317; } .failed { color: #a31515; } .skipped, .not_selected { color: #666; }
.flagged, .out_of_distribution { color: #a35a00; font-weight: bold; }
.warning { background: #fff3cd; border: 2px solid #a35a00; padding: 0.6em; font-weight: bold; }
figure { display: inline-block; margin: 0.4em; } figure img { max-width: 46vw; }
figcaption { font-size: 0.85em; color: #555; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
"""

_CAPTIONS = {
    "input": "input (window -160..240 HU)",
    "denoised": "denoised (same window)",
    "denoised_difference": "input minus denoised (-60..60 HU)",
    "labels": "labels over the final image",
    "inpainted": "inpainted (same window)",
    "inpainted_difference": "input minus inpainted (-60..60 HU)",
    "anomaly": "VAE anomaly map (slice with the highest negative ELBO)",
}


def write_study_report(record: Mapping[str, Any], path: str | PathLike[str]) -> Path:
    """Write the HTML report of one study's run record; return its path."""
    name = record.get("workflow", {}).get("name", "workflow")
    parts = [
        f"<h1>ctpipe report: {escape(str(name))}</h1>",
        f'<p>Status: <b class="{escape(str(record.get("status")))}">'
        f"{escape(str(record.get('status')))}</b>, {_seconds(record, 'total')}</p>",
        *_warnings(record.get("warnings") or []),
    ]
    if record.get("steps_not_run"):
        parts.append(f"<p>Steps not run: {escape(', '.join(record['steps_not_run']))}</p>")
    parts += [
        "<h2>Input</h2>",
        _table(record.get("input", {})),
    ]
    if record.get("reception"):
        parts += ["<h2>Received by the DICOM node</h2>", _table(record["reception"])]
    previews = record.get("outputs", {}).get("previews", {})
    if previews:
        parts.append("<h2>Images</h2>")
        parts += [_figure(key, src) for key, src in previews.items()]
    for step, step_record in record.get("steps", {}).items():
        parts += [f"<h2>Step: {escape(step)}</h2>", _step_table(step_record)]
        if step_record.get("statistics"):
            parts += ["<h3>Organ statistics</h3>", _statistics_table(step_record["statistics"])]
    if record.get("error"):
        parts += ["<h2>Error</h2>", f"<pre>{escape(str(record['error']))}</pre>"]
    parts += [
        "<h2>Outputs</h2>",
        _outputs(record.get("outputs", {})),
        "<h2>Timings (s)</h2>",
        _table(_timings(record)),
        "<h2>Versions</h2>",
        _table(record.get("versions", {})),
        "<h2>Workflow settings</h2>",
        f"<pre>{escape(json.dumps(record.get('workflow', {}), indent=2))}</pre>",
    ]
    return _write(f"ctpipe: {name}", parts, path)


def write_batch_index(
    rows: Sequence[Mapping[str, Any]], path: str | PathLike[str], *, title: str = "ctpipe batch"
) -> Path:
    """Write a batch's index page: one row per series (name, status, seconds, error, report).

    Args:
        rows: Dicts with ``name``, ``status``, ``seconds``, ``error`` and optionally
            ``report`` (a path relative to the index page), ``input``, ``description``
            and ``reason`` (why a series was left out, or how it was chosen).
        path: The HTML file.
        title: Page heading.

    Example:
        >>> import tempfile
        >>> rows = [{"name": "a", "status": "failed", "seconds": 0.1, "error": "<bad>"}]
        >>> "&lt;bad&gt;" in write_batch_index(rows, tempfile.mkdtemp() + "/i.html").read_text()
        True
    """
    counts = Counter(str(row.get("status")) for row in rows)
    header = (
        "<tr><th>series</th><th>status</th><th>seconds</th><th>input</th>"
        "<th>description</th><th>reason</th><th>guard</th><th>warning</th><th>error</th></tr>"
    )
    body = []
    for row in rows:
        name = escape(str(row.get("name", "")))
        if row.get("report"):
            name = f'<a href="{escape(str(row["report"]))}">{name}</a>'
        status = escape(str(row.get("status", "")))
        guard = str(row.get("guard") or "")
        score = row.get("guard_score")
        guard_text = f"{guard} ({score})" if guard and score not in (None, "") else guard
        guard_class = "flagged" if guard.startswith("flagged") else ""
        body.append(
            f'<tr><td>{name}</td><td class="{status}">{status}</td>'
            f"<td>{escape(_number(row.get('seconds')))}</td>"
            f"<td>{escape(str(row.get('input', '')))}</td>"
            f"<td>{escape(str(row.get('description') or ''))}</td>"
            f"<td>{escape(str(row.get('reason') or ''))}</td>"
            f'<td class="{guard_class}">{escape(guard_text)}</td>'
            f"<td>{escape(str(row.get('warning') or ''))}</td>"
            f"<td>{escape(str(row.get('error') or ''))}</td></tr>"
        )
    summary = ", ".join(f"{n} {escape(s)}" for s, n in sorted(counts.items()))
    flagged = sum(str(row.get("guard") or "").startswith("flagged") for row in rows)
    parts = [
        f"<h1>{escape(title)}</h1>",
        f"<p>{len(rows)} series: {summary or 'none'}</p>",
    ]
    if flagged:
        parts.append(
            f'<p class="warning">{flagged} series flagged out of distribution by the guard: '
            "the models were not trained on data like them; review before using their "
            "results.</p>"
        )
    parts.append(f"<table>{header}{''.join(body)}</table>")
    return _write(title, parts, path)


def _write(title: str, parts: list[str], path: str | PathLike[str]) -> Path:
    html = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )
    with atomic_path(path) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return Path(path)


def _figure(key: str, src: str) -> str:
    caption = _CAPTIONS.get(key, key.replace("_", " "))
    return (
        f'<figure><img src="{escape(src)}" alt="{escape(caption)}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def _step_table(step: Mapping[str, Any]) -> str:
    rows = {}
    model = step.get("model")
    if model:
        rows["model"] = model.get("name")
        rows["weights"] = model.get("path")
        rows["weights sha256"] = model.get("sha256")
    for key, value in step.get("settings", {}).items():
        if isinstance(value, Mapping):
            for sub, item in value.items():
                rows[f"setting: {key}.{sub}"] = item
        else:
            rows[f"setting: {key}"] = value
    metrics = step.get("metrics", {})
    unreliable = " (UNRELIABLE, see the warning)" if metrics.get("volume_warning") else ""
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            label = f"{key}{unreliable}" if key == "volume_ml" else key
            for sub, number in value.items():
                rows[f"{label}: {sub}"] = number
        elif isinstance(value, list) and len(value) > 8:
            rows[key] = f"{len(value)} values (in run.json)"
        else:
            rows[key] = value
    rows["seconds"] = step.get("seconds")
    return _table(rows)


def _warnings(warnings: Sequence[str]) -> list[str]:
    if not warnings:
        return []
    items = "".join(f"<li>{escape(str(w))}</li>" for w in warnings)
    return ['<h2 class="failed">Warnings</h2>', f'<ul class="failed">{items}</ul>']


def _statistics_table(statistics: Mapping[str, Any]) -> str:
    """The classes present: voxels, volume and HU of the image the record names."""
    columns = ("name", "label", "voxels", "volume_ml", "mean_hu", "median_hu", "std_hu")
    header = "".join(f"<th>{escape(c)}</th>" for c in columns)
    rows = [
        "<tr>" + "".join(f"<td>{escape(_number(row.get(c)))}</td>" for c in columns) + "</tr>"
        for row in statistics.get("classes", [])
        if row.get("voxels")
    ]
    absent = sum(1 for row in statistics.get("classes", []) if not row.get("voxels"))
    note = f"<p>HU of the {escape(str(statistics.get('hu_of', 'input')))} image"
    note += f"; {absent} classes absent.</p>" if absent else ".</p>"
    return f"<table><tr>{header}</tr>{''.join(rows)}</table>{note}"


def _outputs(outputs: Mapping[str, Any]) -> str:
    items = []
    for key, value in outputs.items():
        if key == "previews":
            continue
        files = value if isinstance(value, list) else [value]
        shown = files if len(files) <= 3 else [*files[:2], f"... {len(files)} files"]
        items.append(f"<li>{escape(key)}: {escape(', '.join(str(f) for f in shown))}</li>")
    return f"<ul>{''.join(items)}</ul>" if items else "<p>none</p>"


def _timings(record: Mapping[str, Any]) -> dict[str, Any]:
    timings = {step: r.get("seconds") for step, r in record.get("steps", {}).items()}
    timings.update(record.get("timings", {}))
    return timings


def _table(values: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{escape(str(k))}</th><td>{escape(_number(v))}</td></tr>"
        for k, v in values.items()
    )
    return f"<table>{rows}</table>"


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join("none" if v is None else _number(v) for v in value)
    return "" if value is None else str(value)


def _seconds(record: Mapping[str, Any], key: str) -> str:
    value = record.get("timings", {}).get(key)
    return f"{value:.1f} s" if isinstance(value, (int, float)) else ""
