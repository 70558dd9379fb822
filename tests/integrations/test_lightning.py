"""Lightning: ``Trainer(logger=PachaLogger(...))`` on a tiny module, on the CPU.

What the run stores is compared with what Lightning handed a second,
recording logger: the same names, steps and values. Ctrl-C, SIGTERM and
DDP run in child processes (Lightning calls ``sys.exit(1)`` after Ctrl-C,
and DDP re-runs the script for rank 1).
"""

from __future__ import annotations

import signal
from argparse import Namespace
from pathlib import Path
from typing import Any

import pytest

import pacha_sdk as pacha
from tests.integrations.children import Child
from tests.integrations.marks import FRAMEWORK_MARKS

pytest.importorskip("lightning", reason="lightning is not installed (pip install '.[frameworks]')")

import lightning.pytorch as pl
from lightning.pytorch.loggers import Logger

from pacha_sdk.integrations.lightning import PachaLogger
from tests.integrations.tiny_lightning import loaders, module_class, trainer

pytestmark = FRAMEWORK_MARKS

Tiny = module_class(pl)


class Recorder(Logger):
    """Keeps what Lightning hands its loggers."""

    def __init__(self) -> None:
        super().__init__()
        self.points: list[tuple[str, int | None, float]] = []
        self.hparams: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return "recorder"

    @property
    def version(self) -> int:
        return 0

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.points += [(name, step, float(value)) for name, value in metrics.items()]

    def log_hyperparams(
        self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any
    ) -> None:
        self.hparams.update(vars(params) if isinstance(params, Namespace) else params)


def _points(run_id: str, uri: str) -> list[tuple[str, int, float]]:
    table = pacha.read_metrics(run_id, uri=uri)
    rows = zip(
        table.column("name").to_pylist(),
        table.column("step").to_pylist(),
        table.column("value").to_pylist(),
    )
    return sorted(rows)


def _only_run(uri: str) -> pacha.ExperimentRun:
    runs = pacha.list_runs(uri=uri)
    assert len(runs) == 1, [run.run_id for run in runs]
    return runs[0]


def test_fit_then_test_is_one_run_with_what_lightning_logged(store: str, tmp_path: Path) -> None:
    logger = PachaLogger(uri=store, name="tiny", system_metrics=False)
    recorder = Recorder()
    train, valid = loaders()
    fitter = trainer(pl, [logger, recorder], str(tmp_path))
    fitter.fit(Tiny(lr=0.05, hidden=8), train, valid)
    assert logger.run is not None
    assert logger.run.status is pacha.RunStatus.RUNNING  # kept open for the next phase
    fitter.test(fitter.lightning_module, valid)
    logger.run.complete()

    record = _only_run(store)
    assert record.run_id == logger.version
    assert record.status is pacha.RunStatus.COMPLETED
    assert record.name == "tiny"
    assert record.hyperparameters.custom == {"lr": 0.05, "hidden": 8, "fail_at": -1, "wait_at": -1}
    expected = sorted(
        (name, step, value) for name, step, value in recorder.points if step is not None
    )
    assert len(expected) == len(recorder.points)
    assert _points(record.run_id, store) == expected
    names = {name for name, _, _ in expected}
    assert {"train_loss", "val_loss", "test_loss", "epoch"} <= names
    (test_loss,) = [value for name, _, value in recorder.points if name == "test_loss"]
    assert record.summary["test_loss"] == test_loss


def test_an_exception_in_training_fails_the_run_and_keeps_its_points(
    store: str, tmp_path: Path
) -> None:
    logger = PachaLogger(uri=store, system_metrics=False)
    train, _ = loaders()
    with pytest.raises(ValueError, match="diverged at step 3"):
        trainer(pl, logger, str(tmp_path)).fit(Tiny(fail_at=3), train)
    record = _only_run(store)
    assert record.status is pacha.RunStatus.FAILED
    assert record.error_message == "ValueError: diverged at step 3"
    assert "diverged" in str(record.extra["traceback"])
    steps = [step for name, step, _ in _points(record.run_id, store) if name == "train_loss"]
    assert steps == [0, 1, 2]


def test_inside_a_with_block_the_logger_logs_into_that_run(store: str, tmp_path: Path) -> None:
    train, _ = loaders()
    with pacha.run({"seed": 1}, uri=store, system_metrics=False) as run:
        logger = PachaLogger(uri=store)
        trainer(pl, logger, str(tmp_path), max_epochs=1).fit(Tiny(), train)
        assert logger.run is run
        assert logger.version == str(run.run_id)
        assert run.status is pacha.RunStatus.RUNNING  # the block decides
    record = _only_run(store)
    assert record.status is pacha.RunStatus.COMPLETED
    assert record.hyperparameters.custom["seed"] == 1
    assert record.hyperparameters.custom["lr"] == 0.1
    assert [s for n, s, _ in _points(run.run_id, store) if n == "train_loss"] == [0, 1, 2, 3]


def test_checkpoints_are_stored_as_artifacts(store: str, tmp_path: Path) -> None:
    logger = PachaLogger(uri=store, log_checkpoints=True, system_metrics=False)
    train, _ = loaders()
    fitter = trainer(pl, logger, str(tmp_path), enable_checkpointing=True)
    fitter.fit(Tiny(), train)
    assert logger.run is not None
    logger.run.complete()
    saved = Path(fitter.checkpoint_callback.best_model_path)
    assert saved.is_relative_to(tmp_path / "pacha" / logger.version / "checkpoints")
    record = _only_run(store)
    # Each checkpoint as it was saved, also the first, which save_top_k=1 then deleted.
    assert [(a.artifact_type, a.name) for a in record.artifacts] == [
        ("checkpoint", "epoch=0-step=4.ckpt"),
        ("checkpoint", saved.name),
    ]
    assert saved.name == "epoch=1-step=8.ckpt"
    with pacha.open_artifact(record.artifacts[-1], uri=store) as blob:
        assert blob.read() == saved.read_bytes()


def test_the_pytorch_lightning_namespace_has_its_own_logger(store: str, tmp_path: Path) -> None:
    pytorch_lightning = pytest.importorskip("pytorch_lightning")
    from pacha_sdk.integrations.pytorch_lightning import PachaLogger as ClassicLogger

    logger = ClassicLogger(uri=store, system_metrics=False)
    assert isinstance(logger, pytorch_lightning.loggers.Logger)
    train, _ = loaders()
    trainer(pytorch_lightning, logger, str(tmp_path), max_epochs=1).fit(
        module_class(pytorch_lightning)(), train
    )
    assert logger.run is not None
    logger.run.complete()
    record = _only_run(store)
    assert [s for n, s, _ in _points(record.run_id, store) if n == "train_loss"] == [0, 1, 2, 3]


_CHILD = """
import sys
import lightning.pytorch as pl
from pacha_sdk.integrations.lightning import PachaLogger
from tests.integrations.tiny_lightning import (
    loaders, module_class, note_exception_callback, trainer,
)

logger = PachaLogger(uri={store!r}, system_metrics=False)
train, valid = loaders()
fitter = trainer(pl, logger, ".", callbacks=[note_exception_callback(pl)], {options})
print("RUN", logger.version, flush=True)
fitter.fit(module_class(pl)({module}), train, valid)
fitter.test(fitter.lightning_module, valid)
print("RANK", fitter.global_rank, "DONE", flush=True)
"""


def _child(tmp_path: Path, store: str, *, options: str = "", module: str = "") -> Child:
    script = _CHILD.format(store=store, options=options, module=module)
    return Child(script, tmp_path, name="lightning_child")


@pytest.mark.subprocess
def test_ctrl_c_cancels_the_run(store: str, tmp_path: Path) -> None:
    child = _child(tmp_path, store, module="wait_at=2")
    child.interrupt(signal.SIGINT)
    finished = child.finish()
    assert finished.returncode == 1, finished.stderr  # Lightning's sys.exit(1)
    assert "EXCEPTION KeyboardInterrupt" in finished.stdout
    record = pacha.load_run(finished.line("RUN"), uri=store)
    assert record.status is pacha.RunStatus.CANCELLED
    assert record.error_message is None
    assert [s for n, s, _ in _points(record.run_id, store) if n == "train_loss"] == [0, 1]


@pytest.mark.subprocess
def test_sigterm_goes_through_lightnings_graceful_shutdown_then_cancels(
    store: str, tmp_path: Path
) -> None:
    child = _child(tmp_path, store, module="wait_at=2")
    child.interrupt(signal.SIGTERM)
    finished = child.finish()
    assert finished.returncode != -signal.SIGTERM, "pacha ended the process before Lightning"
    assert "EXCEPTION SIGTERMException" in finished.stdout  # Lightning's own path ran
    assert "DONE" not in finished.stdout
    record = pacha.load_run(finished.line("RUN"), uri=store)
    assert record.status is pacha.RunStatus.CANCELLED
    # The interrupted step finished: Lightning stops at the end of the batch.
    assert [s for n, s, _ in _points(record.run_id, store) if n == "train_loss"] == [0, 1, 2]


@pytest.mark.subprocess
def test_ddp_on_two_cpu_processes_is_one_run_with_both_ranks(store: str, tmp_path: Path) -> None:
    child = _child(tmp_path, store, options='strategy="ddp", devices=2')
    finished = child.finish()
    assert finished.returncode == 0, finished.stderr
    run_id = finished.line("RUN")
    record = _only_run(store)
    assert record.run_id == run_id
    assert record.status is pacha.RunStatus.COMPLETED  # rank 0 finished at exit
    assert record.extra["world_size"] == 2
    (rank_one,) = pacha.load_rank_records(run_id, uri=store)
    assert rank_one.rank == 1
    assert rank_one.status is pacha.RunStatus.COMPLETED
    table = pacha.read_metrics(run_id, uri=store, names=["train_loss"])
    by_rank: dict[int, list[int]] = {}
    for rank, step in zip(table.column("rank").to_pylist(), table.column("step").to_pylist()):
        by_rank.setdefault(rank, []).append(step)
    # 32 points, 8 a batch, split over 2 ranks, 2 epochs: steps 0-3 on each rank.
    assert {rank: sorted(steps) for rank, steps in by_rank.items()} == {
        0: [0, 1, 2, 3],
        1: [0, 1, 2, 3],
    }
    assert rank_one.summary.keys() >= {"train_loss", "val_loss", "test_loss"}
