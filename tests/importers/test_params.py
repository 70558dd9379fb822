"""MLflow's string params become numbers and bools only where nothing is lost."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pacha_sdk.importers._params import build_hyperparameters, param_value


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_as_python_writes_it_comes_back(value: float) -> None:
    assert param_value(repr(value)) == value
    assert param_value(str(value)) == value


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_an_int_comes_back_as_that_int(value: int) -> None:
    assert param_value(str(value)) == value
    assert type(param_value(str(value))) is int


@given(st.text())
def test_whatever_is_converted_denotes_exactly_the_text(text: str) -> None:
    value = param_value(text)
    if isinstance(value, str):
        assert value == text
    elif isinstance(value, bool):
        assert text in ("True", "true", "False", "false")
    elif isinstance(value, int):
        assert str(value) == text
    else:
        assert isinstance(value, float)
        assert math.isfinite(value)
        assert Decimal(repr(value)) == Decimal(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("64", 64), ("-3", -3), ("0.01", 0.01), ("1e-4", 1e-4), ("2.50", 2.5), ("True", True),
        ("false", False), ("064", "064"), ("+3", "+3"), ("-0", "-0"), ("1_000", "1_000"),
        (" 1.5", " 1.5"), ("nan", "nan"), ("inf", "inf"), ("None", "None"), ("", ""),
        ("0.1000000000000000055511151231257827", "0.1000000000000000055511151231257827"),
        ("1e999", "1e999"), ("9223372036854775808", "9223372036854775808"), ("[1, 2]", "[1, 2]"),
    ],
)  # fmt: skip
def test_the_documented_examples(text: str, value: object) -> None:
    converted = param_value(text)
    assert converted == value
    assert type(converted) is type(value)


def test_named_fields_take_values_that_fit_and_custom_keeps_the_rest() -> None:
    hparams = build_hyperparameters(
        {"learning_rate": 3e-4, "batch_size": 32.0, "epochs": "ten", "warmup_steps": -5, "x": 1}
    )
    assert (hparams.learning_rate, hparams.batch_size, hparams.epochs) == (3e-4, 32, 10)
    assert hparams.warmup_steps is None
    assert hparams.custom == {"epochs": "ten", "warmup_steps": -5, "x": 1}
    assert hparams.as_flat_dict()["epochs"] == "ten"
