"""``pacha metrics | plot | report``: metric points exported, drawn as PNG, or as an HTML page."""

from __future__ import annotations

import argparse
import io
import re
from pathlib import Path
from typing import TYPE_CHECKING

from pacha_sdk.cli._args import add_json, add_store, positive_int, run_ids, store
from pacha_sdk.cli._output import Output, json_text, table
from pacha_sdk.query.read import list_runs, read_metrics
from pacha_sdk.views.charts import plot_metric
from pacha_sdk.views.display import format_time, format_value, short_id
from pacha_sdk.views.report import write_report

if TYPE_CHECKING:
    import pyarrow as pa
    from rich.table import Table

    from pacha_sdk.cli import Commands
    from pacha_sdk.models import RunId

__all__ = ["register"]

FORMATS = ("table", "csv", "parquet", "json")
_BY_SUFFIX = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".json": "json"}


# metrics


def _read_points(args: argparse.Namespace, out: Output, ids: list[RunId]) -> pa.Table:
    """The points of every run, one read per run (the progress bar counts runs)."""
    import pyarrow as pa

    tables = []
    with out.progress("reading metrics") as update:
        for done, run_id in enumerate(ids, 1):
            tables.append(read_metrics(run_id, names=args.name, **store(args)))
            update(done, len(ids))
    points = pa.concat_tables(tables, promote_options="default")
    order = [(column, "ascending") for column in ("run_id", "name", "step", "timestamp")]
    return points.sort_by(order)


def _points_table(points: pa.Table) -> Table:
    with_rank = bool(points.num_rows) and max(points.column("rank").to_pylist()) > 0
    headers = ["run", "metric", "step", "value", "timestamp", *(["rank"] if with_rank else [])]
    grid = table(headers, numeric=["step", "value", "rank"])
    for row in points.to_pylist():
        cells = [short_id(row["run_id"]), row["name"], str(row["step"])]
        cells += [format_value(row["value"]), format_time(row["timestamp"])]
        grid.add_row(*cells, *([str(row["rank"])] if with_rank else []))
    return grid


def _encode(points: pa.Table, fmt: str) -> bytes:
    """*points* as CSV, Parquet or JSON bytes."""
    sink = io.BytesIO()
    if fmt == "csv":
        import pyarrow.csv as pa_csv

        pa_csv.write_csv(points, sink)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(points, sink, compression="zstd")
    else:
        sink.write(json_text(points.to_pylist()).encode("utf-8"))
    return sink.getvalue()


def _format(args: argparse.Namespace) -> str:
    """``--json``, else ``--format``, else the output file's suffix; a table on stdout."""
    if args.json:
        return "json"
    if args.format:
        return str(args.format)
    if args.output is None:
        return "table"
    return _BY_SUFFIX.get(Path(args.output).suffix.lower(), "csv")


def cmd_metrics(args: argparse.Namespace, out: Output) -> int:
    """Print or export the metric points of one or more runs."""
    fmt = _format(args)
    if args.output is None and fmt == "parquet" and out.console.is_terminal:
        out.error("Parquet is binary: give --output PATH or redirect stdout to a file")
        return 2
    ids = run_ids(args, args.runs)
    points = _read_points(args, out, ids)
    if args.output is None:
        if fmt == "table":
            out.print(_points_table(points))
        else:
            out.write_bytes(_encode(points, fmt))
        return 0
    if fmt == "table":
        with open(args.output, "w", encoding="utf-8") as text:
            Output(stdout=text).print(_points_table(points))
    else:
        Path(args.output).write_bytes(_encode(points, fmt))
    out.print(f"wrote {points.num_rows} points of {len(ids)} run(s) to {args.output} ({fmt})")
    return 0


# plot and report


def _default_png(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.") + ".png"


def cmd_plot(args: argparse.Namespace, out: Output) -> int:
    """Draw one metric of one or more runs as a PNG line chart."""
    ids = run_ids(args, args.runs)
    path = plot_metric(
        ids,
        args.name,
        args.output or _default_png(args.name),
        width=args.width,
        height=args.height,
        dpi=args.dpi,
        title=args.title,
        log_scale=args.log_scale,
        **store(args),
    )
    out.print(f"wrote {path} ({args.width}x{args.height} px, {len(ids)} run(s))")
    return 0


def cmd_report(args: argparse.Namespace, out: Output) -> int:
    """Write a self-contained HTML report: runs table and one chart per metric."""
    if args.runs:
        ids = run_ids(args, args.runs)
    else:
        ids = [record.run_id for record in list_runs(**store(args))][: args.limit]
    if not ids:
        out.error(f"no runs in {args.uri or 'the store'} to report on")
        return 1
    path = write_report(ids, args.output, names=args.name, title=args.title, **store(args))
    out.print(f"wrote {path} ({len(ids)} run(s))")
    return 0


def _pixels(text: str) -> int:
    value = int(text)
    if not 16 <= value <= 20000:
        raise argparse.ArgumentTypeError(f"{value} pixels is outside 16..20000")
    return value


def _register_metrics(commands: Commands) -> None:
    metrics = commands.add_parser(
        "metrics", help="a run's metric points: table, CSV, Parquet, JSON"
    )
    metrics.add_argument("runs", metavar="ID", nargs="+", help="run ids or unique prefixes")
    metrics.add_argument("--name", action="append", help="only this metric (repeatable)")
    metrics.add_argument(
        "--format",
        choices=FORMATS,
        help="default: from the --output suffix (.csv, .parquet, .json), else a table",
    )
    metrics.add_argument("--output", "-o", metavar="PATH", help="write to a file, not stdout")
    add_store(metrics)
    add_json(metrics, "the points (same as --format json)")
    metrics.set_defaults(handler=cmd_metrics)


def _register_plot(commands: Commands) -> None:
    plot = commands.add_parser("plot", help="a PNG line chart of one metric over steps")
    plot.add_argument("runs", metavar="ID", nargs="+", help="run ids or unique prefixes")
    plot.add_argument("--name", required=True, help="the metric to draw")
    plot.add_argument("--output", "-o", metavar="PATH", help="the PNG (default: NAME.png)")
    plot.add_argument("--width", type=_pixels, default=800, help="pixels (default 800)")
    plot.add_argument("--height", type=_pixels, default=500, help="pixels (default 500)")
    plot.add_argument("--dpi", type=positive_int, default=100, help="text scale (default 100)")
    plot.add_argument("--title", help="chart title (default: the metric's name)")
    plot.add_argument("--log-scale", action="store_true", help="logarithmic value axis")
    add_store(plot)
    plot.set_defaults(handler=cmd_plot)


def _register_report(commands: Commands) -> None:
    report = commands.add_parser("report", help="a self-contained HTML report of runs")
    report.add_argument("runs", metavar="ID", nargs="*", help="run ids or prefixes (default: all)")
    report.add_argument(
        "--output", "-o", metavar="PATH", default="pacha-report.html", help="the HTML file"
    )
    report.add_argument("--name", action="append", help="only this metric (repeatable)")
    report.add_argument(
        "--limit", type=positive_int, metavar="N", help="without IDs: the newest N runs"
    )
    report.add_argument("--title", default="pacha report", help="page title")
    add_store(report)
    report.set_defaults(handler=cmd_report)


def register(commands: Commands) -> None:
    """Add ``metrics``, ``plot`` and ``report``."""
    _register_metrics(commands)
    _register_plot(commands)
    _register_report(commands)
