"""Sources written by the real writers (MLflow's client, tensorboardX), and ways to compare.

The MLflow source has two experiments with a parent run and three nested
runs (finished, failed, killed), a running run, a deleted run, params that
are numbers, bools and text, MLflow system tags, metrics with repeated and
out-of-order steps, NaN and infinities, artifacts including a model folder,
and a model logged beside the run (MLflow 3). Every time is given
explicitly, so the import can be checked to the millisecond. What pacha
should hold is read back from the source with MLflow's own client (the
oracle), never from what the test meant to log.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

START_MS = 1_700_000_000_000
"""Start time of the first MLflow run (2023-11-14T22:13:20Z)."""


def mlflow_client(tracking_uri: str) -> Any:
    """MLflow's client for *tracking_uri*, or the test is skipped without the extra."""
    mlflow = pytest.importorskip("mlflow", reason="needs pacha-sdk[import] (mlflow-skinny)")
    return mlflow.MlflowClient(tracking_uri=tracking_uri)


@pytest.fixture(autouse=True)
def _mlflow_file_store_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests write file stores with MLflow's client, which refuses them otherwise."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")


@pytest.fixture(autouse=True)
def _quiet_mlflow_deprecations() -> Iterator[None]:
    """MLflow's own dependencies warn about their deprecations while the test writes."""
    import warnings

    with warnings.catch_warnings():
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
            warnings.simplefilter("ignore", category)
        yield


@dataclass
class MlflowSource:
    """An MLflow store the test wrote, and the MLflow run ids by role."""

    tracking_uri: str
    source: str
    """What ``import_mlflow`` is given."""
    runs: dict[str, str] = field(default_factory=dict)
    experiments: dict[str, str] = field(default_factory=dict)


def _metric(key: str, value: float, step: int, offset_ms: int) -> Any:
    from mlflow.entities import Metric

    return Metric(key, value, START_MS + offset_ms, step)


def write_mlflow_source(tracking_uri: str, source: str, files: Path) -> MlflowSource:
    """Fill an empty MLflow store (see the module docstring)."""
    client = mlflow_client(tracking_uri)
    written = MlflowSource(tracking_uri, source)
    vision = client.create_experiment("vision")
    nlp = client.create_experiment("nlp")
    written.experiments = {"vision": vision, "nlp": nlp}

    parent = client.create_run(
        vision,
        start_time=START_MS,
        run_name="resnet-sweep",
        tags={"team": "cv", "mlflow.source.git.commit": "0123abcd", "mlflow.user": "ana"},
    ).info.run_id
    params = {
        "learning_rate": "0.001",
        "batch_size": "64",
        "epochs": "3",
        "optimizer": "adam",
        "dropout": "0.1",
        "use_amp": "True",
        "seed": "007",
        "note": "None",
        "weight_decay": "1e-4",
    }
    client.log_batch(parent, params=[_param(k, v) for k, v in params.items()])
    losses = [(0, 2.5), (1, 1.5), (2, 1.0), (1, 1.25), (3, math.nan), (2, 1.0), (2, 1.0)]
    client.log_batch(
        parent,
        metrics=[_metric("loss", v, s, 10 * i) for i, (s, v) in enumerate(losses)]
        + [_metric("acc", v, s, 5 + s) for s, v in [(0, 0.5), (1, math.inf), (2, -math.inf)]]
        + [_metric("val/acc", 0.75, 2, 500), _metric("lr", 1e-3, -1, 0)],
    )
    model = files / "model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n")
    (model / "weights.bin").write_bytes(os.urandom(4096))
    (files / "notes.txt").write_text("first sweep\n")
    client.log_artifacts(parent, str(model), "model")
    client.log_artifact(parent, str(files / "notes.txt"))
    logged = files / "logged-model"
    logged.mkdir()
    (logged / "MLmodel").write_text("flavors: {sklearn: {}}\n")
    (logged / "model.pkl").write_bytes(b"pickled classifier")
    model_id = client.create_logged_model(vision, name="classifier", source_run_id=parent).model_id
    client.log_model_artifacts(model_id, str(logged))
    client.set_terminated(parent, "FINISHED", end_time=START_MS + 60_000)
    written.runs["parent"] = parent

    for offset, (role, status) in enumerate(
        [("child-ok", "FINISHED"), ("child-failed", "FAILED"), ("child-killed", "KILLED")], 1
    ):
        child = client.create_run(
            vision,
            start_time=START_MS + 1000 * offset,
            run_name=role,
            tags={"mlflow.parentRunId": parent},
        ).info.run_id
        client.log_param(child, "learning_rate", str(10.0**-offset))
        client.log_batch(
            child, metrics=[_metric("loss", 1.0 / (s + offset), s, s) for s in range(5)]
        )
        client.set_terminated(child, status, end_time=START_MS + 1000 * offset + 500)
        written.runs[role] = child

    running = client.create_run(nlp, start_time=START_MS + 9000, run_name="bert").info.run_id
    client.log_batch(
        running, metrics=[_metric("loss", 3.0 - s / 10, s, 9000 + s) for s in range(10)]
    )
    written.runs["running"] = running

    deleted = client.create_run(nlp, start_time=START_MS, run_name="oops").info.run_id
    client.delete_run(deleted)
    written.runs["deleted"] = deleted
    return written


def _param(key: str, value: str) -> Any:
    from mlflow.entities import Param

    return Param(key, value)


@pytest.fixture
def mlruns(tmp_path: Path) -> MlflowSource:
    """An MLflow file store (``mlruns`` folder) written by MLflow's client."""
    root = tmp_path / "mlruns"
    files = tmp_path / "files"
    files.mkdir()
    return write_mlflow_source(root.as_uri(), str(root), files)


@pytest.fixture
def mlflow_db(tmp_path: Path) -> MlflowSource:
    """An MLflow SQLite store written by MLflow's client (artifacts in ./mlruns beside it)."""
    database = tmp_path / "mlflow.db"
    files = tmp_path / "files"
    files.mkdir()
    uri = f"sqlite:///{database}"
    return write_mlflow_source(uri, uri, files)


@pytest.fixture(params=["file store", "sqlite"])
def mlflow_source(request: pytest.FixtureRequest) -> MlflowSource:
    """Each kind of local MLflow store in turn."""
    name = "mlruns" if request.param == "file store" else "mlflow_db"
    source: MlflowSource = request.getfixturevalue(name)
    return source


def tree(root: str | Path) -> dict[str, str]:
    """Every file under *root* by relative path, with the SHA-256 of its bytes."""
    base = Path(root)
    if not base.exists():
        return {}
    return {
        path.relative_to(base).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(base.rglob("*"))
        if path.is_file()
    }


def point_rows(table: Any) -> list[tuple[str, int, float | str, int]]:
    """Points of a metrics table as sortable rows (NaN as ``"nan"``), µs since the epoch."""
    import pyarrow as pa

    micros = table.column("timestamp").cast(pa.int64()).to_pylist()
    rows = zip(table.column("name").to_pylist(), table.column("step").to_pylist(),
               table.column("value").to_pylist(), micros)  # fmt: skip
    return sorted((n, s, "nan" if math.isnan(v) else v, t) for n, s, v, t in rows)
