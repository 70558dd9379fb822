"""Fixtures for the command-line tests: stores populated by the SDK, and a way to run ``pacha``.

Commands run in this process through :func:`pacha_sdk.cli.main` (fast, and
``memory://`` stores are visible); a few tests start ``pacha`` as a real
process to check the entry points and that errors print no traceback.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import pacha_sdk as pacha
from pacha_sdk.backends import get_backend
from pacha_sdk.cli import main
from pacha_sdk.models import RunStatus, format_timestamp, utc_now
from pacha_sdk.storage.layout import run_record_key


@dataclass
class Result:
    """What one ``pacha`` command did."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Store:
    """A store the SDK wrote, and the ids of its runs by name."""

    uri: str
    runs: dict[str, str] = field(default_factory=dict)
    model_hash: str = ""
    data_hash: str = ""


class Cli:
    """Runs ``pacha`` in this process and captures what it prints."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys

    def __call__(self, *argv: str) -> Result:
        self._capsys.readouterr()
        code = main(list(argv))
        captured = self._capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def ok(self, *argv: str) -> Result:
        """Run and insist on success with nothing on stderr."""
        result = self(*argv)
        assert result.code == 0, result.err
        assert result.err == "", result.err
        return result


@pytest.fixture(autouse=True)
def plain_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """No inherited setting forces colour or a terminal on rich (CI sets some)."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR", "COLUMNS", "PACHA_SPOOL_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(capsys)


def populate(uri: str, **options: Any) -> Store:
    """Three runs: two completed (metrics, artifacts, a recipe), one failed with a NaN loss."""
    store = Store(uri)
    storage = options or None
    data = pacha.run({"rows": 1000}, uri=uri, storage_options=storage, name="prepare")
    with data as run:
        store.data_hash = run.log_artifact(
            b"the data", name="data.csv", artifact_type="dataset"
        ).content_hash
    store.runs["prepare"] = str(run.run_id)
    recipe = pacha.RecipeReference("bert-finetune", "1.2.0")
    for index, lr in enumerate([1e-3, 3e-4]):
        hparams = {"learning_rate": lr, "batch_size": 64, "layers": 12}
        with pacha.run(
            hparams, uri=uri, storage_options=storage, name=f"bert-{index}", recipe=recipe
        ) as run:
            run.use_artifact(store.data_hash)
            for step in range(20):
                loss = 2.0 * math.exp(-step * lr * 100)
                run.log_metrics({"loss": loss, "acc": 1 - loss / 2}, step=step)
            store.model_hash = run.log_artifact(b"weights", name="model.bin").content_hash
        store.runs[f"bert-{index}"] = str(run.run_id)
    try:
        with pacha.run(
            {"learning_rate": 0.1}, uri=uri, storage_options=storage, name="diverged"
        ) as run:
            store.runs["diverged"] = str(run.run_id)
            run.log_metric("loss", float("nan"), 0)
            raise RuntimeError("loss is NaN")
    except RuntimeError:
        pass
    return store


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A local store for tests that only read (populated once per module)."""
    return populate(str(tmp_path_factory.mktemp("shared") / "store"))


@pytest.fixture
def fresh_store(tmp_path: Path) -> Store:
    """A local store of its own, for tests that change it."""
    return populate(str(tmp_path / "store"))


def make_stale(uri: str, run_id: str, *, age: float = 3600.0, **options: Any) -> None:
    """Rewrite a run as a process killed *age* seconds ago would have left it."""
    record = pacha.load_run(run_id, uri=uri, storage_options=options or None)
    record.status = RunStatus.RUNNING
    record.finished_at = None
    record.error_message = None
    record.extra["heartbeat_at"] = format_timestamp(utc_now() - timedelta(seconds=age))
    record.extra["flush_interval"] = 5.0
    backend = get_backend(uri, storage_options=options or None)
    backend.replace(run_record_key(record.run_id), record.model_dump_json().encode())
