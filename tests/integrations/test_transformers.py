"""Hugging Face Trainer: ``callbacks=[PachaCallback(...)]`` on a 2-layer BERT built from a config.

The run's points are compared with what the Trainer handed a recording
callback's ``on_log``; nothing is downloaded (``HF_HUB_OFFLINE=1``). The
Trainer has no error hook, so an uncaught exception and Ctrl-C are tested
in child processes, where the run ends as the interpreter exits.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

import pacha_sdk as pacha
from tests.integrations.children import Child
from tests.integrations.marks import FRAMEWORK_MARKS

pytest.importorskip(
    "transformers", reason="transformers is not installed (pip install '.[frameworks]')"
)

from pacha_sdk.integrations.transformers import PachaCallback
from tests.integrations.tiny_transformers import Recorder, StopAt, trainer

pytestmark = FRAMEWORK_MARKS


def _points(run_id: str, uri: str) -> list[tuple[str, int, float]]:
    table = pacha.read_metrics(run_id, uri=uri)
    rows = zip(
        table.column("name").to_pylist(),
        table.column("step").to_pylist(),
        table.column("value").to_pylist(),
    )
    return sorted(rows)


def test_train_then_evaluate_is_one_run_with_what_the_trainer_logged(
    store: str, tmp_path: Path
) -> None:
    callback = PachaCallback(uri=store, name="tiny-bert", system_metrics=False)
    recorder = Recorder()
    hf = trainer(str(tmp_path / "out"), [callback, recorder])
    hf.train()
    assert callback.run is not None
    assert callback.run.status is pacha.RunStatus.RUNNING  # open for evaluate()
    hf.evaluate()
    callback.run.complete()

    record = pacha.load_run(callback.run.run_id, uri=store)
    assert record.status is pacha.RunStatus.COMPLETED
    assert record.name == "tiny-bert"
    expected = sorted(
        (name, step, float(value)) for step, logs in recorder.logs for name, value in logs.items()
    )
    assert _points(record.run_id, store) == expected
    names = {name for name, _, _ in expected}
    assert {"loss", "grad_norm", "learning_rate", "eval_loss", "train_runtime"} <= names
    assert {"train_loss", "total_flos"} <= names  # the final summary is kept
    assert record.summary["train_loss"] == next(
        logs["train_loss"] for _, logs in recorder.logs if "train_loss" in logs
    )

    hp = record.hyperparameters
    assert hp.learning_rate == 1e-3
    assert hp.batch_size == 4
    assert hp.epochs == 2
    assert hp.max_grad_norm == 1.0
    assert hp.custom["eval_strategy"] == "epoch"
    assert hp.custom["hub_token"] == "<HUB_TOKEN>"  # transformers masks it
    assert hp.custom["model.id2label.0"] == "NEG"  # int keys of the config
    assert hp.custom["model.id2label.1"] == "POS"
    assert hp.custom["model.label2id.POS"] == 1
    assert hp.custom["model.num_hidden_layers"] == 2
    assert hp.custom["model.hidden_size"] == 16


def test_each_train_call_is_a_run_and_a_caught_failure_is_recorded(
    store: str, tmp_path: Path
) -> None:
    callback = PachaCallback(uri=store, system_metrics=False)
    hf = trainer(str(tmp_path / "out"), [callback, StopAt(3)])
    with pytest.raises(RuntimeError, match="stopped at step 3"):
        hf.train()
    failed = callback.run
    assert failed is not None
    assert failed.status is pacha.RunStatus.RUNNING  # train() raised past on_train_end
    hf.remove_callback(StopAt)
    hf.train()  # the next train() ends the one left open, as failed
    assert callback.run is not failed
    record = pacha.load_run(failed.run_id, uri=store)
    assert record.status is pacha.RunStatus.FAILED
    assert record.error_message == "train() did not finish: an error stopped it"
    assert [s for n, s, _ in _points(failed.run_id, store) if n == "loss"] == [1, 2]
    assert callback.run is not None
    callback.run.complete()


def test_inside_a_with_block_the_callback_logs_into_that_run(store: str, tmp_path: Path) -> None:
    with pacha.run(uri=store, system_metrics=False) as run:
        callback = PachaCallback()
        trainer(str(tmp_path / "out"), [callback], num_train_epochs=1).train()
        assert callback.run is run
    record = pacha.load_run(run.run_id, uri=store)
    assert record.status is pacha.RunStatus.COMPLETED
    assert record.hyperparameters.custom["model.id2label.0"] == "NEG"
    assert [s for n, s, _ in _points(run.run_id, store) if n == "loss"] == [1, 2, 3, 4]
    assert len(pacha.list_runs(uri=store)) == 1


_CHILD = """
import uuid
from pacha_sdk.integrations.transformers import PachaCallback
from tests.integrations.tiny_transformers import StopAt, trainer

run_id = str(uuid.uuid4())
print("RUN", run_id, flush=True)
callback = PachaCallback(uri={store!r}, run_id=run_id, system_metrics=False)
trainer("out", [callback, StopAt(3, wait={wait})]).train()
"""


@pytest.mark.subprocess
def test_an_uncaught_exception_fails_the_run_and_ctrl_c_cancels_it(
    store: str, tmp_path: Path
) -> None:
    failing = Child(_CHILD.format(store=store, wait=False), tmp_path, name="hf_failing")
    interrupted = Child(_CHILD.format(store=store, wait=True), tmp_path, name="hf_interrupted")
    interrupted.interrupt(signal.SIGINT)

    failed = failing.finish()
    assert failed.returncode == 1
    record = pacha.load_run(failed.line("RUN"), uri=store)
    assert record.status is pacha.RunStatus.FAILED
    assert record.error_message == "RuntimeError: stopped at step 3"
    assert "StopAt" in str(record.extra["traceback"])
    assert [s for n, s, _ in _points(record.run_id, store) if n == "loss"] == [1, 2]

    cancelled = interrupted.finish()
    # An uncaught KeyboardInterrupt ends Python by SIGINT (130 in a shell), or with 1
    # when a module is first imported during shutdown (that resets CPython's flag).
    assert cancelled.returncode in (-signal.SIGINT, 1)
    assert "KeyboardInterrupt" in cancelled.stderr
    record = pacha.load_run(cancelled.line("RUN"), uri=store)
    assert record.status is pacha.RunStatus.CANCELLED
    assert record.error_message is None
    assert [s for n, s, _ in _points(record.run_id, store) if n == "loss"] == [1, 2]
