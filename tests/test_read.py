"""Reading runs back: with the SDK, and straight from the layout with pyarrow, DuckDB and Polars."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import pacha_sdk as pacha
from tests.conftest import wait_until

# The README's part-file schema. ``name`` is dictionary-encoded inside the
# Parquet file and read as a plain string.
EXPECTED_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("name", pa.string()),
        ("step", pa.int64()),
        ("value", pa.float64()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("rank", pa.int32()),
    ]
)

Row = tuple[str, str, int, float, int, int]
"""run_id, name, step, value, timestamp in microseconds, rank."""


def _columns(schema: pa.Schema) -> list[tuple[str, pa.DataType]]:
    return [(field.name, field.type) for field in schema]


def _nan_safe(value: float) -> tuple[bool, float]:
    return (math.isnan(value), 0.0 if math.isnan(value) else value)


def _sorted_rows(rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    return sorted((r[0], r[1], r[2], _nan_safe(r[3]), r[4], r[5]) for r in rows)


def _arrow_rows(table: pa.Table) -> list[Row]:
    micros = table["timestamp"].cast(pa.int64()).to_pylist()
    return list(
        zip(
            table["run_id"].to_pylist(),
            table["name"].cast(pa.string()).to_pylist(),
            table["step"].to_pylist(),
            table["value"].to_pylist(),
            micros,
            table["rank"].to_pylist(),
        )
    )


def _points(table: pa.Table) -> list[tuple[str, int, tuple[bool, float]]]:
    """(name, step, value) of every row, sorted, NaN comparable."""
    return sorted(
        (name, step, _nan_safe(value))
        for name, step, value in zip(
            table["name"].to_pylist(), table["step"].to_pylist(), table["value"].to_pylist()
        )
    )


def _expected(points: list[tuple[str, int, float]]) -> list[tuple[str, int, tuple[bool, float]]]:
    return sorted((name, step, _nan_safe(value)) for name, step, value in points)


def _part_files(store: str, run_id: str) -> list[Path]:
    return sorted((Path(store) / "metrics" / f"run_id={run_id}").glob("part-*.parquet"))


LOGGED = [
    ("loss", 0, 2.5),
    ("loss", 1, 1.5),
    ("loss", 1, 1.25),  # a repeated step: both kept
    ("loss", 5, math.nan),
    ("loss", 3, 0.75),  # out of order: kept
    ("grad", 0, math.inf),
    ("grad", 1, -math.inf),
    ("acc", 2, 0.5),
    ("acc", 2**62, -0.0),
]


def test_read_back_equals_what_was_logged(store: str) -> None:
    with pacha.run(uri=store, flush_interval=0.05) as run:
        for name, step, value in LOGGED[:4]:
            run.log_metric(name, value, step)
        assert run.flush(timeout=10)  # two part files, not one
        for name, step, value in LOGGED[4:]:
            run.log_metric(name, value, step)
    record = pacha.load_run(run.run_id, uri=store)
    table = pacha.read_metrics(run.run_id, uri=store)

    assert _points(table) == _expected(LOGGED)
    assert table.num_rows == len(LOGGED)
    assert set(table["run_id"].to_pylist()) == {run.run_id}
    assert set(table["rank"].to_pylist()) == {0}
    assert record.finished_at is not None
    for moment in table["timestamp"].to_pylist():
        assert moment.utcoffset().total_seconds() == 0
        assert record.started_at <= moment <= record.finished_at

    # Latest by step: NaN at step 5 for loss (null in strict JSON), -0.0 for acc.
    assert run.get_metric("loss") is not None
    assert math.isnan(run.get_metric("loss") or 0.0)
    assert record.summary == {"loss": None, "grad": None, "acc": -0.0}
    assert math.isnan(record.get_metric("loss") or 0.0)


def test_schema_is_exactly_the_documented_one(store: str) -> None:
    with pacha.run(uri=store) as run:
        run.log_metric("loss", 1.0, 0)
        run.log_metric("acc", 0.5, 0)
    table = pacha.read_metrics(run.run_id, uri=store)
    assert _columns(table.schema) == _columns(EXPECTED_SCHEMA)
    assert _columns(pacha.read_metrics(uri=store).schema) == _columns(EXPECTED_SCHEMA)
    assert _columns(pacha.metrics_dataset(store).schema) == _columns(EXPECTED_SCHEMA)

    (part,) = _part_files(store, run.run_id)
    assert _columns(pq.read_schema(part)) == _columns(EXPECTED_SCHEMA)
    metadata = pq.ParquetFile(part).metadata
    names_column = metadata.row_group(0).column(1)
    assert names_column.path_in_schema == "name"
    assert any("DICTIONARY" in encoding for encoding in names_column.encodings)


def test_run_without_points_reads_as_an_empty_table_with_the_schema(store: str) -> None:
    with pacha.run(uri=store) as run:
        pass
    table = pacha.read_metrics(run.run_id, uri=store)
    assert table.num_rows == 0
    assert _columns(table.schema) == _columns(EXPECTED_SCHEMA)
    assert pacha.read_metrics(run.run_id, uri=store, names="loss").num_rows == 0
    assert _columns(pacha.read_metrics(uri=store).schema) == _columns(EXPECTED_SCHEMA)
    assert pacha.read_metrics(uri=store).num_rows == 0


def test_names_filter(store: str) -> None:
    with pacha.run(uri=store) as run:
        for step in range(3):
            run.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 10, "lr": 0.1}, step=step)
    only_loss = pacha.read_metrics(run.run_id, uri=store, names="loss")
    assert _points(only_loss) == _expected([("loss", 0, 1.0), ("loss", 1, 0.5), ("loss", 2, 1 / 3)])
    two = pacha.read_metrics(run.run_id, uri=store, names=["loss", "acc"])
    assert sorted(set(two["name"].to_pylist())) == ["acc", "loss"]
    assert two.num_rows == 6
    assert pacha.read_metrics(run.run_id, uri=store, names=["missing"]).num_rows == 0
    assert pacha.read_metrics(uri=store, names="lr")["value"].to_pylist() == [0.1] * 3


def test_several_runs_and_all_runs(store: str) -> None:
    run_ids = []
    for index in range(3):
        with pacha.run(uri=store) as run:
            run.log_metric("loss", float(index), 0)
            run.log_metric("loss", float(index) / 2, 1)
        run_ids.append(run.run_id)

    two = pacha.read_metrics(run_ids[:2], uri=store)
    assert sorted(set(two["run_id"].to_pylist())) == sorted(run_ids[:2])
    assert two.num_rows == 4
    # The same id twice reads its points once.
    assert pacha.read_metrics([run_ids[0], run_ids[0]], uri=store).num_rows == 2

    everything = pacha.read_metrics(None, uri=store)
    assert everything.num_rows == 6
    assert sorted(set(everything["run_id"].to_pylist())) == sorted(run_ids)
    for run_id, index in zip(run_ids, range(3)):
        mine = everything.filter(pc.equal(everything["run_id"], run_id))
        assert _points(mine) == _expected([("loss", 0, float(index)), ("loss", 1, index / 2)])


def test_layout_on_disk(store: str) -> None:
    with pacha.run(uri=store) as run:
        run.log_metric("loss", 1.0, 0)
    root = Path(store)
    assert (root / "runs" / run.run_id / "run.json").is_file()
    parts = _part_files(store, run.run_id)
    assert len(parts) == 1
    assert parts[0].name.startswith("part-")
    assert sorted(p.relative_to(root).parts[0] for p in root.rglob("*") if p.is_file()) == [
        "metrics",
        "runs",
    ]
    stored = pacha.ExperimentRun.model_validate_json(
        (root / "runs" / run.run_id / "run.json").read_bytes()
    )
    assert stored == pacha.load_run(run.run_id, uri=store)
    assert stored.metrics == []


def test_outside_readers_see_the_same_rows(store: str) -> None:
    for index in range(3):
        with pacha.run(uri=store) as run:
            run.log_metrics({"loss": 1.0 / (index + 1), "acc": math.nan}, step=0)
            run.log_metric("loss", -math.inf, 1)
            run.log_metric("loss", 0.5, 1)
    sdk = _sorted_rows(_arrow_rows(pacha.read_metrics(uri=store)))
    assert len(sdk) == 12

    dataset = ds.dataset(store + "/metrics", format="parquet", partitioning="hive")
    assert _sorted_rows(_arrow_rows(dataset.to_table())) == sdk

    relation = duckdb.sql(
        "select run_id, name, step, value, epoch_us(timestamp) as us, rank "
        f"from read_parquet('{store}/metrics/*/*.parquet', hive_partitioning=true)"
    )
    assert relation is not None
    assert _sorted_rows(relation.fetchall()) == sdk

    frame = (
        pl.scan_parquet(f"{store}/metrics/*/*.parquet", hive_partitioning=True)
        .with_columns(pl.col("timestamp").dt.epoch("us"))
        .select("run_id", "name", "step", "value", "timestamp", "rank")
        .collect()
    )
    assert _sorted_rows(frame.rows()) == sdk


def test_metrics_dataset_filters_on_run_and_name(store: str) -> None:
    run_ids = []
    for index in range(3):
        with pacha.run(uri=store) as run:
            run.log_metrics({"loss": float(index), "acc": index / 10}, step=0)
            run.log_metrics({"loss": index + 0.5, "acc": index / 10 + 0.01}, step=1)
        run_ids.append(run.run_id)
    dataset = pacha.metrics_dataset(store)
    assert isinstance(dataset, ds.Dataset)
    table = dataset.to_table(
        filter=(ds.field("run_id") == run_ids[1]) & (ds.field("name") == "loss")
    )
    assert _points(table) == _expected([("loss", 0, 1.0), ("loss", 1, 1.5)])
    assert set(table["run_id"].to_pylist()) == {run_ids[1]}
    assert dataset.count_rows(filter=ds.field("name") == "acc") == 6


def test_metrics_dataset_of_an_empty_store(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()  # a store no run has flushed a point to yet
    dataset = pacha.metrics_dataset(str(tmp_path / "empty"))
    table = dataset.to_table()
    assert table.num_rows == 0
    assert _columns(table.schema) == _columns(EXPECTED_SCHEMA)


def test_list_runs_newest_first_and_filters(store: str) -> None:
    bert = pacha.RecipeReference("bert-finetune", "1.2.0")
    bert_old = pacha.RecipeReference("bert-finetune", "1.0.0")
    with pacha.run(uri=store, recipe=bert) as first:
        pass
    with pytest.raises(RuntimeError, match="boom"), pacha.run(uri=store, recipe=bert_old) as failed:
        raise RuntimeError("boom")
    cancelled = pacha.run(uri=store)
    cancelled.cancel()
    with pacha.run(uri=store, recipe=pacha.RecipeReference("gpt", "0.1.0")) as last:
        pass

    runs = pacha.list_runs(uri=store)
    assert [r.run_id for r in runs] == [last.run_id, cancelled.run_id, failed.run_id, first.run_id]
    starts = [r.started_at for r in runs]
    assert starts == sorted(starts, reverse=True)

    def ids(**filters: Any) -> list[str]:
        return [r.run_id for r in pacha.list_runs(uri=store, **filters)]

    assert ids(status="completed") == [last.run_id, first.run_id]
    assert ids(status=pacha.RunStatus.COMPLETED) == [last.run_id, first.run_id]
    assert ids(status=pacha.RunStatus.FAILED) == [failed.run_id]
    assert ids(status="cancelled") == [cancelled.run_id]
    assert ids(status="running") == []
    assert ids(recipe="bert-finetune") == [failed.run_id, first.run_id]
    assert ids(recipe=bert) == [first.run_id]
    assert ids(recipe=pacha.RecipeReference("bert-finetune", "9.9.9")) == []
    assert ids(recipe="bert-finetune", status="failed") == [failed.run_id]
    assert pacha.load_run(failed.run_id, uri=store).error_message == "RuntimeError: boom"


def test_best_run_over_completed_runs(store: str) -> None:
    def finished(values: list[float], *, fail: bool = False) -> str:
        run = pacha.run(uri=store)
        for step, value in enumerate(values):
            run.log_metric("loss", value, step)
        if fail:
            run.fail("diverged")
        else:
            run.complete()
        return run.run_id

    Path(store).mkdir()
    assert pacha.best_run("loss", uri=store) is None  # an empty store has no best run
    high = finished([0.9, 0.5])
    low = finished([0.8, 0.2])
    finished([0.01, 0.001], fail=True)  # lower, but failed
    finished([0.0001, math.nan])  # its latest value is NaN
    finished([-5.0, math.inf])  # its latest value is infinite
    with pacha.run(uri=store) as other:
        other.log_metric("acc", 0.99, 0)

    best_max = pacha.best_run("loss", mode="max", uri=store)
    best_min = pacha.best_run("loss", mode="min", uri=store)
    assert best_max is not None
    assert best_min is not None
    assert best_max.run_id == high
    assert best_min.run_id == low
    assert pacha.best_run("loss", uri=store) == best_max
    best_acc = pacha.best_run("acc", uri=store)
    assert best_acc is not None
    assert best_acc.run_id == other.run_id
    assert pacha.best_run("nonexistent", uri=store) is None
    with pytest.raises(ValueError, match="mode"):
        pacha.best_run("loss", mode="median", uri=store)  # type: ignore[arg-type]


def parts_written(store: str, run_id: str, count: int) -> Callable[[], bool]:
    """Whether *count* part files of the run are in the store (the writer checks every few ms)."""
    return lambda: len(_part_files(store, run_id)) >= count


def test_flush_rows_writes_several_part_files(store: str) -> None:
    with pacha.run(uri=store, flush_rows=1000, flush_interval=3600, compact_parts=False) as run:
        for chunk in range(10):
            for step in range(chunk * 1000, (chunk + 1) * 1000):
                run.log_metric("loss", float(step), step)
            wait_until(parts_written(store, run.run_id, chunk + 1))  # one part per full buffer
        parts_while_running = len(_part_files(store, run.run_id))
    assert parts_while_running >= 2
    table = pacha.read_metrics(run.run_id, uri=store)
    assert sorted(table["step"].to_pylist()) == list(range(10_000))
    assert table["step"].to_pylist() == [int(v) for v in table["value"].to_pylist()]
    assert pacha.load_run(run.run_id, uri=store).summary == {"loss": 9999.0}


def test_attaching_to_a_finished_run_adds_part_files(store: str) -> None:
    with pacha.run({"seed": 1}, uri=store, name="resume-me") as first:
        for step in range(3):
            first.log_metric("loss", 1.0 - step / 10, step)
    earlier = {path: path.read_bytes() for path in _part_files(store, first.run_id)}
    assert earlier

    with pacha.run(run_id=first.run_id.upper(), uri=store) as again:
        assert again.run_id == first.run_id
        for step in range(3, 5):
            again.log_metric("loss", 1.0 - step / 10, step)
        again.log_metric("acc", 0.5, 4)
    later = _part_files(store, first.run_id)
    assert set(earlier) < set(later)
    for path, data in earlier.items():
        assert path.read_bytes() == data

    table = pacha.read_metrics(first.run_id, uri=store)
    assert _points(table) == _expected(
        [("loss", step, 1.0 - step / 10) for step in range(5)] + [("acc", 4, 0.5)]
    )
    record = pacha.load_run(first.run_id, uri=store)
    assert record.status is pacha.RunStatus.COMPLETED
    assert record.name == "resume-me"
    assert record.hyperparameters.custom == {"seed": 1}
    assert record.summary == {"loss": 0.6, "acc": 0.5}
    assert [r.run_id for r in pacha.list_runs(uri=store)] == [first.run_id]
