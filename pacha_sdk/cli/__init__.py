"""The ``pacha`` command line (also ``python -m pacha_sdk``).

::

    pacha runs list [--status S] [--recipe NAME] [--limit N] [--archived|--all|--deleted] [--json]
    pacha runs show ID            pacha runs compare ID ID [ID...]
    pacha runs reap [--older-than SECONDS] [--dry-run]
    pacha runs tag ID NAME[=VALUE]...   untag ID NAME...   note ID TEXT   rename ID NAME
    pacha runs archive|unarchive ID...  delete ID... [--yes] [--force]    restore ID...
    pacha metrics ID [ID...] [--name N] [--format table|csv|parquet|json] [--output PATH]
    pacha plot ID [ID...] --name loss [--output loss.png] [--width PX --height PX]
    pacha report [ID...] [--output report.html]
    pacha sync [SPOOL]            pacha gc [--yes] [--trash-older-than 7d]
    pacha compact [ID...]         merge small part files (runs that died, older runs, ranks)
    pacha import mlflow SOURCE [--experiment NAME_OR_ID ...] [--no-artifacts]
    pacha import tensorboard LOGDIR
    pacha ui [--host H] [--port N] [--no-browser]

Every command takes ``--uri`` (default ``$PACHA_URI``, else ``./pacha-runs``)
and ``--storage-option KEY=VALUE``; an id may be any unique prefix of one.
The commands only format what the library returns (:mod:`pacha_sdk.query.read`,
:mod:`pacha_sdk.query.maintenance`, :mod:`pacha_sdk.views.charts`, :mod:`pacha_sdk.views.report`).

Libraries: :mod:`argparse` parses arguments. It is in the standard library,
handles nested subcommands (``runs list``) and ``--help`` well, and keeps
the SDK's dependency list short; click or typer would add a dependency for
no feature used here. rich draws tables and progress bars: it measures and
aligns columns, colours only on a terminal, and stays plain when piped; it
is pure Python, well kept, and pip itself vendors it.

Errors the SDK raises on purpose (:class:`PachaError`: unknown run id,
ambiguous prefix, unreachable store, missing extra) and OS errors (a file
that cannot be written) end the command with one line on stderr and exit
status 1, never a traceback; a usage error exits with 2, Ctrl-C with 130.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pacha_sdk._version import __version__
from pacha_sdk.cli import imports, metrics, runs, store, ui
from pacha_sdk.cli._output import Output
from pacha_sdk.exceptions import PachaError

if TYPE_CHECKING:
    from typing import TypeAlias

    Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

__all__ = ["build_parser", "main"]


def _version() -> str:
    """``pacha-sdk <version> (C buffer)``: also which buffer ``log_metric`` fills here.

    The C buffer is built at install where a compiler is found; without it
    (or with ``PACHA_SDK_PURE_PYTHON=1``) logging takes the pure-Python path,
    about twice as costly a point, which is worth seeing at a glance.
    """
    from pacha_sdk.storage.buffer import ACCELERATED

    return f"pacha-sdk {__version__} ({'C' if ACCELERATED else 'pure-Python'} buffer)"


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: ``pacha <command> [<subcommand>] ...``."""
    parser = argparse.ArgumentParser(
        prog="pacha",
        description="Look at, compare, plot, export and tidy the runs in a pacha store.",
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    runs.register(commands)
    metrics.register(commands)
    store.register(commands)
    imports.register(commands)
    ui.register(commands)
    return parser


def _show_warnings(caught: list[warnings.WarningMessage], out: Output) -> None:
    """The SDK's warnings (a skipped record) as one line each; library chatter is dropped."""
    for warning in caught:
        if issubclass(warning.category, UserWarning):
            out.warn(str(warning.message).removeprefix("pacha: "))


def _run(args: argparse.Namespace, out: Output) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code: int = args.handler(args, out)
        finally:
            _show_warnings(caught, out)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with *argv* (default ``sys.argv[1:]``); return the exit status."""
    args = build_parser().parse_args(argv)
    out = Output()
    try:
        return _run(args, out)
    except BrokenPipeError:
        # The reader (head, less) went away: stop quietly, as a shell tool does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        out.error("interrupted")
        return 130
    except (PachaError, OSError) as error:
        out.error(str(error) or type(error).__name__)
        return 1
