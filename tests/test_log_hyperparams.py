"""Hyperparameters and tags added after the start: ``Run.log_hyperparams``, ``Run.add_tags``.

Frameworks (Lightning, accelerate) hand over their configuration only once
the run exists. What is added is merged into ``run.json`` at the next
flush and at the end; a value that cannot be stored is refused before
anything changes, unless ``lenient=True``.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

import pacha_sdk as pacha

WAIT = 30.0


def _stored(run_id: str, uri: str) -> pacha.ExperimentRun:
    return pacha.load_run(run_id, uri=uri)


def _wait_until_stored(run_id: str, uri: str, key: str) -> pacha.ExperimentRun:
    """The stored record once a flush has written *key* into ``custom``."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        record = _stored(run_id, uri)
        if key in record.hyperparameters.custom:
            return record
        time.sleep(0.02)
    pytest.fail(f"{key} never reached the stored record of {run_id}")


def test_added_hyperparameters_reach_run_json_at_the_next_flush(store: str) -> None:
    with pacha.run(
        {"learning_rate": 0.1, "layers": 12}, uri=store, flush_interval=0.05, system_metrics=False
    ) as run:
        assert "dropout" not in _stored(run.run_id, store).hyperparameters.custom
        run.log_hyperparams({"dropout": 0.1, "optimizer": {"name": "adamw", "beta1": 0.9}})
        record = _wait_until_stored(run.run_id, store, "dropout")
        assert record.status is pacha.RunStatus.RUNNING
        assert record.hyperparameters.custom == {
            "layers": 12,
            "dropout": 0.1,
            "optimizer.name": "adamw",
            "optimizer.beta1": 0.9,
        }
        assert run.hyperparameters.custom["optimizer.beta1"] == 0.9


def test_named_fields_given_replace_and_others_stay(store: str) -> None:
    with pacha.run(
        {"learning_rate": 0.1, "batch_size": 64, "layers": 12}, uri=store, system_metrics=False
    ) as run:
        run.log_hyperparams({"learning_rate": 3e-4, "warmup_steps": 100, "layers": 24})
        run.log_hyperparams(pacha.Hyperparameters(epochs=5))
    hp = _stored(run.run_id, store).hyperparameters
    assert hp.learning_rate == 3e-4
    assert hp.batch_size == 64  # not named again: unchanged
    assert hp.epochs == 5
    assert hp.warmup_steps == 100
    assert hp.custom == {"layers": 24}


def test_hyperparameters_added_last_are_in_the_final_record(store: str) -> None:
    with pacha.run(uri=store, flush_interval=60, system_metrics=False) as run:
        run.log_hyperparams({"seed": 7})
    record = _stored(run.run_id, store)
    assert record.status is pacha.RunStatus.COMPLETED
    assert record.hyperparameters.custom == {"seed": 7}


@pytest.mark.parametrize(
    ("hparams", "key"),
    [
        ({"dropout": math.nan}, "dropout"),
        ({"ok": 1, "model": object()}, "model"),
        ({"learning_rate": "fast"}, "learning_rate"),
        ({"id2label": {0: "NEG"}}, "id2label"),
    ],
)
def test_a_value_that_cannot_be_stored_is_refused_and_nothing_changes(
    store: str, hparams: dict[str, Any], key: str
) -> None:
    with pacha.run({"layers": 12}, uri=store, system_metrics=False) as run:
        with pytest.raises(pacha.InvalidHyperparameterError, match=key):
            run.log_hyperparams(hparams)
        assert run.hyperparameters.custom == {"layers": 12}
    assert _stored(run.run_id, store).hyperparameters.custom == {"layers": 12}


def test_lenient_keeps_what_a_framework_config_holds(store: str) -> None:
    config = {
        "id2label": {0: "NEG", 1: "POS"},
        "architectures": ["BertForSequenceClassification"],
        "optimizer_class": math.isclose,
        "pad_token_id": None,
        "hidden_size": 32,
    }
    with pacha.run(uri=store, system_metrics=False) as run:
        run.log_hyperparams(config, lenient=True)
    assert _stored(run.run_id, store).hyperparameters.custom == {
        "id2label.0": "NEG",
        "id2label.1": "POS",
        "architectures": ["BertForSequenceClassification"],
        "optimizer_class": "math.isclose",
        "hidden_size": 32,
    }


def test_lenient_leaves_out_what_cannot_be_kept_with_one_warning(store: str) -> None:
    with (
        pacha.run(uri=store, system_metrics=False) as run,
        pytest.warns(UserWarning, match="left out") as caught,
    ):
        run.log_hyperparams({"loss_scale": math.inf, "seed": 2**70, "ok": 1}, lenient=True)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "loss_scale" in message
    assert "seed" in message
    assert caught[0].filename == __file__  # points at the call, not into pacha
    assert _stored(run.run_id, store).hyperparameters.custom == {"ok": 1}


def test_module_level_log_hyperparams_goes_to_the_active_run(store: str) -> None:
    with pacha.run(uri=store, system_metrics=False) as run:
        pacha.log_hyperparams({"seed": 1})
        pacha.log_hyperparams({"cls": dict}, lenient=True)
    assert _stored(run.run_id, store).hyperparameters.custom == {"seed": 1, "cls": "dict"}
    with pytest.raises(pacha.NoActiveRunError, match="log_hyperparams"):
        pacha.log_hyperparams({"seed": 1})


def test_a_finished_run_refuses_hyperparameters_and_tags(store: str) -> None:
    with pacha.run(uri=store, system_metrics=False) as run:
        pass
    with pytest.raises(pacha.RunStateError, match="not running"):
        run.log_hyperparams({"seed": 1})
    with pytest.raises(pacha.RunStateError, match="not running"):
        run.add_tags(["late"])
    assert _stored(run.run_id, store).hyperparameters.custom == {}


def test_a_resumed_run_adds_to_the_stored_hyperparameters(store: str) -> None:
    with pacha.run({"layers": 12, "learning_rate": 0.1}, uri=store, system_metrics=False) as run:
        pass
    with pacha.run(uri=store, run_id=run.run_id, system_metrics=False) as resumed:
        resumed.log_hyperparams({"resumed_from_step": 500})
    hp = _stored(run.run_id, store).hyperparameters
    assert hp.learning_rate == 0.1
    assert hp.custom == {"layers": 12, "resumed_from_step": 500}


def test_tags_added_after_the_start_merge_with_those_given(store: str) -> None:
    with pacha.run(uri=store, tags={"team": "nlp"}, system_metrics=False) as run:
        run.add_tags(["pruned"])
        run.add_tags({"team": "vision", "trial": 3})
    assert _stored(run.run_id, store).tags == {"team": "vision", "pruned": "", "trial": "3"}


def test_bad_tags_are_refused(store: str) -> None:
    with pacha.run(uri=store, system_metrics=False) as run:
        with pytest.raises(TypeError, match="tag names"):
            run.add_tags({"": "x"})
        with pytest.raises(TypeError, match="string"):
            run.add_tags("pruned")
    assert _stored(run.run_id, store).tags == {}
