"""XGBoost: ``xgb.train(..., callbacks=[PachaCallback(...)])`` on 64 random points."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

import pacha_sdk as pacha
from tests.integrations.children import Child
from tests.integrations.marks import FRAMEWORK_MARKS

pytest.importorskip("xgboost", reason="xgboost is not installed (pip install '.[frameworks]')")

import numpy as np
import xgboost as xgb

from pacha_sdk.integrations.xgboost import PachaCallback

pytestmark = FRAMEWORK_MARKS

PARAMS = {
    "max_depth": 2,
    "eta": 0.3,
    "objective": "binary:logistic",
    "eval_metric": ["logloss", "error"],
    "seed": 7,
}


def data() -> tuple[xgb.DMatrix, xgb.DMatrix]:
    generator = np.random.default_rng(0)
    x = generator.normal(size=(64, 3))
    y = (x[:, 0] + 0.3 * generator.normal(size=64) > 0).astype(int)
    return xgb.DMatrix(x[:48], label=y[:48]), xgb.DMatrix(x[48:], label=y[48:])


def _points(run_id: str, uri: str, name: str) -> list[tuple[int, float]]:
    table = pacha.read_metrics(run_id, uri=uri, names=[name])
    return sorted(zip(table.column("step").to_pylist(), table.column("value").to_pylist()))


def test_train_records_every_round_of_every_evaluation_and_the_booster_config(store: str) -> None:
    callback = PachaCallback(uri=store, name="xgb", system_metrics=False)
    train, valid = data()
    evals_result: dict[str, Any] = {}
    xgb.train(
        PARAMS,
        train,
        num_boost_round=5,
        evals=[(train, "train"), (valid, "valid")],
        evals_result=evals_result,
        callbacks=[callback],
        verbose_eval=False,
    )
    assert callback.run is not None
    record = pacha.load_run(callback.run.run_id, uri=store)
    assert record.status is pacha.RunStatus.COMPLETED
    for data_name, by_metric in evals_result.items():
        for metric, values in by_metric.items():
            points = _points(record.run_id, store, f"{data_name}/{metric}")
            assert points == [(round_, float(v)) for round_, v in enumerate(values)]
    hp = record.hyperparameters
    assert hp.learning_rate == 0.3
    assert hp.custom["eta"] == 0.3
    assert hp.custom["max_depth"] == 2
    assert hp.custom["seed"] == 7
    assert hp.custom["objective"] == "binary:logistic"
    assert hp.custom["eval_metric"] == ["logloss", "error"]


def test_early_stopping_still_completes_the_run(store: str) -> None:
    callback = PachaCallback(uri=store, system_metrics=False)
    train, valid = data()
    booster = xgb.train(
        {**PARAMS, "eta": 1.0, "max_depth": 6},
        train,
        num_boost_round=50,
        evals=[(valid, "valid")],
        early_stopping_rounds=2,
        callbacks=[callback],
        verbose_eval=False,
    )
    assert callback.run is not None
    record = pacha.load_run(callback.run.run_id, uri=store)
    assert record.status is pacha.RunStatus.COMPLETED
    rounds = [s for s, _ in _points(record.run_id, store, "valid/logloss")]
    assert rounds == list(range(booster.num_boosted_rounds()))
    assert len(rounds) < 50


def test_the_scikit_learn_api_takes_the_callback(store: str) -> None:
    callback = PachaCallback(uri=store, system_metrics=False)
    generator = np.random.default_rng(1)
    x, y = generator.normal(size=(40, 3)), generator.integers(0, 2, 40)
    model = xgb.XGBClassifier(n_estimators=3, max_depth=2, callbacks=[callback])
    model.fit(x, y, eval_set=[(x, y)], verbose=False)
    assert callback.run is not None
    record = pacha.load_run(callback.run.run_id, uri=store)
    assert record.status is pacha.RunStatus.COMPLETED
    assert [s for s, _ in _points(record.run_id, store, "validation_0/logloss")] == [0, 1, 2]


_CHILD = """
import time, uuid
import xgboost as xgb
from pacha_sdk.integrations.xgboost import PachaCallback
from tests.integrations.test_xgboost import PARAMS, data

class Stop(xgb.callback.TrainingCallback):
    def after_iteration(self, model, epoch, evals_log):
        if epoch == 2:
            if {wait}:
                print("READY", flush=True)
                time.sleep(60)
            raise OSError("disk full while saving")
        return False

run_id = str(uuid.uuid4())
print("RUN", run_id, flush=True)
train, valid = data()
xgb.train(PARAMS, train, num_boost_round=10, evals=[(valid, "valid")], verbose_eval=False,
          callbacks=[PachaCallback(uri={store!r}, run_id=run_id, system_metrics=False), Stop()])
"""


@pytest.mark.subprocess
def test_an_uncaught_exception_fails_the_run_and_ctrl_c_cancels_it(
    store: str, tmp_path: Path
) -> None:
    failing = Child(_CHILD.format(store=store, wait=False), tmp_path, name="xgb_failing")
    interrupted = Child(_CHILD.format(store=store, wait=True), tmp_path, name="xgb_interrupted")
    interrupted.interrupt(signal.SIGINT)

    failed = failing.finish()
    assert failed.returncode == 1
    record = pacha.load_run(failed.line("RUN"), uri=store)
    assert record.status is pacha.RunStatus.FAILED
    assert record.error_message == "OSError: disk full while saving"
    assert [s for s, _ in _points(record.run_id, store, "valid/logloss")] == [0, 1, 2]

    cancelled = interrupted.finish()
    # An uncaught KeyboardInterrupt ends Python by SIGINT (130 in a shell), or with 1
    # when a module is first imported during shutdown (that resets CPython's flag).
    assert cancelled.returncode in (-signal.SIGINT, 1)
    record = pacha.load_run(cancelled.line("RUN"), uri=store)
    assert record.status is pacha.RunStatus.CANCELLED
    assert [s for s, _ in _points(record.run_id, store, "valid/logloss")] == [0, 1, 2]
