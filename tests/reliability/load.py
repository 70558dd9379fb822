"""Load suite: many threads into one run, many runs in one process, at the same moment.

Each scenario releases its threads together (a barrier), joins them with a
timeout (a hang is reported as a deadlock, never waited out), finishes the
runs, and reads every point back. It reports how fast the points reached
the store and the process's peak resident memory above where it started.

* ``threads x 1 run``: 32 threads log into one run, each its own metric;
* ``runs x 1 thread``: 16 threads each open their own run and log into it;
* ``1 thread x 1 run``: the baseline, the same number of points in total.

Run as a script for the figures table::

    python -m tests.reliability.load
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psutil
import pyarrow.compute as pc

import pacha_sdk as pacha

JOIN_TIMEOUT = 120.0
"""Seconds a logging thread may take before the scenario counts as deadlocked."""
FLUSH_INTERVAL = 0.5


@dataclass
class LoadResult:
    """Figures of one scenario."""

    scenario: str
    points: int = 0
    """Points logged."""
    seconds: float = 0.0
    """From the threads' release until every run finished with every point stored."""
    peak_rss_mb: float = 0.0
    """Peak resident memory above the level before the scenario started (MiB)."""
    lost: int = 0
    """Points logged but not read back (must be 0)."""
    deadlocks: int = 0
    """Threads still running after :data:`JOIN_TIMEOUT` (must be 0)."""
    problems: list[str] = field(default_factory=list)

    @property
    def points_per_second(self) -> float:
        """Points stored per second of the scenario."""
        return self.points / self.seconds if self.seconds else 0.0

    @property
    def ok(self) -> bool:
        """Whether nothing was lost, nothing hung and nothing else went wrong."""
        return not (self.lost or self.deadlocks or self.problems)


class PeakRss(threading.Thread):
    """Samples this process's resident memory every few milliseconds; keeps the peak."""

    def __init__(self, every: float = 0.005) -> None:
        super().__init__(name="peak-rss", daemon=True)
        self._process = psutil.Process()
        self._every = every
        self._stop_event = threading.Event()
        self.baseline = self._process.memory_info().rss
        self.peak = self.baseline

    def run(self) -> None:
        while not self._stop_event.wait(self._every):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def stop(self) -> float:
        """Stop sampling; return the peak above the baseline, in MiB."""
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, self._process.memory_info().rss)
        return float(self.peak - self.baseline) / 2**20


def _run_threads(
    result: LoadResult, count: int, work: Callable[[int, threading.Barrier], None]
) -> float:
    """Start *count* threads running *work*, release them together; return the release time."""
    barrier = threading.Barrier(count + 1)
    errors: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            work(index, barrier)
        except BaseException as error:  # reported as a problem
            errors.append(error)

    threads = [
        threading.Thread(target=guarded, args=(i,), name=f"load-{i}", daemon=True)
        for i in range(count)
    ]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=JOIN_TIMEOUT)
    released = time.monotonic()
    deadline = released + JOIN_TIMEOUT
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    result.deadlocks = sum(thread.is_alive() for thread in threads)
    result.problems += [f"{type(e).__name__}: {e}" for e in errors]
    return released


def _count_lost(result: LoadResult, store: str, run_id: str, names: dict[str, int]) -> None:
    """Every metric in *names* has exactly steps 0..n-1, each with value == step."""
    table = pacha.read_metrics(run_id, uri=store, names=list(names))
    for name, count in names.items():
        rows = table.filter(pc.field("name") == name)
        steps = rows["step"]
        in_range = pc.and_(pc.greater_equal(steps, 0), pc.less(steps, count))
        distinct = pc.count_distinct(steps.filter(in_range)).as_py()
        result.lost += count - distinct
        if rows.num_rows != pc.count_distinct(steps).as_py():
            result.problems.append(f"{name}: {rows.num_rows - distinct} duplicated points")
        if pc.all(pc.equal(rows["value"], pc.cast(steps, "float64"))).as_py() is False:
            result.problems.append(f"{name}: values differ from what was logged")


def threads_into_one_run(store: str, threads: int, points: int) -> LoadResult:
    """*threads* threads log *points* points each, at once, into one run."""
    result = LoadResult(f"{threads} threads x 1 run", points=threads * points)
    rss = PeakRss()
    rss.start()
    run = pacha.run(uri=store, flush_interval=FLUSH_INTERVAL, system_metrics=False)

    def work(index: int, barrier: threading.Barrier) -> None:
        log, name = run.log_metric, f"thread/{index:02d}"
        barrier.wait(timeout=JOIN_TIMEOUT)
        for step in range(points):
            log(name, float(step), step)

    released = _run_threads(result, threads, work)
    if not result.deadlocks:
        run.complete()
    result.seconds = time.monotonic() - released
    result.peak_rss_mb = rss.stop()
    if not result.deadlocks:
        _count_lost(result, store, run.run_id, {f"thread/{i:02d}": points for i in range(threads)})
    return result


def runs_at_once(store: str, runs: int, points: int) -> LoadResult:
    """*runs* threads each open their own run and log *points* points into it, at once."""
    result = LoadResult(f"{runs} runs x 1 thread", points=runs * points)
    rss = PeakRss()
    rss.start()
    run_ids: list[str] = []

    def work(index: int, barrier: threading.Barrier) -> None:
        with pacha.run(uri=store, flush_interval=FLUSH_INTERVAL, system_metrics=False) as run:
            run_ids.append(run.run_id)
            log = run.log_metric
            barrier.wait(timeout=JOIN_TIMEOUT)
            for step in range(points):
                log("loss", float(step), step)

    released = _run_threads(result, runs, work)
    result.seconds = time.monotonic() - released
    result.peak_rss_mb = rss.stop()
    if not result.deadlocks:
        for run_id in run_ids:
            _count_lost(result, store, run_id, {"loss": points})
        result.lost += (runs - len(run_ids)) * points
    return result


def one_thread(store: str, points: int) -> LoadResult:
    """The baseline: one thread, one run, *points* points."""
    result = threads_into_one_run(store, 1, points)
    result.scenario = "1 thread x 1 run"
    return result


COLUMNS = (
    "scenario",
    "points",
    "seconds",
    "points/s",
    "peak RSS MiB",
    "lost",
    "deadlocks",
    "ok",
)


def figures(results: Sequence[LoadResult]) -> list[tuple[str, ...]]:
    """One table row per scenario."""
    return [
        (
            r.scenario,
            f"{r.points:,}",
            f"{r.seconds:.2f}",
            f"{r.points_per_second:,.0f}",
            f"{r.peak_rss_mb:.0f}",
            str(r.lost),
            str(r.deadlocks),
            "yes" if r.ok else "NO",
        )
        for r in results
    ]


SCENARIOS: dict[str, Callable[[str, argparse.Namespace], LoadResult]] = {
    "baseline": lambda store, a: one_thread(store, a.threads * a.thread_points),
    "threads": lambda store, a: threads_into_one_run(store, a.threads, a.thread_points),
    "runs": lambda store, a: runs_at_once(store, a.runs, a.run_points),
    "baseline-4x": lambda store, a: one_thread(store, 4 * a.threads * a.thread_points),
}
"""Scenarios by name; the script runs each in a fresh process, so peaks do not mix."""


def _one_scenario(name: str, args: argparse.Namespace) -> None:
    """Child process: run scenario *name*, print its result as JSON."""
    with tempfile.TemporaryDirectory(prefix="pacha-load-") as tmp:
        os.environ["PACHA_SPOOL_DIR"] = os.path.join(tmp, "spool")
        result = SCENARIOS[name](os.path.join(tmp, "store"), args)
    if name == "baseline-4x":
        result.scenario += " (4x points)"
    print(json.dumps(dataclasses.asdict(result)))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the load scenarios and print their figures; exit 1 if any lost or hung."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--thread-points", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--run-points", type=int, default=200_000)
    parser.add_argument("--one", choices=sorted(SCENARIOS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        _one_scenario(args.one, args)
        return 0
    sizes = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k != "one"]
    results: list[LoadResult] = []
    for name in SCENARIOS:
        child = subprocess.run(
            [sys.executable, os.path.abspath(__file__), f"--one={name}", *sizes],
            capture_output=True,
            text=True,
            timeout=JOIN_TIMEOUT * 4,
            check=False,
        )
        lines = child.stdout.strip().splitlines()
        if child.returncode or not lines:
            results.append(LoadResult(name, problems=[f"exit {child.returncode}: {child.stderr}"]))
        else:
            results.append(LoadResult(**json.loads(lines[-1])))
    print(f"load suite: {os.cpu_count()} CPUs, flush interval {FLUSH_INTERVAL} s, ")
    print("each scenario in a fresh process (peak RSS above its level before logging)\n")
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for row in figures(results):
        print("| " + " | ".join(row) + " |")
    for result in results:
        for problem in result.problems:
            print(f"{result.scenario}: {problem}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
