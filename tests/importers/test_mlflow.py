"""MLflow file stores and SQLite stores, written by MLflow's client, imported exactly and once."""

from __future__ import annotations

import math
import shutil
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import pacha_sdk as pacha
from pacha_sdk.importers._ingest import imported_run_id
from tests.importers.conftest import START_MS, MlflowSource, mlflow_client, point_rows, tree

pytest.importorskip("mlflow", reason="needs pacha-sdk[import] (mlflow-skinny)")

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def at_ms(millis: int) -> datetime:
    return EPOCH + timedelta(milliseconds=millis)


def pacha_id(mlflow_run_id: str) -> str:
    return str(imported_run_id("mlflow", mlflow_run_id))


def source_points(source: MlflowSource, run_id: str) -> list[tuple[str, int, float | str, int]]:
    """What MLflow itself reads back for a run: every point with a step pacha can store."""
    client = mlflow_client(source.tracking_uri)
    rows = []
    for key in client.get_run(run_id).data.metrics:
        for m in client.get_metric_history(run_id, key):
            if m.step >= 0:
                value: float | str = "nan" if math.isnan(m.value) else m.value
                rows.append((key, m.step, value, m.timestamp * 1000))
    return sorted(rows)


def stored_points(store: str, run_id: str) -> list[tuple[str, int, float | str, int]]:
    return point_rows(pacha.read_metrics(pacha_id(run_id), uri=store))


def test_every_run_point_and_field_arrives(mlflow_source: MlflowSource, store: str) -> None:
    report = pacha.import_mlflow(mlflow_source.source, uri=store)

    runs = mlflow_source.runs
    imported = {role: runs[role] for role in runs if role != "deleted"}
    assert sorted(report.imported) == sorted(pacha_id(r) for r in imported.values())
    assert report.skipped == []
    assert report.updated == []
    assert report.unchanged == []
    assert report.ignored == {"points with a negative step": 1}
    for role, run_id in imported.items():
        assert stored_points(store, run_id) == source_points(mlflow_source, run_id), role
    assert report.points == sum(len(source_points(mlflow_source, r)) for r in imported.values())

    parent = pacha.load_run(pacha_id(runs["parent"]), uri=store)
    assert parent.name == "resnet-sweep"
    assert parent.status is pacha.RunStatus.COMPLETED
    assert parent.started_at == at_ms(START_MS)
    assert parent.finished_at == at_ms(START_MS + 60_000)
    assert parent.duration_secs == 60
    assert parent.git_commit == "0123abcd"
    assert parent.tags == {"team": "cv"}
    hparams = parent.hyperparameters
    assert (hparams.learning_rate, hparams.batch_size, hparams.epochs) == (0.001, 64, 3)
    assert hparams.weight_decay == 1e-4
    assert hparams.custom == {
        "dropout": 0.1,
        "note": "None",
        "optimizer": "adam",
        "seed": "007",
        "use_amp": True,
    }
    assert parent.extra["source"] == {
        "system": "mlflow",
        "run_id": runs["parent"],
        "experiment_id": mlflow_source.experiments["vision"],
        "experiment_name": "vision",
        "user_id": parent.extra["source"]["user_id"],  # type: ignore[index, call-overload]
        "tags": {"mlflow.user": "ana", "mlflow.source.git.commit": "0123abcd"},
        "artifact_sizes": {
            "model/MLmodel": 12,
            "model/weights.bin": 4096,
            "models/classifier/MLmodel": 23,
            "models/classifier/model.pkl": 18,
            "notes.txt": 12,
        },
    }
    # MLflow's SQLite store keeps infinities as the largest floats; the file store keeps them.
    sqlite = mlflow_source.source.startswith("sqlite:")
    latest_acc = -sys.float_info.max if sqlite else None
    assert parent.summary == {"loss": None, "acc": latest_acc, "val/acc": 0.75}

    statuses = {"child-ok": "completed", "child-failed": "failed", "child-killed": "cancelled"}
    for role, status in statuses.items():
        child = pacha.load_run(pacha_id(runs[role]), uri=store)
        assert (child.name, child.status.value, child.parent_run_id) == (
            role,
            status,
            parent.run_id,
        )
        assert child.finished_at is not None
        assert child.finished_at - child.started_at == timedelta(milliseconds=500)
    running = pacha.load_run(pacha_id(runs["running"]), uri=store)
    assert running.status is pacha.RunStatus.RUNNING
    assert running.finished_at is None
    assert running.extra["source"]["experiment_name"] == "nlp"  # type: ignore[index, call-overload]
    with pytest.raises(pacha.RunNotFoundError):
        pacha.load_run(pacha_id(runs["deleted"]), uri=store)


def test_file_store_keeps_repeated_points_and_infinities(mlruns: MlflowSource, store: str) -> None:
    pacha.import_mlflow(mlruns.source, uri=store)
    table = pacha.read_metrics(pacha_id(mlruns.runs["parent"]), uri=store, names=["loss", "acc"])
    rows = [(n, s) for n, s, _, _ in point_rows(table)]
    assert rows.count(("loss", 2)) == 3
    assert rows.count(("loss", 1)) == 2
    assert sorted(v for n, _, v, _ in point_rows(table) if n == "acc") == [
        -math.inf,
        0.5,
        math.inf,
    ]


def test_listed_ranked_and_shown_like_any_run(mlruns: MlflowSource, store: str) -> None:
    pacha.import_mlflow(mlruns.source, uri=store)
    names = [run.name for run in pacha.list_runs(uri=store)]
    assert names == ["bert", "child-killed", "child-failed", "child-ok", "resnet-sweep"]
    best = pacha.best_run("loss", mode="min", uri=store)
    assert best is not None
    assert best.name == "child-ok"
    assert [r.name for r in pacha.list_runs(uri=store, status="failed")] == ["child-failed"]


def test_second_import_writes_nothing(mlflow_source: MlflowSource, store: str) -> None:
    first = pacha.import_mlflow(mlflow_source.source, uri=store)
    before = tree(store)
    again = pacha.import_mlflow(mlflow_source.source, uri=store)
    assert tree(store) == before
    assert again.imported == []
    assert again.updated == []
    assert sorted(again.unchanged) == sorted(first.imported)
    assert (again.points, again.artifacts) == (0, 0)


def test_grown_source_adds_exactly_the_new_points(mlflow_source: MlflowSource, store: str) -> None:
    pacha.import_mlflow(mlflow_source.source, uri=store)
    before = tree(store)
    client = mlflow_client(mlflow_source.tracking_uri)
    running = mlflow_source.runs["running"]
    had = len(source_points(mlflow_source, running))
    from mlflow.entities import Metric

    grown = [Metric("loss", 0.5, START_MS + 20_000 + s, s) for s in (10, 11, 3)]
    client.log_batch(running, metrics=[*grown, Metric("loss", 2.7, START_MS + 9003, 3)])
    client.set_terminated(running, "FINISHED", end_time=START_MS + 30_000)
    newcomer = client.create_run(mlflow_source.experiments["nlp"], start_time=START_MS).info.run_id

    report = pacha.import_mlflow(mlflow_source.source, uri=store)

    assert report.imported == [imported_run_id("mlflow", newcomer)]
    assert report.updated == [imported_run_id("mlflow", running)]
    # A point logged again with its old time and value is a second point in a file store
    # (imported once more) and the same row in an SQLite store (nothing to add).
    assert report.points == len(source_points(mlflow_source, running)) - had
    assert report.points == (4 if mlflow_source.source.startswith("/") else 3)
    after = tree(store)
    assert {k: v for k, v in after.items() if k in before and "run.json" not in k} == {
        k: v for k, v in before.items() if "run.json" not in k
    }
    new_parts = sorted(set(after) - set(before))
    assert [p for p in new_parts if p.startswith("metrics/")] == [
        f"metrics/run_id={pacha_id(running)}/part-import-000001.parquet"
    ]
    assert stored_points(store, running) == source_points(mlflow_source, running)
    record = pacha.load_run(pacha_id(running), uri=store)
    assert record.status is pacha.RunStatus.COMPLETED
    assert record.finished_at == at_ms(START_MS + 30_000)
    assert record.summary["loss"] == 0.5


def test_artifacts_are_content_addressed_and_optional(mlruns: MlflowSource, store: str) -> None:
    report = pacha.import_mlflow(mlruns.source, uri=store, artifacts=False)
    assert report.artifacts == 0
    parent_id = pacha_id(mlruns.runs["parent"])
    assert pacha.load_run(parent_id, uri=store).artifacts == []
    assert not Path(store, "artifacts").exists()

    report = pacha.import_mlflow(mlruns.source, uri=store)
    assert report.artifacts == 5
    assert report.updated == [parent_id]
    refs = {ref.name: ref for ref in pacha.load_run(parent_id, uri=store).artifacts}
    assert {name: ref.artifact_type for name, ref in refs.items()} == {
        "model/MLmodel": "model",
        "model/weights.bin": "model",
        "models/classifier/MLmodel": "model",
        "models/classifier/model.pkl": "model",
        "notes.txt": "file",
    }
    run_dir = Path(mlruns.source, mlruns.experiments["vision"], mlruns.runs["parent"], "artifacts")
    for name, ref in refs.items():
        if not name.startswith("models/"):
            with pacha.open_artifact(ref, uri=store) as stored:
                assert stored.read() == (run_dir / name).read_bytes()
    with pacha.open_artifact(refs["models/classifier/model.pkl"], uri=store) as stored:
        assert stored.read() == b"pickled classifier"

    pacha.import_mlflow(mlruns.source, uri=store, artifacts=False)
    assert {ref.name for ref in pacha.load_run(parent_id, uri=store).artifacts} == set(refs)


def test_a_moved_mlruns_folder_imports_the_same_runs(
    mlruns: MlflowSource, store: str, tmp_path: Path
) -> None:
    moved = tmp_path / "elsewhere" / "mlruns"
    shutil.copytree(mlruns.source, moved)
    shutil.rmtree(mlruns.source)
    report = pacha.import_mlflow(moved, uri=store)
    assert report.skipped == []
    assert report.artifacts == 5
    assert pacha_id(mlruns.runs["parent"]) in report.imported


def test_only_the_experiments_named(mlflow_source: MlflowSource, store: str) -> None:
    by_name = pacha.import_mlflow(mlflow_source.source, experiments=["nlp"], uri=store)
    assert by_name.imported == [imported_run_id("mlflow", mlflow_source.runs["running"])]
    vision = mlflow_source.experiments["vision"]
    by_id = pacha.import_mlflow(mlflow_source.source, experiments=[vision], uri=store)
    assert len(by_id.imported) == 4
    with pytest.raises(pacha.ImportSourceError, match="no experiment named or numbered 'nope'"):
        pacha.import_mlflow(mlflow_source.source, experiments=["nope"], uri=store)


def test_a_corrupt_metric_file_skips_that_run_only(mlruns: MlflowSource, store: str) -> None:
    vision = Path(mlruns.source, mlruns.experiments["vision"])
    broken = vision / mlruns.runs["child-failed"] / "metrics" / "loss"
    good = broken.read_text()
    broken.write_text(good + "garbage that is no metric line\n")

    report = pacha.import_mlflow(mlruns.source, uri=store)

    assert [s.source_id for s in report.skipped] == [mlruns.runs["child-failed"]]
    assert "Metric 'loss' is malformed" in report.skipped[0].reason
    assert len(report.imported) == 4
    with pytest.raises(pacha.RunNotFoundError):
        pacha.load_run(pacha_id(mlruns.runs["child-failed"]), uri=store)

    broken.write_text(good)
    fixed = pacha.import_mlflow(mlruns.source, uri=store)
    assert fixed.imported == [imported_run_id("mlflow", mlruns.runs["child-failed"])]
    assert fixed.skipped == []
    assert len(fixed.unchanged) == 4


def test_an_import_stopped_half_way_is_completed_without_duplicates(
    mlruns: MlflowSource, store: str
) -> None:
    pacha.import_mlflow(mlruns.source, uri=store)
    parent = pacha_id(mlruns.runs["parent"])
    Path(store, "runs", parent, "run.json").unlink()  # as if it stopped after the part file

    report = pacha.import_mlflow(mlruns.source, uri=store)

    assert report.imported == [parent]
    assert report.points == 0
    assert stored_points(store, mlruns.runs["parent"]) == source_points(
        mlruns, mlruns.runs["parent"]
    )


def test_the_source_is_never_written(mlflow_source: MlflowSource, store: str) -> None:
    if mlflow_source.source.startswith("sqlite:"):
        watched = Path(mlflow_source.source.removeprefix("sqlite:///")).parent
    else:
        watched = Path(mlflow_source.source)
    before = tree(watched)
    pacha.import_mlflow(mlflow_source.source, uri=store)
    after = tree(watched)
    assert {k: v for k, v in after.items() if not k.startswith("store/")} == {
        k: v for k, v in before.items() if not k.startswith("store/")
    }


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "absent", "no such folder"),
        (lambda tmp: _mkdir(tmp / "empty"), "is not an MLflow store"),
        (lambda tmp: _mkdir(tmp / "project" / "mlruns" / "0").parent.parent, "did you mean"),
        (lambda tmp: f"sqlite:///{tmp / 'absent.db'}", "no such database file"),
        (lambda tmp: _write(tmp / "notes.db", b"not a database at all" * 100), "not an SQLite"),
        (lambda tmp: _empty_sqlite(tmp / "other.db"), "is not an MLflow database"),
        (lambda tmp: "sqlite://", "is not an SQLite database file"),
        (lambda tmp: "", "is not an MLflow source"),
    ],
)
def test_bad_sources_are_named_and_nothing_is_written(
    make: Any, message: str, tmp_path: Path, store: str
) -> None:
    source = make(tmp_path)
    with pytest.raises(pacha.ImportSourceError, match=message):
        pacha.import_mlflow(source, uri=store)
    assert not Path(store).exists()


def test_an_unreachable_server_is_one_error(store: str) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(pacha.ImportSourceError, match=rf"127\.0\.0\.1:{port}: cannot connect"):
        pacha.import_mlflow(f"http://user:secret@127.0.0.1:{port}", uri=store)


def test_a_destination_that_cannot_be_written(mlruns: MlflowSource, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the store should be")
    with pytest.raises(pacha.StoreError, match="could not"):
        pacha.import_mlflow(mlruns.source, uri=str(blocker / "store"))


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _empty_sqlite(path: Path) -> Path:
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    return path
