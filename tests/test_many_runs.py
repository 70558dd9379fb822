"""Many runs at once: list_runs, best_run and one metric across runs, on every kind of store.

The read paths differ by store (pyarrow reads local files itself; object
stores and ``memory://`` fetch whole parts in batches, or large parts by
ranges), so each test runs on a local folder, ``memory://`` and SeaweedFS
and compares with what was logged. On S3 the records cache is checked
through the fault proxy's request count: a second ``list_runs`` reads only
the listing and the records that changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest

import pacha_sdk as pacha
from pacha_sdk.backends import get_backend
from pacha_sdk.query import scan
from pacha_sdk.storage.read_cache import ReadCache, records_cache
from tests.servers import isolated_cloud_env

pytest_plugins = ["tests.servers"]

RUNS = 12


@pytest.fixture(params=["local", "memory", "s3"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    if request.param == "local":
        yield {"uri": str(tmp_path / "store"), "storage_options": None}
    elif request.param == "memory":
        yield {"uri": f"memory://many-{uuid.uuid4().hex}", "storage_options": None}
    else:
        store = request.getfixturevalue("seaweedfs_store")
        with isolated_cloud_env():
            yield {"uri": store.uri, "storage_options": dict(store.storage_options)}


def fill(where: dict[str, Any]) -> dict[str, list[tuple[int, float]]]:
    """RUNS runs, each with two metrics over two part files; return loss points per run."""
    logged: dict[str, list[tuple[int, float]]] = {}
    for index in range(RUNS):
        with pacha.run(**where, name=f"run-{index}") as run:
            points = [(step, index + step / 10) for step in range(5)]
            for step, value in points[:3]:
                run.log_metrics({"loss": value, "acc": -value}, step=step)
            run.flush()
            for step, value in points[3:]:
                run.log_metrics({"loss": value, "acc": -value}, step=step)
        logged[run.run_id] = points
    return logged


def loss_points(table: Any) -> dict[str, list[tuple[int, float]]]:
    found: dict[str, list[tuple[int, float]]] = {}
    for row in table.to_pylist():
        found.setdefault(row["run_id"], []).append((row["step"], row["value"]))
    return {run_id: sorted(points) for run_id, points in found.items()}


def test_one_metric_across_every_run(where: dict[str, Any]) -> None:
    logged = fill(where)
    table = pacha.read_metrics(names=["loss"], **where)
    assert set(table["name"].to_pylist()) == {"loss"}
    assert loss_points(table) == logged
    assert pacha.read_metrics(**where).num_rows == 2 * sum(map(len, logged.values()))

    some = sorted(logged)[:3]
    assert loss_points(pacha.read_metrics(some, names="loss", **where)) == {
        run_id: logged[run_id] for run_id in some
    }
    dataset = pacha.metrics_dataset(where["uri"], storage_options=where["storage_options"])
    one = dataset.to_table(filter=(pc.field("run_id") == some[0]) & (pc.field("name") == "loss"))
    assert loss_points(one) == {some[0]: logged[some[0]]}


def test_parts_read_by_ranges_give_the_same_points(
    where: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    logged = fill(where)
    monkeypatch.setattr(scan, "WHOLE_PART_BYTES", 0)  # every part read as a large one
    assert loss_points(pacha.read_metrics(names=["loss"], **where)) == logged
    monkeypatch.setattr(scan, "BATCH_BYTES", 1)  # one part per batch
    monkeypatch.setattr(scan, "WHOLE_PART_BYTES", 2**30)
    assert loss_points(pacha.read_metrics(names=["loss"], **where)) == logged


def test_list_runs_and_best_run_over_many_runs(where: dict[str, Any]) -> None:
    logged = fill(where)
    listed = pacha.list_runs(**where)
    assert [run.name for run in listed] == [f"run-{i}" for i in reversed(range(RUNS))]
    assert {run.run_id for run in listed} == set(logged)
    best = pacha.best_run("loss", **where)
    assert best is not None
    assert best.name == f"run-{RUNS - 1}"


def test_an_unreadable_part_is_named(where: dict[str, Any]) -> None:
    with pacha.run(**where) as run:
        run.log_metric("loss", 0.5, 0)
    backend = get_backend(where["uri"], storage_options=where["storage_options"])
    key = f"metrics/run_id={run.run_id}/part-broken-000000.parquet"
    backend.write_new(key, b"not parquet at all")
    with pytest.warns(UserWarning, match="skipping .*part-broken"):  # every run: the rest reads
        points = pacha.read_metrics(names=["loss"], **where)
    assert points.column("value").to_pylist() == [0.5]
    with pytest.raises(pacha.InvalidPartError, match="part-broken"):  # exactly that run
        pacha.read_metrics(run.run_id, names=["loss"], **where)
    with pytest.raises(pacha.InvalidRecordError, match="part-broken"):
        pacha.read_metrics(run.run_id, **where)


def test_a_second_list_runs_reads_only_what_changed(faulty_s3: Any) -> None:
    where = {"uri": faulty_s3.uri, "storage_options": dict(faulty_s3.storage_options)}
    with isolated_cloud_env():
        fill(where)
        pacha.list_runs(**where)
        faulty_s3.proxy.reset_counts()
        assert len(pacha.list_runs(**where)) == RUNS
        assert faulty_s3.proxy.requests == 1  # the listing; every record came from the cache

        first = pacha.list_runs(**where)[0]
        backend = get_backend(where["uri"], storage_options=where["storage_options"])
        changed = first.model_copy(update={"extra": {**first.extra, "name": "renamed"}})
        backend.replace(f"runs/{first.run_id}/run.json", changed.model_dump_json().encode())
        faulty_s3.proxy.reset_counts()
        again = pacha.list_runs(**where)
        assert again[0].name == "renamed"
        assert faulty_s3.proxy.requests == 2  # the listing and the one changed record


def test_the_records_cache_is_bounded_and_version_checked() -> None:
    from pacha_sdk.backends import StoredObject

    cache = ReadCache(max_bytes=10)
    cache.put("s3://b", StoredObject("a", 4, "v1"), b"aaaa")
    assert cache.get("s3://b", StoredObject("a", 4, "v1")) == b"aaaa"
    assert cache.get("s3://b", StoredObject("a", 4, "v2")) is None  # rewritten since
    assert cache.get("s3://other", StoredObject("a", 4, "v1")) is None
    cache.put("s3://b", StoredObject("n", 4, None), b"nnnn")  # no version: never kept
    assert cache.get("s3://b", StoredObject("n", 4, None)) is None
    cache.put("s3://b", StoredObject("b", 4, "v1"), b"bbbb")
    cache.put("s3://b", StoredObject("c", 4, "v1"), b"cccc")  # 12 bytes: "a" goes
    assert cache.get("s3://b", StoredObject("a", 4, "v1")) is None
    assert len(cache) == 2
    assert isinstance(records_cache, ReadCache)
