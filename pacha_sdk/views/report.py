"""A self-contained HTML report of some runs: a runs table and one chart per metric.

The page is one file that a browser opens from disk without a server or a
network: the charts are inline SVG drawn here (no JavaScript, no CDN, no
font or image to fetch), so the report also survives being mailed or
attached to a ticket. Each chart is a ``<figure class="chart"
data-metric="...">`` holding one ``<svg>`` with one ``<path>`` per run, in
the colour that run has in the table.

Long curves are thinned to at most :data:`MAX_POINTS` points per run,
keeping each bucket's lowest and highest value so spikes stay visible.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pacha_sdk.backends import get_backend
from pacha_sdk.env import resolve_uri
from pacha_sdk.exceptions import MetricNotFoundError
from pacha_sdk.models import format_timestamp, utc_now
from pacha_sdk.query.read import load_run
from pacha_sdk.views.charts import Series, load_series, metric_order
from pacha_sdk.views.display import (
    CELL_CHARS,
    format_duration,
    format_time,
    format_value,
    main_metrics,
    short_id,
    status_text,
    varying_hparams,
)

if TYPE_CHECKING:
    from pacha_sdk.models import ExperimentRun

__all__ = ["MAX_POINTS", "report_html", "write_report"]

MAX_POINTS = 2000
"""Most points drawn per run and chart."""

PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
"""Run colours, as matplotlib's default cycle (the PNG charts match)."""

_WIDTH, _HEIGHT = 640, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 12, 36

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin-bottom: 2rem; }
th, td { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 13px; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 6px; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5rem; }
figure.chart { margin: 0; width: 640px; }
figure.chart svg { width: 100%; height: auto; background: #fff; }
figcaption { font-weight: 600; margin-bottom: 4px; }
.grid { stroke: #e5e5e5; }
.axis { fill: #555; font-size: 11px; }
.stale { color: #b00; }
ul.legend { list-style: none; padding: 0; margin: 4px 0 0 64px; font-size: 12px; }
ul.legend li { display: inline-block; margin-right: 12px; }
"""


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) between *low* and *high*."""
    if not high > low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step)
    return [round(i * step, 12) for i in range(first, math.floor(high / step) + 1)]


def _domain(values: Iterable[float]) -> tuple[float, float]:
    """The drawn range of *values* (finite ones), padded by 5 %; never empty."""
    finite = [value for value in values if math.isfinite(value)]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    pad = (high - low) * 0.05 or abs(low) * 0.1 or 1.0
    return low - pad, high + pad


def _thin(steps: list[int], values: list[float]) -> list[tuple[int, float]]:
    """At most about :data:`MAX_POINTS` points: each bucket's lowest and highest, in order."""
    points = list(zip(steps, values))
    if len(points) <= MAX_POINTS:
        return points
    size = math.ceil(len(points) / (MAX_POINTS // 2))
    kept: list[tuple[int, float]] = []
    for start in range(0, len(points), size):
        bucket = points[start : start + size]
        finite = [p for p in bucket if math.isfinite(p[1])]
        if not finite:
            kept.append(bucket[0])
            continue
        extremes = {min(finite, key=lambda p: p[1]), max(finite, key=lambda p: p[1])}
        kept.extend(sorted(extremes))
    return kept


_NOTHING_TO_DRAW = " (no finite value)"


def _drawable(series: Series) -> bool:
    return any(math.isfinite(value) for value in series.values)


class _Scale:
    """Maps steps and values to SVG coordinates inside the plot area."""

    def __init__(self, steps: tuple[float, float], values: tuple[float, float]) -> None:
        self.steps = steps
        self.values = values

    def x(self, step: float) -> float:
        low, high = self.steps
        span = _WIDTH - _LEFT - _RIGHT
        return _LEFT + (span / 2 if high == low else (step - low) / (high - low) * span)

    def y(self, value: float) -> float:
        low, high = self.values
        return _TOP + (high - value) / (high - low) * (_HEIGHT - _TOP - _BOTTOM)


def _path(points: list[tuple[int, float]], scale: _Scale) -> str:
    """SVG path data; a NaN or infinite value breaks the line."""
    commands: list[str] = []
    pen_down = False
    for step, value in points:
        if not math.isfinite(value):
            pen_down = False
            continue
        verb = "L" if pen_down else "M"
        commands.append(f"{verb}{scale.x(step):.1f},{scale.y(value):.1f}")
        pen_down = True
    return " ".join(commands)


def _axes(scale: _Scale) -> list[str]:
    parts: list[str] = []
    bottom = _HEIGHT - _BOTTOM
    for value in _ticks(*scale.values):
        y = scale.y(value)
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        label = f'<text class="axis" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
        parts.append(f"{label}{value:.4g}</text>")
    for step in _ticks(*scale.steps):
        x = scale.x(step)
        parts.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" y2="{bottom}"/>')
        label = f'<text class="axis" x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">'
        parts.append(f"{label}{step:g}</text>")
    middle = (_LEFT + _WIDTH - _RIGHT) / 2
    parts.append(
        f'<text class="axis" x="{middle:.0f}" y="{_HEIGHT - 4}" text-anchor="middle">step</text>'
    )
    return parts


def _curve(series: Series, scale: _Scale, colour: str) -> str:
    points = _thin(series.steps, series.values)
    title = f"<title>{escape(series.label)}</title>"
    finite = [(s, v) for s, v in points if math.isfinite(v)]
    if not finite:
        return ""
    if len(finite) == 1:
        ((step, value),) = finite
        x, y = scale.x(step), scale.y(value)
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">{title}</circle>'
    data = _path(points, scale)
    return f'<path d="{data}" fill="none" stroke="{colour}" stroke-width="1.5">{title}</path>'


def _chart(name: str, curves: list[Series], colours: Mapping[str, str]) -> str:
    """One ``<figure class="chart">`` with an inline SVG line chart of *curves*."""
    steps = [step for curve in curves for step in curve.steps]
    scale = _Scale((min(steps), max(steps)), _domain(v for curve in curves for v in curve.values))
    body = _axes(scale) + [_curve(curve, scale, colours[curve.run_id]) for curve in curves]
    label = escape(name, quote=True)
    svg = (
        f'<svg viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" aria-label="{label}">'
        + "".join(body)
        + "</svg>"
    )
    legend = "".join(
        f'<li><span class="swatch" style="background:{colours[curve.run_id]}"></span>'
        f"{escape(curve.label)}{_NOTHING_TO_DRAW * (not _drawable(curve))}</li>"
        for curve in curves
    )
    return (
        f'<figure class="chart" data-metric="{label}">'
        f'<figcaption>{escape(name)}</figcaption>{svg}<ul class="legend">{legend}</ul></figure>'
    )


def _cell(text: str, *, numeric: bool = False) -> str:
    return f'<td class="num">{escape(text)}</td>' if numeric else f"<td>{escape(text)}</td>"


def _value_cell(value: object) -> str:
    """A hyperparameter or metric cell: cut to :data:`CELL_CHARS`, the whole value on hover."""
    shown = format_value(value, max_chars=CELL_CHARS)
    whole = format_value(value)
    title = f' title="{escape(whole)}"' if whole != shown else ""
    return f'<td class="num"{title}>{escape(shown)}</td>'


def _run_row(record: ExperimentRun, colour: str, hparams: list[str], metrics: list[str]) -> str:
    flat = record.hyperparameters.as_flat_dict()
    status = status_text(record)
    status_cell = f'<td class="stale">{escape(status)}</td>' if "stale" in status else _cell(status)
    cells = [
        f'<td><span class="swatch" style="background:{colour}"></span>'
        f"<code>{short_id(record.run_id)}</code></td>",
        _cell(record.name or ""),
        status_cell,
        _cell(format_time(record.started_at)),
        _cell(format_duration(record.duration_secs), numeric=True),
        *(_value_cell(flat.get(n, "")) for n in hparams),
        *(
            _value_cell(record.summary[n]) if n in record.summary else _cell("", numeric=True)
            for n in metrics
        ),
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def _runs_table(records: Sequence[ExperimentRun], colours: Mapping[str, str]) -> str:
    hparams = varying_hparams(records, limit=6)
    metrics = main_metrics(records, limit=6)
    heads = ["run", "name", "status", "started", "duration", *hparams, *metrics]
    head = "".join(f"<th>{escape(h)}</th>" for h in heads)
    rows = [_run_row(r, colours[str(r.run_id)], hparams, metrics) for r in records]
    return (
        f'<table class="runs"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def report_html(
    run_ids: Sequence[str],
    *,
    uri: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    names: Sequence[str] | None = None,
    title: str = "pacha report",
) -> str:
    """The report of *run_ids* (full ids) as one HTML document.

    Charts every metric the runs have, or only *names* (each must have
    points in some run, else :class:`MetricNotFoundError`).
    """
    records = [load_run(run_id, uri=uri, storage_options=storage_options) for run_id in run_ids]
    series = load_series(records, names=names, uri=uri, storage_options=storage_options)
    missing = [name for name in names or () if not series.get(name)]
    if missing:
        known = metric_order([n for record in records for n in record.summary])
        raise MetricNotFoundError(missing[0], [short_id(run_id) for run_id in run_ids], known)
    colours = {str(r.run_id): PALETTE[i % len(PALETTE)] for i, r in enumerate(records)}
    charts = [_chart(name, curves, colours) for name, curves in series.items() if curves]
    root = get_backend(resolve_uri(uri), storage_options=storage_options).uri
    return "\n".join(
        [
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
            f"<h1>{escape(title)}</h1>",
            f"<p>{len(records)} run(s) in <code>{escape(root)}</code>, "
            f"generated {format_timestamp(utc_now())}</p>",
            _runs_table(records, colours),
            f'<section class="charts">{"".join(charts) or "<p>No metrics.</p>"}</section>',
            "</body></html>",
        ]
    )


def write_report(
    run_ids: Sequence[str],
    output: str | os.PathLike[str],
    *,
    uri: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    names: Sequence[str] | None = None,
    title: str = "pacha report",
) -> Path:
    """Write :func:`report_html` of *run_ids* to the file *output*; return its path."""
    path = Path(output)
    html = report_html(run_ids, uri=uri, storage_options=storage_options, names=names, title=title)
    path.write_text(html, encoding="utf-8")
    return path
