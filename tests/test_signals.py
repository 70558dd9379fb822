"""Signals and process death: DESIGN.md section 1 "Status rules", in child processes.

Each child is a small training script: it opens a run, logs points, prints
``<run_id> ready`` once they are logged, then waits. The test signals it and
checks what the store holds afterwards. The flush interval is long (60 s)
where the test must prove that the SDK itself flushes on the way out.
"""

from __future__ import annotations

import inspect
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import pacha_sdk as pacha
from tests.conftest import wait_until

WAIT = 30.0
"""Seconds any wait on a child may take before the test fails instead of hanging."""

POINTS = 1000

_PRELUDE = """
from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pacha_sdk as pacha

STORE = STORE_URI
MARKER = Path(MARKER_PATH)


def log_points(run, count=POINTS):
    for step in range(count):
        run.log_metric("loss", 1.0 / (step + 1), step)


def ready(*runs):
    print(*[run.run_id for run in runs], "ready", flush=True)


def train_until_signalled(seconds=60):
    # Steps of 0.1 s, as a training loop's: CPython runs a Python signal handler only
    # between bytecodes, and a signal caught while the main thread hands the GIL to a
    # busy thread just before one long blocking call (time.sleep(60)) waits for that
    # call to end (a CPython race, seen without pacha too; see README, Flushing and
    # durability). What these tests check is what the handler does once it runs.
    for _ in range(int(seconds * 10)):
        time.sleep(0.1)


WAIT_UNTIL
"""


class Child:
    """A Python child process running *body* after :data:`_PRELUDE`, read line by line."""

    def __init__(self, body: str, tmp_path: Path, store: str) -> None:
        self.marker = tmp_path / "handler-ran"
        script = (
            textwrap.dedent(_PRELUDE)
            .replace("STORE_URI", repr(store))
            .replace("MARKER_PATH", repr(str(self.marker)))
            .replace("POINTS", str(POINTS))
            .replace("WAIT_UNTIL", inspect.getsource(wait_until))  # the tests' own helper
        )
        path = tmp_path / "child.py"
        path.write_text(script + textwrap.dedent(body))
        self._stderr_path = tmp_path / "child.stderr"
        self._stderr: IO[str] = self._stderr_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(path)],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def next_line(self, timeout: float = WAIT) -> str:
        """The child's next stdout line; fails (with its stderr) if none comes in time."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"child printed nothing in {timeout} s; stderr:\n{self.stderr()}")
        if line is None:
            pytest.fail(f"child exited ({self.proc.poll()}) early; stderr:\n{self.stderr()}")
        return line

    def wait_ready(self) -> list[str]:
        """Wait for the ``<run_id>... ready`` line; return the run ids."""
        *run_ids, word = self.next_line().split()
        assert word == "ready"
        return run_ids

    def send(self, signum: signal.Signals) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = WAIT) -> int:
        """The exit code once the child has exited (negative: killed by that signal)."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"child still running after {timeout} s; stderr:\n{self.stderr()}")

    def rest_of_stdout(self) -> list[str]:
        """Every line printed after those already read, once the child has exited."""
        self._reader.join(timeout=WAIT)
        lines: list[str] = []
        while (line := self._lines.get(timeout=WAIT)) is not None:
            lines.append(line)
        return lines

    def stderr(self) -> str:
        self._stderr.flush()
        return self._stderr_path.read_text()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=WAIT)
        self._reader.join(timeout=WAIT)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self._stderr.close()


@pytest.fixture
def spawn(tmp_path: Path, store: str) -> Iterator[Callable[[str], Child]]:
    """Start a child running a script body; every child is reaped at teardown."""
    children: list[Child] = []

    def start(body: str) -> Child:
        child = Child(body, tmp_path, store)
        children.append(child)
        return child

    yield start
    for child in children:
        child.close()


def _wait_for_flush(run_id: str, store: str, metric: str, value: float) -> None:
    """Wait until the stored summary shows *metric*'s last point: the writer flushed it.

    The child sleeps five flush intervals first; this only keeps a heavily
    loaded machine from failing the test.
    """
    wait_until(
        lambda: pacha.load_run(run_id, uri=store).summary.get(metric) == value,
        timeout=WAIT,
        message=f"{metric}={value} never reached the store of run {run_id}",
    )


def _assert_all_points(run_id: str, store: str, count: int = POINTS) -> None:
    table = pacha.read_metrics(run_id, uri=store, names="loss")
    assert table.num_rows == count
    assert sorted(table.column("step").to_pylist()) == list(range(count))


# --------------------------------------------------------------------------
# SIGTERM
# --------------------------------------------------------------------------


@pytest.mark.subprocess
def test_sigterm_cancels_the_run_then_the_default_action_ends_the_process(
    spawn: Callable[[str], Child], store: str
) -> None:
    child = spawn(
        """
        with pacha.run({"learning_rate": 0.1}, uri=STORE, flush_interval=60) as run:
            log_points(run)
            ready(run)
            train_until_signalled()
        print("after the block", flush=True)
        """
    )
    (run_id,) = child.wait_ready()
    child.send(signal.SIGTERM)
    assert child.wait() == -signal.SIGTERM, child.stderr()
    assert child.rest_of_stdout() == []
    assert "Traceback" not in child.stderr()

    record = pacha.load_run(run_id, uri=store)
    assert record.status is pacha.RunStatus.CANCELLED
    assert record.error_message is None
    assert record.finished_at is not None
    assert record.summary == {"loss": 1.0 / POINTS}
    _assert_all_points(run_id, store)  # the 60 s interval never came: the handler flushed


@pytest.mark.subprocess
def test_sigterm_cancels_every_active_run(spawn: Callable[[str], Child], store: str) -> None:
    child = spawn(
        """
        with pacha.run(uri=STORE, flush_interval=60) as outer:
            log_points(outer)
            with pacha.run(uri=STORE, flush_interval=60) as inner:
                log_points(inner)
                ready(outer, inner)
                train_until_signalled()
        """
    )
    outer_id, inner_id = child.wait_ready()
    child.send(signal.SIGTERM)
    assert child.wait() == -signal.SIGTERM, child.stderr()
    for run_id in (outer_id, inner_id):
        assert pacha.load_run(run_id, uri=store).status is pacha.RunStatus.CANCELLED
        _assert_all_points(run_id, store)
    assert pacha.load_run(inner_id, uri=store).parent_run_id == outer_id


@pytest.mark.subprocess
def test_sigterm_runs_the_users_own_handler_which_lets_the_process_go_on(
    spawn: Callable[[str], Child], store: str
) -> None:
    child = spawn(
        """
        received = []

        def on_sigterm(signum, frame):
            MARKER.write_text(f"handled {signum}")
            received.append(signum)

        signal.signal(signal.SIGTERM, on_sigterm)
        with pacha.run(uri=STORE, flush_interval=60) as run:
            log_points(run)
            ready(run)
            wait_until(lambda: received)
            print("in the block:", run.status.value, flush=True)
        print("handler restored:", signal.getsignal(signal.SIGTERM) is on_sigterm, flush=True)
        """
    )
    (run_id,) = child.wait_ready()
    child.send(signal.SIGTERM)
    assert child.wait() == 0, child.stderr()
    assert child.rest_of_stdout() == ["in the block: cancelled", "handler restored: True"]
    assert child.marker.read_text() == f"handled {int(signal.SIGTERM)}"

    record = pacha.load_run(run_id, uri=store)
    # Cancelled by the signal; the block ending normally afterwards changes nothing.
    assert record.status is pacha.RunStatus.CANCELLED
    _assert_all_points(run_id, store)


@pytest.mark.subprocess
def test_sigterm_runs_the_users_own_handler_which_exits(
    spawn: Callable[[str], Child], store: str
) -> None:
    child = spawn(
        """
        def on_sigterm(signum, frame):
            MARKER.write_text("shutting down")
            sys.exit(7)

        signal.signal(signal.SIGTERM, on_sigterm)
        with pacha.run(uri=STORE, flush_interval=60) as run:
            log_points(run)
            ready(run)
            train_until_signalled()
        """
    )
    (run_id,) = child.wait_ready()
    child.send(signal.SIGTERM)
    assert child.wait() == 7, child.stderr()
    assert child.marker.read_text() == "shutting down"
    record = pacha.load_run(run_id, uri=store)
    # The SystemExit(7) the handler raised ends the block too: the first status, cancelled, wins.
    assert record.status is pacha.RunStatus.CANCELLED
    assert record.error_message is None
    _assert_all_points(run_id, store)


@pytest.mark.subprocess
def test_sigterm_ignored_before_the_run_cancels_it_and_the_process_goes_on(
    spawn: Callable[[str], Child], store: str
) -> None:
    child = spawn(
        """
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with pacha.run(uri=STORE, flush_interval=60) as run:
            log_points(run)
            ready(run)
            wait_until(lambda: run.is_finished)
            print("in the block:", run.status.value, flush=True)
        print("still ignored:", signal.getsignal(signal.SIGTERM) == signal.SIG_IGN, flush=True)
        with pacha.run(uri=STORE) as second:
            second.log_metric("loss", 0.0)
        print("second run:", second.run_id, second.status.value, flush=True)
        """
    )
    (run_id,) = child.wait_ready()
    child.send(signal.SIGTERM)
    assert child.wait() == 0, child.stderr()
    lines = child.rest_of_stdout()
    assert lines[:2] == ["in the block: cancelled", "still ignored: True"]
    assert lines[2].startswith("second run:")
    assert lines[2].endswith(" completed")

    assert pacha.load_run(run_id, uri=store).status is pacha.RunStatus.CANCELLED
    _assert_all_points(run_id, store)
    second_id = lines[2].split()[2]
    assert pacha.load_run(second_id, uri=store).status is pacha.RunStatus.COMPLETED


def test_sigterm_handler_is_installed_only_while_a_run_is_active(store: str) -> None:
    def users_handler(signum: int, frame: Any) -> None:
        raise AssertionError("not called in this test")

    original = signal.getsignal(signal.SIGTERM)
    try:
        for previous in (signal.SIG_DFL, users_handler):
            signal.signal(signal.SIGTERM, previous)
            with pacha.run(uri=store) as outer:
                installed = signal.getsignal(signal.SIGTERM)
                assert installed is not previous
                with pacha.run(uri=store):
                    assert signal.getsignal(signal.SIGTERM) is installed
                assert signal.getsignal(signal.SIGTERM) is installed  # outer still active
                assert outer.status is pacha.RunStatus.RUNNING
            assert signal.getsignal(signal.SIGTERM) is previous
    finally:
        signal.signal(signal.SIGTERM, original)


# --------------------------------------------------------------------------
# SIGINT (Ctrl-C)
# --------------------------------------------------------------------------


@pytest.mark.subprocess
def test_sigint_in_a_with_block_cancels_the_run_and_reraises(
    spawn: Callable[[str], Child], store: str
) -> None:
    child = spawn(
        """
        # Python ignores SIGINT in children started with it ignored; be explicit.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with pacha.run(uri=STORE, flush_interval=60) as run:
            log_points(run)
            ready(run)
            train_until_signalled()
        print("after the block", flush=True)
        """
    )
    (run_id,) = child.wait_ready()
    child.send(signal.SIGINT)
    # An uncaught KeyboardInterrupt ends Python by SIGINT: the SDK re-raised it.
    assert child.wait() == -signal.SIGINT, child.stderr()
    assert child.rest_of_stdout() == []
    assert "KeyboardInterrupt" in child.stderr()

    record = pacha.load_run(run_id, uri=store)
    assert record.status is pacha.RunStatus.CANCELLED
    assert record.error_message is None
    _assert_all_points(run_id, store)


# --------------------------------------------------------------------------
# SIGKILL: no final status, a stale heartbeat, nothing half-written.
# --------------------------------------------------------------------------


@pytest.mark.subprocess
def test_sigkill_leaves_a_stale_running_run_with_every_flushed_point(
    spawn: Callable[[str], Child], store: str
) -> None:
    child = spawn(
        """
        with pacha.run(uri=STORE, flush_interval=0.2) as run:
            log_points(run)
            time.sleep(1.0)  # five flush intervals: every point above is stored
            ready(run)
            step = 0
            while True:  # keep the writer busy until the kill
                run.log_metric("still-logging", float(step), step)
                step += 1
                time.sleep(0.0005)
        """
    )
    (run_id,) = child.wait_ready()
    _wait_for_flush(run_id, store, "loss", 1.0 / POINTS)
    # Flushes of "still-logging" are under way: kill the child in the middle of them.
    wait_until(lambda: "still-logging" in pacha.load_run(run_id, uri=store).summary, timeout=WAIT)
    child.send(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL

    record = pacha.load_run(run_id, uri=store)
    assert record.status is pacha.RunStatus.RUNNING
    assert record.finished_at is None
    assert record.extra["flush_interval"] == 0.2
    heartbeat = record.heartbeat_at
    assert heartbeat is not None
    assert isinstance(record.extra["heartbeat_at"], str)
    assert not record.stale_at(heartbeat)
    assert record.stale_at(datetime.now(timezone.utc) + timedelta(seconds=10))

    # 3 x 0.2 s after the last beat, it is stale.
    wait_until(lambda: pacha.load_run(run_id, uri=store).is_stale, timeout=5.0)

    _assert_all_points(run_id, store)
    assert record.summary["loss"] == 1.0 / POINTS

    # Every visible file is whole: pyarrow, with no SDK code, reads the dataset.
    metrics_root = Path(store) / "metrics"
    visible = [
        path
        for path in metrics_root.rglob("*")
        if path.is_file() and not path.name.startswith((".", "_"))
    ]
    assert visible
    assert all(path.suffix == ".parquet" for path in visible)
    for path in visible:
        pq.read_metadata(path)
    dataset = ds.dataset(metrics_root, format="parquet", partitioning="hive")
    table = dataset.to_table()
    assert set(table.column("run_id").to_pylist()) == {run_id}
    loss = table.filter(ds.field("name") == "loss")
    assert loss.num_rows == POINTS
    tail = sorted(table.filter(ds.field("name") == "still-logging").column("step").to_pylist())
    assert tail == list(range(len(tail)))  # a prefix of what was logged: no gaps
    assert pacha.metrics_dataset(store).count_rows() == table.num_rows


# A user running a killed job's store through other tools should not trip over the SDK:
# the run.json left behind is strict JSON (no NaN), readable with the standard library.
@pytest.mark.subprocess
def test_sigkill_leaves_a_strict_json_record(spawn: Callable[[str], Child], store: str) -> None:
    import json

    child = spawn(
        """
        with pacha.run(uri=STORE, flush_interval=0.2) as run:
            run.log_metric("loss", float("nan"), 0)
            run.log_metric("acc", 0.5, 0)
            time.sleep(1.0)
            ready(run)
            train_until_signalled()
        """
    )
    (run_id,) = child.wait_ready()
    _wait_for_flush(run_id, store, "acc", 0.5)
    os.kill(child.proc.pid, signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL
    text = (Path(store) / "runs" / run_id / "run.json").read_text()
    data = json.loads(text, parse_constant=lambda token: pytest.fail(f"non-JSON {token}"))
    assert data["status"] == "running"
    assert data["extra"]["summary"] == {"loss": None, "acc": 0.5}
    values = pacha.read_metrics(run_id, uri=store, names="loss").column("value").to_pylist()
    assert len(values) == 1
    assert values[0] != values[0]  # NaN is kept as-is in the Parquet points
