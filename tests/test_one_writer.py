"""One process at a time writes a run's ``run.json``: a second one attaching the id is refused.

Two processes that attach the same run id without ranks would both rewrite
``run.json`` every flush; the last one to write would win the summary and
the status. Instead the second gets :class:`pacha.RunInUseError` before it
writes anything, whether it comes while the first runs or at the same
moment (session files, created create-only, decide). These tests use real
processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import pacha_sdk as pacha
from tests.conftest import wait_until

WAIT = 60.0

HOLDER = textwrap.dedent(
    """
    import sys
    import pacha_sdk as pacha

    store, run_id, interval = sys.argv[1:4]
    options = dict(
        uri=store, run_id=run_id or None, flush_interval=float(interval), system_metrics=False
    )
    with pacha.run(**options) as run:
        for step in range(100):
            run.log_metric("loss", 1.0 / (step + 1), step)
        assert run.flush(timeout=30)
        print(run.run_id, flush=True)
        sys.stdin.readline()  # hold the run until the test says
        run.log_metric("loss", 0.0, 100)
    """
)

ATTACHER = textwrap.dedent(
    """
    import sys
    import pacha_sdk as pacha

    store, run_id = sys.argv[1:3]
    try:
        with pacha.run(uri=store, run_id=run_id, flush_interval=0.1, system_metrics=False) as run:
            run.log_metric("loss", 99.0, 0)
            run.log_metric("other", 1.0, 0)
    except pacha.RunInUseError as error:
        print(error, flush=True)
        sys.exit(4)
    """
)


def _holder(
    store: str, run_id: str = "", flush_interval: float = 0.1
) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, store, run_id, str(flush_interval)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    return child, child.stdout.readline().strip()


def _attach(store: str, run_id: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", ATTACHER, store, run_id],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


def _release(child: subprocess.Popen[str]) -> None:
    child.communicate("\n", timeout=WAIT)  # also closes the pipes
    assert child.returncode == 0


@pytest.mark.subprocess
@pytest.mark.parametrize("first", ["fresh", "run_id"])
def test_a_process_attaching_a_run_another_one_writes_is_refused(store: str, first: str) -> None:
    holder, run_id = _holder(store, str(uuid.uuid4()) if first == "run_id" else "")
    try:
        refused = _attach(store, run_id)
        assert refused.returncode == 4, refused.stderr
        assert f"run {run_id} is being written by pid {holder.pid} on " in refused.stdout
        assert "rank=" in refused.stdout
    finally:
        _release(holder)
    record = pacha.load_run(run_id, uri=store)
    assert record.status is pacha.RunStatus.COMPLETED
    assert record.summary == {"loss": 0.0}  # the refused process changed nothing
    assert pacha.read_metrics(run_id, uri=store).num_rows == 101

    resumed = _attach(store, run_id)  # once the holder has finished, resuming is fine
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert pacha.load_run(run_id, uri=store).summary == {"loss": 0.0, "other": 1.0}


@pytest.mark.subprocess
def test_processes_sharing_pacha_run_id_without_ranks_one_writes_the_others_are_refused(
    store: str, tmp_path: Path
) -> None:
    shared = str(uuid.uuid4())
    script = textwrap.dedent(
        """
        import os, sys, time
        import pacha_sdk as pacha

        store, go, release = sys.argv[1:4]
        while not os.path.exists(go):
            time.sleep(0.001)
        try:
            with pacha.run(uri=store, flush_interval=0.1, system_metrics=False) as run:
                for step in range(50):
                    run.log_metric("who", float(os.getpid()), step)
                while not os.path.exists(release):  # hold the run until the others tried
                    time.sleep(0.01)
        except pacha.RunInUseError as error:
            print(error, flush=True)
            sys.exit(4)
        print("wrote", flush=True)
        """
    )
    go, release = tmp_path / "go", tmp_path / "release"
    env = {**os.environ, "PACHA_RUN_ID": shared}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, store, str(go), str(release)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(4)
    ]
    go.touch()  # all four start their runs at about the same moment
    wait_until(lambda: sum(child.poll() is not None for child in children) >= 3, timeout=WAIT)
    release.touch()  # the one left holds the run: it ends now
    outputs = [child.communicate(timeout=WAIT)[0] for child in children]
    codes = sorted(child.returncode for child in children)
    assert codes == [0, 4, 4, 4], outputs
    (winner,) = [child for child in children if child.returncode == 0]
    assert all("RunInUseError" not in out for out in outputs)  # a clean message, no traceback
    assert all(
        f"run {shared} is being written by pid " in out for out in outputs if "wrote" not in out
    )
    record = pacha.load_run(shared, uri=store)
    assert record.status is pacha.RunStatus.COMPLETED
    assert record.summary == {"who": float(winner.pid)}
    table = pacha.read_metrics(shared, uri=store)
    assert set(table["value"].to_pylist()) == {float(winner.pid)}


@pytest.mark.subprocess
def test_a_live_process_on_this_machine_holds_its_run_even_when_its_heartbeat_is_late(
    store: str,
) -> None:
    holder, run_id = _holder(store, flush_interval=60.0)  # beats once a minute
    try:
        path = Path(store, "runs", run_id, "run.json")
        data = json.loads(path.read_text())
        data["extra"]["heartbeat_at"] = "2000-01-01T00:00:00Z"  # as if its store were failing
        path.write_text(json.dumps(data))
        assert pacha.load_run(run_id, uri=store).is_stale
        refused = _attach(store, run_id)
        assert refused.returncode == 4, refused.stderr
        assert f"being written by pid {holder.pid} on " in refused.stdout
    finally:
        _release(holder)
    assert pacha.load_run(run_id, uri=store).summary == {"loss": 0.0}


@pytest.mark.subprocess
def test_a_run_killed_on_this_machine_resumes_at_once(store: str) -> None:
    holder, run_id = _holder(store)
    holder.send_signal(signal.SIGKILL)
    holder.communicate(timeout=WAIT)
    record = pacha.load_run(run_id, uri=store)
    assert record.status is pacha.RunStatus.RUNNING
    assert not record.is_stale  # its heartbeat is fresh, but its process is gone
    resumed = _attach(store, run_id)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert pacha.load_run(run_id, uri=store).status is pacha.RunStatus.COMPLETED


def _written_elsewhere(store: str, run_id: str, beat: datetime) -> None:
    """Make run.json say a process on another machine writes it, beating at *beat*."""
    path = Path(store, "runs", run_id, "run.json")
    data = json.loads(path.read_text())
    data["status"] = "running"
    data["extra"]["writer"].update(hostname="gpu-node-7", pid=1234)
    data["extra"]["heartbeat_at"] = beat.isoformat().replace("+00:00", "Z")
    path.write_text(json.dumps(data))


def test_a_run_beating_on_another_machine_is_refused_until_its_heartbeat_is_stale(
    store: str,
) -> None:
    with pacha.run(uri=store, system_metrics=False, flush_interval=1.0) as run:
        run.log_metric("loss", 1.0)
    now = datetime.now(timezone.utc)
    _written_elsewhere(store, run.run_id, now)
    with pytest.raises(pacha.RunInUseError, match=r"pid 1234 on gpu-node-7 \(last heartbeat"):
        pacha.run(uri=store, run_id=run.run_id, system_metrics=False)
    assert pacha.load_run(run.run_id, uri=store).status is pacha.RunStatus.RUNNING  # untouched

    _written_elsewhere(store, run.run_id, now - timedelta(seconds=10))  # 3 intervals ago: stale
    with pacha.run(uri=store, run_id=run.run_id, system_metrics=False) as again:
        again.log_metric("loss", 0.5)
    record = pacha.load_run(run.run_id, uri=store)
    assert record.status is pacha.RunStatus.COMPLETED
    assert record.summary == {"loss": 0.5}
    sessions = sorted(p.name for p in Path(store, "runs", run.run_id, "sessions").iterdir())
    assert sessions == ["0.json"]


def test_one_process_cannot_attach_a_run_it_is_writing_twice(store: str) -> None:
    with pacha.run(uri=store, system_metrics=False) as run:
        with pytest.raises(pacha.RunInUseError, match=f"pid {os.getpid()} on "):
            pacha.run(uri=store, run_id=run.run_id, system_metrics=False)
        run.log_metric("loss", 1.0)
    assert pacha.load_run(run.run_id, uri=store).summary == {"loss": 1.0}
