"""TensorBoard logs written by tensorboardX's SummaryWriter, imported exactly and once."""

from __future__ import annotations

import math
import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import pacha_sdk as pacha
from tests.importers.conftest import point_rows, tree

pytest.importorskip("tensorboard", reason="needs pacha-sdk[import] (tensorboard)")
tensorboardX = pytest.importorskip("tensorboardX", reason="needs tensorboardX (pacha-sdk[test])")
np = pytest.importorskip("numpy")

T0 = 1_700_000_000.0
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
LOSSES = [(0, 2.5), (1, 1.5), (2, 1.0), (1, 1.25), (3, math.nan), (2, 1.0)]


def f32(value: float) -> float | str:
    """What a TensorBoard scalar keeps of *value* (float32), NaN as ``"nan"``."""
    kept = float(np.float32(value))
    return "nan" if math.isnan(kept) else kept


def micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def write_resnet(logdir: Path, *, hparams: bool = True) -> None:
    """A run: scalars (repeated, out-of-order, NaN, inf), a histogram, an image, text, hparams."""
    with tensorboardX.SummaryWriter(str(logdir / "resnet")) as writer:
        for index, (step, value) in enumerate(LOSSES):
            writer.add_scalar("loss", value, step, walltime=T0 + index * 0.25)
        writer.add_scalar("acc", math.inf, 1, walltime=T0 + 2)
        writer.add_scalar("warmup", 0.5, -1, walltime=T0 + 2)
        writer.add_histogram("weights", np.arange(10), 0, walltime=T0)
        writer.add_image("sample", np.zeros((3, 4, 4)), 0, walltime=T0)
        writer.add_text("note", "first sweep", 0, walltime=T0)
        if hparams:
            writer.add_hparams(
                {"learning_rate": 0.01, "batch_size": 32, "optimizer": "adam", "amp": True},
                {"hparam/acc": 0.875},
            )


def write_bert(logdir: Path, steps: range = range(5), offset: float = 100.0) -> None:
    with tensorboardX.SummaryWriter(str(logdir / "group" / "bert")) as writer:
        for step in steps:
            writer.add_scalar("loss", 1.0 / (step + 1), step, walltime=T0 + offset + step)


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    write_resnet(root)
    write_bert(root)
    return root


def runs_by_name(store: str) -> dict[str, pacha.ExperimentRun]:
    return {str(run.name): run for run in pacha.list_runs(uri=store)}


def test_scalars_and_hparams_of_each_run_arrive(logdir: Path, store: str) -> None:
    before = time.time()
    report = pacha.import_tensorboard(logdir, uri=store)

    assert report.skipped == []
    assert len(report.imported) == 2
    assert report.ignored == {
        "histograms": 1,
        "images": 1,
        "text": 1,
        "points with a negative step": 1,
    }
    runs = runs_by_name(store)
    assert sorted(runs) == ["group/bert", "resnet"]
    resnet = runs["resnet"]
    hparams = resnet.hyperparameters
    assert (hparams.learning_rate, hparams.batch_size) == (0.01, 32)
    assert hparams.custom == {"amp": True, "optimizer": "adam"}
    assert resnet.status is pacha.RunStatus.COMPLETED
    assert resnet.started_at == EPOCH + timedelta(microseconds=micros(T0))
    assert resnet.finished_at is not None
    assert resnet.finished_at.timestamp() >= before - 1

    rows = point_rows(pacha.read_metrics(resnet.run_id, uri=store))
    expected = [("loss", s, f32(v), micros(T0 + i * 0.25)) for i, (s, v) in enumerate(LOSSES)]
    expected.append(("acc", 1, math.inf, micros(T0 + 2)))
    assert [r for r in rows if r[0] != "hparam/acc"] == sorted(expected)
    ((_name, step, value, stamp),) = [r for r in rows if r[0] == "hparam/acc"]
    assert (step, value) == (0, f32(0.875))
    assert stamp >= micros(before - 1)

    bert = point_rows(pacha.read_metrics(runs["group/bert"].run_id, uri=store))
    assert bert == [("loss", s, f32(1 / (s + 1)), micros(T0 + 100 + s)) for s in range(5)]
    assert report.points == len(rows) + len(bert)
    assert runs["group/bert"].summary == {"loss": f32(0.2)}
    assert runs["group/bert"].extra["source"]["run_dir"] == "group/bert"  # type: ignore[index, call-overload]


def test_second_import_writes_nothing(logdir: Path, store: str) -> None:
    pacha.import_tensorboard(logdir, uri=store)
    before = tree(store)
    again = pacha.import_tensorboard(logdir, uri=store)
    assert tree(store) == before
    assert (len(again.unchanged), again.imported, again.updated, again.points) == (2, [], [], 0)


def test_a_grown_logdir_adds_only_the_new_points(logdir: Path, store: str) -> None:
    first = pacha.import_tensorboard(logdir, uri=store)
    bert_id = first.run_ids["group/bert"]
    time.sleep(1.1)  # a new writer's event file name carries the second it was opened
    write_bert(logdir, steps=range(5, 8))
    (logdir / "extra").mkdir()
    with tensorboardX.SummaryWriter(str(logdir / "extra")) as writer:
        writer.add_scalar("loss", 0.25, 0, walltime=T0)

    report = pacha.import_tensorboard(logdir, uri=store)

    assert report.updated == [bert_id]
    assert len(report.imported) == 1
    assert report.points == 3 + 1
    bert = point_rows(pacha.read_metrics(bert_id, uri=store))
    assert bert == [("loss", s, f32(1 / (s + 1)), micros(T0 + 100 + s)) for s in range(8)]


def test_moving_the_logdir_or_importing_its_parent_finds_the_same_runs(
    logdir: Path, store: str, tmp_path: Path
) -> None:
    first = pacha.import_tensorboard(logdir, uri=store)
    moved = tmp_path / "archive" / "2023" / "runs-renamed"
    moved.parent.mkdir(parents=True)
    shutil.move(str(logdir), str(moved))

    again = pacha.import_tensorboard(moved, uri=store)
    parent = pacha.import_tensorboard(moved.parent, uri=store)

    assert sorted(again.run_ids.values()) == sorted(first.run_ids.values())
    assert again.points == 0
    assert parent.points == 0
    assert sorted(parent.run_ids.values()) == sorted(first.run_ids.values())
    assert sorted(runs_by_name(store)) == ["runs-renamed/group/bert", "runs-renamed/resnet"]


def test_several_add_hparams_through_one_writer_are_nested_runs(tmp_path: Path, store: str) -> None:
    with tensorboardX.SummaryWriter(str(tmp_path / "sweep")) as writer:
        writer.add_scalar("setup", 1.0, 0, walltime=T0)
        for index in range(3):
            writer.add_hparams({"lr": 0.1 * (index + 1)}, {"hparam/acc": 0.5 + index / 10})
            time.sleep(0.01)  # each call names its folder after the time

    report = pacha.import_tensorboard(tmp_path / "sweep", uri=store)

    assert len(report.imported) == 4
    runs = pacha.list_runs(uri=store)
    (sweep,) = [run for run in runs if run.name == "sweep"]
    trials = [run for run in runs if run.parent_run_id == sweep.run_id]
    assert sorted(str(t.hyperparameters.custom["lr"]) for t in trials) == [
        str(0.1 * (index + 1)) for index in range(3)
    ]
    assert sweep.hyperparameters.custom == {}


def test_a_corrupt_event_file_skips_that_run_only(logdir: Path, store: str) -> None:
    (event_file,) = (logdir / "group" / "bert").glob("events.out.tfevents.*")
    data = bytearray(event_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    event_file.write_bytes(bytes(data))

    report = pacha.import_tensorboard(logdir, uri=store)

    assert [s.source_id for s in report.skipped] == ["group/bert"]
    assert "cannot be read" in report.skipped[0].reason
    assert list(runs_by_name(store)) == ["resnet"]


def test_a_copied_run_folder_is_imported_once(logdir: Path, store: str) -> None:
    shutil.copytree(logdir / "resnet", logdir / "resnet-copy")
    report = pacha.import_tensorboard(logdir, uri=store)
    assert len(report.imported) == 2
    assert [(s.source_id, "same event files as resnet" in s.reason) for s in report.skipped] == [
        ("resnet-copy", True)
    ]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "absent", "no such folder"),
        (lambda tmp: _touch(tmp / "a-file"), "is not a folder"),
        (lambda tmp: _touch(tmp / "logs" / "notes.txt").parent, "has no TensorBoard event files"),
        (lambda tmp: "gs://bucket/logs", "is not a local folder"),
    ],
)
def test_bad_logdirs_are_named_and_nothing_is_written(
    make: Any, message: str, tmp_path: Path, store: str
) -> None:
    with pytest.raises(pacha.ImportSourceError, match=message):
        pacha.import_tensorboard(make(tmp_path), uri=store)
    assert not Path(store).exists()


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not an event file")
    return path


def test_imports_after_a_compaction_add_only_the_new_points(logdir: Path, store: str) -> None:
    first = pacha.import_tensorboard(logdir, uri=store)
    bert_id = first.run_ids["group/bert"]
    time.sleep(1.1)  # a new writer's event file name carries the second it was opened
    write_bert(logdir, steps=range(5, 8))
    pacha.import_tensorboard(logdir, uri=store)  # a second import part: part-import-000001
    assert pacha.compact([bert_id], uri=store).parts_after == 1  # part-import-000000-000001
    time.sleep(1.1)
    write_bert(logdir, steps=range(8, 10))

    report = pacha.import_tensorboard(logdir, uri=store)

    assert report.updated == [bert_id]
    assert report.points == 2
    bert = point_rows(pacha.read_metrics(bert_id, uri=store))
    assert bert == [("loss", s, f32(1 / (s + 1)), micros(T0 + 100 + s)) for s in range(10)]
    folder = Path(store) / "metrics" / f"run_id={bert_id}"
    assert sorted(path.name for path in folder.iterdir()) == [
        "part-import-000000-000001.parquet",
        "part-import-000002.parquet",  # after the merged range, never inside it
    ]
    assert pacha.import_tensorboard(logdir, uri=store).points == 0
