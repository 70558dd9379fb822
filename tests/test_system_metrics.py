"""The system-metrics sampler: system/* points in the run, a thread that ends with it."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import pacha_sdk as pacha
from tests.conftest import wait_until

SYSTEM_NAMES = {"system/cpu_percent", "system/memory_rss_mb", "system/memory_percent"}


def sampler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("pacha-system-metrics")]


def wait_for_samples(run: pacha.Run, count: int) -> None:
    """Keep the run open until the sampler has logged *count* samples."""

    def sampled() -> bool:
        run.flush()
        table = pacha.read_metrics(run.run_id, uri=run.uri, names="system/memory_rss_mb")
        return bool(table.num_rows >= count)

    wait_until(sampled, message=f"fewer than {count} samples")


def points(table: pa.Table, name: str) -> list[tuple[int, float]]:
    rows = table.filter(pc.equal(table["name"], name)).sort_by("step")
    return list(zip(rows["step"].to_pylist(), rows["value"].to_pylist()))


def test_samples_are_logged_as_metrics_of_the_run(store: str) -> None:
    with pacha.run(uri=store, system_metrics=0.1) as run:
        for step in range(3):
            run.log_metric("loss", 1.0 / (step + 1), step)
        wait_for_samples(run, 3)
    table = pacha.read_metrics(run.run_id, uri=store)
    assert SYSTEM_NAMES | {"loss"} <= set(table["name"].to_pylist())
    assert [step for step, _ in points(table, "loss")] == [0, 1, 2]
    rss = points(table, "system/memory_rss_mb")
    assert [step for step, _ in rss] == list(range(len(rss)))
    total_mb = psutil.virtual_memory().total / 1024**2
    assert all(0 < value < total_mb for _, value in rss)
    assert all(0 < value <= 100 for _, value in points(table, "system/memory_percent"))
    assert all(value >= 0 for _, value in points(table, "system/cpu_percent"))


def test_the_last_samples_reach_the_final_flush(store: str) -> None:
    with pacha.run(uri=store, system_metrics=0.05) as run:
        wait_for_samples(run, 2)
    table = pacha.read_metrics(run.run_id, uri=store)
    record = pacha.load_run(run.run_id, uri=store)
    for name in SYSTEM_NAMES:
        _, last_value = points(table, name)[-1]
        assert record.summary[name] == last_value


def test_the_sampler_thread_ends_with_the_run(store: str) -> None:
    with pacha.run(uri=store, system_metrics=0.1) as run:
        mine = [t for t in sampler_threads() if str(run.run_id) in t.name]
        assert len(mine) == 1
        assert mine[0].daemon
    assert not mine[0].is_alive()
    assert not [t for t in sampler_threads() if str(run.run_id) in t.name]


def test_the_sampler_thread_ends_when_the_run_fails(store: str) -> None:
    with pytest.raises(RuntimeError), pacha.run(uri=store, system_metrics=0.1) as run:
        raise RuntimeError("diverged")
    assert not [t for t in sampler_threads() if str(run.run_id) in t.name]
    assert pacha.load_run(run.run_id, uri=store).status is pacha.RunStatus.FAILED


def test_on_by_default_at_ten_seconds(store: str) -> None:
    with pacha.run(uri=store) as run:
        assert [t for t in sampler_threads() if str(run.run_id) in t.name]
        run.log_metric("loss", 0.5)
    # The first sample comes one interval (10 s) in: a short run has none.
    assert pacha.read_metrics(run.run_id, uri=store)["name"].to_pylist() == ["loss"]


def test_false_turns_it_off(store: str) -> None:
    with pacha.run(uri=store, system_metrics=False) as run:
        assert not [t for t in sampler_threads() if str(run.run_id) in t.name]
        time.sleep(0.2)
    assert pacha.read_metrics(run.run_id, uri=store).num_rows == 0


def test_track_takes_the_interval(store: str) -> None:
    @pacha.track(uri=store, system_metrics=0.05)
    def train() -> str:
        run = pacha.active_run()
        assert run is not None
        wait_for_samples(run, 1)
        return str(run.run_id)

    run_id = train()
    names = set(pacha.read_metrics(run_id, uri=store)["name"].to_pylist())
    assert names >= SYSTEM_NAMES


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (-1.0, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ("fast", TypeError),
        (None, TypeError),
    ],
)
def test_bad_intervals_are_refused_before_anything_is_written(
    store: str, value: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="system_metrics"):
        pacha.run(uri=store, system_metrics=value)
    assert not Path(store).exists()  # nothing written
