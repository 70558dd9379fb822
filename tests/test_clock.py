"""Retry backoff, give-up deadlines and heartbeats on an injected clock: exact, and no sleeping.

The store is a real local folder with a file where a folder must go, so
every write fails with the operating system's own error. The clock is the
one thing faked: it moves only when the code under test sleeps or waits,
so delays and deadlines come out exactly and a 30-second deadline passes
in a few milliseconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import pacha_sdk as pacha
from pacha_sdk.backends import get_backend
from pacha_sdk.models import ExperimentRun, RunId
from pacha_sdk.storage.buffer import MetricBuffer
from pacha_sdk.storage.spool import Spool
from pacha_sdk.storage.writer import MetricWriter, RetryPolicy
from pacha_sdk.tracking._record import RecordKeeper

if TYPE_CHECKING:
    from pacha_sdk._clock import Clock

WALL_START = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


class FakeClock:
    """A clock that moves only when the code under test sleeps or waits on it.

    It stands still until the code under test is first woken (a writer by
    its ``stop()``), so every deadline read before that is the start time
    exactly; from then on each wait moves it by its whole timeout unless the
    event is already set.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._lock = threading.Lock()
        self._start = start
        self._now = start
        self._moving = False
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def now(self) -> datetime:
        return WALL_START + timedelta(seconds=self.monotonic() - self._start)

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += seconds

    def wait(self, event: threading.Event, timeout: float) -> bool:
        if not self._moving:
            if not event.wait(0.001):  # a real millisecond; none passes on this clock
                return False
            self._moving = True
            return True
        time.sleep(0)  # let the test's thread run
        if event.is_set():
            return True
        with self._lock:
            self._now += timeout
        return event.is_set()


def test_the_fake_clock_is_a_clock() -> None:
    clock: Clock = FakeClock()  # mypy checks it against the Protocol
    assert clock.monotonic() == 1000.0


def broken_store(tmp_path: Path, folder: str) -> str:
    """A local store where *folder* is a file: every write under it fails (NotADirectoryError)."""
    root = tmp_path / "store"
    root.mkdir()
    (root / folder).write_text("in the way")
    return str(root)


def attempt_recorder(clock: FakeClock, times: list[float]) -> Callable[[], float]:
    """A jitter source for :class:`RetryPolicy` that notes when each backoff is drawn.

    The policy draws once per failed attempt, right after it: the noted
    times are the attempts' times. It always answers 0.5, so every delay is
    exactly 3/4 of ``min(cap, base * 2**attempt)``.
    """

    def jitter() -> float:
        times.append(clock.monotonic())
        return 0.5

    return jitter


def test_the_final_record_write_backs_off_exactly_until_its_deadline(tmp_path: Path) -> None:
    clock = FakeClock()
    backend = get_backend(broken_store(tmp_path, "runs"))
    keeper = RecordKeeper(ExperimentRun(), backend, MetricBuffer(), clock=clock)
    retry = RetryPolicy(base=0.2, cap=10.0, jitter=lambda: 1.0)  # delays 0.2 * 2**n, uncut

    assert not keeper.write_final(deadline=1005.0, retry=retry)

    assert clock.sleeps == pytest.approx([0.2, 0.4, 0.8, 1.6])  # a 3.2 s wait would pass 1005
    assert clock.monotonic() == pytest.approx(1003.0)
    assert isinstance(keeper.last_error, pacha.StoreError)
    assert "could not write" in str(keeper.last_error)
    assert not keeper.final_written


def test_the_final_record_write_tries_once_past_its_deadline(tmp_path: Path) -> None:
    clock = FakeClock()
    backend = get_backend(broken_store(tmp_path, "runs"))
    keeper = RecordKeeper(ExperimentRun(), backend, MetricBuffer(), clock=clock)

    assert not keeper.write_final(deadline=999.0, retry=RetryPolicy())

    assert clock.sleeps == []
    assert isinstance(keeper.last_error, pacha.StoreError)


def test_the_final_record_write_succeeds_without_waiting(store: str) -> None:
    clock = FakeClock()
    keeper = RecordKeeper(ExperimentRun(), get_backend(store), MetricBuffer(), clock=clock)
    keeper.record.start()
    keeper.record.complete()

    assert keeper.write_final(deadline=1030.0, retry=RetryPolicy())

    assert clock.sleeps == []
    assert pacha.load_run(keeper.record.run_id, uri=store).status is pacha.RunStatus.COMPLETED


def test_heartbeats_carry_the_clocks_time(store: str) -> None:
    clock = FakeClock()
    keeper = RecordKeeper(ExperimentRun(), get_backend(store), MetricBuffer(), clock=clock)
    keeper.record.start()
    keeper.write()
    assert pacha.load_run(keeper.record.run_id, uri=store).heartbeat_at == WALL_START

    clock.sleep(7.25)
    keeper.heartbeat()
    beat = pacha.load_run(keeper.record.run_id, uri=store).heartbeat_at
    assert beat == WALL_START + timedelta(seconds=7.25)


def test_the_writer_backs_off_exactly_and_gives_up_at_its_deadline(tmp_path: Path) -> None:
    clock = FakeClock()
    attempts: list[float] = []
    backend = get_backend(broken_store(tmp_path, "metrics"))
    run_id = RunId.new()
    buffer = MetricBuffer()
    for step in range(100):
        buffer.rows.extend(("loss", 1.0 / (step + 1), step, time.time_ns()))
    spool = Spool(str(tmp_path / "spool"), uri=backend.uri, run_id=str(run_id), writer_id="w1")
    writer = MetricWriter(
        buffer=buffer,
        backend=backend,
        run_id=run_id,
        writer_id="w1",
        rank=0,
        flush_interval=3600.0,  # nothing flushes until the stop
        flush_rows=10**9,
        heartbeat=lambda: None,
        spool=spool,
        retry=RetryPolicy(base=0.2, cap=1.0, jitter=attempt_recorder(clock, attempts)),
        clock=clock,
    )
    writer.start()
    logging.disable(logging.ERROR)  # the writer warns about the failing store
    try:
        all_written = writer.stop(timeout=30.0)
    finally:
        logging.disable(logging.NOTSET)
    gave_up_at = clock.monotonic()  # the writer has ended: nothing moves the clock any more

    assert not all_written
    assert not writer.is_alive()
    assert gave_up_at == pytest.approx(1030.0, abs=1e-9)  # stop() at 1000.0, timeout 30 s
    expected = [1000.0]  # at once on stop(), then 3/4 of 0.2, 0.4, 0.8, then of the 1 s cap
    for delay in [0.15, 0.3, 0.6] + [0.75] * 100:
        if expected[-1] + delay > 1030.0:
            break  # not due before the deadline: the writer gives up instead
        expected.append(expected[-1] + delay)
    assert attempts == pytest.approx(expected, abs=1e-9)
    assert isinstance(writer.last_error, NotADirectoryError)
    assert writer.spooled_points == writer.pending_points == 100
    assert any(path.suffix == ".parquet" for path in Path(spool.path).rglob("*"))


def test_a_run_ending_in_an_outage_gives_up_at_close_timeout_on_its_clock(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()

    class FakeClockRun(pacha.Run):
        _clock = clock

    root = tmp_path / "store"
    run = FakeClockRun(
        uri=str(root), close_timeout=120, flush_interval=3600, system_metrics=False
    ).start()
    (root / "metrics").write_text("in the way")  # the store stops taking points
    run.log_metric("loss", 0.5, step=0)
    with caplog.at_level(logging.ERROR, logger="pacha_sdk"):
        run.complete()

    assert clock.monotonic() == pytest.approx(1120.0, abs=1e-9)  # two minutes, on the clock
    assert "within 120 s" in caplog.text
    assert "1 points kept in" in caplog.text
    record = pacha.load_run(run.run_id, uri=str(root))
    assert record.status is pacha.RunStatus.COMPLETED  # run.json itself was still writable
    assert record.heartbeat_at == WALL_START + timedelta(seconds=120.0)
