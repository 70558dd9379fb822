"""Deleting runs to the trash, restoring them, and emptying the trash with gc.

A deletion moves every file a run has under ``runs/<id>/`` and
``metrics/run_id=<id>/`` to ``trash/<id>/``. These tests check it the way
users would notice: DuckDB, Polars and pyarrow reading ``metrics/`` no
longer count the run's points, and count them again after a restore, which
puts back byte for byte what the deletion moved. A deletion or restore
killed with SIGKILL halfway, or stopped by a store that stops answering,
is finished, or undone, by running either again.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

import pacha_sdk as pacha
from pacha_sdk.models import DeletionState, RunId, format_timestamp, utc_now
from pacha_sdk.query import curation
from pacha_sdk.storage.layout import deletion_record_key, run_record_key
from tests.curation_stores import Where, engine_counts, files_of, trashed_files_of, where

if TYPE_CHECKING:
    from pathlib import Path

    from pacha_sdk.backends import Backend
    from tests.servers import ObjectStore

pytest_plugins = ["tests.servers"]
__all__ = ["where"]  # the fixture, imported for pytest

WAIT = 60.0
STEPS = 300
"""Points per metric; a flush every 100 steps gives each run several part files."""


def _run(place: Where, name: str, *, artifact: bytes | None = None, **keywords: Any) -> str:
    keywords.setdefault("compact_parts", False)  # keep one part per flush: several files to move
    with pacha.run(
        {"learning_rate": 1e-3},
        name=name,
        system_metrics=False,
        **place.options,
        **keywords,
    ) as run:
        for step in range(STEPS):
            run.log_metrics({"loss": 1 / (step + 1), "acc": step / STEPS}, step=step)
            if step % 100 == 99:
                run.flush()
        if artifact is not None:
            run.log_artifact(artifact, name="model.bin")
    return str(run.run_id)


def _edited_run(place: Where, name: str = "doomed") -> str:
    run_id = _run(place, name, tags={"team": "nlp"})
    pacha.annotate(run_id, add_tags=["bad"], note="diverged", **place.options)
    return run_id


def test_delete_hides_the_points_from_engines_and_restore_brings_them_back(
    where: Where,
) -> None:
    kept = _run(where, "kept")
    doomed = _edited_run(where)
    before = files_of(where, doomed)
    assert len([key for key in before if key.endswith(".parquet")]) >= 3
    points = 2 * STEPS
    assert engine_counts(where, doomed) == dict.fromkeys(engine_counts(where, doomed), points)

    deleted = pacha.delete_run(doomed, **where.options)
    assert deleted.state is DeletionState.DELETED
    assert deleted.keys == sorted(before)
    assert deleted.record is not None
    assert (deleted.record.name, deleted.record.note) == ("doomed", "diverged")
    assert files_of(where, doomed) == {}
    assert trashed_files_of(where, doomed) == before
    assert set(engine_counts(where, doomed).values()) == {0}
    assert set(engine_counts(where, kept).values()) == {points}
    assert [r.name for r in pacha.list_runs(archived=None, **where.options)] == ["kept"]
    assert pacha.read_metrics(**where.options).num_rows == points
    with pytest.raises(pacha.RunNotFoundError):
        pacha.load_run(doomed, **where.options)
    assert [d.run_id for d in pacha.list_deleted_runs(**where.options)] == [doomed]

    restored = pacha.restore_run(doomed, **where.options)
    assert (restored.name, restored.note, restored.tags) == (
        "doomed",
        "diverged",
        {"team": "nlp", "bad": ""},
    )
    assert files_of(where, doomed) == before
    assert trashed_files_of(where, doomed) == {}
    assert set(engine_counts(where, doomed).values()) == {points}
    assert pacha.list_deleted_runs(**where.options) == []
    assert pacha.restore_run(doomed, **where.options) == restored  # nothing left to restore


def test_delete_moves_rank_records_and_logs_too(tmp_path: Path) -> None:
    place = Where("local", str(tmp_path / "store"))
    with pacha.run(capture_output=True, system_metrics=False, **place.options) as run:
        print("hello from the run")
        run.log_metric("loss", 1.0, 0)
    shared = str(run.run_id)
    with pacha.run(run_id=shared, rank=1, system_metrics=False, **place.options) as rank:
        rank.log_metric("loss", 2.0, 0)
    before = files_of(place, shared)
    assert {key.rsplit("/", 1)[-1] for key in before} >= {"run.json", "output.log", "1.json"}
    pacha.delete_run(shared, **place.options)
    assert files_of(place, shared) == {}
    with pytest.raises(pacha.RunNotFoundError):
        pacha.load_rank_records(shared, **place.options)
    pacha.restore_run(shared, **place.options)
    assert files_of(place, shared) == before
    assert [r.rank for r in pacha.load_rank_records(shared, **place.options)] == [1]


def test_a_running_run_is_refused_unless_forced(tmp_path: Path) -> None:
    place = Where("local", str(tmp_path / "store"))
    run = pacha.run(system_metrics=False, flush_interval=60, **place.options)
    try:
        run.log_metric("loss", 1.0, 0)
        run.flush()
        before = sorted(place.backend().list())
        with pytest.raises(pacha.RunStateError, match=r"is running.*force"):
            pacha.delete_run(str(run.run_id), **place.options)
        assert sorted(place.backend().list()) == before
        forced = pacha.delete_run(str(run.run_id), force=True, **place.options)
        assert forced.state is DeletionState.DELETED
    finally:
        run.cancel()


def test_unknown_run_is_not_found_and_nothing_is_written(tmp_path: Path) -> None:
    place = Where("local", str(tmp_path / "store"))
    _run(place, "kept")
    before = sorted(place.backend().list())
    missing = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(pacha.RunNotFoundError):
        pacha.delete_run(missing, **place.options)
    with pytest.raises(pacha.RunNotFoundError):
        pacha.restore_run(missing, **place.options)
    assert sorted(place.backend().list()) == before


# gc and the trash.


def _age_deletion(place: Where, run_id: str, days: float) -> None:
    """Rewrite a deletion record as if the run had been deleted *days* ago."""
    backend = place.backend()
    key = deletion_record_key(RunId(run_id))
    record = json.loads(backend.read_bytes(key))
    record["deleted_at"] = format_timestamp(utc_now() - timedelta(days=days))
    backend.replace(key, json.dumps(record).encode())


def test_gc_empties_the_trash_after_the_retention_and_keeps_shared_artifacts(
    where: Where,
) -> None:
    shared = b"weights shared by two runs"
    kept = _run(where, "kept", artifact=shared)
    old = _run(where, "old", artifact=b"weights of the old run only")
    recent = _run(where, "recent", artifact=shared)
    old_files = files_of(where, old)
    pacha.delete_run(old, **where.options)
    pacha.delete_run(recent, **where.options)
    _age_deletion(where, old, days=8)

    untouched = pacha.gc(**where.options)  # no retention: the trash is kept
    assert (untouched.blobs, untouched.parts, untouched.trash) == ([], [], [])

    dry = pacha.gc(trash_older_than=timedelta(days=7), **where.options)
    assert dry.trash == [old]
    assert len(dry.blobs) == 1  # the old run's own weights; the shared blob is kept
    assert trashed_files_of(where, old) == old_files  # a dry run deletes nothing

    report = pacha.gc(trash_older_than=7 * 86400, delete=True, **where.options)
    assert report.deleted
    assert report.trash == [old]
    assert report.blobs == dry.blobs
    assert trashed_files_of(where, old) == {}
    with pytest.raises(pacha.RunNotFoundError):
        pacha.restore_run(old, **where.options)
    assert [d.run_id for d in pacha.list_deleted_runs(**where.options)] == [recent]

    pacha.restore_run(recent, **where.options)  # younger than the retention: still there
    assert {r.run_id for r in pacha.list_runs(**where.options)} == {kept, recent}
    kept_ref = pacha.load_run(kept, **where.options).artifacts[0]
    with pacha.open_artifact(kept_ref, **where.options) as blob:
        assert blob.read() == shared


def test_gc_keeps_the_parts_and_artifacts_of_a_deletion_in_progress(tmp_path: Path) -> None:
    place = Where("local", str(tmp_path / "store"))
    run_id = _run(place, "half", artifact=b"only this run")
    backend = place.backend()
    rid = RunId(run_id)
    pacha.delete_run(run_id, **place.options)
    parts = [key for key in trashed_files_of(place, run_id) if key.startswith("metrics/")]
    for key in parts[:2]:  # as if the deletion was killed before it moved these
        backend.write_new(key, trashed_files_of(place, run_id)[key])
    record = json.loads(backend.read_bytes(deletion_record_key(rid)))
    record["state"] = "deleting"
    backend.replace(deletion_record_key(rid), json.dumps(record).encode())
    report = pacha.gc(delete=True, **place.options)
    assert (report.blobs, report.parts) == ([], [])
    assert not backend.exists(run_record_key(rid))
    restored = pacha.restore_run(run_id, **place.options)
    assert pacha.read_metrics(run_id, **place.options).num_rows == 2 * STEPS
    with pacha.open_artifact(restored.artifacts[0], **place.options) as blob:
        assert blob.read() == b"only this run"


def test_gc_trash_retention_must_not_be_negative(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="trash_older_than"):
        pacha.gc(uri=str(tmp_path / "store"), trash_older_than=-1)


# Interrupted deletions and restores.

KILLED_CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    import pacha_sdk as pacha
    from pacha_sdk.query import curation

    uri, options, action, run_id, after = sys.argv[1:6]
    copied = 0
    real_copy = curation._copy


    def copy_then_die(backend, source, target):
        global copied
        real_copy(backend, source, target)
        copied += 1
        if copied == int(after):  # copied, the original not yet deleted
            os.kill(os.getpid(), signal.SIGKILL)


    curation._copy = copy_then_die
    getattr(pacha, action)(run_id, uri=uri, storage_options=json.loads(options))
    """
)


def _killed_halfway(place: Where, action: str, run_id: str, after: int) -> None:
    """Run *action* (delete_run or restore_run) in a child killed after *after* copies."""
    options = json.dumps(place.storage_options)
    child = subprocess.run(
        [sys.executable, "-c", KILLED_CHILD, place.uri, options, action, run_id, str(after)],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr


_INTERRUPTIONS = [
    pytest.param("delete_run", "delete_run", 1, id="delete-killed-after-run.json-then-delete"),
    pytest.param("delete_run", "delete_run", 4, id="delete-killed-then-delete"),
    pytest.param("delete_run", "restore_run", 4, id="delete-killed-then-restore"),
]


@pytest.mark.subprocess
@pytest.mark.parametrize(("killed", "then", "after"), _INTERRUPTIONS)
def test_a_deletion_killed_halfway_is_finished_or_undone_by_running_it_again(
    where: Where, killed: str, then: str, after: int
) -> None:
    _run(where, "kept")  # engines need a part file to read
    run_id = _edited_run(where)
    before = files_of(where, run_id)
    _killed_halfway(where, killed, run_id, after)
    halfway = pacha.list_deleted_runs(**where.options)
    assert [(d.run_id, d.state) for d in halfway] == [(run_id, DeletionState.DELETING)]
    assert halfway[0].keys == sorted(before)  # the intent was written first
    assert {**trashed_files_of(where, run_id), **files_of(where, run_id)} == before  # none lost

    getattr(pacha, then)(run_id, **where.options)
    if then == "delete_run":
        assert files_of(where, run_id) == {}
        assert trashed_files_of(where, run_id) == before
        assert set(engine_counts(where, run_id).values()) == {0}
        pacha.restore_run(run_id, **where.options)
    assert files_of(where, run_id) == before
    assert trashed_files_of(where, run_id) == {}
    assert set(engine_counts(where, run_id).values()) == {2 * STEPS}
    assert pacha.load_run(run_id, **where.options).note == "diverged"


@pytest.mark.subprocess
@pytest.mark.parametrize("then", ["restore_run", "delete_run"])
def test_a_restore_killed_halfway_is_finished_or_undone(tmp_path: Path, then: str) -> None:
    place = Where("local", str(tmp_path / "store"))
    run_id = _edited_run(place)
    before = files_of(place, run_id)
    pacha.delete_run(run_id, **place.options)
    _killed_halfway(place, "restore_run", run_id, 3)
    (halfway,) = pacha.list_deleted_runs(**place.options)
    assert halfway.state is DeletionState.RESTORING
    assert pacha.gc(trash_older_than=0, **place.options).trash == []  # never while restoring
    assert {**trashed_files_of(place, run_id), **files_of(place, run_id)} == before
    with pytest.raises(pacha.RunNotFoundError):  # run.json goes back last
        pacha.load_run(run_id, **place.options)

    getattr(pacha, then)(run_id, **place.options)
    if then == "delete_run":
        assert trashed_files_of(place, run_id) == before
        pacha.restore_run(run_id, **place.options)
    assert files_of(place, run_id) == before
    assert pacha.list_deleted_runs(**place.options) == []


# A store that stops answering.


def _refuse_after(monkeypatch: pytest.MonkeyPatch, store: ObjectStore, copies: int) -> None:
    """Make the store refuse every connection once *copies* files have been copied."""
    assert store.proxy is not None
    proxy = store.proxy
    real_copy = curation._copy
    done = 0

    def copy_then_refuse(backend: Backend, source: str, target: str) -> None:
        nonlocal done
        real_copy(backend, source, target)
        done += 1
        if done == copies:
            proxy.refuse()

    monkeypatch.setattr(curation, "_copy", copy_then_refuse)


@pytest.mark.servers
def test_a_store_that_stops_answering_mid_delete_leaves_it_resumable(
    faulty_s3: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    place = Where("seaweedfs", faulty_s3.uri, dict(faulty_s3.storage_options), faulty_s3)
    run_id = _edited_run(place)
    before = files_of(place, run_id)
    _refuse_after(monkeypatch, faulty_s3, 3)
    with pytest.raises(pacha.StoreError, match=r"stopped halfway.*run the deletion again"):
        pacha.delete_run(run_id, **place.options)
    assert faulty_s3.proxy is not None
    faulty_s3.proxy.heal()
    monkeypatch.undo()
    assert {**trashed_files_of(place, run_id), **files_of(place, run_id)} == before
    pacha.delete_run(run_id, **place.options)
    assert trashed_files_of(place, run_id) == before
    pacha.restore_run(run_id, **place.options)
    assert files_of(place, run_id) == before


@pytest.mark.servers
def test_a_store_that_cannot_be_written_gets_nothing(faulty_s3: ObjectStore) -> None:
    place = Where("seaweedfs", faulty_s3.uri, dict(faulty_s3.storage_options), faulty_s3)
    run_id = _edited_run(place)
    before = files_of(place, run_id)
    assert faulty_s3.proxy is not None
    faulty_s3.proxy.refuse()
    try:
        with pytest.raises(pacha.StoreError):
            pacha.annotate(run_id, note="lost?", **place.options)
        with pytest.raises(pacha.StoreError):
            pacha.delete_run(run_id, **place.options)
    finally:
        faulty_s3.proxy.heal()
    assert files_of(place, run_id) == before
    assert trashed_files_of(place, run_id) == {}
    assert pacha.load_run(run_id, **place.options).note == "diverged"
