"""Fuzz suite, small: odd input is stored faithfully or refused clearly, never corrupting a store.

``python -m tests.reliability.fuzz --examples 500`` runs the same targets
longer and prints the figures table.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pacha_sdk as pacha
from tests.reliability import fuzz

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


@FUZZ
@given(calls=fuzz.metric_calls)
def test_metric_names_values_and_steps(calls: list[tuple[Any, ...]]) -> None:
    fuzz.check_metric_calls(calls, fuzz.Tally())


@FUZZ
@given(hparams=fuzz.hyperparameter_mappings)
def test_hyperparameters(hparams: dict[Any, Any]) -> None:
    fuzz.check_hyperparameters(hparams, fuzz.Tally())


@FUZZ
@given(name_and_tags=st.tuples(fuzz.display_names, fuzz.tag_sets))
def test_run_names_and_tags(name_and_tags: tuple[Any, Any]) -> None:
    fuzz.check_name_and_tags(name_and_tags, fuzz.Tally())


@FUZZ
@given(name=fuzz.display_names)
def test_artifact_names(name: Any) -> None:
    fuzz.check_artifact_name(name, fuzz.Tally())


@FUZZ
@given(mutation=fuzz.record_mutations)
def test_damaged_or_future_run_json(mutation: tuple[str, Any]) -> None:
    fuzz.check_stored_record(mutation, fuzz.Tally())


# Examples hypothesis found, or that the README promises, pinned.


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (True, 1.0),
        (np.bool_(False), 0.0),
        (np.float32(0.1), float(np.float32(0.1))),
        (np.array(7), 7.0),
        (np.int64(-3), -3.0),
        (Decimal("0.1"), 0.1),
        (2**53, 2.0**53),
    ],
    ids=repr,
)
def test_scalars_and_bools_are_stored_as_float64(value: Any, stored: float) -> None:
    tally = fuzz.Tally()
    fuzz.check_metric_calls([("one", "m", value, 0)], tally)
    assert tally.accepted == 1
    assert fuzz.expected_value(value) == stored


def test_keys_that_flatten_to_the_same_name_are_refused(store: str) -> None:
    with pytest.raises(pacha.InvalidHyperparameterError, match=r"'a\.b'.*given twice"):
        pacha.run({"a.b": 1, "a": {"b": 2}}, uri=store)
    assert not Path(store).exists()  # nothing written


def test_a_long_artifact_name_downloads_under_its_hash(store: str, tmp_path: Path) -> None:
    fuzz.check_artifact_name("n" * 300, fuzz.Tally())
    with pacha.run(uri=store, system_metrics=False) as run:
        ref = run.log_artifact(b"x", name="n" * 300)
    assert pacha.download_artifact(ref, tmp_path, uri=store).name == ref.content_hash


def test_attaching_keeps_fields_a_newer_sdk_wrote(store: str) -> None:
    with pacha.run(uri=store, system_metrics=False) as run:
        pass
    path = Path(store, "runs", run.run_id, "run.json")
    data = json.loads(path.read_text())
    data["lineage_v2"] = {"inputs": []}
    path.write_text(json.dumps(data))
    with pacha.run(uri=store, run_id=run.run_id, system_metrics=False):
        pass
    assert "lineage_v2" in json.loads(path.read_text())
