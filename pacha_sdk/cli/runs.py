"""``pacha runs list | show | compare | reap``: run records as tables or JSON.

The curation subcommands (``tag``, ``note``, ``archive``, ``delete``...) are in
:mod:`pacha_sdk.cli.curate`; ``list --deleted`` shows the trash.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from rich.text import Text

from pacha_sdk.cli import curate
from pacha_sdk.cli._args import add_json, add_store, positive_int, run_ids, seconds, store
from pacha_sdk.cli._output import Output, status_style, table
from pacha_sdk.models import ExperimentRun, RunStatus
from pacha_sdk.query.curation import list_deleted_runs
from pacha_sdk.query.maintenance import reap
from pacha_sdk.query.read import list_runs, load_run
from pacha_sdk.views.charts import metric_order
from pacha_sdk.views.display import (
    CELL_CHARS,
    deleted_overview,
    format_duration,
    format_time,
    format_value,
    hparam_order,
    main_metrics,
    run_label,
    run_overview,
    short_id,
    status_text,
    varying_hparams,
)

if TYPE_CHECKING:
    from rich.table import Table

    from pacha_sdk.cli import Commands

__all__ = ["register"]

_SHOWN_ELSEWHERE = {
    "name", "tags", "heartbeat_at", "flush_interval", "summary", "parent_run_id",
    "sdk_version", "traceback", "environment", "inputs",
    "note", "archived", "edited_at", "edited_by",
}  # fmt: skip

_FIELD_LABELS = {"duration_secs": "duration"}

# runs list


def _status_cell(record: ExperimentRun) -> Text:
    status = status_text(record)
    return Text(status, style=status_style(status))


def _list_table(records: list[ExperimentRun], hparams: list[str], metrics: list[str]) -> Table:
    grid = table(
        ["id", "name", "status", "started", "duration", *hparams, *metrics],
        numeric=["duration", *hparams, *metrics],
    )
    for record in records:
        flat = record.hyperparameters.as_flat_dict()
        summary = record.summary
        grid.add_row(
            short_id(record.run_id),
            record.name or "",
            _status_cell(record),
            format_time(record.started_at),
            format_duration(record.duration_secs),
            *(
                format_value(flat[name], max_chars=CELL_CHARS) if name in flat else ""
                for name in hparams
            ),
            *(format_value(summary[name]) if name in summary else "" for name in metrics),
        )
    return grid


def cmd_list(args: argparse.Namespace, out: Output) -> int:
    """List runs, newest first."""
    if args.archived == "deleted":
        return _list_deleted(args, out)
    wanted = None if args.status in (None, "stale") else args.status
    archived = {"only": True, "all": None}.get(args.archived, False)
    records = list_runs(**store(args), status=wanted, recipe=args.recipe, archived=archived)
    if args.status == "stale":
        records = [record for record in records if record.is_stale]
    records = records[: args.limit] if args.limit is not None else records
    if args.json:
        out.json([run_overview(record) for record in records])
        return 0
    if not records:
        out.note("no runs")
        return 0
    hparams = args.hparam or varying_hparams(records)
    metrics = args.metric or main_metrics(records)
    out.print(_list_table(records, hparams, metrics))
    return 0


def _list_deleted(args: argparse.Namespace, out: Output) -> int:
    """The trash, most recently deleted first."""
    deleted = list_deleted_runs(**store(args))[: args.limit]
    if args.json:
        out.json([deleted_overview(deletion) for deletion in deleted])
        return 0
    if not deleted:
        out.note("the trash is empty")
        return 0
    grid = table(["id", "name", "status", "deleted", "by", "state", "files"], numeric=["files"])
    for deletion in deleted:
        record = deletion.record
        grid.add_row(
            short_id(deletion.run_id),
            (record.name or "") if record else "",
            status_text(record) if record else "",
            format_time(deletion.deleted_at),
            deletion.deleted_by or "",
            str(deletion.state),
            str(len(deletion.keys)),
        )
    out.print(grid)
    return 0


# runs show


def _overview_rows(record: ExperimentRun) -> list[tuple[str, str]]:
    rows = [
        ("run id", str(record.run_id)),
        ("name", record.name or "-"),
        ("status", status_text(record)),
        ("recipe", str(record.recipe) if record.recipe else "-"),
        ("started", format_time(record.started_at)),
        ("finished", format_time(record.finished_at)),
        ("duration", format_duration(record.duration_secs)),
        ("heartbeat", format_time(record.heartbeat_at)),
        ("tags", ", ".join(f"{k}={v}" for k, v in sorted(record.tags.items())) or "-"),
        ("archived", "yes" if record.archived else "-"),
        ("edited", _edited(record)),
        ("note", record.note or "-"),
        ("parent run", record.parent_run_id or "-"),
        ("git", (record.git_commit or "-") + (" (dirty)" if record.git_dirty else "")),
        ("log", record.log_uri or "-"),
        ("sdk", str(record.extra.get("sdk_version", "-"))),
    ]
    return [(name, value) for name, value in rows if value != "-" or name in ("status", "name")]


def _edited(record: ExperimentRun) -> str:
    """When (and by whom) the run was last annotated, or ``-``."""
    at, by = record.extra.get("edited_at"), record.extra.get("edited_by")
    if not isinstance(at, str):
        return "-"
    when = at.replace("T", " ").split(".")[0] + "Z"
    return f"{when} by {by}" if isinstance(by, str) else when


def _flatten(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_flatten(v)}" for k, v in value.items())
    if isinstance(value, list):
        return " ".join(_flatten(item) for item in value)
    return format_value(value)


def _hardware_rows(record: ExperimentRun) -> list[tuple[str, str]]:
    hardware = record.hardware.model_dump(exclude_none=True)
    return [(name, str(value)) for name, value in hardware.items()]


def _environment_rows(record: ExperimentRun) -> list[tuple[str, str]]:
    environment = record.extra.get("environment")
    if not isinstance(environment, dict):
        return []
    return [(str(name), _flatten(value)) for name, value in environment.items()]


def _artifact_rows(entries: list[Any]) -> list[tuple[str, str]]:
    return [
        (f"{entry.get('artifact_type', '?')} {entry.get('name', '?')}", str(entry["content_hash"]))
        for entry in entries
        if isinstance(entry, dict) and "content_hash" in entry
    ]


def _sections(record: ExperimentRun) -> list[tuple[str, list[tuple[str, str]]]]:
    flat = record.hyperparameters.as_flat_dict()
    inputs = record.extra.get("inputs")
    summary = record.summary
    other = {k: v for k, v in record.extra.items() if k not in _SHOWN_ELSEWHERE}
    return [
        ("Run", _overview_rows(record)),
        ("Hyperparameters", [(name, format_value(value)) for name, value in flat.items()]),
        ("Metrics (latest)", [(n, format_value(summary[n])) for n in metric_order(summary)]),
        ("Artifacts", _artifact_rows([ref.model_dump() for ref in record.artifacts])),
        ("Inputs", _artifact_rows(inputs if isinstance(inputs, list) else [])),
        ("Hardware", _hardware_rows(record)),
        ("Environment", _environment_rows(record)),
        ("Extra", [(name, json.dumps(value)) for name, value in sorted(other.items())]),
    ]


def cmd_show(args: argparse.Namespace, out: Output) -> int:
    """Print everything in one run's record."""
    (run_id,) = run_ids(args, [args.run])
    record = load_run(run_id, **store(args))
    if args.json:
        out.json(record.model_dump(mode="json"))
        return 0
    for title, rows in _sections(record):
        if rows:
            out.section(title, rows)
    if record.error_message:
        out.print(Text(f"Error: {record.error_message}", style="bold red"))
    traceback = record.extra.get("traceback")
    if isinstance(traceback, str):
        out.print(Text(traceback.rstrip(), style="red"))
    return 0


# runs compare


def _compare_rows(records: list[ExperimentRun]) -> list[dict[str, Any]]:
    flats = [record.hyperparameters.as_flat_dict() for record in records]
    summaries = [record.summary for record in records]
    rows: list[dict[str, Any]] = [
        {"kind": "run", "name": "status", "values": [status_text(r) for r in records]},
        {"kind": "run", "name": "duration_secs", "values": [r.duration_secs for r in records]},
    ]
    names = hparam_order([name for flat in flats for name in flat])
    rows += [
        {"kind": "hyperparameter", "name": n, "values": [f.get(n) for f in flats]} for n in names
    ]
    metric_names = metric_order([n for summary in summaries for n in summary])
    rows += [
        {"kind": "metric", "name": n, "values": [s.get(n) for s in summaries]} for n in metric_names
    ]
    for row in rows:
        row["differs"] = len({json.dumps(value) for value in row["values"]}) > 1
    return rows


def _compare_cell(row: dict[str, Any], value: object) -> str:
    if row["name"] == "duration_secs":
        return format_duration(value if isinstance(value, int) else None)
    if value is None and row["kind"] != "metric":
        return "-"
    return format_value(value)


def cmd_compare(args: argparse.Namespace, out: Output) -> int:
    """Print hyperparameters and latest metrics of several runs side by side."""
    ids = run_ids(args, args.runs)
    if len(ids) < 2:
        out.error("runs compare needs two or more different runs")
        return 2
    records = [load_run(run_id, **store(args)) for run_id in ids]
    rows = _compare_rows(records)
    if args.diff_only:
        rows = [row for row in rows if row["differs"]]
    if args.json:
        runs = [{"run_id": str(r.run_id), "name": r.name} for r in records]
        out.json({"runs": runs, "rows": rows})
    else:
        out.print(_compare_table(records, rows))
    return 0


def _compare_table(records: list[ExperimentRun], rows: list[dict[str, Any]]) -> Table:
    """One column per run; a row whose values differ is marked ``≠`` (and coloured)."""
    labels = [run_label(record) for record in records]
    grid = table(["", "field", *labels], numeric=labels)
    for row in rows:
        style = "bold yellow" if row["differs"] else ""
        cells = [_compare_cell(row, value) for value in row["values"]]
        field = _FIELD_LABELS.get(row["name"], row["name"]) if row["kind"] == "run" else row["name"]
        field += " (latest)" if row["kind"] == "metric" else ""
        grid.add_row("≠" if row["differs"] else "", field, *cells, style=style)
    return grid


# runs reap


def cmd_reap(args: argparse.Namespace, out: Output) -> int:
    """Mark stale running runs failed ("heartbeat lost")."""
    reaped = reap(older_than=args.older_than, dry_run=args.dry_run, **store(args))
    if args.json:
        out.json({"dry_run": args.dry_run, "runs": [str(record.run_id) for record in reaped]})
        return 0
    verb = "would mark" if args.dry_run else "marked"
    if reaped:
        grid = table(["id", "name", "started", "last heartbeat"])
        for r in reaped:
            grid.add_row(
                short_id(r.run_id),
                r.name or "",
                format_time(r.started_at),
                format_time(r.heartbeat_at),
            )
        out.print(grid)
    out.note(f"{verb} {len(reaped)} stale run(s) failed (heartbeat lost)")
    return 0


def _add_list(sub: Commands) -> argparse.ArgumentParser:
    listing = sub.add_parser("list", help="runs newest first, as a table")
    statuses = [status.value for status in RunStatus] + ["stale"]
    listing.add_argument("--status", choices=statuses, help="only runs with this status")
    listing.add_argument("--recipe", metavar="NAME", help="only runs of this recipe")
    listing.add_argument("--limit", type=positive_int, metavar="N", help="at most N runs")
    which = listing.add_mutually_exclusive_group()
    which.add_argument(
        "--archived", dest="archived", action="store_const", const="only", help="only archived runs"
    )
    which.add_argument(
        "--all", dest="archived", action="store_const", const="all", help="archived runs too"
    )
    which.add_argument(
        "--deleted",
        dest="archived",
        action="store_const",
        const="deleted",
        help="the runs in the trash (restorable with pacha runs restore)",
    )
    listing.add_argument(
        "--hparam", action="append", metavar="NAME", help="hyperparameter column (repeatable)"
    )
    listing.add_argument(
        "--metric", action="append", metavar="NAME", help="latest-value column (repeatable)"
    )
    listing.set_defaults(handler=cmd_list)
    return listing


def _add_reap(sub: Commands) -> argparse.ArgumentParser:
    reaper = sub.add_parser("reap", help="mark stale running runs failed (heartbeat lost)")
    reaper.add_argument(
        "--older-than",
        type=seconds,
        metavar="SECONDS",
        help="only stale runs whose last heartbeat is also older than this",
    )
    reaper.add_argument("--dry-run", action="store_true", help="show them, change nothing")
    reaper.set_defaults(handler=cmd_reap)
    return reaper


def register(commands: Commands) -> None:
    """Add ``runs`` and its subcommands."""
    runs = commands.add_parser(
        "runs", help="list, show, compare, tag, archive, delete and restore runs"
    )
    sub = runs.add_subparsers(dest="runs_command", required=True, metavar="COMMAND")
    listing = _add_list(sub)
    show = sub.add_parser("show", help="everything in one run's record")
    show.add_argument("run", metavar="ID", help="a run id or a unique prefix of one")
    show.set_defaults(handler=cmd_show)
    compare = sub.add_parser("compare", help="runs side by side, differences marked")
    compare.add_argument("runs", metavar="ID", nargs="+", help="two or more run ids or prefixes")
    compare.add_argument("--diff-only", action="store_true", help="only the rows that differ")
    compare.set_defaults(handler=cmd_compare)
    for parser in (listing, show, compare, _add_reap(sub)):
        add_store(parser)
        add_json(parser)
    curate.register(sub)
