"""Bad input gets a clear error naming it, and nothing already logged or stored is lost."""

from __future__ import annotations

import json
import math
import numbers
import operator
import uuid
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pacha_sdk as pacha

# Helpers


def _points(table: pa.Table) -> list[tuple[str, int, float]]:
    """(name, step, value) rows sorted; NaN sorts and compares via its key."""
    rows = zip(table["name"].to_pylist(), table["step"].to_pylist(), table["value"].to_pylist())
    return sorted(rows, key=_point_key)


def _point_key(point: tuple[str, int, float]) -> tuple[str, int, bool, float]:
    name, step, value = point
    return (name, step, math.isnan(value), 0.0 if math.isnan(value) else value)


def _same_points(table: pa.Table, expected: list[tuple[str, int, float]]) -> bool:
    return [_point_key(p) for p in _points(table)] == sorted(map(_point_key, expected))


def _stored_status(run: pacha.Run) -> pacha.RunStatus:
    return pacha.load_run(run.run_id, uri=run.uri).status


def _check_survives(uri: str, attempt: Any) -> None:
    """Log a point, make a bad call, log another; both good points are stored."""
    with pacha.run(uri=uri, flush_interval=0.05) as run:
        run.log_metric("loss", 0.5, 0)
        run.log_metrics({"acc": 0.1}, step=0)
        assert run.flush(timeout=10)  # the first points are in the store already
        attempt(run)
        run.log_metric("loss", 0.25, 1)
    assert _stored_status(run) is pacha.RunStatus.COMPLETED
    table = pacha.read_metrics(run.run_id, uri=uri)
    assert _same_points(table, [("loss", 0, 0.5), ("acc", 0, 0.1), ("loss", 1, 0.25)])
    assert pacha.load_run(run.run_id, uri=uri).summary == {"loss": 0.25, "acc": 0.1}


# Metric names


BAD_NAMES: list[Any] = [3, None, b"x", ("a",), ["a"], {"a": 1}, 1.5, "", "\ud800", "ok\udfff"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_bad_metric_names_are_refused_naming_them(store: str, name: Any) -> None:
    def attempt(run: pacha.Run) -> None:
        with pytest.raises(pacha.InvalidMetricError) as caught:
            run.log_metric(name, 1.0, 0)
        assert repr(name) in str(caught.value)
        assert isinstance(caught.value, ValueError)
        if not isinstance(name, str):
            assert isinstance(caught.value, pacha.MetricTypeError)
            assert isinstance(caught.value, TypeError)

        if isinstance(name, (list, dict)):
            return  # unhashable: it cannot be a key of the mapping log_metrics takes
        with pytest.raises(pacha.InvalidMetricError) as caught:
            run.log_metrics({"fine": 1.0, name: 2.0}, step=3)
        assert repr(name) in str(caught.value)

    _check_survives(store, attempt)


# Metric values


BAD_VALUES: list[Any] = [
    "0.5",
    None,
    [1.0],
    {},
    complex(1, 2),
    np.array([1.0, 2.0]),
    np.array([1.0]),
    np.complex128(1 + 2j),
    object(),
    b"1",
]


@pytest.mark.parametrize("value", BAD_VALUES, ids=repr)
def test_non_numeric_values_are_a_type_error_naming_metric_and_value(
    store: str, value: Any
) -> None:
    def attempt(run: pacha.Run) -> None:
        with pytest.raises(pacha.MetricTypeError) as caught:
            run.log_metric("loss", value, 5)
        message = str(caught.value)
        assert "'loss'" in message
        # A numpy scalar is shown as the Python value it converts to.
        shown = value.item() if isinstance(value, np.generic) else value
        assert repr(shown) in message
        assert isinstance(caught.value, TypeError)
        assert isinstance(caught.value, pacha.PachaError)

        with pytest.raises(pacha.MetricTypeError, match="'grad'"):
            pacha.log_metric("grad", value, 5)

    _check_survives(store, attempt)


@pytest.mark.parametrize(
    "value",
    [2**53 + 1, -(2**53) - 1, 10**400, Fraction(10**400, 1), Decimal("1e400"), Decimal("sNaN")],
    ids=repr,
)
def test_numbers_a_float64_cannot_hold_are_refused(store: str, value: Any) -> None:
    def attempt(run: pacha.Run) -> None:
        with pytest.raises(pacha.InvalidMetricError, match="'loss'") as caught:
            run.log_metric("loss", value, 3)
        assert isinstance(caught.value, ValueError)

    _check_survives(store, attempt)


ACCEPTED: list[tuple[Any, float]] = [
    (np.float32(0.5), 0.5),
    (np.float64(0.1), 0.1),
    (np.int64(7), 7.0),
    (np.array(2.5), 2.5),
    (np.bool_(False), 0.0),
    (True, 1.0),
    (Decimal("0.25"), 0.25),
    (Fraction(1, 4), 0.25),
    (2**53, float(2**53)),
    (-(2**53), -float(2**53)),
    (0, 0.0),
    (math.nan, math.nan),
    (math.inf, math.inf),
    (-math.inf, -math.inf),
    (np.longdouble(0.5), 0.5),
    (Decimal("-Infinity"), -math.inf),
]


def test_numeric_values_are_accepted_and_stored_exactly(store: str) -> None:
    with pacha.run(uri=store) as run:
        for index, (value, _) in enumerate(ACCEPTED):
            run.log_metric(f"m{index:02d}", value, np.int64(4))
        run.log_metric("int_step", 1.0, np.uint8(9))
        run.log_metrics({"batched": np.float32(0.75)}, step=np.int32(2))
    table = pacha.read_metrics(run.run_id, uri=store)
    expected = [(f"m{i:02d}", 4, stored) for i, (_, stored) in enumerate(ACCEPTED)]
    expected += [("int_step", 9, 1.0), ("batched", 2, 0.75)]
    assert _same_points(table, expected)
    assert table["value"].type == pa.float64()


# Steps


BAD_STEPS: list[Any] = [-1, 1.5, True, "3", 2**63, np.int64(-2), np.float64(2.0), [1]]


@pytest.mark.parametrize("step", BAD_STEPS, ids=repr)
def test_bad_steps_are_refused_naming_the_step(store: str, step: Any) -> None:
    def attempt(run: pacha.Run) -> None:
        with pytest.raises(pacha.InvalidMetricError) as caught:
            run.log_metric("loss", 1.0, step)
        shown = str(operator.index(step)) if isinstance(step, np.integer) else repr(step)
        assert shown in str(caught.value)

        with pytest.raises(pacha.InvalidMetricError) as caught:
            run.log_metrics({"loss": 1.0, "acc": 2.0}, step=step)
        assert shown in str(caught.value)

    _check_survives(store, attempt)


def test_step_types_match_python_expectations(store: str) -> None:
    with pacha.run(uri=store) as run:
        with pytest.raises(TypeError):
            run.log_metric("loss", 1.0, 1.5)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            run.log_metric("loss", 1.0, "3")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="negative"):
            run.log_metric("loss", 1.0, -1)


# log_metrics is all or nothing


def test_log_metrics_with_one_bad_value_stores_nothing_from_that_call(store: str) -> None:
    with pacha.run(uri=store) as run:
        run.log_metrics({"a": 1.0, "b": 2.0}, step=0)
        with pytest.raises(pacha.MetricTypeError, match="'c'"):
            run.log_metrics({"a": 3.0, "b": 4.0, "c": "bad", "d": 5.0}, step=1)  # type: ignore[dict-item]
        with pytest.raises(pacha.InvalidMetricError, match="''"):
            run.log_metrics({"a": 3.0, "": 1.0}, step=1)
        with pytest.raises(pacha.MetricTypeError):
            run.log_metrics([("a", 1.0)])  # type: ignore[arg-type]
        # The failed calls did not move the default steps either.
        run.log_metrics({"a": 6.0, "b": 7.0})
    table = pacha.read_metrics(run.run_id, uri=store)
    assert _same_points(table, [("a", 0, 1.0), ("b", 0, 2.0), ("a", 1, 6.0), ("b", 1, 7.0)])


# Outside a run, and finished runs


def test_module_level_logging_without_an_active_run() -> None:
    assert pacha.active_run() is None
    with pytest.raises(pacha.NoActiveRunError, match="log_metric"):
        pacha.log_metric("loss", 0.5, step=0)
    with pytest.raises(pacha.NoActiveRunError, match="log_metrics"):
        pacha.log_metrics({"loss": 0.5})
    assert issubclass(pacha.NoActiveRunError, pacha.PachaError)


def test_logging_into_a_finished_run_is_refused(store: str) -> None:
    with pacha.run(uri=store) as run:
        run.log_metric("loss", 0.5, 0)
    with pytest.raises(pacha.RunStateError, match=run.run_id):
        run.log_metric("loss", 0.1, 1)
    with pytest.raises(pacha.RunStateError):
        run.log_metrics({"loss": 0.1})
    assert _same_points(pacha.read_metrics(run.run_id, uri=store), [("loss", 0, 0.5)])


# Bad arguments to run()


def test_unknown_uri_scheme(tmp_path: Path) -> None:
    with pytest.raises(pacha.UnknownSchemeError, match="nope") as caught:
        pacha.run(uri="nope://x")
    assert isinstance(caught.value, ValueError)
    with pytest.raises(pacha.UnknownSchemeError, match="nope"):
        pacha.read_metrics(str(uuid.uuid4()), uri="nope://x")
    assert list(tmp_path.iterdir()) == []


def test_run_id_that_is_not_a_uuid(store: str) -> None:
    with pytest.raises(pacha.InvalidRunIdError, match="abc") as caught:
        pacha.run(run_id="abc", uri=store)
    assert isinstance(caught.value, ValueError)
    with pytest.raises(pacha.InvalidRunIdError, match="abc"):
        pacha.read_metrics("abc", uri=store)
    with pytest.raises(pacha.InvalidRunIdError, match="abc"):
        pacha.load_run("abc", uri=store)
    assert not Path(store).exists()


@pytest.mark.parametrize("name", ["../escape", "/abs", "a/../../b", "", "tab\there"])
def test_run_names_that_escape_or_are_unusable(store: str, name: str) -> None:
    with pytest.raises(pacha.UnsafeNameError) as caught:
        pacha.run(name=name, uri=store)
    assert repr(name) in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert not Path(store).exists()


@pytest.mark.parametrize(
    "options",
    [
        {"flush_interval": 0},
        {"flush_interval": -1.0},
        {"flush_interval": math.nan},
        {"flush_rows": 0},
        {"flush_rows": 1.5},
    ],
    ids=repr,
)
def test_flush_settings_must_be_positive(store: str, options: dict[str, Any]) -> None:
    (key,) = options
    with pytest.raises(ValueError, match=key):
        pacha.run(uri=store, **options)
    assert not Path(store).exists()


def test_tags_that_are_not_unicode_text_are_refused(store: str) -> None:
    with pytest.raises(ValueError, match="tag"):
        pacha.run(uri=store, tags={"\ud800": "x"})
    with pytest.raises(ValueError, match="tag"):
        pacha.run(uri=store, tags={"team": "\udcff"})
    assert not Path(store).exists()


def test_error_message_with_a_lone_surrogate_still_fails_the_run(store: str) -> None:
    # Text decoded with errors="surrogateescape" (file names, subprocess output)
    # carries lone surrogates; run.json is UTF-8, so they are stored escaped.
    run = pacha.run(uri=store)

    def train() -> None:
        with run:
            run.log_metric("loss", 0.5, 0)
            raise OSError("cannot open data-\udcff.bin")

    with pytest.raises(OSError, match="cannot open") as caught:
        train()
    assert "\udcff" in str(caught.value)  # the user's own error, unchanged
    record = pacha.load_run(run.run_id, uri=store)
    assert record.status is pacha.RunStatus.FAILED
    assert record.error_message == "OSError: cannot open data-\\udcff.bin"
    traceback = record.extra["traceback"]
    assert isinstance(traceback, str)
    assert "data-\\udcff.bin" in traceback
    assert _same_points(pacha.read_metrics(run.run_id, uri=store), [("loss", 0, 0.5)])


# Reading what is not there or not valid


def test_reading_an_unknown_run(store: str) -> None:
    with pacha.run(uri=store) as run:
        run.log_metric("loss", 1.0, 0)
    missing = str(uuid.uuid4())
    with pytest.raises(pacha.RunNotFoundError, match=missing) as caught:
        pacha.read_metrics(missing, uri=store)
    assert isinstance(caught.value, LookupError)
    with pytest.raises(pacha.RunNotFoundError, match=missing):
        pacha.read_metrics([run.run_id, missing], uri=store)
    with pytest.raises(pacha.RunNotFoundError, match=missing):
        pacha.load_run(missing, uri=store)


def test_list_runs_of_a_root_that_does_not_exist(tmp_path: Path) -> None:
    root = tmp_path / "never-written"
    with pytest.raises(pacha.StoreNotFoundError, match="never-written"):
        pacha.list_runs(uri=str(root))  # a mistyped path is not "no runs"
    with pytest.raises(pacha.StoreNotFoundError, match="never-written"):
        pacha.best_run("loss", uri=str(root))
    assert not root.exists()


def _valid_record_text(run_id: str) -> str:
    return pacha.ExperimentRun(run_id=pacha.RunId(run_id)).model_dump_json()


CORRUPTIONS: dict[str, Any] = {
    "truncated": lambda text: text[: len(text) // 2],
    "empty": lambda text: "",
    "wrong_types": lambda text: text.replace('"pending"', "42"),
    "bad_timestamp": lambda text: json.dumps({**json.loads(text), "started_at": "yesterday"}),
    "json_array": lambda text: "[" + text + "]",
    "not_utf8": lambda text: "\udcff",
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupted_run_json(store: str, corruption: str) -> None:
    with pacha.run(uri=store) as good:
        good.log_metric("loss", 0.5, 0)
    with pacha.run(uri=store) as other:
        pass
    with pacha.run(uri=store) as broken:
        broken.log_metric("loss", 0.1, 0)
    path = Path(store) / "runs" / broken.run_id / "run.json"
    text = CORRUPTIONS[corruption](_valid_record_text(broken.run_id))
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))

    with pytest.raises(pacha.InvalidRecordError) as caught:
        pacha.load_run(broken.run_id, uri=store)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, ValueError)

    with pytest.warns(UserWarning, match=broken.run_id):
        runs = pacha.list_runs(uri=store)
    assert {run.run_id for run in runs} == {good.run_id, other.run_id}
    with pytest.warns(UserWarning, match=broken.run_id):
        assert pacha.best_run("loss", uri=store) is not None

    # The points of the broken record are untouched.
    assert _same_points(pacha.read_metrics(broken.run_id, uri=store), [("loss", 0, 0.1)])


# Fuzzing log_metric


names = st.one_of(
    st.sampled_from(["loss", "acc", "lr"]),
    st.text(max_size=4),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2),
    st.integers(),
    st.none(),
    st.binary(max_size=2),
    st.tuples(st.text(max_size=2)),
    st.lists(st.text(max_size=2), max_size=2),
)
values = st.one_of(
    st.floats(),
    st.integers(),
    st.integers(min_value=2**52, max_value=2**80),
    st.booleans(),
    st.decimals(),
    st.fractions(),
    st.sampled_from([Fraction(10**400, 1), Decimal("1e400"), Decimal("sNaN")]),
    st.floats(width=32).map(np.float32),
    st.integers(-(2**63), 2**63 - 1).map(np.int64),
    st.floats().map(np.array),
    st.text(max_size=3),
    st.none(),
    st.complex_numbers(),
    st.lists(st.floats(), max_size=2),
    st.lists(st.floats(), min_size=2, max_size=2).map(np.array),
)
steps = st.one_of(
    st.none(),
    st.integers(min_value=-3, max_value=50),
    st.integers(min_value=2**62, max_value=2**64),
    st.floats(),
    st.booleans(),
    st.text(max_size=2),
    st.integers(0, 2**63 - 1).map(np.int64),
    st.integers(0, 255).map(np.uint8),
)


def _looks_numeric(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.ndim == 0
    return isinstance(value, (numbers.Real, Decimal)) and not isinstance(value, complex)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(calls=st.lists(st.tuples(names, values, steps), min_size=1, max_size=25))
def test_fuzz_log_metric_stores_exactly_the_accepted_points(
    calls: list[tuple[Any, Any, Any]],
) -> None:
    uri = f"memory://bad-input-{uuid.uuid4().hex}"
    accepted: list[tuple[str, int, float]] = []
    last_step: dict[str, int] = {}
    with pacha.run(uri=uri, flush_rows=7) as run:
        for name, value, step in calls:
            refusal: Exception | None = None
            try:
                run.log_metric(name, value, step)
            except (pacha.PachaError, TypeError, ValueError) as error:
                refusal = error
            if refusal is not None:
                assert isinstance(refusal, pacha.PachaError), repr(refusal)
                continue
            assert isinstance(name, str)
            assert name
            assert _looks_numeric(value), f"accepted the value {value!r}"
            stored_step = last_step.get(name, -1) + 1 if step is None else operator.index(step)
            assert 0 <= stored_step < 2**63
            last_step[name] = stored_step
            accepted.append((name, stored_step, float(value)))
    assert _stored_status(run) is pacha.RunStatus.COMPLETED
    table = pacha.read_metrics(run.run_id, uri=uri)
    assert _same_points(table, accepted)
    assert pacha.list_runs(uri=uri)[0].run_id == run.run_id
