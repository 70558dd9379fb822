"""Hyperparameters from plain mappings: named fields, custom values, conversions, refusals."""

from __future__ import annotations

import enum
import math
import uuid
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pacha_sdk as pacha
from tests.strategies import anything, hparam_values

I64_MIN, I64_MAX = -(2**63), 2**63 - 1
EXACT_INT = 2**53


class Optimizer(enum.Enum):
    ADAMW = "adamw"
    SGD = "sgd"


class Precision(enum.IntEnum):
    HALF = 16
    FULL = 32


def _stored_hparams(run_id: str, uri: str) -> pacha.Hyperparameters:
    return pacha.load_run(run_id, uri=uri).hyperparameters


def _same(actual: Any, expected: Any) -> bool:
    """Equal and of the same JSON kind (1, 1.0 and True are different hyperparameters)."""
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_same(a, e) for a, e in zip(actual, expected))
        )
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == expected.keys()
            and all(_same(actual[k], expected[k]) for k in expected)
        )
    return type(actual) is type(expected) and bool(actual == expected)


def _assert_nothing_written(root: Path) -> None:
    assert not (root / "runs").exists() or not any((root / "runs").iterdir())
    assert not (root / "metrics").exists()


def test_plain_mapping_fills_named_fields_and_custom(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    hparams = {
        "learning_rate": 3e-4,
        "batch_size": 64,
        "epochs": 3,
        "weight_decay": 0.01,
        "max_grad_norm": 1,
        "warmup_steps": 100,
        "dropout": 0.1,
        "model_name": "bert-base",
        "use_amp": True,
        "layers": 12,
        "betas": [0.9, 0.999],
    }
    with pacha.run(hparams, uri=uri) as run:
        pass
    stored = _stored_hparams(run.run_id, uri)
    assert stored.learning_rate == 3e-4
    assert stored.batch_size == 64
    assert stored.epochs == 3
    assert stored.weight_decay == 0.01
    assert stored.max_grad_norm == 1.0
    assert type(stored.max_grad_norm) is float
    assert stored.warmup_steps == 100
    assert _same(
        stored.custom,
        {
            "dropout": 0.1,
            "model_name": "bert-base",
            "use_amp": True,
            "layers": 12,
            "betas": [0.9, 0.999],
        },
    )
    assert stored == run.hyperparameters


def test_defaults_fill_named_fields_not_given(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    with pacha.run({"seed": 7}, uri=uri) as run:
        pass
    stored = _stored_hparams(run.run_id, uri)
    assert (stored.learning_rate, stored.batch_size, stored.epochs, stored.weight_decay) == (
        1e-3,
        32,
        10,
        0.0,
    )
    assert stored.max_grad_norm is None
    assert stored.warmup_steps is None
    assert _same(stored.custom, {"seed": 7})


def test_hyperparameters_model_is_stored_as_given(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    hp = pacha.Hyperparameters(learning_rate=3e-4, batch_size=64, custom={"dropout": 0.1})
    with pacha.run(hp, uri=uri) as run:
        pass
    assert _stored_hparams(run.run_id, uri) == hp


def test_nested_mappings_flatten_to_dotted_keys(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    hparams = {
        "optimizer": {"name": "adamw", "beta1": 0.9, "schedule": {"warmup": 10, "kind": "cos"}},
        "data": {"augment": False},
        "epochs": 2,
    }
    with pacha.run(hparams, uri=uri) as run:
        pass
    stored = _stored_hparams(run.run_id, uri)
    assert stored.epochs == 2
    assert _same(
        stored.custom,
        {
            "optimizer.name": "adamw",
            "optimizer.beta1": 0.9,
            "optimizer.schedule.warmup": 10,
            "optimizer.schedule.kind": "cos",
            "data.augment": False,
        },
    )


def test_lossless_conversions(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    hparams = {
        "learning_rate": np.float32(0.5),
        "batch_size": np.int64(3),
        "warmup_steps": np.uint16(5),
        "f32": np.float32(0.5),
        "i64": np.int64(3),
        "flag": np.bool_(True),
        "zero_d": np.array(2.5),
        "zero_d_int": np.array(4),
        "shape": (224, 224, 3),
        "nested_tuple": ((1, 2), ("a",)),
        "path": Path("/data/train"),
        "pure_path": PurePosixPath("relative/dir"),
        "optimizer": Optimizer.ADAMW,
        "precision": Precision.HALF,
        "exact_decimal": Decimal("0.25"),
        "exact_fraction": Fraction(3, 4),
        "numpy_list": [np.float64(0.1), np.int32(2)],
        "nothing": None,
        "max_grad_norm": None,
    }
    with pacha.run(hparams, uri=uri) as run:
        pass
    stored = _stored_hparams(run.run_id, uri)
    assert stored.learning_rate == 0.5
    assert type(stored.learning_rate) is float
    assert stored.batch_size == 3
    assert type(stored.batch_size) is int
    assert stored.warmup_steps == 5
    assert stored.max_grad_norm is None
    assert _same(
        stored.custom,
        {
            "f32": 0.5,
            "i64": 3,
            "flag": True,
            "zero_d": 2.5,
            "zero_d_int": 4,
            "shape": [224, 224, 3],
            "nested_tuple": [[1, 2], ["a"]],
            "path": "/data/train",
            "pure_path": "relative/dir",
            "optimizer": "adamw",
            "precision": 16,
            "exact_decimal": 0.25,
            "exact_fraction": 0.75,
            "numpy_list": [0.1, 2],
        },
    )
    assert "nothing" not in stored.custom


class _WeirdKey:
    def __repr__(self) -> str:
        return "WeirdKey()"


REFUSED: list[tuple[str, object]] = [
    ("model", object()),
    ("classes", {"cat", "dog"}),
    ("blob", b"\x00\x01"),
    ("lr_nan", math.nan),
    ("lr_inf", math.inf),
    ("neg_inf", -math.inf),
    ("np_nan", np.float64("nan")),
    ("huge", 2**64),
    ("tiny", -(2**63) - 1),
    ("holes", [1, None, 3]),
    ("deep_holes", [[None]]),
    ("decimal", Decimal("0.1")),
    ("fraction", Fraction(1, 3)),
    ("complex", complex(1, 2)),
    ("array", np.array([1.0, 2.0])),
    ("list_of_dicts", [{"a": 1}]),
    ("surrogate", "\ud800"),
    ("longdouble_complex", np.clongdouble(1)),
]


@pytest.mark.parametrize(("key", "value"), REFUSED, ids=[key for key, _ in REFUSED])
def test_values_that_are_not_json_are_refused_naming_the_key(
    tmp_path: Path, key: str, value: object
) -> None:
    root = tmp_path / "store"
    with pytest.raises(pacha.InvalidHyperparameterError, match=key) as caught:
        pacha.run({"ok": 1, key: value, "after": 2}, uri=str(root))
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, pacha.PachaError)
    assert caught.value.key == key
    _assert_nothing_written(root)
    assert not root.exists()


@pytest.mark.parametrize(
    ("hparams", "key"),
    [
        ({"optimizer": {1: "x"}}, "optimizer"),
        ({"optimizer": {_WeirdKey(): "x"}}, "optimizer"),
        ({"optimizer": {"": 0.9}}, "optimizer"),
        ({"optimizer": {"betas": {"b1": math.nan}}}, "optimizer.betas.b1"),
        ({"learning_rate": "fast"}, "learning_rate"),
        ({"learning_rate": math.inf}, "learning_rate"),
        ({"learning_rate": True}, "learning_rate"),
        ({"batch_size": -1}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"batch_size": "32"}, "batch_size"),
        ({"epochs": None}, "epochs"),
        ({"warmup_steps": -5}, "warmup_steps"),
        ({"\ud800": 1}, "ud800"),
    ],
)
def test_bad_keys_and_bad_named_fields_are_refused(
    tmp_path: Path, hparams: Mapping[Any, Any], key: str
) -> None:
    root = tmp_path / "store"
    with pytest.raises(pacha.InvalidHyperparameterError, match=key) as caught:
        pacha.run(hparams, uri=str(root))
    assert isinstance(caught.value, ValueError)
    _assert_nothing_written(root)


def test_refusal_leaves_existing_runs_alone(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    with pacha.run({"seed": 1}, uri=uri) as good:
        good.log_metric("loss", 0.5, 0)
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "store").rglob("*"))
    with pytest.raises(pacha.InvalidHyperparameterError, match="model"):
        pacha.run({"model": object()}, uri=uri)
    after = sorted(p.relative_to(tmp_path) for p in (tmp_path / "store").rglob("*"))
    assert after == before
    assert [r.run_id for r in pacha.list_runs(uri=uri)] == [good.run_id]


def test_decorator_leaves_out_arguments_that_are_not_hyperparameters(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")

    @pacha.track(uri=uri)
    def train(
        model: object,
        learning_rate: float = 1e-3,
        epochs: int = 3,
        loader: object = None,
        **kw: Any,
    ) -> str:
        current = pacha.active_run()
        assert current is not None
        pacha.log_metric("loss", 0.5, step=0)
        return current.run_id

    run_id = train(object(), extra=[1, 2])
    record = pacha.load_run(run_id, uri=uri)
    assert record.status is pacha.RunStatus.COMPLETED
    hp = record.hyperparameters
    assert hp.learning_rate == 1e-3
    assert hp.epochs == 3
    assert hp.batch_size == 32  # not an argument: pacha's default
    assert _same(hp.custom, {"extra": [1, 2]})
    assert "model" not in hp.custom
    assert "loader" not in hp.custom

    run_id = train(object(), learning_rate=np.float32(0.25), loader=iter([]), bad=math.nan, s="x")
    hp = pacha.load_run(run_id, uri=uri).hyperparameters
    assert hp.learning_rate == 0.25
    assert _same(hp.custom, {"s": "x"})


# Fuzzing: what pacha.run({"k": value}) stores is exactly the documented conversion.


class _Refused(Exception):
    """The documented conversion refuses the value."""


def _expected_scalar(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _Refused from None
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -EXACT_INT <= value <= EXACT_INT:  # pacha reads custom numbers as f64
            raise _Refused
        return value
    if isinstance(value, (list, tuple)):
        return [_expected_scalar(item) for item in value]
    if isinstance(value, (float, Decimal, Fraction)):
        try:
            as_float = float(value)
        except (ValueError, OverflowError):
            raise _Refused from None
        if not math.isfinite(as_float) or as_float != value:
            raise _Refused
        return as_float
    raise _Refused


def _expected_custom(key: str, value: Any) -> dict[str, Any]:
    """pacha's documented conversion of ``{key: value}`` into ``custom``."""
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for sub_key, sub_value in value.items():
            if not isinstance(sub_key, str) or not sub_key:
                raise _Refused
            flat.update(_expected_custom(f"{key}.{sub_key}", sub_value))
        return flat
    if value is None:
        return {}
    if isinstance(value, (list, tuple)) and any(item is None for item in value):
        raise _Refused
    return {key: _expected_scalar(value)}


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    value=st.one_of(anything, hparam_values, st.dictionaries(st.text(max_size=4), hparam_values))
)
def test_fuzz_run_stores_the_documented_conversion_or_refuses_naming_the_key(
    value: Any,
) -> None:
    uri = f"memory://hparams-{uuid.uuid4().hex}"
    try:
        expected: dict[str, Any] | None = _expected_custom("k", value)
    except _Refused:
        expected = None
    refusal: Exception | None = None
    try:
        run = pacha.run({"k": value}, uri=uri)
    except (pacha.PachaError, TypeError, ValueError) as error:
        refusal = error
    if refusal is not None:
        if isinstance(refusal, pacha.InvalidHyperparameterError):
            assert refusal.key.startswith("k")
            assert repr(refusal.key) in str(refusal)
        else:
            assert "'k" in str(refusal)
        assert expected is None, f"refused {value!r}: {refusal}"
        assert pacha.list_runs(uri=uri) == []
        return
    run.complete()
    assert expected is not None, f"accepted {value!r} as {run.hyperparameters.custom!r}"
    stored = _stored_hparams(run.run_id, uri)
    assert _same(stored.custom, expected), (stored.custom, expected)


numpy_scalars = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(np.float32),
    st.floats(allow_nan=True, allow_infinity=True).map(np.float64),
    st.integers(I64_MIN, I64_MAX).map(np.int64),
    st.integers(0, 2**64 - 1).map(np.uint64),
    st.booleans().map(np.bool_),
    st.floats(allow_nan=False, allow_infinity=False).map(np.array),
)


@settings(max_examples=100, deadline=None)
@given(value=numpy_scalars)
def test_fuzz_numpy_scalars_convert_to_python_numbers(value: Any) -> None:
    uri = f"memory://hparams-{uuid.uuid4().hex}"
    item = value.item()
    try:
        expected = _expected_custom("k", item)
    except _Refused:
        with pytest.raises(pacha.InvalidHyperparameterError, match="'k'"):
            pacha.run({"k": value}, uri=uri)
        return
    run = pacha.run({"k": value}, uri=uri)
    run.complete()
    assert _same(_stored_hparams(run.run_id, uri).custom, expected)
