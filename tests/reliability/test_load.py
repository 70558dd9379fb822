"""Load suite, small: 32 threads into one run and 16 runs at once lose nothing and never hang.

``python -m tests.reliability.load`` runs millions of points, each scenario
in a fresh process, and prints points per second and peak memory.
"""

from __future__ import annotations

from tests.reliability import load

MAX_PEAK_MIB = 1024
"""A runaway check only: the script measures the real peak per scenario."""


def _assert_ok(result: load.LoadResult) -> None:
    assert result.deadlocks == 0, result
    assert result.lost == 0, result
    assert result.problems == [], result
    assert result.points_per_second > 0
    assert result.peak_rss_mb < MAX_PEAK_MIB


def test_32_threads_logging_into_one_run(store: str) -> None:
    _assert_ok(load.threads_into_one_run(store, threads=32, points=15_000))


def test_16_runs_logging_at_once_in_one_process(store: str) -> None:
    _assert_ok(load.runs_at_once(store, runs=16, points=30_000))


def test_the_figures_table() -> None:
    result = load.LoadResult("x", points=1_000, seconds=0.5, peak_rss_mb=12.4)
    (row,) = load.figures([result])
    assert row == ("x", "1,000", "0.50", "2,000", "12", "0", "0", "yes")
    assert len(row) == len(load.COLUMNS)
