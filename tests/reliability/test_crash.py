"""Crash suite, small: a full-speed training loop killed at random moments loses nothing old.

The script ``python -m tests.reliability.crash --kills 50`` runs the same
trials in bigger numbers and prints the figures table.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

import pacha_sdk as pacha
from tests.reliability import crash

pytestmark = pytest.mark.subprocess

KILLS = 8
TERMS = 2


def _assert_ok(trials: list[crash.Trial]) -> None:
    for trial in trials:
        assert trial.ok, (trial.scenario, trial.run_id, trial.problems, trial)
        assert trial.lost_beyond_bound == 0
        assert trial.duplicates == 0
        assert trial.corrupt_files == 0


def test_sigkill_at_random_moments_loses_nothing_older_than_the_bound(store: str) -> None:
    trials, problems = crash.run_suite(
        store, kills=KILLS, terms=0, threads=0, seed=11, max_delay=1.8
    )
    _assert_ok(trials)
    assert problems == []  # reaped, listed, and DuckDB agrees with pyarrow on the whole store
    assert sum(t.recovered for t in trials) > 0
    for trial in trials:
        record = pacha.load_run(trial.run_id, uri=store)
        assert record.status is pacha.RunStatus.FAILED
        assert record.error_message == "heartbeat lost"
    (row, total) = crash.figures(trials)
    assert row[0] == "SIGKILL"
    assert row[1] == str(KILLS)
    assert total[4] == "0"  # lost beyond bound


def test_sigterm_at_random_moments_cancels_and_loses_nothing(store: str, tmp_path: Path) -> None:
    trials = [
        crash.signal_trial(store, signal.SIGTERM, delay, tmp_path) for delay in (0.05, 0.7)[:TERMS]
    ]
    _assert_ok(trials)
    for trial in trials:
        assert trial.recovered == trial.logged
        assert pacha.load_run(trial.run_id, uri=store).status is pacha.RunStatus.CANCELLED


def test_an_exception_in_a_user_thread_leaves_the_writer_running(
    store: str, tmp_path: Path
) -> None:
    trial = crash.thread_trial(store, tmp_path)
    _assert_ok([trial])
    assert trial.recovered == trial.logged > 0
    assert pacha.load_run(trial.run_id, uri=store).status is pacha.RunStatus.COMPLETED


def test_the_figures_table_has_one_row_per_scenario_and_a_total() -> None:
    trials = [
        crash.Trial("SIGKILL", logged=10, recovered=8, loss_window=0.25),
        crash.Trial("SIGKILL", logged=5, recovered=5, hidden_temp_files=1),
        crash.Trial("SIGTERM", logged=7, recovered=7, problems=["status failed"]),
    ]
    rows = crash.figures(trials)
    assert [row[0] for row in rows] == ["SIGKILL", "SIGTERM", "total"]
    assert rows[0][1:4] == ("2", "15", "13")
    assert rows[0][crash.COLUMNS.index("max loss window s")] == "0.250"
    assert rows[2][crash.COLUMNS.index("failed trials")] == "1"
    table = crash.markdown_table(crash.COLUMNS, rows)
    assert table.splitlines()[0].startswith("| scenario | trials |")
    assert len(table.splitlines()) == 2 + len(rows)
