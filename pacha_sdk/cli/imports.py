"""``pacha import mlflow | tensorboard``: bring existing runs into the store.

A progress bar over runs and points on a terminal (none when stderr is
piped), one warning line per skipped run, then the summary line on stdout
(or the whole report with ``--json``). The exit status is 1 when a run was
skipped, so a script notices a partial import; the runs that could be read
are imported all the same, and importing again writes only what is new.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pacha_sdk.cli._args import add_json, add_store, store
from pacha_sdk.importers import ImportReport, import_mlflow, import_tensorboard

if TYPE_CHECKING:
    from pacha_sdk.cli import Commands
    from pacha_sdk.cli._output import Output

__all__ = ["register"]


@contextlib.contextmanager
def _progress(out: Output) -> Iterator[Callable[[int, int, int], None]]:
    """Bars for runs (done of total) and points written, on stderr if it is a terminal."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[points]:,} points"),
        TimeElapsedColumn(),
        console=out.errors,
        transient=True,
        disable=not out.errors.is_terminal,
    ) as bar:
        task = bar.add_task("importing runs", total=None, points=0)

        def update(done: int, total: int, points: int) -> None:
            bar.update(task, completed=done, total=total, points=points)

        yield update


def _finish(report: ImportReport, args: argparse.Namespace, out: Output) -> int:
    for skipped in report.skipped:
        out.warn(f"skipped {skipped.source_id}: {skipped.reason}")
    if args.json:
        out.json(report.as_dict())
    else:
        out.print(report.summary())
    if report.skipped:
        out.error(f"{len(report.skipped)} run(s) could not be imported (see the warnings above)")
        return 1
    return 0


def cmd_mlflow(args: argparse.Namespace, out: Output) -> int:
    """Import the runs of an MLflow store."""
    with _progress(out) as update:
        report = import_mlflow(
            args.source,
            experiments=args.experiments or None,
            artifacts=not args.no_artifacts,
            progress=update,
            **store(args),
        )
    return _finish(report, args, out)


def cmd_tensorboard(args: argparse.Namespace, out: Output) -> int:
    """Import the runs of a TensorBoard log folder."""
    with _progress(out) as update:
        report = import_tensorboard(args.logdir, progress=update, **store(args))
    return _finish(report, args, out)


def register(commands: Commands) -> None:
    """Add ``import mlflow`` and ``import tensorboard``."""
    importing = commands.add_parser(
        "import", help="bring runs from MLflow or TensorBoard logs into the store"
    )
    sources = importing.add_subparsers(dest="source_kind", required=True, metavar="SOURCE_KIND")

    mlflow = sources.add_parser(
        "mlflow",
        help="import an MLflow store: an mlruns folder, sqlite:///mlflow.db or a server URL",
    )
    mlflow.add_argument(
        "source", help="an mlruns folder, sqlite:///path/mlflow.db or http(s)://tracking-server"
    )
    mlflow.add_argument(
        "--experiment",
        dest="experiments",
        metavar="NAME_OR_ID",
        action="append",
        default=[],
        help="only this experiment, by name or id (repeatable; default: every active one)",
    )
    mlflow.add_argument(
        "--no-artifacts", action="store_true", help="do not copy the runs' artifacts"
    )
    add_store(
        mlflow, uri_help="the pacha store to import into (default: $PACHA_URI, else ./pacha-runs)"
    )
    add_json(mlflow, "the import report")
    mlflow.set_defaults(handler=cmd_mlflow)

    tensorboard = sources.add_parser(
        "tensorboard", help="import a TensorBoard log folder (one run per folder of event files)"
    )
    tensorboard.add_argument("logdir", help="the folder of event files (a run or a folder of runs)")
    add_store(
        tensorboard,
        uri_help="the pacha store to import into (default: $PACHA_URI, else ./pacha-runs)",
    )
    add_json(tensorboard, "the import report")
    tensorboard.set_defaults(handler=cmd_tensorboard)
