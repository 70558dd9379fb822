"""Where the command line's output goes, and how it looks.

Tables and progress bars come from rich. Data goes to stdout, progress and
messages to stderr, so ``pacha runs list --json | jq`` and ``pacha metrics
ID --format csv > points.csv`` get nothing else. On a terminal, tables are
coloured and long work shows a progress bar; when the stream is not a
terminal, rich writes plain text and the progress bar is off (``NO_COLOR``,
``FORCE_COLOR`` and ``TTY_COMPATIBLE`` override the detection as usual).
Rich markup is off everywhere: a run named ``[bold]x`` prints as it is.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from pacha_sdk.views.display import jsonable

__all__ = ["PIPE_WIDTH", "Output", "json_text", "key_values", "status_style", "table"]

PIPE_WIDTH = 200
"""Line width of tables written to a pipe or file (rich would otherwise wrap at 80)."""

_STATUS_STYLES = {
    "completed": "green",
    "failed": "red",
    "cancelled": "yellow",
    "running": "cyan",
    "pending": "dim",
}


def status_style(status: str) -> str:
    """The colour of a status in tables; a stale run stands out in bold red."""
    return "bold red" if "stale" in status else _STATUS_STYLES.get(status, "")


def json_text(value: Any) -> str:
    """*value* as indented strict JSON and a newline (non-finite numbers become ``null``)."""
    return json.dumps(jsonable(value), indent=2, allow_nan=False) + "\n"


def _console(stream: TextIO) -> Console:
    tty = getattr(stream, "isatty", lambda: False)()
    width = None if tty or os.environ.get("COLUMNS") else PIPE_WIDTH
    return Console(file=stream, width=width, markup=False, highlight=False, emoji=False)


class Output:
    """The consoles of one command: data on stdout, progress and messages on stderr."""

    def __init__(self, stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
        self.stdout = stdout or sys.stdout
        self.console = _console(self.stdout)
        self.errors = _console(stderr or sys.stderr)

    def print(self, value: str | Text | Table) -> None:
        """Print text or a table to stdout (text is never wrapped, lines never end in blanks)."""
        if not isinstance(value, Table):
            self.console.print(value, soft_wrap=True)
            return
        with self.console.capture() as captured:
            self.console.print(value)
        lines = captured.get().splitlines()
        self.stdout.write("".join(line.rstrip() + "\n" for line in lines))

    def section(self, title: str, rows: Sequence[tuple[str, str]]) -> None:
        """A bold *title*, then names and values in two columns, then a blank line."""
        self.print(Text(title, style="bold"))
        self.print(key_values(rows))
        self.print("")

    def json(self, value: Any) -> None:
        """Print *value* as strict JSON (non-finite numbers become ``null``)."""
        self.stdout.write(json_text(value))

    def write_bytes(self, data: bytes) -> None:
        """Write encoded output (CSV, Parquet) to stdout as it is."""
        self.stdout.flush()
        binary = getattr(self.stdout, "buffer", None)
        if binary is None:  # a text-only stream: only text formats get here
            self.stdout.write(data.decode("utf-8"))
            return
        binary.write(data)
        binary.flush()

    def note(self, message: str) -> None:
        """A message for the person at the terminal (stderr): what was done."""
        self.errors.print(message, soft_wrap=True)

    def warn(self, message: str) -> None:
        """One line on stderr: ``pacha: warning: ...``."""
        self.errors.print(f"pacha: warning: {_one_line(message)}", soft_wrap=True)

    def error(self, message: str) -> None:
        """One line on stderr: ``pacha: error: ...``."""
        self.errors.print(f"pacha: error: {_one_line(message)}", soft_wrap=True, style="red")

    @contextlib.contextmanager
    def progress(self, description: str) -> Iterator[Callable[[int, int], None]]:
        """A progress bar on stderr while the block runs, off unless stderr is a terminal.

        Yields ``update(done, total)``; the bar appears at the first update.
        """
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(
            *columns,
            TimeElapsedColumn(),
            console=self.errors,
            transient=True,
            disable=not self.errors.is_terminal,
        ) as bar:
            task = bar.add_task(description, total=None, visible=False)
            yield lambda done, total: bar.update(task, completed=done, total=total, visible=True)


def _one_line(message: str) -> str:
    return " ".join(message.split())


def table(headers: Sequence[str], *, numeric: Sequence[str] = ()) -> Table:
    """An empty table in the house style: no outer box, bold header, numbers right-aligned."""
    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for header in headers:
        grid.add_column(header, justify="right" if header in numeric else "left", overflow="fold")
    return grid


def key_values(rows: Sequence[tuple[str, str]]) -> Table:
    """A two-column grid of names (dim) and values."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(overflow="fold")
    for name, value in rows:
        grid.add_row(name, value)
    return grid
