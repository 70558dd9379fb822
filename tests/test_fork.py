"""A run inside a forked child (``os.fork()``, multiprocessing's ``"fork"`` start method).

The child gets a writer of its own for the same run (its own writer id, so
its own part files): the points it logs are stored, and it never writes the
run's ``run.json``, whatever it does, in whatever order the processes end.
Each scenario runs as a child script of its own, so the forks happen in a
small process, not in pytest.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

import pacha_sdk as pacha

pytestmark = pytest.mark.subprocess

PRELUDE = """
import multiprocessing, os, sys, time
import pacha_sdk as pacha

STORE = sys.argv[1]


def open_run():
    return pacha.run(uri=STORE, flush_interval=0.1, system_metrics=False, name="forked")


def wait_for(pid):
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
"""


def _script(store: str, body: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PRELUDE) + textwrap.dedent(body), store],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout.split()[0]


def _parts_by_writer(store: str, run_id: str) -> Counter[str]:
    names = (p.name for p in Path(store, "metrics", f"run_id={run_id}").glob("*.parquet"))
    return Counter(name.split("-")[1] for name in names)


def _values(store: str, run_id: str, name: str) -> list[float]:
    return sorted(pacha.read_metrics(run_id, uri=store, names=name)["value"].to_pylist())


def test_a_forked_child_that_fails_its_block_after_the_parent_completed(store: str) -> None:
    run_id = _script(
        store,
        """
        with open_run() as run:
            for step in range(10):
                run.log_metric("loss", float(step))
            assert run.flush(timeout=30)
            go_read, go_write = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child leaves the block by an error, after the parent is done
                try:
                    with run:
                        for step in range(5):
                            run.log_metric("child/loss", 100.0 + step)
                        os.read(go_read, 1)
                        raise RuntimeError("child crashed")
                except RuntimeError:
                    os._exit(0)
                os._exit(1)
            run.log_metric("loss", -1.0, 100)
        os.write(go_write, b"x")  # the parent completed the run: now the child ends
        wait_for(pid)
        print(run.run_id)
        """,
    )
    record = pacha.load_run(run_id, uri=store)
    assert record.status is pacha.RunStatus.COMPLETED
    assert record.error_message is None
    assert "traceback" not in record.extra
    assert record.summary == {"loss": -1.0}  # the parent's; the child's names stay out of it
    assert _values(store, run_id, "child/loss") == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert len(_values(store, run_id, "loss")) == 11  # no point of the parent stored twice
    assert len(_parts_by_writer(store, run_id)) == 2  # the child's writer is its own


def test_a_forked_child_that_exits_normally_never_resets_the_summary(store: str) -> None:
    run_id = _script(
        store,
        """
        run = open_run()
        run.log_metric("loss", 1.0, 0)
        pid = os.fork()
        if pid == 0:
            run.log_metric("child/points", 7.0)  # buffered: stored by the child's exit
            sys.exit(0)  # atexit runs in the child: it must not finish the parent's run
        wait_for(pid)
        run.log_metric("loss", 0.5, 1)
        run.complete()
        print(run.run_id)
        """,
    )
    record = pacha.load_run(run_id, uri=store)
    assert record.status is pacha.RunStatus.COMPLETED
    assert record.summary == {"loss": 0.5}
    assert _values(store, run_id, "child/points") == [7.0]
    assert _values(store, run_id, "loss") == [0.5, 1.0]


def test_a_multiprocessing_fork_child_stores_what_it_logged(store: str) -> None:
    run_id = _script(
        store,
        """
        def work(run, worker):
            for step in range(1000):  # never flushed by hand: the child's exit stores them
                run.log_metric(f"worker{worker}/x", float(step), step)
            pacha.log_metric("worker/seen", float(worker))  # the active run, inherited

        context = multiprocessing.get_context("fork")
        with open_run() as run:
            run.log_metric("loss", 1.0)
            workers = [context.Process(target=work, args=(run, n)) for n in range(3)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(timeout=60)
                assert worker.exitcode == 0, worker.exitcode
            run.log_metric("loss", 0.5)
        print(run.run_id)
        """,
    )
    record = pacha.load_run(run_id, uri=store)
    assert record.status is pacha.RunStatus.COMPLETED
    assert record.summary == {"loss": 0.5}
    for worker in range(3):
        assert _values(store, run_id, f"worker{worker}/x") == [float(s) for s in range(1000)]
    assert _values(store, run_id, "worker/seen") == [0.0, 1.0, 2.0]
    assert len(_parts_by_writer(store, run_id)) == 4


def test_a_multiprocessing_fork_pool_stores_what_its_workers_logged(store: str) -> None:
    run_id = _script(
        store,
        """
        def square(n):
            pacha.log_metric("pool/n", float(n))
            return n * n

        with open_run() as run:
            with multiprocessing.get_context("fork").Pool(2) as pool:
                assert sum(pool.map(square, range(20))) == sum(n * n for n in range(20))
            # leaving the Pool's block terminates its workers (SIGTERM): they flush first
            run.log_metric("loss", 1.0)
        print(run.run_id)
        """,
    )
    record = pacha.load_run(run_id, uri=store)
    assert record.status is pacha.RunStatus.COMPLETED
    assert record.summary == {"loss": 1.0}
    assert _values(store, run_id, "pool/n") == [float(n) for n in range(20)]


def test_a_forked_child_cannot_log_artifacts_but_says_why(store: str) -> None:
    run_id = _script(
        store,
        """
        with open_run() as run:
            pid = os.fork()
            if pid == 0:
                try:
                    run.log_artifact(b"weights", name="model.bin")
                except pacha.RunStateError as error:
                    assert "forked" in str(error) and str(os.getppid()) in str(error), error
                    os._exit(0)
                os._exit(1)
            wait_for(pid)
        print(run.run_id)
        """,
    )
    assert pacha.load_run(run_id, uri=store).artifacts == []
