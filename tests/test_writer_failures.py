"""The writer cannot be killed by what it is given, and never claims what did not happen.

* An automatic step past int64 is refused on the hot path, naming the metric.
* An error the writer did not expect while encoding points is loud: a log
  line, ``run.last_error`` at once, and the run's end records how many
  points were lost and why; the writer keeps going with the next points.
* When neither the store nor the spool takes the points, the run says so:
  it ends ``failed`` with a message naming both errors and the lost count,
  never ``completed`` with "N points kept in the spool".
* A spool that cannot be written is logged once per distinct error.

The failing stores and spools are real: a local folder with a file where a
folder must go (every write under it fails with the OS's own error), and
SeaweedFS behind the fault proxy.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import pacha_sdk as pacha
from pacha_sdk.backends import get_backend
from pacha_sdk.models import RunId
from pacha_sdk.storage import buffer
from pacha_sdk.storage.buffer import MetricBuffer
from pacha_sdk.storage.spool import Spool
from pacha_sdk.storage.writer import MetricWriter
from tests.conftest import wait_until

if TYPE_CHECKING:
    from pacha_sdk.storage.parts import Rows
    from tests.servers import ObjectStore

pytest_plugins = ["tests.servers"]

MAX_STEP = 2**63 - 1


def blocked(tmp_path: Path, name: str) -> Path:
    """A path under a regular file: creating anything there fails with NotADirectoryError."""
    in_the_way = tmp_path / f"{name}-in-the-way"
    in_the_way.write_text("a file, not a folder")
    return in_the_way / name


def blocked_metrics_store(tmp_path: Path) -> str:
    """A local store whose ``metrics/`` is a file: parts fail, ``run.json`` still works."""
    root = tmp_path / "store"
    root.mkdir()
    (root / "metrics").write_text("in the way")
    return str(root)


def status(run: pacha.Run) -> pacha.RunStatus:
    """The run's status now (a call, so type checkers do not narrow it between two reads)."""
    return run.status


def pacha_errors(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "pacha_sdk" and r.levelno >= level]


# --------------------------------------------------------------------------
# Steps past int64
# --------------------------------------------------------------------------


def test_an_automatic_step_past_int64_is_refused_naming_the_metric(store: str) -> None:
    with pacha.run(uri=store) as run:
        run.log_metric("a", 1.0, MAX_STEP)
        with pytest.raises(pacha.InvalidMetricError, match=r"'a'.*int64") as raised:
            run.log_metric("a", 2.0)
        assert raised.value.metric_name == "a"
        with pytest.raises(pacha.InvalidMetricError, match="'a'"):
            run.log_metrics({"b": 1.0, "a": 2.0})  # all or nothing: "b" is not logged either
        run.log_metric("a", 3.0, 5)  # an explicit step is still fine, and so is then "+1"
        run.log_metric("a", 4.0)
        run.log_metrics({"c": 1.0}, step=MAX_STEP)
        with pytest.raises(pacha.InvalidMetricError, match="'c'"):
            run.log_metrics({"c": 2.0})
        with pytest.raises(pacha.InvalidMetricError, match="'c'"):
            run.log_metric("c", 2.0)
    assert status(run) is pacha.RunStatus.COMPLETED
    assert run.last_error is None
    table = pacha.read_metrics(run.run_id, uri=store)
    points = sorted(zip(table["name"].to_pylist(), table["step"].to_pylist()))
    assert points == [("a", 5), ("a", 6), ("a", MAX_STEP), ("c", MAX_STEP)]
    assert pacha.load_run(run.run_id, uri=store).status is pacha.RunStatus.COMPLETED


@pytest.mark.parametrize("path", ["c", "python"])
def test_counting_up_to_the_largest_step_refuses_the_step_after_it(
    path: str, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if path == "c" and buffer.native is None:
        pytest.skip("the C extension is not built here")
    if path == "python":
        monkeypatch.setattr(buffer, "native", None)
    with pacha.run(uri=store) as run:
        run.log_metric("a", 1.0, MAX_STEP - 1)
        run.log_metric("a", 2.0)  # the automatic step is the largest int64 ...
        with pytest.raises(pacha.InvalidMetricError, match=r"'a'.*int64"):
            run.log_metric("a", 3.0)  # ... and there is none after it
        run.log_metrics({"b": 1.0}, step=MAX_STEP - 1)
        run.log_metrics({"b": 2.0})
        with pytest.raises(pacha.InvalidMetricError, match="'b'"):
            run.log_metrics({"b": 3.0})
    assert status(run) is pacha.RunStatus.COMPLETED
    assert run.last_error is None
    table = pacha.read_metrics(run.run_id, uri=store)
    points = sorted(zip(table["name"].to_pylist(), table["step"].to_pylist()))
    assert points == [("a", MAX_STEP - 1), ("a", MAX_STEP), ("b", MAX_STEP - 1), ("b", MAX_STEP)]


def test_a_resumed_run_whose_last_step_is_the_largest_refuses_the_automatic_next(
    store: str,
) -> None:
    with pacha.run(uri=store) as first:
        first.log_metric("a", 1.0, MAX_STEP)
    with pacha.run(uri=store, run_id=str(first.run_id)) as resumed:
        with pytest.raises(pacha.InvalidMetricError, match="'a'"):
            resumed.log_metric("a", 2.0)
        resumed.log_metric("a", 3.0, 0)
    assert status(resumed) is pacha.RunStatus.COMPLETED
    assert sorted(pacha.read_metrics(first.run_id, uri=store)["step"].to_pylist()) == [0, MAX_STEP]


# --------------------------------------------------------------------------
# An error the writer did not expect
# --------------------------------------------------------------------------


def a_writer(tmp_path: Path, store: str, buffer: MetricBuffer) -> MetricWriter:
    backend = get_backend(store)
    run_id = RunId.new()
    spool = Spool(str(tmp_path / "spool"), uri=backend.uri, run_id=str(run_id), writer_id="w1")
    return MetricWriter(
        buffer=buffer,
        backend=backend,
        run_id=run_id,
        writer_id="w1",
        rank=0,
        flush_interval=0.05,
        flush_rows=10**9,
        heartbeat=lambda: None,
        spool=spool,
    )


def test_a_batch_the_writer_cannot_encode_is_reported_and_the_writer_goes_on(
    tmp_path: Path, store: str, caplog: pytest.LogCaptureFixture
) -> None:
    buffer = MetricBuffer()
    writer = a_writer(tmp_path, store, buffer)
    writer.start()
    buffer.rows.extend(("loss", 0.5, 0, time.time_ns()))
    assert writer.flush(timeout=30)
    # What the hot path never lets through (a step past int64): stands for a bug in the SDK.
    buffer.rows.extend(("loss", 0.25, 2**63, time.time_ns()))
    buffer.rows.extend(("loss", 0.125, 1, time.time_ns()))
    assert not writer.flush(timeout=30)
    wait_until(lambda: writer.last_error is not None)
    buffer.rows.extend(("loss", 0.0625, 2, time.time_ns()))
    assert writer.flush(timeout=30)
    assert writer.is_alive()
    assert not writer.stop(timeout=10)  # not everything was written: two points are gone

    assert writer.points_lost == 2
    assert isinstance(writer.last_error, OverflowError)
    errors = pacha_errors(caplog, logging.ERROR)
    assert len(errors) == 1
    assert "could not encode 2 points" in errors[0]
    assert "OverflowError" in errors[0]
    assert any(r.exc_info for r in caplog.records if r.levelno >= logging.ERROR)  # traceback
    steps = pacha.read_metrics(uri=store)["step"].to_pylist()
    assert sorted(steps) == [0, 2]


def test_a_run_whose_writer_lost_points_ends_failed_saying_so(
    store: str, caplog: pytest.LogCaptureFixture
) -> None:
    with pacha.run(uri=store, flush_interval=0.05) as run:
        run.log_metric("loss", 0.5, 0)
        assert run.flush(timeout=30)
        # Stands for a bug in the SDK that let a bad point into the buffer.
        run._buffer.rows.extend(("loss", 0.25, 2**63, time.time_ns()))
        wait_until(lambda: run.last_error is not None)  # at once, not only at the end
        assert status(run) is pacha.RunStatus.RUNNING
        run.log_metric("loss", 0.125, 1)
    assert isinstance(run.last_error, OverflowError)
    record = pacha.load_run(run.run_id, uri=store)
    assert record.status is pacha.RunStatus.FAILED
    assert record.error_message is not None
    assert "1 of 3 points" in record.error_message
    assert "OverflowError" in record.error_message
    assert record.extra["lost_points"] == 1
    assert sorted(pacha.read_metrics(run.run_id, uri=store)["step"].to_pylist()) == [0, 1]


def test_a_failing_users_block_keeps_its_own_status_and_message_when_points_are_lost(
    store: str,
) -> None:
    def train(run: pacha.Run) -> None:
        run._buffer.rows.extend(("loss", 0.25, 2**63, time.time_ns()))  # as above
        wait_until(lambda: run.last_error is not None)
        raise ZeroDivisionError("division by zero")

    with pytest.raises(ZeroDivisionError), pacha.run(uri=store, flush_interval=0.05) as run:
        train(run)
    record = pacha.load_run(run.run_id, uri=store)
    assert record.status is pacha.RunStatus.FAILED
    assert record.error_message == "ZeroDivisionError: division by zero"
    assert record.extra["lost_points"] == 1


# --------------------------------------------------------------------------
# Never claim what did not happen
# --------------------------------------------------------------------------


def test_points_neither_the_store_nor_the_spool_takes_are_reported_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = blocked_metrics_store(tmp_path)
    spool_dir = blocked(tmp_path, "spool")
    with (
        caplog.at_level(logging.WARNING, logger="pacha_sdk"),
        pacha.run(
            uri=store,
            spool_dir=spool_dir,
            flush_interval=0.05,
            close_timeout=1,
            system_metrics=False,
        ) as run,
    ):
        for step in range(1000):
            run.log_metric("loss", 1.0 / (step + 1), step)
        wait_until(lambda: run.last_error is not None)  # set as soon as writes fail
        assert status(run) is pacha.RunStatus.RUNNING
    record = pacha.load_run(run.run_id, uri=store)  # run.json itself was writable
    assert record.status is pacha.RunStatus.FAILED
    message = record.error_message
    assert message is not None
    assert "1000 of 1000 points" in message
    assert "NotADirectoryError" in message
    assert str(Path(store) / "metrics") in message  # the store's error names its path
    assert str(spool_dir.parent) in message  # and the spool's its own
    assert record.extra["lost_points"] == 1000
    assert status(run) is pacha.RunStatus.FAILED
    text = caplog.text
    assert "kept in" not in text
    assert "1000 of 1000 points" in text
    assert "lost" in text or "could not store" in text


def test_points_kept_in_the_spool_are_counted_as_points(
    faulty_s3: ObjectStore, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = faulty_s3.proxy
    assert proxy is not None
    run = pacha.run(
        uri=faulty_s3.uri,
        storage_options=faulty_s3.storage_options,
        flush_interval=0.05,
        close_timeout=1,
        system_metrics=False,
    )
    proxy.refuse()
    for step in range(1000):
        run.log_metric("loss", float(step), step)
    wait_until(lambda: run.last_error is not None)  # set while the run goes on
    assert status(run) is pacha.RunStatus.RUNNING
    with caplog.at_level(logging.WARNING, logger="pacha_sdk"):
        run.complete()
    assert status(run) is pacha.RunStatus.COMPLETED  # every point is safe in the spool
    final = pacha_errors(caplog, logging.ERROR)[-1]
    assert "1000 points and the final record kept in" in final
    for message in pacha_errors(caplog):
        assert "4000" not in message


def test_a_writer_still_busy_when_its_run_gives_up_leaves_the_spool_alone(
    tmp_path: Path,
) -> None:
    # A batch that takes the writer past stop()'s wait (tensors read back from
    # a busy GPU, a loaded machine): from then on the spool is the run's end's
    # and `pacha sync`'s, so the late thread must neither add nor remove files.
    stall, stalled, go_on = threading.Event(), threading.Event(), threading.Event()

    def prepare(rows: Rows) -> Rows:
        if stall.is_set():
            stalled.set()
            go_on.wait(60)
        return rows

    buffer = MetricBuffer(prepare=prepare)
    writer = a_writer(tmp_path, blocked_metrics_store(tmp_path), buffer)
    writer.start()
    spool = Path(writer.spool.path)
    logging.disable(logging.ERROR)  # the writer warns about the failing store
    try:
        buffer.rows.extend(("loss", 1.0, 0, time.time_ns()))
        wait_until(lambda: writer.spooled_points == 1)  # the store refused it: spooled
        stall.set()
        buffer.rows.extend(("loss", 2.0, 1, time.time_ns()))
        wait_until(stalled.is_set)
        spooled_at_stop = sorted(spool.rglob("*"))
        assert not writer.stop(timeout=0.1)  # gave up on the thread, which is still busy
        assert writer.is_alive()
        assert writer.unsaved_points == 1  # the point the late thread holds: lost
        go_on.set()
        writer.join(30)
    finally:
        go_on.set()
        logging.disable(logging.NOTSET)
    assert not writer.is_alive()
    assert sorted(spool.rglob("*")) == spooled_at_stop  # nothing spilled after the stop
    assert writer.spooled_points == 1


def test_a_spool_that_cannot_be_written_is_logged_once_while_the_store_takes_everything(
    seaweedfs_store: ObjectStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool_dir = blocked(tmp_path, "spool")
    with (
        caplog.at_level(logging.DEBUG, logger="pacha_sdk"),
        pacha.run(
            uri=seaweedfs_store.uri,
            storage_options=seaweedfs_store.storage_options,
            spool_dir=spool_dir,
            flush_interval=0.05,
            system_metrics=False,
        ) as run,
    ):
        for step in range(20):
            run.log_metric("loss", float(step), step)
            assert run.flush(timeout=30)  # 20 flushes, each writes ahead to the spool
    spool_lines = [m for m in pacha_errors(caplog) if "spool" in m]
    assert len(spool_lines) == 1, spool_lines
    assert "NotADirectoryError" in spool_lines[0] or "Not a directory" in spool_lines[0]
    assert not pacha_errors(caplog, logging.ERROR)
    record = pacha.load_run(
        run.run_id, uri=seaweedfs_store.uri, storage_options=seaweedfs_store.storage_options
    )
    assert record.status is pacha.RunStatus.COMPLETED
    table = pacha.read_metrics(
        run.run_id, uri=seaweedfs_store.uri, storage_options=seaweedfs_store.storage_options
    )
    assert sorted(table["step"].to_pylist()) == list(range(20))
