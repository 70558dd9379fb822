"""``pacha.lenient_hparams``: any framework config to storable hyperparameters, never raising."""

from __future__ import annotations

import argparse
import dataclasses
import enum
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pacha_sdk as pacha
from tests.strategies import anything


class Strategy(enum.Enum):
    STEPS = "steps"
    EPOCH = "epoch"


@dataclasses.dataclass
class Scheduler:
    name: str = "cosine"
    warmup: int = 10


class Opaque:
    """An object with the default repr (it has a memory address)."""


class Named:
    def __repr__(self) -> str:
        return "Named(width=3)"


def test_int_keys_become_str_and_nesting_becomes_dotted_keys() -> None:
    config = {"id2label": {0: "NEG", 1: "POS"}, "label2id": {"NEG": 0, "POS": 1}}
    assert pacha.lenient_hparams(config) == {
        "id2label.0": "NEG",
        "id2label.1": "POS",
        "label2id.NEG": 0,
        "label2id.POS": 1,
    }


def test_objects_become_names_or_short_reprs() -> None:
    config = {
        "optimizer": dict,
        "activation": math.tanh,
        "module": math,
        "strategy": Strategy.STEPS,
        "named": Named(),
        "opaque": Opaque(),
        "path": Path("/data/train"),
        "long": "x" * 300,
        "long_repr_object": Named.__new__(type("Big", (), {"__repr__": lambda s: "B" * 500})),
    }
    kept = pacha.lenient_hparams(config)
    assert kept == {
        "optimizer": "dict",
        "activation": "math.tanh",
        "module": "math",
        "strategy": "steps",
        "named": "Named(width=3)",
        "opaque": f"{__name__}.Opaque",
        "path": "/data/train",
        "long": "x" * 300,
        "long_repr_object": f"{__name__}.Big",
    }


def test_containers_flatten_namespaces_and_dataclasses_too() -> None:
    namespace = argparse.Namespace(lr=0.1, scheduler=Scheduler())
    assert pacha.lenient_hparams({"args": namespace}, prefix="cfg.") == {
        "cfg.args.lr": 0.1,
        "cfg.args.scheduler.name": "cosine",
        "cfg.args.scheduler.warmup": 10,
    }
    assert pacha.lenient_hparams(Scheduler()) == {"name": "cosine", "warmup": 10}


def test_lists_arrays_and_sets() -> None:
    config = {
        "betas": (0.9, 0.999),
        "sizes": np.array([64, 128]),
        "ids": {3, 1, 2},
        "mixed": [1, None, "a"],
        "nested_dicts": [{"a": 1}],
        "big_array": np.zeros(5000),
        "scalar": np.float32(0.5),
    }
    kept = pacha.lenient_hparams(config)
    assert kept["betas"] == [0.9, 0.999]
    assert kept["sizes"] == [64, 128]
    assert kept["ids"] == [1, 2, 3]
    assert kept["mixed"] == "[1, None, 'a']"
    assert kept["nested_dicts"] == "[{'a': 1}]"
    assert str(kept["big_array"]).startswith("array([0., 0., 0., ..., 0., 0., 0.]")
    assert kept["scalar"] == 0.5


def test_none_is_left_out_quietly() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pacha.lenient_hparams({"a": None, "b": {"c": None}, "d": 1}) == {"d": 1}
        assert pacha.lenient_hparams(None) == {}


def test_what_cannot_be_kept_is_left_out_with_one_warning_listing_it() -> None:
    config: dict[Any, Any] = {
        "nan": math.nan,
        "huge": 2**70,
        "seed": 2**63 - 1,  # fits in 64 bits, but pacha reads custom numbers as float64
        "surrogate": "\ud800",
        "": 1,
        "learning_rate": "auto",
        1: "one",
        "1": "again",
        "epochs": 3.0,
        "ok": True,
    }
    config["me"] = config
    with pytest.warns(UserWarning, match="left out") as caught:
        kept = pacha.lenient_hparams(config)
    assert kept == {"1": "one", "epochs": 3, "ok": True}
    assert len(caught) == 1
    message = str(caught[0].message)
    for reason in (
        "nan (NaN",
        "huge (int beyond ±2**53, which pacha would read as another number)",
        "seed (int beyond ±2**53, which pacha would read as another number)",
        "surrogate (",
        "'' (empty key)",
        "learning_rate (must be a number)",
        "1 (given twice)",
        "me (refers to itself)",
    ):
        assert reason in message, reason
    assert caught[0].filename == __file__


def test_a_config_that_is_not_a_mapping_gives_nothing_with_a_warning() -> None:
    with pytest.warns(UserWarning, match="hparams .is not a mapping"):
        assert pacha.lenient_hparams([1, 2]) == {}


def test_deep_nesting_never_raises() -> None:
    config: dict[str, Any] = {}
    inner = config
    for _ in range(5000):
        inner["a"] = {}
        inner = inner["a"]
    with pytest.warns(UserWarning, match="nested too deeply"):
        pacha.lenient_hparams(config)


@given(config=st.dictionaries(st.one_of(st.text(max_size=5), st.integers()), anything, max_size=4))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_never_raises_and_the_result_passes_the_strict_rules(config: dict[Any, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept = pacha.lenient_hparams(config)
    pacha.Hyperparameters.model_validate({})  # models loaded
    with pacha.run(kept, uri="memory://lenient-fuzz", system_metrics=False) as run:
        run.log_hyperparams(kept)
    stored = run.hyperparameters.as_flat_dict()
    for key, value in kept.items():
        assert stored[key] == value
