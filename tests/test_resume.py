"""Resuming a run: ``pacha.run(run_id=<a stored run>)`` continues it where it stopped.

What a resumed run keeps of the stored one: its ``started_at``, the summary
of every name logged before, the automatic steps of each name (they go on
after the last stored step, read from the record's ``extra.summary_steps``
and from the part files the record had not counted yet), and the top-level
fields a newer SDK wrote.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import pacha_sdk as pacha


def _points(store: str, run_id: str, name: str) -> list[tuple[int, float]]:
    table = pacha.read_metrics(run_id, uri=store, names=name)
    return sorted(zip(table["step"].to_pylist(), table["value"].to_pylist()))


def _open(store: str, **options: object) -> pacha.Run:
    return pacha.run(uri=store, system_metrics=False, flush_interval=0.05, **options)  # type: ignore[arg-type]


def test_a_resumed_run_keeps_started_at_summary_and_automatic_steps(store: str) -> None:
    with _open(store, name="bert") as first:
        for value in (3.0, 2.0, 1.0):
            first.log_metric("loss", value)  # steps 0, 1, 2
        first.log_metric("acc", 0.5, step=7)
        first.log_metric("lr", 0.1)
    before = pacha.load_run(first.run_id, uri=store)

    with _open(store, run_id=first.run_id) as again:
        assert again.get_metric("loss") == 1.0
        assert again.get_metric("acc") == 0.5
        again.log_metric("loss", 0.5)  # step 3, not 0
        again.log_metric("acc", 0.75)  # step 8
        again.log_metrics({"acc": 0.8, "lr": 0.05})  # acc at 9, lr at 1
    after = pacha.load_run(first.run_id, uri=store)

    assert after.started_at == before.started_at
    assert after.finished_at is not None
    assert before.finished_at is not None
    assert after.finished_at > before.finished_at
    assert after.status is pacha.RunStatus.COMPLETED
    assert after.name == "bert"
    assert after.summary == {"loss": 0.5, "acc": 0.8, "lr": 0.05}
    assert after.extra["summary_steps"] == {"loss": 3, "acc": 9, "lr": 1}
    assert _points(store, first.run_id, "loss") == [(0, 3.0), (1, 2.0), (2, 1.0), (3, 0.5)]
    assert _points(store, first.run_id, "acc") == [(7, 0.5), (8, 0.75), (9, 0.8)]
    assert _points(store, first.run_id, "lr") == [(0, 0.1), (1, 0.05)]


def test_the_summary_of_a_resumed_run_is_latest_by_step(store: str) -> None:
    with _open(store) as first:
        first.log_metric("loss", 0.1, step=100)
        first.log_metric("acc", 0.9, step=5)
    with _open(store, run_id=first.run_id) as again:
        again.log_metric("loss", 0.7, step=3)  # an older step: not the latest
        again.log_metric("acc", 0.95, step=5)  # the same step, logged later: the latest
        again.log_metric("new", 1.0)
        assert again.get_metric("loss") == 0.1
        assert again.get_metric("acc") == 0.95
    record = pacha.load_run(first.run_id, uri=store)
    assert record.summary == {"loss": 0.1, "acc": 0.95, "new": 1.0}
    assert record.extra["summary_steps"] == {"loss": 100, "acc": 5, "new": 0}


def test_a_resumed_failed_run_forgets_the_old_error(store: str) -> None:
    first = _open(store)

    def train() -> None:
        with first:
            first.log_metric("loss", 1.0)
            raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        train()
    failed = pacha.load_run(first.run_id, uri=store)
    assert failed.error_message == "RuntimeError: out of memory"
    assert "traceback" in failed.extra
    with _open(store, run_id=first.run_id) as again:
        again.log_metric("loss", 0.5)
    record = pacha.load_run(first.run_id, uri=store)
    assert record.status is pacha.RunStatus.COMPLETED
    assert record.error_message is None
    assert "traceback" not in record.extra
    assert _points(store, first.run_id, "loss") == [(0, 1.0), (1, 0.5)]


def test_resuming_keeps_top_level_fields_a_newer_sdk_wrote(store: str) -> None:
    with _open(store) as first:
        first.log_metric("loss", 1.0)
    path = Path(store, "runs", first.run_id, "run.json")
    data = json.loads(path.read_text())
    data["lineage_v2"] = {"inputs": [], "note": None}
    path.write_text(json.dumps(data))
    with _open(store, run_id=first.run_id):
        pass
    assert json.loads(path.read_text())["lineage_v2"] == {"inputs": [], "note": None}


def test_reaping_keeps_top_level_fields_a_newer_sdk_wrote(store: str) -> None:
    run = _open(store)
    run.log_metric("loss", 1.0)
    assert run.flush(timeout=10)
    path = Path(store, "runs", run.run_id, "run.json")
    data = json.loads(path.read_text())
    data["lineage_v2"] = [1, 2]
    data["extra"]["heartbeat_at"] = "2000-01-01T00:00:00Z"  # its process died long ago
    run._keeper.heartbeat = lambda: None  # type: ignore[method-assign]  # and beats no more
    path.write_text(json.dumps(data))
    try:
        (reaped,) = pacha.reap(uri=store)
        assert reaped.status is pacha.RunStatus.FAILED
        assert json.loads(path.read_text())["lineage_v2"] == [1, 2]
    finally:
        run.cancel()  # this process is the run's: end it


def test_steps_continue_after_points_the_record_never_counted(store: str) -> None:
    """A run killed between storing a part and rewriting run.json: the part still counts."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        import pacha_sdk as pacha

        run = pacha.run(uri={store!r}, system_metrics=False, flush_interval=60)
        for step in range(5):
            run.log_metric("loss", float(step))
        assert run.flush(timeout=30)
        print(run.run_id, flush=True)
        # What a kill right after a part is stored leaves: the part, and a record that
        # has not counted it. The writer's heartbeat is what counts it: stop it first.
        run._keeper.heartbeat = lambda: None
        for step in range(5, 9):
            run.log_metric("loss", float(step))
        assert run.flush(timeout=30)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    child = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    run_id = child.stdout.split()[0]
    assert pacha.load_run(run_id, uri=store).extra["summary_steps"] == {"loss": 4}
    with _open(store, run_id=run_id) as again:
        again.log_metric("loss", 9.0)
    steps = [step for step, _ in _points(store, run_id, "loss")]
    assert steps == list(range(10))


def test_a_record_of_an_older_sdk_gets_its_steps_from_the_part_files(store: str) -> None:
    with _open(store) as first:
        for step in range(3):
            first.log_metric("loss", float(step))
        first.log_metric("acc", 0.5, step=40)
    path = Path(store, "runs", first.run_id, "run.json")
    data = json.loads(path.read_text())
    for key in ("summary_steps", "writer"):
        del data["extra"][key]  # what pacha-sdk 0.1 wrote
    path.write_text(json.dumps(data))
    with _open(store, run_id=first.run_id) as again:
        again.log_metric("loss", 3.0)
        again.log_metric("acc", 0.6)
    assert [s for s, _ in _points(store, first.run_id, "loss")] == [0, 1, 2, 3]
    assert [s for s, _ in _points(store, first.run_id, "acc")] == [40, 41]


def test_a_resumed_rank_continues_its_own_steps(store: str) -> None:
    with _open(store) as rank0:
        shared = rank0.run_id
        with _open(store, run_id=shared, rank=1) as rank1:
            for _ in range(5):
                rank1.log_metric("loss", 1.0)
        for _ in range(2):
            rank0.log_metric("loss", 0.0)
    with _open(store, run_id=shared, rank=1) as rank1:
        rank1.log_metric("loss", 2.0)
    table = pacha.read_metrics(shared, uri=store)
    by_rank = Counter(table["rank"].to_pylist())
    assert by_rank == {0: 2, 1: 6}
    rank1_steps = table.filter(pc.field("rank") == 1)["step"].to_pylist()
    assert sorted(rank1_steps) == [0, 1, 2, 3, 4, 5]
    (record,) = pacha.load_rank_records(shared, uri=store)
    assert record.summary_steps == {"loss": 5}


def test_resuming_reads_no_part_file_the_record_counted(store: str) -> None:
    with _open(store) as first:
        for _ in range(3):
            first.log_metric("loss", 1.0)
            assert first.flush(timeout=10)
    parts = sorted(Path(store, "metrics").rglob("*.parquet"))
    assert [part.name[-22:] for part in parts] == ["-000000-000002.parquet"]  # merged at the end
    for part in parts:  # were any of them read, resuming would fail or warn
        part.write_bytes(b"not parquet")
    with _open(store, run_id=first.run_id) as again:
        again.log_metric("loss", 1.0)
    (new,) = set(Path(store, "metrics").rglob("*.parquet")) - set(parts)
    assert pq.read_table(new)["step"].to_pylist() == [3]
