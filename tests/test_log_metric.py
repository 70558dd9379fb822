"""Logging metrics: threads, flushing, stores, steps and latest values."""

from __future__ import annotations

import threading
import uuid

import pyarrow.compute as pc

import pacha_sdk as pacha


def test_many_threads_log_into_one_run_without_losing_a_point(store: str) -> None:
    threads_count, per_thread = 8, 5_000
    with pacha.run(uri=store, flush_rows=3_000, flush_interval=0.2) as run:

        def worker(index: int) -> None:
            for step in range(per_thread):
                run.log_metric(f"t{index}", float(step), step)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    table = pacha.read_metrics(run.run_id, uri=store)
    assert table.num_rows == threads_count * per_thread
    for index in range(threads_count):
        rows = table.filter(pc.equal(table["name"], f"t{index}"))
        assert sorted(rows["step"].to_pylist()) == list(range(per_thread))
        assert rows["step"].to_pylist() == [int(v) for v in rows["value"].to_pylist()]


def test_flush_rows_writes_parts_before_the_interval(store: str) -> None:
    with pacha.run(uri=store, flush_rows=1_000, flush_interval=3600) as run:
        for step in range(5_000):
            run.log_metric("loss", 1.0, step)
        assert run.flush(timeout=10)
        assert pacha.read_metrics(run.run_id, uri=store).num_rows == 5_000
        assert pacha.load_run(run.run_id, uri=store).summary == {"loss": 1.0}


def test_memory_store_round_trip() -> None:
    uri = f"memory://{uuid.uuid4().hex}"
    with pacha.run({"seed": 1}, uri=uri) as run:
        run.log_metrics({"a": 1.0, "b": 2.0}, step=3)
    assert pacha.load_run(run.run_id, uri=uri).status is pacha.RunStatus.COMPLETED
    table = pacha.read_metrics(run.run_id, uri=uri)
    assert sorted(zip(table["name"].to_pylist(), table["value"].to_pylist())) == [
        ("a", 1.0),
        ("b", 2.0),
    ]


def test_pacha_uri_environment_variable_picks_the_store(store: str, monkeypatch: object) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setenv("PACHA_URI", store)
    with pacha.run() as run:
        run.log_metric("x", 1.0)
    assert pacha.load_run(run.run_id, uri=store).status is pacha.RunStatus.COMPLETED
    assert run.uri.endswith("store")


def test_log_metrics_shares_one_step_and_one_timestamp(store: str) -> None:
    with pacha.run(uri=store) as run:
        run.log_metrics({"a": 1.0, "b": 2.0, "c": 3.0}, step=7)
        run.log_metrics({"a": 4.0})  # each name's next step
    table = pacha.read_metrics(run.run_id, uri=store)
    first = table.filter(pc.equal(table["step"], 7))
    assert first.num_rows == 3
    assert len(set(first["timestamp"].to_pylist())) == 1
    a_rows = table.filter(pc.equal(table["name"], "a"))
    assert sorted(a_rows["step"].to_pylist()) == [7, 8]


def test_get_metric_sees_unflushed_and_flushed_points(store: str) -> None:
    with pacha.run(uri=store, flush_interval=3600) as run:
        assert run.get_metric("loss") is None
        run.log_metric("loss", 3.0, 10)
        run.log_metric("loss", 1.0, 2)
        assert run.get_metric("loss") == 3.0
        assert run.flush(timeout=10)
        run.log_metric("loss", 0.5, 10)
        assert run.get_metric("loss") == 0.5
    assert pacha.load_run(run.run_id, uri=store).get_metric("loss") == 0.5


def test_summary_keeps_non_finite_values_as_null_in_json(store: str) -> None:
    with pacha.run(uri=store) as run:
        run.log_metric("loss", float("inf"), 0)
    raw = __import__("pathlib").Path(store, "runs", str(run.run_id), "run.json").read_text()
    assert '"loss": null' in raw
    assert "Infinity" not in raw
    assert pacha.read_metrics(run.run_id, uri=store)["value"].to_pylist() == [float("inf")]
