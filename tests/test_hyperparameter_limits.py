"""Every run.json the SDK writes loads in pacha 0.2.5 (serde) and back in the SDK.

pacha reads ``batch_size``, ``epochs`` and ``warmup_steps`` as ``usize``
(u64 here), recipe versions as ``u32``, and custom values as an untagged
enum whose first variant is ``Float(f64)``: every JSON number in ``custom``
loads as a float there, so an int beyond 2**53 would change value. JSON has
no NaN. What cannot be stored so that both readers agree is refused when the
run is created, naming the key; nothing is written.
"""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import pacha_sdk as pacha
from tests.pacha_serde import real_serde, serde_problem
from tests.strategies import hparam_values

EXACT = 2**53


def stored_text(uri: str, run_id: str) -> str:
    return (Path(uri) / "runs" / run_id / "run.json").read_text()


def assert_nothing_written(root: Path) -> None:
    assert not (root / "runs").exists()


@pytest.mark.parametrize(
    "custom",
    [{"x": math.nan}, {"x": math.inf}, {"x": -math.inf}, {"x": [1.0, math.nan]}],
    ids=["nan", "inf", "-inf", "nan-in-list"],
)
def test_non_finite_custom_values_are_refused_by_the_model(custom: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match=r"custom\.x"):
        pacha.Hyperparameters(custom=custom)


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"batch_size": 2**64}, "batch_size"),
        ({"epochs": 2**64}, "epochs"),
        ({"warmup_steps": 2**70}, "warmup_steps"),
    ],
)
def test_named_ints_beyond_usize_are_refused_by_the_model(fields: dict[str, int], key: str) -> None:
    with pytest.raises(ValidationError, match=key):
        pacha.Hyperparameters(**fields)


def test_named_ints_up_to_usize_are_stored_exactly(store: str) -> None:
    hp = pacha.Hyperparameters(batch_size=2**64 - 1, epochs=2**63, warmup_steps=2**53 + 1)
    with pacha.run(hp, uri=store, system_metrics=False) as run:
        pass
    assert serde_problem(stored_text(store, run.run_id)) is None
    stored = pacha.load_run(run.run_id, uri=store).hyperparameters
    assert (stored.batch_size, stored.epochs, stored.warmup_steps) == (2**64 - 1, 2**63, EXACT + 1)


@pytest.mark.parametrize("version", [{"major": 2**32}, {"major": 1, "minor": 0, "patch": 2**40}])
def test_recipe_versions_beyond_u32_are_refused(version: dict[str, int]) -> None:
    with pytest.raises(ValidationError, match="less than or equal to 4294967295"):
        pacha.RecipeReference("bert", version)
    with pytest.raises(ValidationError):
        pacha.RecipeVersion.parse(
            ".".join(str(version.get(k, 0)) for k in ("major", "minor", "patch"))
        )


def test_the_largest_recipe_version_is_stored(store: str) -> None:
    recipe = pacha.RecipeReference("bert", f"{2**32 - 1}.0.{2**32 - 1}")
    with pacha.run(uri=store, recipe=recipe, system_metrics=False) as run:
        pass
    assert serde_problem(stored_text(store, run.run_id)) is None
    assert pacha.load_run(run.run_id, uri=store).recipe == recipe


@pytest.mark.parametrize(
    "value", [EXACT + 1, -(EXACT + 1), 2**63 - 1, [1, 2**60]], ids=["2**53+1", "neg", "i64", "list"]
)
def test_custom_ints_that_pacha_would_read_as_another_number_are_refused(
    tmp_path: Path, value: Any
) -> None:
    root = tmp_path / "store"
    with pytest.raises(pacha.InvalidHyperparameterError, match=r"'seed'.*2\*\*53.*str") as caught:
        pacha.run({"seed": value}, uri=str(root))
    assert caught.value.key == "seed"
    assert_nothing_written(root)


def test_custom_ints_up_to_2_53_and_their_str_form_are_kept(store: str) -> None:
    with pacha.run({"seed": EXACT, "low": -EXACT, "big": str(2**63 - 1)}, uri=store) as run:
        pass
    assert serde_problem(stored_text(store, run.run_id)) is None
    custom = pacha.load_run(run.run_id, uri=store).hyperparameters.custom
    assert custom == {"seed": EXACT, "low": -EXACT, "big": "9223372036854775807"}


def test_a_model_changed_after_it_was_built_is_checked_when_the_run_is_created(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    hp = pacha.Hyperparameters()
    hp.custom["x"] = math.nan  # pydantic does not validate assignment
    with pytest.raises(pacha.InvalidHyperparameterError, match="'x'"):
        pacha.run(hp, uri=str(root))
    hp = pacha.Hyperparameters.model_construct(batch_size=2**64, custom={})
    with pytest.raises(pacha.InvalidHyperparameterError, match="'batch_size'"):
        pacha.run(hp, uri=str(root))
    built = pacha.Hyperparameters(custom={"seed": 2**60})  # pacha would read 2**60 + 1 wrongly
    built.custom["seed"] = 2**60 + 1
    with pytest.raises(pacha.InvalidHyperparameterError, match="'seed'"):
        pacha.run(built, uri=str(root))
    assert_nothing_written(root)


def test_a_stored_null_custom_value_is_left_out_on_read() -> None:
    """Runs an older SDK wrote with NaN as null read back (without that value)."""
    text = json.dumps(
        {
            "run_id": str(uuid.uuid4()),
            "hyperparameters": {
                "learning_rate": 0.1,
                "batch_size": 8,
                "epochs": 1,
                "custom": {"x": None, "y": 2},
            },
            "started_at": "2026-01-01T00:00:00Z",
            "status": "completed",
            "hardware": {},
        }
    )
    assert pacha.ExperimentRun.model_validate_json(text).hyperparameters.custom == {"y": 2}


def _nested_list(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _nested_dict(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def _self_referencing_dict() -> Any:
    cycle: dict[str, Any] = {"lr": 0.1}
    cycle["self"] = cycle
    return cycle


def _self_referencing_list() -> Any:
    cycle: list[Any] = [1]
    cycle.append(cycle)
    return cycle


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (_nested_list(5000), "deeper than 32"),
        (_nested_dict(5000), "deeper than 32"),
        (_nested_list(33), "deeper than 32"),
        (_self_referencing_dict(), "refers to itself"),
        (_self_referencing_list(), "refers to itself"),
        ({"x": _self_referencing_list()}, "refers to itself"),
    ],
    ids=["list-5000", "dict-5000", "list-33", "dict-cycle", "list-cycle", "cycle-inside"],
)
def test_deep_or_self_referencing_structures_are_refused_naming_the_key(
    tmp_path: Path, value: Any, problem: str
) -> None:
    root = tmp_path / "store"
    with pytest.raises(pacha.InvalidHyperparameterError, match=problem) as caught:
        pacha.run({"config": value}, uri=str(root))
    assert caught.value.key.startswith("config")
    assert len(str(caught.value)) < 400
    assert_nothing_written(root)


def test_the_decorator_leaves_deep_and_self_referencing_arguments_out(store: str) -> None:
    @pacha.track(uri=store, system_metrics=False)
    def train(config: Any, deep: Any, lr: float = 0.1) -> str:
        run = pacha.active_run()
        assert run is not None
        return run.run_id

    run_id = train(_self_referencing_dict(), _nested_list(200))
    assert pacha.load_run(run_id, uri=store).hyperparameters.custom == {"lr": 0.1}


def test_structures_up_to_the_limit_are_stored(store: str) -> None:
    with pacha.run({"deep": _nested_list(32), "cfg": _nested_dict(31)}, uri=store) as run:
        pass
    text = stored_text(store, run.run_id)
    assert serde_problem(text) is None
    custom = pacha.load_run(run.run_id, uri=store).hyperparameters.custom
    assert custom["deep"] == _nested_list(32)
    assert custom["cfg" + ".a" * 31] == 1


_stored_kinds = st.one_of(
    hparam_values,
    st.integers(),
    st.floats(),
    st.lists(st.one_of(st.integers(), st.floats()), max_size=3),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    custom=st.dictionaries(st.text(max_size=8), _stored_kinds, max_size=4),
    batch_size=st.integers(min_value=0, max_value=2**66),
    major=st.integers(min_value=0, max_value=2**33),
)
def test_fuzz_whatever_is_accepted_loads_in_pacha_and_back(
    custom: dict[str, Any], batch_size: int, major: int
) -> None:
    uri = f"memory://limits-{uuid.uuid4().hex}"
    try:
        recipe = pacha.RecipeReference("r", {"major": major, "minor": 0, "patch": 0})
        run = pacha.run(
            {**custom, "batch_size": batch_size}, uri=uri, recipe=recipe, system_metrics=False
        )
    except (pacha.InvalidHyperparameterError, ValidationError):
        return
    run.complete()
    record = pacha.load_run(run.run_id, uri=uri)
    text = record.model_dump_json()
    assert serde_problem(text) is None, text
    assert pacha.ExperimentRun.model_validate_json(text) == record


def test_the_python_rules_agree_with_serde_itself() -> None:
    """Cross-check :func:`serde_problem` against pacha's types built with serde (if here)."""
    base = {
        "run_id": str(uuid.uuid4()),
        "hyperparameters": {"learning_rate": 0.1, "batch_size": 8, "epochs": 1, "custom": {}},
        "started_at": "2026-01-01T00:00:00.123456Z",
        "status": "running",
        "hardware": {},
    }

    def variant(**changes: Any) -> str:
        document = json.loads(json.dumps(base))
        for path, value in changes.items():
            target = document
            *parents, last = path.split("__")
            for parent in parents:
                target = target[parent]
            target[last] = value
        return json.dumps(document)

    texts = [
        variant(),
        variant(hyperparameters__batch_size=2**64 - 1),
        variant(hyperparameters__batch_size=2**64),
        variant(hyperparameters__batch_size=8.0),
        variant(hyperparameters__custom={"x": None}),
        variant(hyperparameters__custom={"x": 2**64 + 5}),
        variant(hyperparameters__custom={"x": [1, "a", [True]]}),
        variant(hyperparameters__custom={"x": {"a": 1}}),
        variant(recipe={"name": "r", "version": {"major": 2**32 - 1, "minor": 0, "patch": 0}}),
        variant(recipe={"name": "r", "version": {"major": 2**32, "minor": 0, "patch": 0}}),
        variant(recipe={"name": "r", "version": {"major": 1}}),
        variant(hyperparameters__custom={"deep": _nested_list(124)}),
        variant(hyperparameters__custom={"deep": _nested_list(125)}),
        variant(hyperparameters__epochs=-0.0).replace("-0.0", "-0"),
        variant(hardware={"cpu_cores": -1}),
        variant(extra={"summary": {"loss": None}, "big": 2**70}),
        json.dumps(base).replace("0.1", "NaN"),
        json.dumps(base).replace("0.1", "1e400"),
    ]
    verdicts = real_serde(texts)
    if verdicts is None:
        pytest.skip("no Rust toolchain with the serde crates here (see tests/pacha_serde.py)")
    ours = [serde_problem(text) for text in texts]
    assert [v is None for v in ours] == [v is None for v in verdicts], list(zip(ours, verdicts))
