"""Records snapshots (``index/records-*.parquet``): a cache of run records that never lies.

Every test compares what ``list_runs`` gives in a fresh process (records
cache and snapshot memory cleared) with a snapshot present against what it
gives without one, on SeaweedFS and fake-gcs-server, after the edits a
store sees: new runs, status changes, tags and notes, deleted and restored
runs. The thresholds that keep small listings away from snapshots are
lowered to 1 here (:func:`eager`), so a dozen runs exercise the same paths
as 10,000.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pacha_sdk as pacha
from pacha_sdk.backends import Backend, StoredObject, get_backend
from pacha_sdk.models import ExperimentRun
from pacha_sdk.storage import annotated, snapshots
from pacha_sdk.storage.layout import INDEX_DIR, RUNS_DIR, records_snapshot_key
from pacha_sdk.storage.read_cache import records_cache
from tests.servers import SeaweedFS, isolated_cloud_env

pytest_plugins = ["tests.servers"]


@pytest.fixture(params=["s3", "gcs"])
def where(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    store = request.getfixturevalue("seaweedfs_store" if request.param == "s3" else "gcs_store")
    with isolated_cloud_env():
        yield {"uri": store.uri, "storage_options": dict(store.storage_options)}


@pytest.fixture(autouse=True)
def eager(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Snapshots for any number of records, as for thousands; a fresh process before and after."""
    monkeypatch.setattr(snapshots, "LOAD_AFTER", 1)
    monkeypatch.setattr(snapshots, "WRITE_AFTER", 1)
    monkeypatch.setattr(snapshots, "MIN_INTERVAL", 0.0)
    fresh_process()
    yield
    fresh_process()


def fresh_process() -> None:
    records_cache.clear()
    snapshots.forget()


def backend_of(where: dict[str, Any]) -> Backend:
    return get_backend(where["uri"], storage_options=where["storage_options"])


def listed(where: dict[str, Any]) -> list[dict[str, Any]]:
    """Every run as a cold ``list_runs(archived=None)`` gives it, in id order."""
    fresh_process()
    runs = pacha.list_runs(archived=None, **where)
    return [run.model_dump(mode="json") for run in sorted(runs, key=lambda run: run.run_id)]


def without_snapshots(where: dict[str, Any]) -> list[dict[str, Any]]:
    """What :func:`listed` gives once every snapshot is removed (none written meanwhile)."""
    backend = backend_of(where)
    for key in backend.list(INDEX_DIR):
        backend.delete(key)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(snapshots, "WRITE_AFTER", 10**9)
        found = listed(where)
    assert backend.list(INDEX_DIR) == []
    return found


def stored_snapshots(where: dict[str, Any]) -> list[str]:
    return [key for key, _ in snapshots.listed_snapshots(backend_of(where))]


def new_run(where: dict[str, Any], name: str) -> str:
    with pacha.run(**where, name=name) as run:
        run.log_metric("loss", 1.0, step=0)
    return str(run.run_id)


def test_a_listing_after_a_snapshot_sees_every_change(where: dict[str, Any]) -> None:
    kept, tagged, doomed, restored = (new_run(where, name) for name in "abcd")
    pacha.delete_run(restored, **where)
    with pacha.run(**where, name="live") as live:
        live.log_metric("loss", 2.0, step=0)
        live.flush()
        report = pacha.compact(**where)
        assert report.records_snapshot is not None
        assert stored_snapshots(where) == [report.records_snapshot]
        assert {run["status"] for run in listed(where)} == {"completed", "running"}
    pacha.annotate(tagged, add_tags=["best"], note="look here", **where)
    pacha.annotate(kept, archived=True, **where)
    pacha.delete_run(doomed, **where)
    pacha.restore_run(restored, **where)
    added = new_run(where, "e")

    seen = listed(where)
    by_id = {run["run_id"]: run for run in seen}
    assert set(by_id) == {kept, tagged, restored, added, str(live.run_id)}
    assert by_id[str(live.run_id)]["status"] == "completed"
    assert by_id[tagged]["extra"]["note"] == "look here"
    assert "best" in by_id[tagged]["extra"]["tags"]
    assert by_id[kept]["extra"]["archived"] is True
    assert seen == without_snapshots(where)


def test_a_cold_listing_reads_the_snapshot_not_each_record(
    seaweedfs_server: SeaweedFS, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.servers.fault_proxy import FaultProxy

    with (
        FaultProxy(("127.0.0.1", seaweedfs_server.s3_port)) as proxy,
        isolated_cloud_env(),
    ):
        store = seaweedfs_server.store(endpoint_url=proxy.endpoint_url, proxy=proxy)
        where: dict[str, Any] = {"uri": store.uri, "storage_options": dict(store.storage_options)}
        for index in range(6):
            new_run(where, f"run-{index}")
        first = listed(where)  # reads each record, then leaves a snapshot
        assert len(stored_snapshots(where)) == 1
        proxy.reset_counts()
        assert listed(where) == first
        assert proxy.requests == 3  # list runs/, list index/, GET the snapshot


def test_small_listings_leave_no_snapshot(
    where: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshots, "LOAD_AFTER", 64)
    monkeypatch.setattr(snapshots, "WRITE_AFTER", 256)
    for index in range(3):
        new_run(where, f"run-{index}")
    assert len(listed(where)) == 3
    assert stored_snapshots(where) == []


def test_readers_write_no_second_snapshot_within_a_minute(
    where: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    new_run(where, "one")
    first = pacha.compact(**where).records_snapshot
    new_run(where, "two")
    monkeypatch.setattr(snapshots, "MIN_INTERVAL", 60.0)
    assert len(listed(where)) == 2  # read "two" itself: the snapshot is too young to replace
    assert stored_snapshots(where) == [first]
    monkeypatch.setattr(snapshots, "MIN_INTERVAL", 0.0)
    assert len(listed(where)) == 2
    assert len(stored_snapshots(where)) == 2


def test_a_local_store_never_writes_one(tmp_path: Path) -> None:
    where: dict[str, Any] = {"uri": str(tmp_path / "store"), "storage_options": None}
    run_id = new_run(where, "local")
    assert [run["run_id"] for run in listed(where)] == [run_id]
    assert pacha.compact(**where).records_snapshot is None
    assert not (tmp_path / "store" / INDEX_DIR).exists()


def test_compact_writes_a_snapshot_only_when_records_changed(where: dict[str, Any]) -> None:
    run_id = new_run(where, "one")
    first = pacha.compact(**where).records_snapshot
    assert first is not None
    assert pacha.compact(**where).records_snapshot is None  # this process holds the records
    fresh_process()
    assert pacha.compact(**where).records_snapshot is None
    pacha.annotate(run_id, note="changed", **where)
    second = pacha.compact(**where).records_snapshot
    assert second is not None
    assert second > first
    assert stored_snapshots(where) == [first, second]


@pytest.mark.parametrize(
    "content",
    [b"not parquet at all", b"PAR1" + b"\x00" * 40, "foreign"],
    ids=["garbage", "cut short", "another parquet file"],
)
def test_a_bad_snapshot_is_ignored_with_one_warning(
    where: dict[str, Any], content: bytes | str, tmp_path: Path
) -> None:
    for index in range(3):
        new_run(where, f"run-{index}")
    truth = without_snapshots(where)
    backend = backend_of(where)
    if content == "foreign":
        import pyarrow as pa

        pq.write_table(pa.table({"key": ["runs/x/run.json"]}), tmp_path / "other.parquet")
        content = (tmp_path / "other.parquet").read_bytes()
    assert isinstance(content, bytes)
    bad = records_snapshot_key(datetime.now(timezone.utc), uuid.uuid4().hex)
    backend.write_new(bad, content)
    with pytest.warns(UserWarning, match="ignoring .*records snapshot") as caught:
        assert listed(where) == truth
    assert len([w for w in caught if "snapshot" in str(w.message)]) == 1
    assert backend.read_bytes(bad) == content  # a cache is never the reader's to delete
    written = stored_snapshots(where)
    assert written[0] == bad
    assert len(written) == 2
    assert listed(where) == truth  # the good one serves, without a warning


def test_two_writers_at_once_both_land_and_the_newest_serves(where: dict[str, Any]) -> None:
    for index in range(4):
        new_run(where, f"run-{index}")
    truth = without_snapshots(where)
    backend = backend_of(where)
    keys: list[str | None] = []
    start = threading.Barrier(2)

    def write() -> None:
        start.wait()
        keys.append(annotated.refresh_records_snapshot(backend))

    threads = [threading.Thread(target=write) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert None not in keys
    assert len(set(keys)) == 2
    assert stored_snapshots(where) == sorted(keys)  # type: ignore[type-var]
    for key in stored_snapshots(where):
        entries = snapshots.decode(backend.read_bytes(key), key)
        assert len([k for k in entries if k.endswith("run.json")]) == 4
    assert listed(where) == truth


def test_a_read_only_store_still_lists_and_logs_once(
    seaweedfs_server: SeaweedFS, caplog: pytest.LogCaptureFixture
) -> None:
    store = seaweedfs_server.store()
    with isolated_cloud_env():
        where: dict[str, Any] = {"uri": store.uri, "storage_options": dict(store.storage_options)}
        made = {new_run(where, f"run-{index}") for index in range(3)}
        reader: dict[str, Any] = {
            "uri": store.uri,
            "storage_options": {
                **store.storage_options,
                "key": seaweedfs_server.reader_key,
                "secret": seaweedfs_server.reader_secret,
            },
        }
        with pytest.raises(pacha.StoreError):
            backend_of(reader).write_new("probe", b"x")  # the identity really cannot write
        caplog.set_level(logging.DEBUG, logger="pacha_sdk")
        fresh_process()
        for _ in range(3):
            records_cache.clear()  # a cold read each time, in one process
            assert {run.run_id for run in pacha.list_runs(**reader)} == made
    refusals = [r for r in caplog.records if "could not write records snapshot" in r.message]
    assert len(refusals) == 1
    assert refusals[0].levelno == logging.INFO
    assert stored_snapshots(where) == []


def test_gc_removes_snapshots_superseded_an_hour_ago(where: dict[str, Any]) -> None:
    run_id = new_run(where, "one")
    backend = backend_of(where)
    item = StoredObject(f"{RUNS_DIR}/{run_id}/run.json", None, "v")
    now = datetime.now(timezone.utc)
    ages = [timedelta(hours=h) for h in (3, 2, 1.5, 0.5, 0)]
    keys = [records_snapshot_key(now - age, uuid.uuid4().hex) for age in ages]
    for key in keys:
        backend.write_new(key, snapshots.encode([(item, b"{}")]))
    backend.write_new(f"{INDEX_DIR}/notes.txt", b"not pacha's")

    dry = pacha.gc(**where)
    assert dry.snapshots == keys[:2]
    assert not dry.deleted
    assert stored_snapshots(where) == keys
    done = pacha.gc(delete=True, **where)
    assert done.snapshots == keys[:2]
    assert done.deleted
    assert stored_snapshots(where) == keys[2:]  # superseded only 30 minutes ago: kept
    assert f"{INDEX_DIR}/notes.txt" in backend.list(INDEX_DIR)


def test_the_format_is_plain_parquet_for_other_tools(where: dict[str, Any], tmp_path: Path) -> None:
    run_id = new_run(where, "one")
    key = pacha.compact(**where).records_snapshot
    assert key is not None
    path = tmp_path / "snapshot.parquet"
    path.write_bytes(backend_of(where).read_bytes(key))
    table = pq.read_table(path)
    assert table.schema.metadata[b"pacha.format"] == snapshots.FORMAT.encode()
    rows = {row["key"]: row for row in table.to_pylist()}
    record = ExperimentRun.model_validate_json(rows[f"runs/{run_id}/run.json"]["data"])
    assert str(record.run_id) == run_id
    listing = {item.key: item.version for item in backend_of(where).list_objects(RUNS_DIR)}
    assert all(listing[key] == row["version"] for key, row in rows.items())


def test_a_snapshot_entry_at_another_version_is_never_used(where: dict[str, Any]) -> None:
    run_id = new_run(where, "one")
    backend = backend_of(where)
    key = f"{RUNS_DIR}/{run_id}/run.json"
    (listed_item,) = [item for item in backend.list_objects(RUNS_DIR) if item.key == key]
    lie = listed_item._replace(version=f"{listed_item.version}-other")
    fake = ExperimentRun.model_validate_json(backend.read_bytes(key)).model_copy(
        update={"extra": {"name": "a lie"}}
    )
    snapshot = records_snapshot_key(datetime.now(timezone.utc), uuid.uuid4().hex)
    backend.write_new(snapshot, snapshots.encode([(lie, fake.model_dump_json().encode())]))
    assert [run["extra"]["name"] for run in listed(where)] == ["one"]


EDITS = st.lists(
    st.sampled_from(["run", "tag", "note", "archive", "delete", "restore", "compact", "list"]),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(edits=EDITS)
def test_any_edit_sequence_lists_as_without_snapshots(
    seaweedfs_server: SeaweedFS, edits: list[str]
) -> None:
    with isolated_cloud_env():
        store = seaweedfs_server.store()
        where: dict[str, Any] = {"uri": store.uri, "storage_options": dict(store.storage_options)}
        backend = backend_of(where)
        live = [new_run(where, "first")]
        trashed: list[str] = []
        for step, edit in enumerate(edits):
            if edit == "run":
                live.append(new_run(where, f"run-{step}"))
            elif edit in ("tag", "note", "archive") and live:
                change: dict[str, dict[str, Any]] = {
                    "tag": {"add_tags": [f"t{step}"]},
                    "note": {"note": f"n{step}"},
                }
                pacha.annotate(
                    live[step % len(live)], **change.get(edit, {"archived": True}), **where
                )
            elif edit == "delete" and live:
                trashed.append(live.pop(step % len(live)))
                pacha.delete_run(trashed[-1], **where)
            elif edit == "restore" and trashed:
                live.append(trashed.pop())
                pacha.restore_run(live[-1], **where)
            elif edit == "compact":
                pacha.compact(**where)
            else:
                listed(where)
            seen = listed(where)
            fresh_process()
            truth = annotated.read_records(
                backend,
                annotated.runs_in_listing(backend.list_objects(RUNS_DIR)),
                skip_invalid=False,
            )
            assert seen == [
                run.model_dump(mode="json") for run in sorted(truth, key=lambda run: run.run_id)
            ]
            assert {run["run_id"] for run in seen} == set(live)
