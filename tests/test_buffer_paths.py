"""Logging behaves the same on the C buffer and hot path and on the pure-Python one.

Each test runs twice: with the C accelerator (``pacha_sdk.storage._pointbuf``;
skipped where it was not built, but CI builds it) and with the pure-Python
flat list. The switch is the module the run picks up at creation
(``buffer.native``), so both paths run in one process; the
``PACHA_SDK_PURE_PYTHON`` variable that users set is checked in a child.
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pacha_sdk as pacha
from pacha_sdk.storage import buffer
from pacha_sdk.storage.buffer import MetricBuffer
from pacha_sdk.storage.parts import build_part


def _built() -> ModuleType | None:
    """The C extension if it was built, whatever ``PACHA_SDK_PURE_PYTHON`` says here."""
    try:
        return importlib.import_module("pacha_sdk.storage._pointbuf")
    except ImportError:
        return None


NATIVE = _built()


@pytest.fixture(params=["c", "python"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which buffer new runs get: the C one or the pure-Python flat list."""
    if request.param == "c":
        if NATIVE is None:
            pytest.skip("the C extension is not built here (pip install -e . with a compiler)")
        monkeypatch.setattr(buffer, "native", NATIVE)
    else:
        monkeypatch.setattr(buffer, "native", None)
    return str(request.param)


def _named(table: pa.Table, name: str) -> pa.Table:
    return table.filter(pc.equal(table["name"], name))


def _env(path: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop(buffer.PURE_PYTHON_ENV, None)
    if path == "python":
        env[buffer.PURE_PYTHON_ENV] = "1"
    return env


def test_the_run_uses_the_path_asked_for(path: str, store: str) -> None:
    with pacha.run(uri=store) as run:
        fast = type(run.log_metric).__name__ == "FastLog"
        assert fast is (path == "c")
        assert isinstance(run._buffer.rows, list) is (path == "python")
        assert list(inspect.signature(run.log_metric).parameters) == ["name", "value", "step"]
        assert run.log_metric.__doc__ == pacha.Run.log_metric.__doc__


@pytest.mark.subprocess
@pytest.mark.parametrize("value", ["1", "0", ""])
def test_the_environment_variable_picks_the_path(value: str) -> None:
    env = dict(os.environ, **{buffer.PURE_PYTHON_ENV: value})
    code = "from pacha_sdk.storage.buffer import ACCELERATED; print(ACCELERATED)"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    expected = value != "1" and NATIVE is not None
    assert done.stdout.strip() == str(expected)


def test_points_are_stored_exactly_with_their_times(path: str, store: str) -> None:
    before = time.time_ns()
    with pacha.run(uri=store) as run:
        for step in range(1000):
            run.log_metric("loss", 1.0 / (step + 1))  # steps 0, 1, 2...
        run.log_metric("acc", 0.5, 7)
        run.log_metric("acc", 0.25, step=7)  # repeated: both kept, in order
        run.log_metric("acc", 0.75, 3)  # back in steps
        run.log_metric("acc", 1.0)  # its last step + 1 = 4
        run.log_metric("nan", math.nan)
        run.log_metric("nan", math.inf)
        run.log_metric("nan", -math.inf)
        run.log_metric("int", 3)  # an int: the slow path
        assert run.get_metric("loss") == 1.0 / 1000
        assert run.get_metric("acc") == 0.25  # the highest step, logged last
    after = time.time_ns()
    table = pacha.read_metrics(run.run_id, uri=store)
    points = {name: _named(table, name) for name in ["loss", "acc", "nan", "int"]}
    assert points["loss"]["step"].to_pylist() == list(range(1000))
    assert points["loss"]["value"].to_pylist() == [1.0 / (step + 1) for step in range(1000)]
    assert points["acc"]["step"].to_pylist() == [3, 4, 7, 7]
    assert points["acc"]["value"].to_pylist() == [0.75, 1.0, 0.5, 0.25]
    nan = points["nan"]["value"].to_pylist()
    assert math.isnan(nan[0])
    assert nan[1:] == [math.inf, -math.inf]
    assert points["int"]["value"].to_pylist() == [3.0]
    micros = [stamp.timestamp() * 1e6 for stamp in points["loss"]["timestamp"].to_pylist()]
    assert micros == sorted(micros)
    assert before // 1000 - 1 <= micros[0]
    assert micros[-1] <= after // 1000 + 1


def test_threads_logging_at_once_lose_and_mix_nothing(path: str, store: str) -> None:
    per_thread = 20_000

    def log(run: pacha.Run, index: int) -> None:
        for step in range(per_thread):
            run.log_metric(f"thread/{index}", float(step))
            run.log_metric("shared", float(index), step)

    with pacha.run(uri=store, flush_rows=5_000, flush_interval=0.05) as run:
        threads = [threading.Thread(target=log, args=(run, index)) for index in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    table = pacha.read_metrics(run.run_id, uri=store)
    assert table.num_rows == 4 * 2 * per_thread
    for index in range(4):
        mine = _named(table, f"thread/{index}")
        assert mine["step"].to_pylist() == list(range(per_thread))
        assert mine["value"].to_pylist() == [float(step) for step in range(per_thread)]
    shared = _named(table, "shared")
    pairs = sorted(zip(shared["step"].to_pylist(), shared["value"].to_pylist()))
    assert pairs == sorted((step, float(i)) for i in range(4) for step in range(per_thread))


BAD_CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    (("", 1.0), {}),
    ((3, 1.0), {}),
    ((b"loss", 1.0), {}),
    (("loss", "1.0"), {}),
    (("loss", None), {}),
    (("loss", [1.0]), {}),
    (("loss", 1.0, -1), {}),
    (("loss", 1.0, 1.5), {}),
    (("loss", 1.0, True), {}),
    (("loss", 1.0, 2**63), {}),
    (("loss", 1.0), {"step": -3}),
    (("loss", 1.0), {"stepp": 3}),
    (("loss",), {}),
    (("loss", 1.0, 1, 2), {}),
    (("loss", 2**1100), {}),
    (("loss", 1.0), {"name": "x"}),
]


def _error(run: pacha.Run, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(Exception) as caught:  # noqa: PT011 (compared across the paths below)
        run.log_metric(*args, **kwargs)
    return type(caught.value).__name__, str(caught.value).replace(str(run.run_id), "<id>")


def test_bad_input_raises_the_same_errors_on_both_paths(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if NATIVE is None:
        pytest.skip("the C extension is not built here")
    errors: dict[str, list[tuple[str, str]]] = {}
    for name, module in [("c", NATIVE), ("python", None)]:
        monkeypatch.setattr(buffer, "native", module)
        with pacha.run(uri=str(tmp_path / name)) as run:
            run.log_metric("loss", 0.5)  # a name seen: bad steps and values pass the name check
            errors[name] = [_error(run, args, kwargs) for args, kwargs in BAD_CALLS]
            run.log_metric("last", 0.5, 2**63 - 1)
            errors[name].append(_error(run, ("last", 0.5), {}))  # no step after the largest
        errors[name].append(_error(run, ("loss", 0.5), {}))  # the run is finished
        table = pacha.read_metrics(run.run_id, uri=str(tmp_path / name))
        assert table["value"].to_pylist() == [0.5, 0.5]  # nothing bad was stored
    assert errors["c"] == errors["python"]
    assert all(kind != "SystemError" for kind, _ in errors["c"])


@pytest.mark.subprocess
@pytest.mark.parametrize("path", ["c", "python"])
def test_a_forked_child_stores_its_own_points_only(path: str, tmp_path: Path) -> None:
    if path == "c" and NATIVE is None:
        pytest.skip("the C extension is not built here")
    code = """
import os, sys
import pacha_sdk as pacha
with pacha.run(uri=sys.argv[1], flush_interval=3600) as run:
    for step in range(100):
        run.log_metric("parent", float(step))
    pid = os.fork()
    if pid == 0:
        assert run.get_metric("parent") == 99.0  # the parent's points, seen, not stored again
        for step in range(50):
            run.log_metric("child", float(step))
            run.log_metric("parent", 0.5, 1000 + step)
        run.complete()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
print(run.run_id)
"""
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        env=_env(path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    table = pacha.read_metrics(done.stdout.strip(), uri=str(tmp_path))
    parent = sorted(_named(table, "parent")["step"].to_pylist())
    assert parent == list(range(100)) + list(range(1000, 1050))
    assert _named(table, "child")["step"].to_pylist() == list(range(50))


@pytest.mark.subprocess
@pytest.mark.parametrize("path", ["c", "python"])
def test_a_killed_run_keeps_every_point_flushed_before_the_kill(path: str, tmp_path: Path) -> None:
    if path == "c" and NATIVE is None:
        pytest.skip("the C extension is not built here")
    code = """
import sys, time
import pacha_sdk as pacha
run = pacha.run(uri=sys.argv[1], flush_interval=0.05)
print(run.run_id, flush=True)
step = 0
while True:
    run.log_metric("loss", float(step))
    step += 1
    if step % 20_000 == 0:
        run.flush()
        print(step, flush=True)
"""
    with subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(path),
    ) as child:
        try:
            assert child.stdout is not None
            run_id = child.stdout.readline().strip()
            flushed = [int(child.stdout.readline()) for _ in range(3)]
            child.send_signal(signal.SIGKILL)
            assert child.wait(timeout=30) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
    steps = pacha.read_metrics(run_id, uri=str(tmp_path))["step"].to_pylist()
    assert steps == list(range(len(steps)))  # a prefix: nothing lost inside, nothing twice
    assert len(steps) >= flushed[-1]


def test_the_c_buffer_gives_memory_back_once_the_writer_takes_the_points(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if NATIVE is None:
        pytest.skip("the C extension is not built here")
    monkeypatch.setattr(buffer, "native", NATIVE)
    kept = MetricBuffer()
    rows = kept.rows
    assert isinstance(rows, NATIVE.PointBuffer)
    for step in range(300_000):
        rows.extend(("loss", 0.5, step, step))
    grown = rows.capacity
    taken = [len(batch) // 4 for batch in kept.batches(100_000)]
    assert taken == [100_000] * 3
    assert grown >= 300_000
    assert rows.capacity <= 1024  # back to the minimum, not the high-water mark
    assert kept.latest("loss") == (299_999, 0.5)  # the taken batches stay visible


def test_an_odd_point_reaches_the_writer_as_the_flat_list_would() -> None:
    # A value the columns cannot hold (here a plain object standing for a deferred
    # tensor) stays an object beside them, in its place.
    if NATIVE is None:
        pytest.skip("the C extension is not built here")
    held = NATIVE.PointBuffer()
    marker = object()
    held.extend(("a", 1.0, 0, 10, "b", marker, 1, 11, "a", 2.0, 2**63, 12))
    held.extend(("c", 3.0, 3, 13))
    assert len(held) == 16
    assert held.odd == 2
    three = ["a", 1.0, 0, 10, "b", marker, 1, 11, "a", 2.0, 2**63, 12]
    assert held.to_rows() == [*three, "c", 3.0, 3, 13]
    first = held.take(2)
    assert first.to_rows() == ["a", 1.0, 0, 10, "b", marker, 1, 11]
    held.discard(2)
    assert held.odd == 1
    assert held.to_rows() == ["a", 2.0, 2**63, 12, "c", 3.0, 3, 13]
    with pytest.raises(ValueError, match="not whole points"):
        held.extend(("a", 1.0, 0))
    with pytest.raises(TypeError, match="unhashable"):
        held.extend(([], 1.0, 0, 1))
    assert len(held) == 8  # a failed extend adds nothing


METRIC_NAMES = st.sampled_from(["loss", "acc", "lr", "grad/norm", "ünï"])
VALUES = st.one_of(st.floats(allow_nan=False), st.integers(-(2**53), 2**53), st.just(math.inf))
STEPS = st.one_of(st.none(), st.integers(0, 2**40))
CALLS = st.lists(
    st.one_of(
        st.tuples(st.just("one"), METRIC_NAMES, VALUES, STEPS),
        st.tuples(st.just("many"), st.dictionaries(METRIC_NAMES, VALUES, max_size=4), STEPS),
    ),
    max_size=40,
)


def _replay(calls: list[Any], store: str) -> list[dict[str, Any]]:
    with pacha.run(uri=store, flush_interval=3600) as run:
        for kind, first, second, *rest in calls:
            if kind == "one":
                run.log_metric(first, second, rest[0])
            else:
                run.log_metrics(first, second)
    table = pacha.read_metrics(run.run_id, uri=store).drop_columns(["run_id", "timestamp"])
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(calls=CALLS)
def test_both_paths_store_the_same_table(
    calls: list[Any], monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if NATIVE is None:
        pytest.skip("the C extension is not built here")
    tables = []
    for module in [NATIVE, None]:
        monkeypatch.setattr(buffer, "native", module)
        tables.append(_replay(calls, str(tmp_path_factory.mktemp("store"))))
    assert tables[0] == tables[1]


def test_a_c_batch_and_the_flat_list_build_the_same_part() -> None:
    if NATIVE is None:
        pytest.skip("the C extension is not built here")
    flat: list[Any] = []
    columns = NATIVE.PointBuffer()
    for index in range(1000):
        point = (["b", "a", "c"][index % 3], index * 0.5, (index * 7) % 11, 10**18 + index * 999)
        flat.extend(point)
        columns.extend(point)
    assert build_part("run", 2, columns.take()).equals(build_part("run", 2, flat))
