"""accelerate: ``Accelerator(log_with="pacha")`` around a tiny torch loop on the CPU."""

from __future__ import annotations

import signal
import warnings
from pathlib import Path
from typing import Any

import pytest

import pacha_sdk as pacha
from tests.integrations.children import Child
from tests.integrations.marks import FRAMEWORK_MARKS

pytest.importorskip(
    "accelerate", reason="accelerate is not installed (pip install '.[frameworks]')"
)

import torch
from accelerate import Accelerator

from pacha_sdk.integrations.accelerate import PachaTracker

pytestmark = FRAMEWORK_MARKS

CONFIG = {"learning_rate": 0.05, "model": {"layers": 1, "activation": torch.nn.ReLU}, "seed": 0}


def train(accelerator: Accelerator, steps: int = 6) -> list[dict[str, Any]]:
    """A linear regression for *steps* steps, logging loss and lr; returns what was logged."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model, optimizer = accelerator.prepare(model, optimizer)
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    logged = []
    for step in range(steps):
        loss = torch.nn.functional.mse_loss(model(x), y)
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        values = {"loss": loss.item(), "lr": optimizer.param_groups[0]["lr"], "step_time": 0.5}
        accelerator.log(values, step=step)
        logged.append(values)
    return logged


def _points(run_id: str, uri: str, name: str) -> list[tuple[int, float]]:
    table = pacha.read_metrics(run_id, uri=uri, names=[name])
    return sorted(zip(table.column("step").to_pylist(), table.column("value").to_pylist()))


def test_log_with_pacha_records_the_config_and_every_logged_value(store: str) -> None:
    accelerator = Accelerator(log_with="pacha", cpu=True)
    accelerator.init_trackers(
        "tiny-regression",
        config=CONFIG,
        init_kwargs={"pacha": {"uri": store, "system_metrics": False, "tags": ["accelerate"]}},
    )
    run = accelerator.get_tracker("pacha", unwrap=True)
    assert isinstance(run, pacha.Run)
    logged = train(accelerator)
    assert run.status is pacha.RunStatus.RUNNING
    accelerator.end_training()

    record = pacha.load_run(run.run_id, uri=store)
    assert record.status is pacha.RunStatus.COMPLETED
    assert record.name == "tiny-regression"
    assert record.tags == {"accelerate": ""}
    assert record.hyperparameters.learning_rate == 0.05
    assert record.hyperparameters.custom == {
        "model.layers": 1,
        "model.activation": "torch.nn.modules.activation.ReLU",
        "seed": 0,
    }
    for name in ("loss", "lr", "step_time"):
        assert _points(run.run_id, store, name) == [(s, v[name]) for s, v in enumerate(logged)]


def test_a_tracker_instance_works_too_and_text_values_are_skipped(store: str) -> None:
    tracker = PachaTracker("by-instance", uri=store, system_metrics=False)
    accelerator = Accelerator(log_with=[tracker], cpu=True)
    accelerator.init_trackers("ignored-name")
    with pytest.warns(UserWarning, match="pacha: accelerate logged phase='warmup'") as caught:
        accelerator.log({"loss": 0.5, "phase": "warmup"}, step=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per name
        accelerator.log({"loss": 0.25, "phase": "warmup"}, step=1)
    assert len(caught) == 1
    accelerator.end_training()
    assert tracker.tracker is not None
    record = pacha.load_run(tracker.tracker.run_id, uri=store)
    assert record.name == "by-instance"
    assert record.status is pacha.RunStatus.COMPLETED
    assert _points(record.run_id, store, "loss") == [(0, 0.5), (1, 0.25)]
    assert _points(record.run_id, store, "phase") == []


_CHILD = """
import os, time
import pacha_sdk.integrations.accelerate
from accelerate import Accelerator

accelerator = Accelerator(log_with="pacha", cpu=True)
options = {{"uri": {store!r}, "system_metrics": False}}
accelerator.init_trackers("child", init_kwargs={{"pacha": options}})
run = accelerator.get_tracker("pacha", unwrap=True)
print("RUN", run.run_id, flush=True)
for step in range(3):
    accelerator.log({{"loss": 1.0 / (step + 1)}}, step=step)
if {wait}:
    print("READY", flush=True)
    time.sleep(60)
raise MemoryError("out of memory at step 3")
"""


@pytest.mark.subprocess
def test_an_uncaught_exception_fails_the_run_and_ctrl_c_cancels_it(
    store: str, tmp_path: Path
) -> None:
    failing = Child(_CHILD.format(store=store, wait=False), tmp_path, name="acc_failing")
    interrupted = Child(_CHILD.format(store=store, wait=True), tmp_path, name="acc_interrupted")
    interrupted.interrupt(signal.SIGINT)

    failed = failing.finish()
    assert failed.returncode == 1
    record = pacha.load_run(failed.line("RUN"), uri=store)
    assert record.status is pacha.RunStatus.FAILED
    assert record.error_message == "MemoryError: out of memory at step 3"
    assert _points(record.run_id, store, "loss") == [(0, 1.0), (1, 0.5), (2, 1 / 3)]

    cancelled = interrupted.finish()
    # An uncaught KeyboardInterrupt ends Python by SIGINT (130 in a shell), or with 1
    # when a module is first imported during shutdown (that resets CPython's flag).
    assert cancelled.returncode in (-signal.SIGINT, 1)
    record = pacha.load_run(cancelled.line("RUN"), uri=store)
    assert record.status is pacha.RunStatus.CANCELLED
    assert _points(record.run_id, store, "loss") == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
