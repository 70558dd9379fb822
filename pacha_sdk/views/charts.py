"""Metric curves of one or several runs, as series and as a PNG line chart.

:func:`load_series` reads the points of some runs (one Parquet scan) and
returns, per metric, one :class:`Series` per run: steps in increasing
order, one value per step (the last logged, as ``get_metric`` picks),
NaN and infinities kept. :func:`plot_metric` draws one metric of several
runs with matplotlib, the optional extra ``plot`` (``pip install
'pacha-sdk[plot]'``); the HTML report (:mod:`pacha_sdk.views.report`) draws the
same series as inline SVG without it.

matplotlib is used through :class:`matplotlib.figure.Figure` and its Agg
canvas, never ``pyplot``: no global figure state, no GUI backend, and the
PNG has exactly ``width`` x ``height`` pixels.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pacha_sdk.exceptions import ExtraNotInstalledError, MetricNotFoundError
from pacha_sdk.query.read import load_run, read_metrics
from pacha_sdk.views.display import SYSTEM_PREFIX, run_label, short_id

if TYPE_CHECKING:
    import pyarrow as pa
    from matplotlib.figure import Figure

    from pacha_sdk.models import ExperimentRun

__all__ = [
    "Series",
    "load_series",
    "metric_order",
    "plot_metric",
]


@dataclass(frozen=True)
class Series:
    """One run's curve of one metric."""

    run_id: str
    """The run's full id."""
    label: str
    """``name (1a2b3c4d)`` or the short id: what a legend shows."""
    steps: list[int]
    """Steps, increasing, each once."""
    values: list[float]
    """The value at each step (the last logged there); NaN and infinities kept."""


def metric_order(names: Iterable[str]) -> list[str]:
    """Metric names alphabetically, the SDK's own ``system/*`` metrics last."""
    return sorted(set(names), key=lambda name: (name.startswith(SYSTEM_PREFIX), name))


def _group(table: pa.Table) -> dict[tuple[str, str], dict[int, float]]:
    """``(name, run_id) -> {step: value}``; a later point at the same step replaces an earlier."""
    ordered = table.sort_by([("timestamp", "ascending")])
    groups: dict[tuple[str, str], dict[int, float]] = {}
    columns = (ordered.column(c).to_pylist() for c in ("name", "run_id", "step", "value"))
    for name, run_id, step, value in zip(*columns):
        groups.setdefault((name, run_id), {})[step] = value
    return groups


def load_series(
    records: Sequence[ExperimentRun],
    *,
    names: Sequence[str] | None = None,
    uri: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> dict[str, list[Series]]:
    """Each metric's curves for *records*, metrics in :func:`metric_order`, runs as given.

    Only *names* when given; a run without points of a metric has no series
    for it. One read of the runs' part files; a file that is not a readable
    part file is left out with a warning naming it (a chart shows what can
    be read, and says what could not).
    """
    run_ids = [str(record.run_id) for record in records]
    table = read_metrics(
        run_ids, uri=uri, storage_options=storage_options, names=names, bad_parts="skip"
    )
    groups = _group(table)
    labels = {str(record.run_id): run_label(record) for record in records}
    result: dict[str, list[Series]] = {}
    for name in metric_order([name for name, _ in groups]):
        result[name] = [
            Series(run_id, labels[run_id], sorted(points), [points[s] for s in sorted(points)])
            for run_id in run_ids
            if (points := groups.get((name, run_id)))
        ]
    return result


def _figure_class() -> type[Figure]:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ExtraNotInstalledError("PNG charts", package="matplotlib", extra="plot") from None
    return Figure


def _draw(figure: Figure, series: list[Series], name: str, *, title: str, log_scale: bool) -> None:
    axes = figure.add_subplot()
    for curve in series:
        values = [value if math.isfinite(value) else math.nan for value in curve.values]
        marker = "o" if len(values) == 1 else None
        axes.plot(curve.steps, values, label=curve.label, linewidth=1.5, marker=marker)
    axes.set_xlabel("step")
    axes.set_ylabel(name)
    axes.set_title(title)
    if log_scale:
        axes.set_yscale("log")
    axes.grid(visible=True, alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()


def plot_metric(
    run_ids: str | Sequence[str],
    name: str,
    output: str | os.PathLike[str],
    *,
    uri: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    width: int = 800,
    height: int = 500,
    dpi: int = 100,
    title: str | None = None,
    log_scale: bool = False,
) -> Path:
    """Draw metric *name* over steps for one or several runs as a PNG; return its path.

    Args:
        run_ids: one full run id or several; each run is one line, labelled
            with its name and short id. Runs without the metric are left out.
        name: the metric.
        output: the PNG file to write (its folder must exist).
        uri: the store (default ``$PACHA_URI`` else ``./pacha-runs``).
        storage_options: settings for the store's client.
        width: the image's width in pixels.
        height: the image's height in pixels.
        dpi: dots per inch: the text's size relative to the image.
        title: the chart's title (default: the metric's name).
        log_scale: a logarithmic value axis.

    Raises :class:`MetricNotFoundError` if no run has a point of *name*, and
    :class:`ExtraNotInstalledError` without matplotlib (``pacha-sdk[plot]``).
    """
    if min(width, height) < 16 or dpi < 1:
        raise ValueError(f"a chart needs at least 16 x 16 pixels and 1 dpi, got {width} x {height}")
    figure_class = _figure_class()
    ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
    records = [load_run(run_id, uri=uri, storage_options=storage_options) for run_id in ids]
    series = load_series(records, names=[name], uri=uri, storage_options=storage_options)
    if not series.get(name):
        available = metric_order([n for record in records for n in record.summary])
        raise MetricNotFoundError(name, [short_id(run_id) for run_id in ids], available)
    figure = figure_class(figsize=(width / dpi, height / dpi), dpi=dpi)
    _draw(figure, series[name], name, title=title or name, log_scale=log_scale)
    path = Path(output)
    figure.savefig(path, format="png", dpi=dpi)
    return path
