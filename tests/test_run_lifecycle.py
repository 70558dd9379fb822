"""Run lifecycle: DESIGN.md section 1 "Status rules" for in-process runs, and what a run stores.

Every test drives the public API (``import pacha_sdk as pacha``) against a
fresh local store and asserts what was really stored (``load_run``,
``read_metrics``), not the in-memory object alone.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import pacha_sdk as pacha
from tests.conftest import wait_until

# --------------------------------------------------------------------------
# Status rules, as one table: with-block, @track on def, @track on async def.
# --------------------------------------------------------------------------

POINTS_BEFORE_END = 10


class _Case:
    """How the block ends, and what DESIGN's table says gets stored."""

    def __init__(
        self,
        error: BaseException | None,
        status: pacha.RunStatus,
        message: str | None,
        *,
        traceback: bool = False,
    ) -> None:
        self.error = error
        self.status = status
        self.message = message
        self.traceback = traceback


STATUS_TABLE = {
    "normal-end": _Case(None, pacha.RunStatus.COMPLETED, None),
    "exception": _Case(
        ValueError("loss diverged"),
        pacha.RunStatus.FAILED,
        "ValueError: loss diverged",
        traceback=True,
    ),
    "exception-without-message": _Case(
        RuntimeError(), pacha.RunStatus.FAILED, "RuntimeError", traceback=True
    ),
    "keyboard-interrupt": _Case(KeyboardInterrupt(), pacha.RunStatus.CANCELLED, None),
    "sys-exit-0": _Case(SystemExit(0), pacha.RunStatus.COMPLETED, None),
    "sys-exit-none": _Case(SystemExit(None), pacha.RunStatus.COMPLETED, None),
    "sys-exit-3": _Case(SystemExit(3), pacha.RunStatus.FAILED, "SystemExit: 3"),
    "sys-exit-message": _Case(
        SystemExit("disk full"), pacha.RunStatus.FAILED, "SystemExit: disk full"
    ),
}


def _train_body(error: BaseException | None) -> None:
    """A training loop logging to the active run, then ending as *error* says."""
    for step in range(POINTS_BEFORE_END):
        pacha.log_metric("loss", 1.0 / (step + 1), step)
    if error is not None:
        raise error


def _end_in_with_block(store: str, error: BaseException | None) -> str:
    with pacha.run({"learning_rate": 0.01}, uri=store) as run:
        run_id = str(run.run_id)
        _train_body(error)
    return run_id


def _end_in_tracked_def(store: str, error: BaseException | None) -> str:
    seen: list[str] = []

    @pacha.track(uri=store)
    def train(learning_rate: float = 0.01) -> None:
        active = pacha.active_run()
        assert active is not None
        seen.append(str(active.run_id))
        _train_body(error)

    try:
        train()
    finally:
        assert len(seen) == 1
    return seen[0]


def _end_in_tracked_async_def(store: str, error: BaseException | None) -> str:
    seen: list[str] = []

    @pacha.track(uri=store)
    async def train(learning_rate: float = 0.01) -> None:
        active = pacha.active_run()
        assert active is not None
        seen.append(str(active.run_id))
        await asyncio.sleep(0)
        _train_body(error)

    try:
        asyncio.run(train())
    finally:
        assert len(seen) == 1
    return seen[0]


_ENDINGS: dict[str, Callable[[str, BaseException | None], str]] = {
    "with": _end_in_with_block,
    "track": _end_in_tracked_def,
    "track-async": _end_in_tracked_async_def,
}


@pytest.mark.parametrize("how", list(_ENDINGS))
@pytest.mark.parametrize("case_id", list(STATUS_TABLE))
def test_status_table(store: str, how: str, case_id: str) -> None:
    case = STATUS_TABLE[case_id]
    end = _ENDINGS[how]
    ids: list[str] = []

    def call() -> None:
        ids.append(end(store, case.error))

    if case.error is None:
        call()
        run_id = ids[0]
    else:
        # The SDK never swallows the error: the very same exception comes back out.
        with pytest.raises(type(case.error)) as raised:
            call()
        assert raised.value is case.error
        runs = pacha.list_runs(uri=store)
        assert len(runs) == 1
        run_id = str(runs[0].run_id)

    record = pacha.load_run(run_id, uri=store)
    assert record.status is case.status
    assert record.error_message == case.message
    assert record.finished_at is not None
    if case.traceback:
        trace = record.extra["traceback"]
        assert isinstance(trace, str)
        assert trace.startswith("Traceback (most recent call last):")
        assert "_train_body" in trace
        assert trace.rstrip().endswith(case.message or "")
    elif case.status is not pacha.RunStatus.FAILED:
        assert "traceback" not in record.extra

    # Points logged before the block ended are stored, whatever the ending.
    table = pacha.read_metrics(run_id, uri=store)
    assert table.num_rows == POINTS_BEFORE_END
    assert sorted(table.column("step").to_pylist()) == list(range(POINTS_BEFORE_END))
    assert record.summary == {"loss": 1.0 / POINTS_BEFORE_END}
    assert pacha.active_run() is None


@pytest.mark.parametrize("how", ["track", "track-async"])
def test_tracked_function_records_its_arguments(store: str, how: str) -> None:
    run_id = _ENDINGS[how](store, None)
    record = pacha.load_run(run_id, uri=store)
    assert record.hyperparameters.learning_rate == 0.01
    assert record.name is not None
    assert record.name.endswith("train")


def test_cancelled_async_task_cancels_its_tracked_run(store: str) -> None:
    seen: list[str] = []

    @pacha.track(uri=store)
    async def train(epochs: int = 2) -> None:
        active = pacha.active_run()
        assert active is not None
        seen.append(str(active.run_id))
        pacha.log_metric("loss", 0.5)
        await asyncio.sleep(30)

    async def main() -> None:
        task = asyncio.create_task(train())
        while not seen:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(main(), timeout=20))
    record = pacha.load_run(seen[0], uri=store)
    assert record.status is pacha.RunStatus.CANCELLED
    assert record.error_message is None
    assert record.hyperparameters.epochs == 2
    assert pacha.read_metrics(seen[0], uri=store).column("value").to_pylist() == [0.5]


# --------------------------------------------------------------------------
# Explicit lifecycle: Run.start / complete / fail / cancel.
# --------------------------------------------------------------------------


def test_explicit_lifecycle_stores_each_state(store: str) -> None:
    run = pacha.Run({"batch_size": 8}, uri=store, name="explicit")
    assert run.status is pacha.RunStatus.PENDING
    assert not run.is_finished
    assert run.start() is run

    stored = pacha.load_run(str(run.run_id), uri=store)
    assert stored.status is pacha.RunStatus.RUNNING
    assert stored.finished_at is None
    assert stored.duration_secs is None
    assert run.duration_secs is None
    raw = json.loads((Path(store) / "runs" / str(run.run_id) / "run.json").read_text())
    assert "finished_at" not in raw

    run.log_metric("acc", 0.75, step=0)
    run.complete()
    assert run.is_finished
    stored = pacha.load_run(str(run.run_id), uri=store)
    assert stored.status is pacha.RunStatus.COMPLETED
    assert stored.name == "explicit"
    assert stored.hyperparameters.batch_size == 8
    assert stored.finished_at is not None
    assert stored.finished_at >= stored.started_at
    assert isinstance(stored.duration_secs, int)
    assert stored.duration_secs >= 0
    assert run.duration_secs == stored.duration_secs
    assert pacha.read_metrics(str(run.run_id), uri=store).column("value").to_pylist() == [0.75]


def test_fail_with_exception_keeps_message_and_traceback(store: str) -> None:
    run = pacha.Run(uri=store).start()
    try:
        raise OSError("no space left on device")
    except OSError as error:
        run.fail(error)
    stored = pacha.load_run(str(run.run_id), uri=store)
    assert stored.status is pacha.RunStatus.FAILED
    assert stored.error_message == "OSError: no space left on device"
    trace = stored.extra["traceback"]
    assert isinstance(trace, str)
    assert "test_fail_with_exception_keeps_message_and_traceback" in trace


def test_fail_with_message(store: str) -> None:
    run = pacha.Run(uri=store).start()
    run.fail("evaluation crashed")
    stored = pacha.load_run(str(run.run_id), uri=store)
    assert stored.status is pacha.RunStatus.FAILED
    assert stored.error_message == "evaluation crashed"


def test_start_twice_is_an_error(store: str) -> None:
    run = pacha.Run(uri=store)
    run.start()
    with pytest.raises(pacha.RunStateError):
        run.start()
    already_started = pacha.run(uri=store)  # pacha.run() returns a started run
    with pytest.raises(pacha.RunStateError):
        already_started.start()
    run.complete()
    already_started.complete()
    assert {r.status for r in pacha.list_runs(uri=store)} == {pacha.RunStatus.COMPLETED}


@pytest.mark.parametrize("finish", ["complete", "fail", "cancel"])
def test_finishing_a_run_never_started_is_an_error(store: str, finish: str) -> None:
    run = pacha.Run(uri=store)
    finisher: Callable[[], None] = (
        (lambda: run.fail("boom")) if finish == "fail" else getattr(run, finish)
    )
    with pytest.raises(pacha.RunStateError):
        finisher()
    assert run.status is pacha.RunStatus.PENDING
    with pytest.raises(pacha.StoreNotFoundError):  # nothing was written, not even the folder
        pacha.load_run(str(run.run_id), uri=store)


def test_logging_after_complete_is_an_error_and_changes_nothing(store: str) -> None:
    with pacha.run(uri=store) as run:
        run.log_metric("loss", 0.25, step=0)
        run.log_metrics({"acc": 0.5, "lr": 0.1}, step=0)
    before = pacha.load_run(str(run.run_id), uri=store)

    with pytest.raises(pacha.RunStateError):
        run.log_metric("loss", 0.1, step=1)  # a name it logged before
    with pytest.raises(pacha.RunStateError):
        run.log_metric("new-metric", 1.0)
    with pytest.raises(pacha.RunStateError):
        run.log_metrics({"acc": 0.9}, step=1)
    with pytest.raises(pacha.NoActiveRunError):
        pacha.log_metric("loss", 0.1)
    with pytest.raises(pacha.RunStateError):
        run.__enter__()  # a finished run cannot be entered again (`with run:`)
    run.complete()  # already finished: a no-op, not a second write
    run.flush()

    assert run.get_metric("loss") == 0.25
    after = pacha.load_run(str(run.run_id), uri=store)
    assert after.model_dump() == before.model_dump()
    table = pacha.read_metrics(str(run.run_id), uri=store)
    assert sorted(table.column("name").to_pylist()) == ["acc", "loss", "lr"]


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("cancel", "complete", pacha.RunStatus.CANCELLED),
        ("complete", "fail", pacha.RunStatus.COMPLETED),
        ("fail", "cancel", pacha.RunStatus.FAILED),
        ("cancel", "fail", pacha.RunStatus.CANCELLED),
    ],
)
def test_first_final_status_wins(
    store: str, first: str, second: str, expected: pacha.RunStatus
) -> None:
    def finish(run: pacha.Run, how: str) -> None:
        if how == "fail":
            run.fail(ValueError("late"))
        else:
            getattr(run, how)()

    run = pacha.Run(uri=store).start()
    finish(run, first)
    finished_at = pacha.load_run(str(run.run_id), uri=store).finished_at
    finish(run, second)
    stored = pacha.load_run(str(run.run_id), uri=store)
    assert run.status is expected
    assert stored.status is expected
    assert stored.finished_at == finished_at
    assert (stored.error_message is None) is (expected is not pacha.RunStatus.FAILED)


def test_cancel_inside_with_block_stays_cancelled(store: str) -> None:
    with pacha.run(uri=store) as run:
        run.log_metric("loss", 1.0)
        run.cancel()
    assert pacha.load_run(str(run.run_id), uri=store).status is pacha.RunStatus.CANCELLED
    assert pacha.read_metrics(str(run.run_id), uri=store).num_rows == 1


# --------------------------------------------------------------------------
# Flushing and reading values back.
# --------------------------------------------------------------------------


def test_every_buffered_point_is_flushed_before_the_final_status(store: str) -> None:
    count = 50_000
    with pacha.run(uri=store, flush_interval=60) as run:
        for step in range(count):
            run.log_metric("loss", float(step), step)
        # Nothing has been flushed yet: 60 s interval, 100 000 rows threshold.
        assert pacha.read_metrics(str(run.run_id), uri=store).num_rows == 0
    record = pacha.load_run(str(run.run_id), uri=store)
    assert record.status is pacha.RunStatus.COMPLETED
    table = pacha.read_metrics(str(run.run_id), uri=store).sort_by("step")
    assert table.num_rows == count
    assert table.column("step").to_pylist() == list(range(count))
    assert table.column("value").to_pylist() == [float(step) for step in range(count)]
    assert record.summary == {"loss": float(count - 1)}


@pytest.mark.parametrize("flush_between", [False, True])
def test_get_metric_is_latest_by_step_ties_to_last_logged(store: str, flush_between: bool) -> None:
    with pacha.run(uri=store, flush_interval=60) as run:
        assert run.get_metric("loss") is None
        run.log_metric("loss", 1.0, step=5)
        if flush_between:
            assert run.flush(timeout=10)
        run.log_metric("loss", 2.0, step=5)
        if flush_between:
            assert run.flush(timeout=10)
        run.log_metric("loss", 9.0, step=3)
        assert run.get_metric("loss") == 2.0
        assert run.flush(timeout=10)
        assert run.get_metric("loss") == 2.0
        assert pacha.load_run(str(run.run_id), uri=store).summary == {"loss": 2.0}
    assert run.get_metric("loss") == 2.0
    record = pacha.load_run(str(run.run_id), uri=store)
    assert record.summary == {"loss": 2.0}
    assert record.get_metric("loss") == 2.0
    # The points themselves are all kept, repeated step included.
    table = pacha.read_metrics(str(run.run_id), uri=store)
    assert sorted(zip(table.column("step").to_pylist(), table.column("value").to_pylist())) == [
        (3, 9.0),
        (5, 1.0),
        (5, 2.0),
    ]


def test_omitted_step_is_previous_step_of_that_name_plus_one(store: str) -> None:
    with pacha.run(uri=store) as run:
        run.log_metric("loss", 0.9)
        run.log_metric("loss", 0.8)
        run.log_metric("acc", 0.1)
        run.log_metric("loss", 0.7, step=10)
        run.log_metric("loss", 0.6)
        pacha.log_metric("loss", 0.5)
        run.log_metric("loss", 0.4, step=2)  # going back is allowed
        run.log_metric("loss", 0.3)
        run.log_metrics({"acc": 0.2, "lr": 0.01})
        pacha.log_metrics({"acc": 0.3, "lr": 0.02}, step=7)
        run.log_metrics({"acc": 0.4, "lr": 0.03})
    table = pacha.read_metrics(str(run.run_id), uri=store)
    points = sorted(
        zip(
            table.column("name").to_pylist(),
            table.column("step").to_pylist(),
            table.column("value").to_pylist(),
        )
    )
    assert points == [
        ("acc", 0, 0.1),
        ("acc", 1, 0.2),
        ("acc", 7, 0.3),
        ("acc", 8, 0.4),
        ("loss", 0, 0.9),
        ("loss", 1, 0.8),
        ("loss", 2, 0.4),
        ("loss", 3, 0.3),
        ("loss", 10, 0.7),
        ("loss", 11, 0.6),
        ("loss", 12, 0.5),
        ("lr", 0, 0.01),
        ("lr", 7, 0.02),
        ("lr", 8, 0.03),
    ]


# --------------------------------------------------------------------------
# The active run: nesting, threads, asyncio tasks.
# --------------------------------------------------------------------------


def test_nested_runs_record_their_parent(store: str) -> None:
    assert pacha.active_run() is None
    with pacha.run(uri=store, name="sweep") as outer:
        assert pacha.active_run() is outer
        pacha.log_metric("best", 0.0)
        with pacha.run(uri=store, name="trial-1") as inner:
            assert pacha.active_run() is inner
            pacha.log_metric("loss", 0.5)
        assert pacha.active_run() is outer
        pacha.log_metric("best", 0.5)
    assert pacha.active_run() is None

    inner_record = pacha.load_run(str(inner.run_id), uri=store)
    outer_record = pacha.load_run(str(outer.run_id), uri=store)
    assert inner_record.extra["parent_run_id"] == str(outer.run_id)
    assert inner_record.parent_run_id == str(outer.run_id)
    assert "parent_run_id" not in outer_record.extra
    assert pacha.read_metrics(str(inner.run_id), uri=store).column("name").to_pylist() == ["loss"]
    outer_points = pacha.read_metrics(str(outer.run_id), uri=store)
    assert outer_points.column("name").to_pylist() == ["best", "best"]


def test_no_active_run_in_a_fresh_thread(store: str) -> None:
    seen: list[object] = []
    errors: list[BaseException] = []

    def worker() -> None:
        seen.append(pacha.active_run())
        try:
            pacha.log_metric("loss", 1.0)
        except pacha.NoActiveRunError as error:
            errors.append(error)

    with pacha.run(uri=store) as run:
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(timeout=10)
        assert not thread.is_alive()
        assert pacha.active_run() is run
        # An explicit Run object works from any thread.
        logger = threading.Thread(target=run.log_metric, args=("from-thread", 3.0, 0))
        logger.start()
        logger.join(timeout=10)
    assert seen == [None]
    assert len(errors) == 1
    table = pacha.read_metrics(str(run.run_id), uri=store)
    assert table.column("name").to_pylist() == ["from-thread"]


def test_each_asyncio_task_sees_its_own_run(store: str) -> None:
    results: dict[str, str] = {}
    both_open = asyncio.Event()

    async def trial(label: str) -> None:
        async with pacha.run(uri=store, name=label) as run:
            results[label] = str(run.run_id)
            if len(results) == 2:
                both_open.set()
            await both_open.wait()  # both runs are active at once from here on
            for step in range(3):
                assert pacha.active_run() is run
                pacha.log_metric(label, float(step))
                await asyncio.sleep(0)

    async def main() -> None:
        assert pacha.active_run() is None
        await asyncio.gather(trial("a"), trial("b"))
        assert pacha.active_run() is None

    asyncio.run(asyncio.wait_for(main(), timeout=20))
    for label in ("a", "b"):
        table = pacha.read_metrics(results[label], uri=store)
        assert table.column("name").to_pylist() == [label] * 3
        record = pacha.load_run(results[label], uri=store)
        assert record.status is pacha.RunStatus.COMPLETED
        assert "parent_run_id" not in record.extra


# --------------------------------------------------------------------------
# Heartbeat and staleness.
# --------------------------------------------------------------------------


def test_heartbeat_and_summary_are_written_while_running(store: str) -> None:
    with pacha.run(uri=store, flush_interval=0.2) as run:
        run_id = str(run.run_id)
        first = pacha.load_run(run_id, uri=store)
        assert first.status is pacha.RunStatus.RUNNING
        assert first.extra["flush_interval"] == 0.2
        first_beat = first.heartbeat_at
        assert first_beat is not None

        def beat_advanced() -> bool:
            beat = pacha.load_run(run_id, uri=store).heartbeat_at
            return beat is not None and beat > first_beat

        wait_until(beat_advanced)

        run.log_metric("loss", 0.5, step=0)
        run.log_metric("loss", float("nan"), step=1)
        run.log_metric("acc", 0.9, step=0)
        assert run.flush(timeout=10)
        running = pacha.load_run(run_id, uri=store)
        assert running.status is pacha.RunStatus.RUNNING
        assert running.summary == {"loss": None, "acc": 0.9}  # NaN is null in strict JSON
        assert not running.is_stale
        far_future = datetime.now(timezone.utc) + timedelta(days=1)
        assert running.stale_at(far_future)
    completed = pacha.load_run(run_id, uri=store)
    assert completed.status is pacha.RunStatus.COMPLETED
    assert not completed.is_stale
    assert not completed.stale_at(far_future)


# --------------------------------------------------------------------------
# A run left open is finished at interpreter exit.
# --------------------------------------------------------------------------

_LEFT_OPEN = """
import pacha_sdk as pacha

run = pacha.run(uri={store!r}, flush_interval=60)
for step in range(1000):
    run.log_metric("loss", float(step), step)
print(run.run_id, flush=True)
{ending}
"""


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("ending", "status", "message"),
    [
        ("", pacha.RunStatus.COMPLETED, None),
        (
            "raise RuntimeError('crashed after the loop')",
            pacha.RunStatus.FAILED,
            "RuntimeError: crashed after the loop",
        ),
    ],
    ids=["clean-exit", "uncaught-exception"],
)
def test_run_left_open_is_finished_at_interpreter_exit(
    store: str, ending: str, status: pacha.RunStatus, message: str | None
) -> None:
    script = textwrap.dedent(_LEFT_OPEN).format(store=store, ending=ending)
    child = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert child.returncode == (0 if status is pacha.RunStatus.COMPLETED else 1), child.stderr
    run_id = child.stdout.split()[0]
    record = pacha.load_run(run_id, uri=store)
    assert record.status is status
    assert record.error_message == message
    table = pacha.read_metrics(run_id, uri=store)
    assert table.num_rows == 1000
    assert sorted(table.column("step").to_pylist()) == list(range(1000))
