"""Keras 3 on the torch backend: ``callbacks=[PachaCallback(...)]`` on a tiny dense model."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

import pacha_sdk as pacha
from tests.integrations.children import Child
from tests.integrations.marks import FRAMEWORK_MARKS

pytest.importorskip("keras", reason="keras is not installed (pip install '.[frameworks]')")

import keras
import numpy as np

from pacha_sdk.integrations.keras import PachaCallback

pytestmark = FRAMEWORK_MARKS


def model() -> keras.Model:
    keras.utils.set_random_seed(0)
    tiny = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)],
        name="tiny_dense",
    )
    tiny.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse", metrics=["mae"])
    return tiny


def data() -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(0)
    return generator.normal(size=(32, 3)), generator.normal(size=(32, 1))


class BatchRecorder(keras.callbacks.Callback):  # type: ignore[misc]
    """Keeps each batch's logs with the optimizer's step count."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple[int, dict[str, Any]]] = []

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        iterations = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self.batches.append((iterations, dict(logs or {})))


class FailAt(keras.callbacks.Callback):  # type: ignore[misc]
    def __init__(self, batch: int) -> None:
        super().__init__()
        self.batch = batch

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if batch == self.batch:
            raise ValueError(f"bad batch {batch}")


def _points(run_id: str, uri: str, name: str) -> list[tuple[int, float]]:
    table = pacha.read_metrics(run_id, uri=uri, names=[name])
    return sorted(zip(table.column("step").to_pylist(), table.column("value").to_pylist()))


def test_fit_records_epoch_and_batch_logs_as_keras_computed_them(store: str) -> None:
    callback = PachaCallback(uri=store, log_every_n_batches=2, system_metrics=False)
    recorder = BatchRecorder()
    x, y = data()
    history = model().fit(
        x,
        y,
        epochs=3,
        batch_size=8,
        validation_split=0.25,
        verbose=0,
        callbacks=[callback, recorder],
    )
    assert callback.run is not None
    record = pacha.load_run(callback.run.run_id, uri=store)
    assert record.status is pacha.RunStatus.COMPLETED
    assert record.name == "tiny_dense"
    assert set(history.history) == {"loss", "mae", "val_loss", "val_mae"}
    for name, values in history.history.items():
        assert _points(record.run_id, store, name) == [(e, float(v)) for e, v in enumerate(values)]
    # 24 training points, batches of 8: 3 optimizer steps an epoch, 9 in all; every 2nd logged.
    expected = [(step, float(logs["loss"])) for step, logs in recorder.batches if step % 2 == 0]
    assert [step for step, _ in expected] == [2, 4, 6, 8]
    assert _points(record.run_id, store, "batch/loss") == expected
    hp = record.hyperparameters
    assert hp.epochs == 3
    assert hp.learning_rate == pytest.approx(0.01)
    assert hp.custom["steps"] == 3
    assert hp.custom["optimizer.name"] == "adam"
    assert hp.custom["optimizer.beta_1"] == 0.9


def test_each_fit_is_a_run_and_a_caught_failure_is_recorded(store: str) -> None:
    callback = PachaCallback(uri=store, system_metrics=False)
    tiny = model()
    x, y = data()
    with pytest.raises(ValueError, match="bad batch 1"):
        tiny.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[callback, FailAt(1)])
    failed = callback.run
    assert failed is not None
    assert failed.status is pacha.RunStatus.RUNNING  # fit raised past on_train_end
    tiny.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[callback])
    assert pacha.load_run(failed.run_id, uri=store).status is pacha.RunStatus.FAILED
    assert pacha.load_run(failed.run_id, uri=store).error_message == (
        "fit() did not finish: an error stopped it"
    )
    assert callback.run is not failed
    assert callback.run is not None
    assert pacha.load_run(callback.run.run_id, uri=store).status is pacha.RunStatus.COMPLETED


def test_a_bad_batch_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="log_every_n_batches"):
        PachaCallback(log_every_n_batches=0)
    with pytest.raises(TypeError, match="unknown run option"):
        PachaCallback(flush_every=3)


_CHILD = """
import time, uuid
import keras
from pacha_sdk.integrations.keras import PachaCallback
from tests.integrations.test_keras import data, model

class Stop(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            if {wait}:
                print("READY", flush=True)
                time.sleep(60)
            raise ArithmeticError("loss is nan")

run_id = str(uuid.uuid4())
print("RUN", run_id, flush=True)
x, y = data()
model().fit(x, y, epochs=5, batch_size=8, verbose=0,
            callbacks=[PachaCallback(uri={store!r}, run_id=run_id, system_metrics=False), Stop()])
"""


@pytest.mark.subprocess
def test_an_uncaught_exception_fails_the_run_and_ctrl_c_cancels_it(
    store: str, tmp_path: Path
) -> None:
    failing = Child(_CHILD.format(store=store, wait=False), tmp_path, name="keras_failing")
    interrupted = Child(_CHILD.format(store=store, wait=True), tmp_path, name="keras_interrupted")
    interrupted.interrupt(signal.SIGINT)

    failed = failing.finish()
    assert failed.returncode == 1
    record = pacha.load_run(failed.line("RUN"), uri=store)
    assert record.status is pacha.RunStatus.FAILED
    assert record.error_message == "ArithmeticError: loss is nan"
    assert [s for s, _ in _points(record.run_id, store, "loss")] == [0, 1]

    cancelled = interrupted.finish()
    # An uncaught KeyboardInterrupt ends Python by SIGINT (130 in a shell), or with 1
    # when a module is first imported during shutdown (that resets CPython's flag).
    assert cancelled.returncode in (-signal.SIGINT, 1)
    record = pacha.load_run(cancelled.line("RUN"), uri=store)
    assert record.status is pacha.RunStatus.CANCELLED
    assert [s for s, _ in _points(record.run_id, store, "loss")] == [0, 1]
