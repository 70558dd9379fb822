"""The first points of a run are as safe as the rest.

The writer prepares what its first flush needs (pyarrow, the Parquet
encoder) when the run starts, in its own thread, and the run's context
(hardware, git, environment) is gathered in the background and written
with the first flush: ``pacha.run()`` returns at once, and a process killed
soon after its first points keeps them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import pacha_sdk as pacha
from tests.conftest import wait_until

CHILD = textwrap.dedent(
    """
    import sys, time
    import pacha_sdk as pacha

    run = pacha.run(uri=sys.argv[1], flush_interval=0.05, system_metrics=False)
    time.sleep(1.5)  # building the model, loading data: the writer gets ready meanwhile
    run.log_metric("loss", 1.0, 0)
    print(run.run_id, flush=True)
    step = 1
    while True:
        time.sleep(0.01)
        run.log_metric("loss", 1.0 / (step + 1), step)
        step += 1
    """
)


@pytest.mark.subprocess
def test_a_run_killed_soon_after_its_first_point_keeps_it(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(store)], stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None
            run_id = child.stdout.readline().strip()
            time.sleep(0.3)  # six flush intervals after the first point
            child.send_signal(signal.SIGKILL)
            assert child.wait(timeout=30) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
    steps = pacha.read_metrics(run_id, uri=str(store))["step"].to_pylist()
    assert 0 in steps


def test_the_context_gathered_in_the_background_reaches_the_first_flush(store: str) -> None:
    with pacha.run(uri=store, flush_interval=0.05, env_vars=["HOME"]) as run:
        wait_until(lambda: "environment" in pacha.load_run(run.run_id, uri=store).extra)
        record = pacha.load_run(run.run_id, uri=store)
        assert record.status is pacha.RunStatus.RUNNING
        assert record.hardware.cpu_cores is not None
        environment = record.extra["environment"]
        assert isinstance(environment, dict)
        assert environment["argv"] == sys.argv
        assert environment["env"] == {"HOME": os.environ["HOME"]}


def test_a_run_that_ends_at_once_still_records_its_context(store: str) -> None:
    with pacha.run(uri=store, flush_interval=3600) as run:
        pass
    record = pacha.load_run(run.run_id, uri=store)
    assert record.status is pacha.RunStatus.COMPLETED
    assert record.hardware.cpu_cores is not None
    environment = record.extra["environment"]
    assert isinstance(environment, dict)
    assert environment["python"] == ".".join(map(str, sys.version_info[:3]))
