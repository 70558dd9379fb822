"""Signals that arrive while a run writes its last points wait for it to finish.

Schedulers send SIGTERM at the end of a job, which is also when the ``with``
block's final flush runs, and an impatient user presses Ctrl-C twice. The
signal must not cut the flush short: the run finishes writing (within
``close_timeout``), records ``cancelled``, and only then is the signal
handled as it would have been (the default action, the user's handler,
``KeyboardInterrupt``).

To be sure the signal lands during the flush, the store is SeaweedFS behind
the fault proxy, holding each request for a second: the test sends the
signal once the proxy has seen the final flush's first request.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import pacha_sdk as pacha
from tests.conftest import wait_until

if TYPE_CHECKING:
    from tests.servers import FaultProxy, ObjectStore

pytest_plugins = ["tests.servers"]

pytestmark = [pytest.mark.servers, pytest.mark.subprocess]

POINTS = 1000
WAIT = 60.0
REQUEST_DELAY = 1.0
"""Seconds the proxy holds each request while the run ends: the flush takes a few of them."""

PRELUDE = textwrap.dedent(
    """
    import json, signal, sys, time
    import pacha_sdk as pacha

    uri, options = sys.argv[1], json.loads(sys.argv[2])
    signal.signal(signal.SIGINT, signal.default_int_handler)  # children may inherit SIG_IGN

    def open_run():
        return pacha.run(uri=uri, storage_options=options, flush_interval=60,
                         system_metrics=False)

    def log_points(run):
        for step in range(POINTS):
            run.log_metric("loss", 1.0 / (step + 1), step)

    def say(*words):
        print(*words, flush=True)
    """
).replace("POINTS", str(POINTS))


class Child:
    """A child running PRELUDE + *body* against *store*; reads its stdout line by line."""

    def __init__(self, body: str, store: ObjectStore, tmp_path: Path) -> None:
        script = tmp_path / "child.py"
        script.write_text(PRELUDE + textwrap.dedent(body))
        self._stderr = (tmp_path / "child.stderr").open("w+")
        self.proc = subprocess.Popen(
            [sys.executable, str(script), store.uri, json.dumps(dict(store.storage_options))],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )

    def line(self) -> str:
        assert self.proc.stdout is not None
        text = self.proc.stdout.readline()
        if not text:
            pytest.fail(f"child exited early ({self.proc.wait(WAIT)}):\n{self.stderr()}")
        return text.strip()

    def send(self, signum: signal.Signals) -> None:
        self.proc.send_signal(signum)

    def wait(self) -> int:
        try:
            return self.proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"child still running after {WAIT} s:\n{self.stderr()}")

    def rest(self) -> list[str]:
        assert self.proc.stdout is not None
        return [line.strip() for line in self.proc.stdout.read().splitlines()]

    def stderr(self) -> str:
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self._stderr.close()


def slow_down_and_wait_for_the_final_flush(child: Child, proxy: FaultProxy) -> None:
    """Hold every request from now on, then wait until the run's final flush has sent one."""
    proxy.delay(REQUEST_DELAY)
    seen = proxy.requests
    assert child.line() == "leaving"
    wait_until(lambda: proxy.requests > seen, timeout=WAIT, message="the final flush never began")
    time.sleep(0.1)


def assert_cancelled_with_every_point(store: ObjectStore, run_id: str) -> None:
    assert store.proxy is not None
    store.proxy.heal()
    options = store.storage_options
    record = pacha.load_run(run_id, uri=store.uri, storage_options=options)
    assert record.status is pacha.RunStatus.CANCELLED
    assert record.error_message is None
    assert record.summary == {"loss": 1.0 / POINTS}
    table = pacha.read_metrics(run_id, uri=store.uri, storage_options=options)
    assert sorted(table["step"].to_pylist()) == list(range(POINTS))


@pytest.fixture
def child_of(faulty_s3: ObjectStore, tmp_path: Path) -> Iterator[Callable[[str], Child]]:
    """Start a child running a script body against the faulty store; reaped at teardown."""
    children: list[Child] = []

    def start(body: str) -> Child:
        child = Child(body, faulty_s3, tmp_path)
        children.append(child)
        return child

    yield start
    for child in children:
        child.close()


def test_sigterm_during_the_final_flush_finishes_it_then_ends_the_process(
    child_of: Callable[[str], Child], faulty_s3: ObjectStore
) -> None:
    child = child_of(
        """
        with open_run() as run:
            log_points(run)
            say(run.run_id)
            say("leaving")
        say("after the block")
        """
    )
    run_id = child.line()
    assert faulty_s3.proxy is not None
    slow_down_and_wait_for_the_final_flush(child, faulty_s3.proxy)
    child.send(signal.SIGTERM)
    assert child.wait() == -signal.SIGTERM, child.stderr()
    assert child.rest() == []  # the signal was honoured once the run had finished
    assert "Traceback" not in child.stderr()
    assert "SIGTERM" in child.stderr()  # the run said why it did not stop at once
    assert_cancelled_with_every_point(faulty_s3, run_id)


def test_ctrl_c_during_the_final_flush_finishes_it_then_raises(
    child_of: Callable[[str], Child], faulty_s3: ObjectStore
) -> None:
    child = child_of(
        """
        with open_run() as run:
            log_points(run)
            say(run.run_id)
            say("leaving")
        say("after the block")
        """
    )
    run_id = child.line()
    assert faulty_s3.proxy is not None
    slow_down_and_wait_for_the_final_flush(child, faulty_s3.proxy)
    child.send(signal.SIGINT)
    assert child.wait() == -signal.SIGINT, child.stderr()  # KeyboardInterrupt, uncaught
    assert child.rest() == []
    assert child.stderr().count("KeyboardInterrupt") >= 1
    assert_cancelled_with_every_point(faulty_s3, run_id)


def test_a_second_ctrl_c_during_shutdown_does_not_cut_it_short(
    child_of: Callable[[str], Child], faulty_s3: ObjectStore
) -> None:
    child = child_of(
        """
        with open_run() as run:
            log_points(run)
            say(run.run_id)
            say("leaving")
            time.sleep(60)  # the first Ctrl-C ends this
        """
    )
    run_id = child.line()
    proxy = faulty_s3.proxy
    assert proxy is not None
    proxy.delay(REQUEST_DELAY)
    seen = proxy.requests
    assert child.line() == "leaving"
    child.send(signal.SIGINT)  # the first Ctrl-C: KeyboardInterrupt in the block
    wait_until(lambda: proxy.requests > seen, timeout=WAIT, message="the final flush never began")
    child.send(signal.SIGINT)  # the second, while the run writes its last points
    assert child.wait() == -signal.SIGINT, child.stderr()
    stderr = child.stderr()
    # One KeyboardInterrupt, the user's: the second did not raise inside the shutdown.
    assert "During handling of the above exception" not in stderr, stderr
    assert stderr.count("Traceback") == 1, stderr
    assert_cancelled_with_every_point(faulty_s3, run_id)


def test_sigterm_during_the_final_flush_then_runs_the_users_handler(
    child_of: Callable[[str], Child], faulty_s3: ObjectStore
) -> None:
    child = child_of(
        """
        def on_sigterm(signum, frame):
            say("handler ran")
            sys.exit(7)

        signal.signal(signal.SIGTERM, on_sigterm)
        with open_run() as run:
            log_points(run)
            say(run.run_id)
            say("leaving")
        say("handler restored:", signal.getsignal(signal.SIGTERM) is on_sigterm)
        time.sleep(60)
        """
    )
    run_id = child.line()
    assert faulty_s3.proxy is not None
    slow_down_and_wait_for_the_final_flush(child, faulty_s3.proxy)
    child.send(signal.SIGTERM)
    assert child.wait() == 7, child.stderr()
    assert child.rest() == ["handler ran"]  # raised in __exit__, after the run finished
    assert_cancelled_with_every_point(faulty_s3, run_id)


def test_the_handlers_are_back_after_a_signal_during_the_final_flush(
    child_of: Callable[[str], Child], faulty_s3: ObjectStore
) -> None:
    child = child_of(
        """
        received = []
        signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
        with open_run() as run:
            log_points(run)
            say(run.run_id)
            say("leaving")
        say("received:", received)
        say("sigint:", signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        say("sigterm is the user's:", signal.getsignal(signal.SIGTERM) not in
            (signal.SIG_DFL, signal.SIG_IGN) and signal.getsignal(signal.SIGTERM).__name__)
        """
    )
    run_id = child.line()
    assert faulty_s3.proxy is not None
    slow_down_and_wait_for_the_final_flush(child, faulty_s3.proxy)
    child.send(signal.SIGTERM)
    assert child.wait() == 0, child.stderr()
    assert child.rest() == [
        f"received: [{int(signal.SIGTERM)}]",
        "sigint: True",
        "sigterm is the user's: <lambda>",
    ]
    assert_cancelled_with_every_point(faulty_s3, run_id)


def test_a_large_buffer_is_flushed_whole_when_sigterm_arrives_at_the_end(tmp_path: Path) -> None:
    """The case reported first: a local store, many buffered points, SIGTERM as the block ends."""
    store = tmp_path / "store"
    script = textwrap.dedent(
        f"""
        import sys
        import pacha_sdk as pacha
        with pacha.run(uri={str(store)!r}, flush_interval=60, flush_rows=2 * 10**6,
                       system_metrics=False) as run:
            for step in range(1_000_000):
                run.log_metric("loss", 0.5, step)
            print(run.run_id, flush=True)
            sys.stdin.readline()
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdin is not None
            run_id = child.stdout.readline().strip()
            child.stdin.write("\n")
            child.stdin.flush()
            time.sleep(0.05)  # the block has ended: the million points are being encoded
            os.kill(child.pid, signal.SIGTERM)
            assert child.wait(WAIT) == -signal.SIGTERM
        finally:
            if child.poll() is None:
                child.kill()
    record = pacha.load_run(run_id, uri=str(store))
    assert record.status is pacha.RunStatus.CANCELLED
    assert pacha.read_metrics(run_id, uri=str(store)).num_rows == 1_000_000
