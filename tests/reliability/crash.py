"""Crash suite: kill a training loop at random moments and check what the store kept.

A child process (:mod:`crash_child`) logs at full speed with a short flush
interval. The parent kills it at a random moment, then checks the store:

* every visible file is whole: ``metrics/run_id=<id>/part-*.parquet`` files
  open as Parquet, ``run.json`` parses; pyarrow.dataset and DuckDB read the
  run and agree on its points (temporary files a write left behind start
  with a dot, which both skip);
* every point logged more than *bound* seconds before a SIGKILL is stored,
  exactly once, with its value (the child writes which step it logged when
  to a side file); after SIGTERM every point logged is stored;
* the record says what happened: SIGKILL leaves ``running`` with a heartbeat
  that goes stale (and :func:`pacha_sdk.reap` then marks it failed), SIGTERM
  gives ``cancelled``;
* an exception in a background thread of the user's code ends that thread
  only: the writer keeps going, every point is stored and the run completes.

Run as a script for the figures table (``--kills 50``)::

    python -m tests.reliability.crash --kills 50
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

import pacha_sdk as pacha
from pacha_sdk.storage.coverage import drop_covered

CHILD = Path(__file__).with_name("crash_child.py")
FLUSH_INTERVAL = 0.2
"""The child's flush interval (seconds)."""
WRITE_ALLOWANCE = 2.0
"""Seconds on top of the flush interval for the flush under way to encode and land.

A loop that does nothing but log (about a million points a second) outruns
the writer: backpressure lets up to 2 x ``flush_rows`` points pile up, and
encoding them takes the writer 5 to 7 times longer than in a quiet process
because the loop holds the GIL whenever pyarrow lets it go. On a 2-core
machine a point can so wait up to about 1.2 s (``max loss window`` in the
figures) before it is stored; a loop that trains between points never
comes close. The allowance leaves room for slower CI machines.
"""
WAIT = 60.0
"""Longest wait for a child before the trial counts as a failure."""
_PART = re.compile(r"part-[0-9a-f]{16}-\d{6}(-\d{6})?\.parquet")
"""A part's name: one flush's, or a merged part's (``part-<writer>-<first>-<last>``)."""


@dataclass
class Trial:
    """What one killed (or crashed-thread) child left in the store."""

    scenario: str
    run_id: str = ""
    logged: int = 0
    """``loss`` points the child logged (SIGKILL: at least this many, from its progress)."""
    recovered: int = 0
    """``loss`` points found in the store."""
    lost_beyond_bound: int = 0
    """Points logged before the bound that the store does not have (must be 0)."""
    lost_beyond_interval: int = 0
    """Points logged more than one flush interval before the kill and not stored."""
    duplicates: int = 0
    """Points stored more than once (must be 0)."""
    corrupt_files: int = 0
    """Visible files that do not read back whole, and values that changed (must be 0)."""
    hidden_temp_files: int = 0
    """Dot-files a killed write left behind: invisible to readers, counted for information."""
    loss_window: float = 0.0
    """Age at the kill of the oldest point the store lacks (seconds; 0 if none)."""
    problems: list[str] = field(default_factory=list)
    """Anything else that went wrong (wrong status, child output, reader disagreement)."""

    @property
    def ok(self) -> bool:
        """Whether the trial found nothing wrong."""
        return not (
            self.lost_beyond_bound or self.duplicates or self.corrupt_files or self.problems
        )


# The child.


class Child:
    """A running :mod:`crash_child`, its stdout read line by line."""

    def __init__(
        self, mode: str, store: str, workdir: Path, flush_interval: float, *extra: str
    ) -> None:
        self.progress = workdir / f"progress-{time.monotonic_ns()}.txt"
        self._stderr_path = self.progress.with_suffix(".stderr")
        self._stderr: IO[str] = self._stderr_path.open("w")
        args = [mode, store, str(self.progress), str(flush_interval), *extra]
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), *args],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )

    def line(self) -> str:
        """The next stdout line (empty once the child has exited)."""
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def wait(self) -> int:
        """The exit code, killing the child if it does not end within :data:`WAIT`."""
        try:
            return self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def stderr(self) -> str:
        """What the child wrote to stderr so far."""
        self._stderr.flush()
        return self._stderr_path.read_text(errors="replace")

    def close(self) -> None:
        """Kill the child if needed and release its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


def read_progress(path: Path) -> list[tuple[int, float]]:
    """The ``(step, monotonic time)`` lines a child wrote; a torn last line is ignored."""
    lines: list[tuple[int, float]] = []
    if not path.exists():
        return lines
    for text in path.read_text().splitlines():
        parts = text.split()
        if len(parts) == 2:
            try:
                lines.append((int(parts[0]), float(parts[1])))
            except ValueError:
                continue
    return lines


# What the store holds.


def _check_files(store: str, run_id: str, trial: Trial) -> None:
    """Every visible file of the run reads back whole; hidden temp files are counted."""
    folder = Path(store) / "metrics" / f"run_id={run_id}"
    for path in sorted(folder.iterdir()) if folder.exists() else []:
        if path.name.startswith((".", "_")):
            trial.hidden_temp_files += 1
            continue
        try:
            if not _PART.fullmatch(path.name):
                raise ValueError(f"unexpected file name {path.name}")
            pq.read_metadata(path)
        except (OSError, ValueError, pa.ArrowException) as error:
            trial.corrupt_files += 1
            trial.problems.append(f"{path.name}: {error}")
    try:
        pacha.load_run(run_id, uri=store)
    except pacha.InvalidRecordError as error:
        trial.corrupt_files += 1
        trial.problems.append(str(error))


def duckdb_count(source: str) -> int:
    """``count(*)`` of a DuckDB table expression, such as ``read_parquet(...)``."""
    import duckdb

    relation = duckdb.sql(f"select count(*) from {source}")
    assert relation is not None
    return int(relation.fetchall()[0][0])


def stored_table(store: str, run_id: str, trial: Trial) -> pa.Table:
    """The run's points via pyarrow.dataset, checked against DuckDB's count.

    Both read the files the README's name rule keeps: a run killed during
    one of its own merges leaves the merged part and the parts it covers,
    and an exact engine query leaves the covered ones out.
    """
    folder = Path(store) / "metrics" / f"run_id={run_id}"
    files = drop_covered(sorted(str(path) for path in folder.glob("*.parquet")), str)
    if not files:  # killed before its first part landed (or mid-write)
        return pa.table({"name": pa.array([], pa.string()), "step": pa.array([], pa.int64())})
    dataset = ds.dataset(files, format="parquet")
    table = dataset.to_table(columns=["name", "step", "value"], filter=ds.field("run_id") == run_id)
    counted = duckdb_count(f"read_parquet({files!r})")
    if counted != table.num_rows:
        trial.problems.append(f"DuckDB counts {counted} points, pyarrow {table.num_rows}")
    return table


def _steps(table: pa.Table, name: str, trial: Trial) -> list[int]:
    """Sorted steps of metric *name*; a value that is not its step counts as corrupt."""
    rows = table.filter(pc.field("name") == name)
    steps = rows.column("step")
    if not rows.num_rows:
        return []
    changed = pc.sum(pc.not_equal(rows.column("value"), pc.cast(steps, pa.float64()))).as_py()
    if name in ("loss", "worker") and changed:
        trial.corrupt_files += 1
        trial.problems.append(f"{changed} {name} values differ from what was logged")
    return sorted(steps.to_pylist())


def _missing_before(distinct: list[int], progress: list[tuple[int, float]], deadline: float) -> int:
    """How many steps logged by *deadline* (monotonic) are not among *distinct* stored steps."""
    old = [step for step, moment in progress if moment <= deadline]
    must_have = old[-1] if old else -1
    return (must_have + 1) - sum(1 for step in distinct if step <= must_have)


def _count_losses(
    trial: Trial,
    steps: list[int],
    progress: list[tuple[int, float]],
    killed_at: float,
    bounds: tuple[float, float],
) -> None:
    """Fill the loss figures of *trial* from the stored steps; *bounds*: (interval, bound)."""
    distinct = sorted(set(steps))
    trial.recovered = len(steps)
    trial.duplicates = len(steps) - len(distinct)
    last_logged = progress[-1][0] if progress else -1
    trial.logged = max(last_logged + 1, len(distinct))
    trial.lost_beyond_interval = _missing_before(distinct, progress, killed_at - bounds[0])
    trial.lost_beyond_bound = _missing_before(distinct, progress, killed_at - bounds[1])
    missing = next((i for i, step in enumerate(distinct) if step != i), len(distinct))
    # The first missing step was logged before the first progress line at or after it.
    logged_by = [moment for step, moment in progress if step >= missing]
    if logged_by:
        trial.loss_window = max(0.0, killed_at - logged_by[0])


def _check_killed_record(trial: Trial, store: str, flush_interval: float) -> None:
    record = pacha.load_run(trial.run_id, uri=store)
    if record.status is not pacha.RunStatus.RUNNING:
        trial.problems.append(f"status {record.status} after SIGKILL, expected running")
    beat = record.heartbeat_at
    now = datetime.now(timezone.utc)
    if beat is None or beat > now:
        trial.problems.append(f"heartbeat {beat} is not in the past")
    elif not record.stale_at(beat + timedelta(seconds=3 * flush_interval + 0.05)):
        trial.problems.append("the killed run would never turn stale")


# Trials.


def _start(
    mode: str, store: str, workdir: Path, flush_interval: float, *extra: str
) -> tuple[Child, str]:
    child = Child(mode, store, workdir, flush_interval, *extra)
    run_id = child.line()
    if child.line() != "ready":
        child.close()
        raise RuntimeError(f"child did not start: {child.stderr()}")
    return child, run_id


def signal_trial(
    store: str,
    signum: signal.Signals,
    delay: float,
    workdir: Path,
    flush_interval: float = FLUSH_INTERVAL,
    bound: float = FLUSH_INTERVAL + WRITE_ALLOWANCE,
    step_ms: float = 0.0,
) -> Trial:
    """Start a logging child, send *signum* after *delay* seconds, check the store.

    The child logs at full speed, or one step per *step_ms* milliseconds.
    """
    trial = Trial(signum.name)
    child, trial.run_id = _start("loop", store, workdir, flush_interval, str(step_ms))
    try:
        time.sleep(delay)
        killed_at = time.monotonic()
        child.proc.send_signal(signum)
        code = child.wait()
        if code != -signum:
            trial.problems.append(f"exit code {code}, expected {-signum}: {child.stderr()[-500:]}")
    finally:
        child.close()
    _check_files(store, trial.run_id, trial)
    table = stored_table(store, trial.run_id, trial)
    progress = read_progress(child.progress)
    steps = _steps(table, "loss", trial)
    if signum is signal.SIGKILL:
        _count_losses(trial, steps, progress, killed_at, (flush_interval, bound))
        _check_killed_record(trial, store, flush_interval)
    else:  # SIGTERM: the handler flushes everything logged before the signal
        _count_losses(trial, steps, progress, killed_at, (0.0, 0.0))
        status = pacha.load_run(trial.run_id, uri=store).status
        if status is not pacha.RunStatus.CANCELLED:
            trial.problems.append(f"status {status} after SIGTERM, expected cancelled")
    return trial


def thread_trial(store: str, workdir: Path, flush_interval: float = FLUSH_INTERVAL) -> Trial:
    """Background threads of user code raise; the run must complete with every point."""
    from tests.reliability.crash_child import MAIN_POINTS, THREAD_POINTS

    trial = Trial("thread exception")
    child, trial.run_id = _start("thread", store, workdir, flush_interval)
    try:
        report = child.line()
        code = child.wait()
        stderr = child.stderr()
    finally:
        child.close()
    if code != 0:
        trial.problems.append(f"exit code {code}: {stderr[-500:]}")
    if report != "flushed=True last_error=None":
        trial.problems.append(f"writer after the thread died: {report!r}")
    for expected in ("RuntimeError: worker thread crashed", "MetricTypeError"):
        if expected not in stderr:
            trial.problems.append(f"{expected!r} not reported by the thread: {stderr[-2000:]}")
    _check_files(store, trial.run_id, trial)
    table = stored_table(store, trial.run_id, trial)
    for name, count in (("loss", MAIN_POINTS), ("worker", THREAD_POINTS)):
        steps = _steps(table, name, trial)
        trial.logged += count
        trial.recovered += len(steps)
        trial.duplicates += len(steps) - len(set(steps))
        trial.lost_beyond_bound += count - len(set(steps) & set(range(count)))
    status = pacha.load_run(trial.run_id, uri=store).status
    if status is not pacha.RunStatus.COMPLETED:
        trial.problems.append(f"status {status}, expected completed")
    return trial


def reap_killed(store: str, trials: Sequence[Trial], flush_interval: float) -> list[str]:
    """Once the killed runs are stale, :func:`pacha_sdk.reap` must mark each of them failed."""
    killed = {t.run_id for t in trials if t.scenario == signal.SIGKILL.name}
    time.sleep(3 * flush_interval + 0.1)
    reaped = {str(record.run_id) for record in pacha.reap(uri=store)}
    problems = [f"run {run_id} was not reaped" for run_id in sorted(killed - reaped)]
    problems += [f"run {run_id} was reaped but not killed" for run_id in sorted(reaped - killed)]
    for run_id in sorted(killed & reaped):
        record = pacha.load_run(run_id, uri=store)
        if record.status is not pacha.RunStatus.FAILED or record.error_message != "heartbeat lost":
            problems.append(f"reaped run {run_id} reads {record.status} {record.error_message!r}")
    return problems


def whole_store_problems(store: str, trials: Sequence[Trial]) -> list[str]:
    """The whole store, every run at once, through pyarrow, DuckDB and the SDK."""
    if not (Path(store) / "metrics").exists():
        return ["no run stored a single point"]
    dataset = ds.dataset(Path(store) / "metrics", format="parquet", partitioning="hive")
    rows = dataset.count_rows()
    counted = duckdb_count(f"read_parquet('{store}/metrics/*/*.parquet', hive_partitioning=true)")
    problems = [] if rows == counted else [f"whole store: DuckDB {counted} rows, pyarrow {rows}"]
    listed = {str(record.run_id) for record in pacha.list_runs(uri=store)}
    problems += [f"run {t.run_id} not listed" for t in trials if t.run_id not in listed]
    return problems


def run_suite(
    store: str,
    *,
    kills: int,
    terms: int,
    threads: int,
    seed: int,
    max_delay: float = 1.5,
    flush_interval: float = FLUSH_INTERVAL,
    bound: float = FLUSH_INTERVAL + WRITE_ALLOWANCE,
    step_ms: float = 0.0,
) -> tuple[list[Trial], list[str]]:
    """Run every trial into one store; return the trials and store-wide problems."""
    rng = random.Random(seed)
    trials: list[Trial] = []
    with tempfile.TemporaryDirectory(prefix="pacha-crash-") as work:
        workdir = Path(work)
        for _ in range(kills):
            delay = rng.uniform(0.0, max_delay)
            trials.append(
                signal_trial(store, signal.SIGKILL, delay, workdir, flush_interval, bound, step_ms)
            )
        for _ in range(terms):
            delay = rng.uniform(0.0, max_delay)
            trials.append(
                signal_trial(store, signal.SIGTERM, delay, workdir, flush_interval, step_ms=step_ms)
            )
        trials.extend(thread_trial(store, workdir, flush_interval) for _ in range(threads))
    problems = reap_killed(store, trials, flush_interval) if kills else []
    problems += whole_store_problems(store, trials)
    return trials, problems


# The figures table.

COLUMNS = (
    "scenario",
    "trials",
    "points logged",
    "points recovered",
    "lost beyond bound",
    "lost beyond interval",
    "duplicates",
    "corrupt files",
    "hidden temp files",
    "max loss window s",
    "failed trials",
)


def figures(trials: Sequence[Trial]) -> list[tuple[str, ...]]:
    """One row per scenario (in the order first seen), then the total."""
    scenarios = list(dict.fromkeys(t.scenario for t in trials))
    rows: list[tuple[str, ...]] = []
    for scenario in [*scenarios, "total"]:
        group = [t for t in trials if scenario in (t.scenario, "total")]
        rows.append(
            (
                scenario,
                str(len(group)),
                str(sum(t.logged for t in group)),
                str(sum(t.recovered for t in group)),
                str(sum(t.lost_beyond_bound for t in group)),
                str(sum(t.lost_beyond_interval for t in group)),
                str(sum(t.duplicates for t in group)),
                str(sum(t.corrupt_files for t in group)),
                str(sum(t.hidden_temp_files for t in group)),
                f"{max((t.loss_window for t in group), default=0.0):.3f}",
                str(sum(not t.ok for t in group)),
            )
        )
    return rows


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (it reads as plain text too)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the crash suite and print its figures; exit 1 if anything was lost or broken."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=50, help="SIGKILL trials (default 50)")
    parser.add_argument("--terms", type=int, default=10, help="SIGTERM trials (default 10)")
    parser.add_argument("--threads", type=int, default=3, help="thread-exception trials")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-delay", type=float, default=1.5, help="latest kill (s)")
    parser.add_argument("--flush-interval", type=float, default=FLUSH_INTERVAL)
    parser.add_argument("--allowance", type=float, default=WRITE_ALLOWANCE)
    parser.add_argument(
        "--step-ms", type=float, default=0.0, help="sleep per step (default 0: full speed)"
    )
    parser.add_argument("--store", help="store folder (default: a temporary one)")
    args = parser.parse_args(argv)
    bound = args.flush_interval + args.allowance
    with tempfile.TemporaryDirectory(prefix="pacha-crash-store-") as tmp:
        store = args.store or os.path.join(tmp, "store")
        os.environ.setdefault("PACHA_SPOOL_DIR", os.path.join(tmp, "spool"))
        started = time.monotonic()
        trials, problems = run_suite(
            store,
            kills=args.kills,
            terms=args.terms,
            threads=args.threads,
            seed=args.seed,
            max_delay=args.max_delay,
            flush_interval=args.flush_interval,
            bound=bound,
            step_ms=args.step_ms,
        )
        elapsed = time.monotonic() - started
    print(
        f"crash suite: flush interval {args.flush_interval} s, bound {bound:.2f} s, "
        f"{f'{args.step_ms} ms per step' if args.step_ms else 'full speed'}, "
        f"seed {args.seed}, {elapsed:.0f} s\n"
    )
    print(markdown_table(COLUMNS, figures(trials)))
    for trial in trials:
        for problem in trial.problems:
            print(f"{trial.scenario} {trial.run_id}: {problem}")
    for problem in problems:
        print(problem)
    return 0 if all(t.ok for t in trials) and not problems else 1


if __name__ == "__main__":
    if __package__ in (None, ""):  # run as a file: make `tests` importable
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    sys.exit(main())
