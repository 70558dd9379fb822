"""A store that accepts connections and never answers (a black hole) cannot hold a run.

The store is SeaweedFS or fake-gcs-server behind the :class:`FaultProxy`,
switched to hold every request for an hour: the client's own timeouts and
retries would take many minutes. Every store call the writer and the
record keeper make has a deadline, so the end of a run returns within
``close_timeout`` plus :data:`~pacha_sdk.tracking.run.CLOSE_MARGIN`, and what
missed its deadline is in the spool for ``pacha sync``. Each run happens in
a child process, which the test can always kill: on a hang the test fails
in bounded time instead of hanging itself.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import pacha_sdk as pacha
from pacha_sdk.tracking.run import CLOSE_MARGIN

if TYPE_CHECKING:
    from tests.servers import ObjectStore

pytest_plugins = ["tests.servers"]

pytestmark = [pytest.mark.servers, pytest.mark.subprocess]

CLOSE_TIMEOUT = 3.0
SLACK = 4.0
"""Seconds on top of the promise for a loaded test machine to schedule the child."""
CHILD_WAIT = 120.0
"""Longest a child may take before the test kills it (the old behaviour: many minutes)."""

CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import pacha_sdk as pacha

    uri, options, spool = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3])
    how = sys.argv[4]

    def spooled_parts():
        return len(list(spool.rglob("*.parquet"))) if spool.exists() else 0

    def say(**fields):
        print(json.dumps(fields), flush=True)

    run = pacha.run(uri=uri, storage_options=options, flush_interval=0.1,
                    close_timeout=CLOSE_TIMEOUT, system_metrics=False)
    for step in range(100):
        run.log_metric("loss", float(step), step)
    assert run.flush(timeout=30)
    say(run_id=str(run.run_id))
    sys.stdin.readline()  # the parent has made the store a black hole
    started = time.monotonic()
    step = 100
    while time.monotonic() - started < 2 * CLOSE_TIMEOUT:  # the writer meets the hole
        run.log_metric("loss", float(step), step)
        step += 1
        time.sleep(0.001)
    say(logged=step, spooled_parts=spooled_parts(), buffered=len(run._buffer),
        last_error=type(run.last_error).__name__)
    ending = time.monotonic()
    if how == "with":
        with run:
            pass
    else:
        run.complete()
    say(ended_in=time.monotonic() - ending, status=run.status.value)
    """
).replace("CLOSE_TIMEOUT", repr(CLOSE_TIMEOUT))


class Child:
    """The child above, driven line by line; killed if it outlives :data:`CHILD_WAIT`."""

    def __init__(self, store: ObjectStore, spool: Path, how: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                store.uri,
                json.dumps(dict(store.storage_options)),
                str(spool),
                how,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PACHA_SPOOL_DIR": str(spool)},
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read_lines, daemon=True)
        self._reader.start()

    def _read_lines(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put("")

    def read(self) -> dict[str, Any]:
        """The child's next line, as JSON; the test fails if none comes within CHILD_WAIT."""
        try:
            line = self._lines.get(timeout=CHILD_WAIT)
        except queue.Empty:
            self.proc.kill()
            pytest.fail(f"the child said nothing for {CHILD_WAIT} s: the run hangs")
        if not line:
            self.proc.wait(CHILD_WAIT)
            assert self.proc.stderr is not None
            pytest.fail(f"child exited ({self.proc.returncode}): {self.proc.stderr.read()}")
        fields: dict[str, Any] = json.loads(line)
        return fields

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def close(self) -> str:
        """Wait for the child (killing it past the limit); return its stderr."""
        try:
            self.proc.wait(CHILD_WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(CHILD_WAIT)
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        stderr = self.proc.stderr.read()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            stream.close()
        return stderr


@pytest.fixture(params=["s3", "gcs"])
def faulty_store(request: pytest.FixtureRequest) -> ObjectStore:
    name = "faulty_s3" if request.param == "s3" else "faulty_gcs"
    store: ObjectStore = request.getfixturevalue(name)
    return store


def stored_steps(store: ObjectStore, run_id: str) -> list[int]:
    table = pacha.read_metrics(run_id, uri=store.uri, storage_options=store.storage_options)
    return sorted(table["step"].to_pylist())


@pytest.mark.parametrize("how", ["with", "complete"])
def test_a_run_ends_within_close_timeout_on_a_store_that_never_answers(
    faulty_store: ObjectStore, tmp_path: Path, how: str
) -> None:
    proxy = faulty_store.proxy
    assert proxy is not None
    spool = tmp_path / "spool"
    child = Child(faulty_store, spool, how)
    try:
        run_id = child.read()["run_id"]
        proxy.delay(3600)  # accepts every request, answers none
        child.go()
        during = child.read()
        ended = child.read()
    finally:
        stderr = child.close()
    assert child.proc.returncode == 0, stderr

    # While the run went on, the writer gave up on the hung call and kept spooling.
    assert during["last_error"] == "TimeoutError"
    assert during["spooled_parts"] >= 2
    assert during["buffered"] < 1000
    # The end of the run kept its promise, however long the client would have waited.
    assert ended["ended_in"] <= CLOSE_TIMEOUT + CLOSE_MARGIN + SLACK, ended
    assert ended["status"] == "completed"
    assert "did not answer" in stderr
    assert "pacha_sdk.sync()" in stderr

    proxy.heal()
    report = pacha.sync(str(spool), storage_options=faulty_store.storage_options)
    assert report.runs == {run_id}
    assert stored_steps(faulty_store, run_id) == list(range(during["logged"]))
    record = pacha.load_run(
        run_id, uri=faulty_store.uri, storage_options=faulty_store.storage_options
    )
    assert record.status is pacha.RunStatus.COMPLETED


START_CHILD = textwrap.dedent(
    """
    import json, sys, time
    import pacha_sdk as pacha

    uri, options = sys.argv[1], json.loads(sys.argv[2])
    started = time.monotonic()
    try:
        pacha.run(uri=uri, storage_options=options, close_timeout=2, system_metrics=False)
    except pacha.StoreError as error:
        print(json.dumps({"error": str(error), "after": time.monotonic() - started}))
    """
)


def test_starting_a_run_on_a_store_that_never_answers_fails_within_close_timeout(
    faulty_s3: ObjectStore,
) -> None:
    proxy = faulty_s3.proxy
    assert proxy is not None
    proxy.delay(3600)
    options = json.dumps(dict(faulty_s3.storage_options))
    try:
        done = subprocess.run(
            [sys.executable, "-c", START_CHILD, faulty_s3.uri, options],
            capture_output=True,
            text=True,
            timeout=CHILD_WAIT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"pacha.run() was still waiting for the store after {CHILD_WAIT} s")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert "did not answer within 2 s" in answer["error"]
    assert faulty_s3.uri in answer["error"]
    assert answer["after"] <= 2 + SLACK
