"""LightGBM: ``lgb.train(..., callbacks=[PachaCallback(...)])`` on 64 random points."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

import pacha_sdk as pacha
from tests.integrations.children import Child
from tests.integrations.marks import FRAMEWORK_MARKS

pytest.importorskip("lightgbm", reason="lightgbm is not installed (pip install '.[frameworks]')")

import lightgbm as lgb
import numpy as np

from pacha_sdk.integrations.lightgbm import PachaCallback

pytestmark = FRAMEWORK_MARKS

PARAMS = {
    "objective": "binary",
    "learning_rate": 0.2,
    "num_leaves": 4,
    "min_data_in_leaf": 2,
    "metric": ["binary_logloss", "auc"],
    "verbose": -1,
    "seed": 3,
}


def data() -> tuple[lgb.Dataset, lgb.Dataset]:
    generator = np.random.default_rng(0)
    x = generator.normal(size=(64, 3))
    y = (x[:, 0] + 0.3 * generator.normal(size=64) > 0).astype(int)
    train = lgb.Dataset(x[:48], label=y[:48])
    return train, lgb.Dataset(x[48:], label=y[48:], reference=train)


def _points(run_id: str, uri: str, name: str) -> list[tuple[int, float]]:
    table = pacha.read_metrics(run_id, uri=uri, names=[name])
    return sorted(zip(table.column("step").to_pylist(), table.column("value").to_pylist()))


def test_train_records_each_evaluation_at_its_iteration_and_the_params(store: str) -> None:
    callback = PachaCallback(uri=store, name="lgb", system_metrics=False)
    train, valid = data()
    evals: dict[str, Any] = {}
    lgb.train(
        PARAMS,
        train,
        num_boost_round=5,
        valid_sets=[train, valid],
        valid_names=["train", "valid"],
        callbacks=[callback, lgb.record_evaluation(evals)],
    )
    assert callback.run is not None
    record = pacha.load_run(callback.run.run_id, uri=store)
    assert record.status is pacha.RunStatus.COMPLETED  # the last round ends it
    assert set(evals) == {"train", "valid"}
    for data_name, by_metric in evals.items():
        for metric, values in by_metric.items():
            points = _points(record.run_id, store, f"{data_name}/{metric}")
            assert points == [(i, float(v)) for i, v in enumerate(values)]
    hp = record.hyperparameters
    assert hp.learning_rate == 0.2
    assert hp.custom["num_leaves"] == 4
    assert hp.custom["metric"] == ["binary_logloss", "auc"]
    assert hp.custom["num_iterations"] == 5


def test_early_stopping_logs_the_stopping_round_and_the_next_training_completes_it(
    store: str,
) -> None:
    callback = PachaCallback(uri=store, system_metrics=False)
    train, valid = data()
    evals: dict[str, Any] = {}
    booster = lgb.train(
        {**PARAMS, "learning_rate": 1.0},
        train,
        num_boost_round=100,
        valid_sets=[valid],
        valid_names=["valid"],
        callbacks=[callback, lgb.early_stopping(2, verbose=False), lgb.record_evaluation(evals)],
    )
    stopped = callback.run
    assert stopped is not None
    assert booster.current_iteration() < 100
    assert stopped.flush(timeout=30)
    logged = _points(stopped.run_id, store, "valid/auc")
    assert logged == [(i, float(v)) for i, v in enumerate(evals["valid"]["auc"])]
    assert stopped.status is pacha.RunStatus.RUNNING  # LightGBM does not say it stopped
    lgb.train(PARAMS, train, num_boost_round=2, callbacks=[callback])
    assert pacha.load_run(stopped.run_id, uri=store).status is pacha.RunStatus.COMPLETED
    assert callback.run is not stopped


def test_the_scikit_learn_api_takes_the_callback(store: str) -> None:
    callback = PachaCallback(uri=store, system_metrics=False)
    generator = np.random.default_rng(1)
    x, y = generator.normal(size=(40, 3)), generator.integers(0, 2, 40)
    model = lgb.LGBMClassifier(n_estimators=3, num_leaves=4, min_child_samples=2, verbose=-1)
    model.fit(x[:30], y[:30], eval_X=(x[30:],), eval_y=(y[30:],), callbacks=[callback])
    assert callback.run is not None
    record = pacha.load_run(callback.run.run_id, uri=store)
    assert record.status is pacha.RunStatus.COMPLETED
    assert [s for s, _ in _points(record.run_id, store, "valid_0/binary_logloss")] == [0, 1, 2]


def test_inside_a_with_block_the_callback_logs_into_that_run(store: str) -> None:
    train, valid = data()
    with pacha.run(uri=store, system_metrics=False) as run:
        callback = PachaCallback()
        lgb.train(
            PARAMS,
            train,
            num_boost_round=3,
            valid_sets=[valid],
            valid_names=["valid"],
            callbacks=[callback],
        )
        assert callback.run is run
        assert run.status is pacha.RunStatus.RUNNING  # the block decides
    assert [s for s, _ in _points(run.run_id, store, "valid/auc")] == [0, 1, 2]
    assert pacha.load_run(run.run_id, uri=store).status is pacha.RunStatus.COMPLETED


_CHILD = """
import time, uuid
import lightgbm as lgb
from pacha_sdk.integrations.lightgbm import PachaCallback
from tests.integrations.test_lightgbm import PARAMS, data

def stop(env):
    if env.iteration == 2:
        if {wait}:
            print("READY", flush=True)
            time.sleep(60)
        raise ConnectionError("feature store went away")

run_id = str(uuid.uuid4())
print("RUN", run_id, flush=True)
train, valid = data()
lgb.train(PARAMS, train, num_boost_round=10, valid_sets=[valid], valid_names=["valid"],
          callbacks=[PachaCallback(uri={store!r}, run_id=run_id, system_metrics=False), stop])
"""


@pytest.mark.subprocess
def test_an_uncaught_exception_fails_the_run_and_ctrl_c_cancels_it(
    store: str, tmp_path: Path
) -> None:
    failing = Child(_CHILD.format(store=store, wait=False), tmp_path, name="lgb_failing")
    interrupted = Child(_CHILD.format(store=store, wait=True), tmp_path, name="lgb_interrupted")
    interrupted.interrupt(signal.SIGINT)

    failed = failing.finish()
    assert failed.returncode == 1
    record = pacha.load_run(failed.line("RUN"), uri=store)
    assert record.status is pacha.RunStatus.FAILED
    assert record.error_message == "ConnectionError: feature store went away"
    assert [s for s, _ in _points(record.run_id, store, "valid/auc")] == [0, 1, 2]

    cancelled = interrupted.finish()
    # An uncaught KeyboardInterrupt ends Python by SIGINT (130 in a shell), or with 1
    # when a module is first imported during shutdown (that resets CPython's flag).
    assert cancelled.returncode in (-signal.SIGINT, 1)
    record = pacha.load_run(cancelled.line("RUN"), uri=store)
    assert record.status is pacha.RunStatus.CANCELLED
    assert [s for s, _ in _points(record.run_id, store, "valid/auc")] == [0, 1, 2]
