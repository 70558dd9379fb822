"""``pacha runs reap``, ``pacha gc`` and ``pacha sync`` change exactly what they should."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pacha_sdk as pacha
from pacha_sdk.backends import get_backend
from pacha_sdk.models import RunId
from pacha_sdk.storage.blobs import store_artifact
from pacha_sdk.storage.layout import metrics_prefix, run_record_key
from pacha_sdk.storage.spool import Spool
from tests.cli.conftest import Cli, Store, make_stale

if TYPE_CHECKING:
    import pytest

    from pacha_sdk.backends import Backend
    from pacha_sdk.models import ExperimentRun


def _records(uri: str) -> dict[str, bytes]:
    backend = get_backend(uri)
    return {key: backend.read_bytes(key) for key in backend.list("runs") if key.endswith(".json")}


def _keys(uri: str) -> set[str]:
    return set(get_backend(uri).list())


# reap


def test_reap_fails_only_stale_running_runs(cli: Cli, fresh_store: Store) -> None:
    uri, runs = fresh_store.uri, fresh_store.runs
    make_stale(uri, runs["bert-0"], age=3600)
    make_stale(uri, runs["bert-1"], age=2)  # running, heartbeat fresh: alive
    before = _records(uri)
    result = cli.ok("runs", "reap", "--uri", uri, "--json")
    assert result.json() == {"dry_run": False, "runs": [runs["bert-0"]]}
    after = _records(uri)
    changed = {key for key in before if before[key] != after[key]}
    assert changed == {run_record_key(RunId(runs["bert-0"]))}
    reaped = pacha.load_run(runs["bert-0"], uri=uri)
    assert reaped.status is pacha.RunStatus.FAILED
    assert reaped.error_message == "heartbeat lost"
    assert reaped.finished_at is not None
    stale = pacha.ExperimentRun.model_validate_json(before[run_record_key(RunId(runs["bert-0"]))])
    changed_fields = {"status", "finished_at", "error_message"}
    assert reaped.model_dump(exclude=changed_fields) == stale.model_dump(exclude=changed_fields)
    assert pacha.load_run(runs["bert-1"], uri=uri).status is pacha.RunStatus.RUNNING
    assert cli.ok("runs", "reap", "--uri", uri, "--json").json()["runs"] == []  # idempotent


def test_reap_older_than_and_dry_run(cli: Cli, fresh_store: Store) -> None:
    uri, runs = fresh_store.uri, fresh_store.runs
    make_stale(uri, runs["bert-0"], age=600)
    make_stale(uri, runs["bert-1"], age=7200)
    before = _records(uri)
    dry = cli.ok("runs", "reap", "--uri", uri, "--dry-run", "--json").json()
    assert dry == {"dry_run": True, "runs": [runs["bert-0"], runs["bert-1"]]}
    assert _records(uri) == before
    result = cli("runs", "reap", "--uri", uri, "--older-than", "3600")
    assert result.code == 0
    assert runs["bert-1"][:8] in result.out
    assert runs["bert-0"][:8] not in result.out
    assert result.err == "marked 1 stale run(s) failed (heartbeat lost)\n"
    assert pacha.load_run(runs["bert-0"], uri=uri).status is pacha.RunStatus.RUNNING
    assert pacha.load_run(runs["bert-1"], uri=uri).status is pacha.RunStatus.FAILED


def test_reap_leaves_a_run_that_beat_since_it_was_listed(
    fresh_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri, run_id = fresh_store.uri, fresh_store.runs["bert-0"]
    make_stale(uri, run_id)
    import pacha_sdk.query.maintenance as maintenance
    from pacha_sdk.storage.records import read_run as real_read

    def beat_then_read(backend: Backend, rid: RunId) -> ExperimentRun | None:
        make_stale(uri, run_id, age=0)  # the process was only slow: it beats now
        return real_read(backend, rid)

    monkeypatch.setattr(maintenance, "read_run", beat_then_read)
    assert pacha.reap(uri=uri) == []
    assert pacha.load_run(run_id, uri=uri).status is pacha.RunStatus.RUNNING


# gc


def _add_garbage(store: Store) -> tuple[str, str]:
    """An unreferenced blob and an orphaned part file; return their keys."""
    backend = get_backend(store.uri)
    ref = store_artifact(backend, b"nobody's", name="x.bin")
    blob = f"artifacts/{ref.content_hash[:2]}/{ref.content_hash}"
    run_id = RunId(store.runs["bert-0"])
    part = backend.list(metrics_prefix(run_id))[0]
    orphan = f"{metrics_prefix(RunId.new())}/{part.rsplit('/', 1)[1]}"
    backend.write_new(orphan, backend.read_bytes(part))
    return blob, orphan


def test_gc_dry_run_lists_and_changes_nothing(cli: Cli, fresh_store: Store) -> None:
    blob, orphan = _add_garbage(fresh_store)
    before = _keys(fresh_store.uri)
    result = cli("gc", "--uri", fresh_store.uri)
    assert result.code == 0
    assert result.out.splitlines() == [blob, orphan]
    assert result.err == (
        "would delete 1 artifact blob(s) and 1 part file(s) (dry run: pass --yes to delete)\n"
    )
    assert _keys(fresh_store.uri) == before


def test_gc_deletes_exactly_the_garbage(cli: Cli, fresh_store: Store) -> None:
    blob, orphan = _add_garbage(fresh_store)
    before = _keys(fresh_store.uri)
    report = cli.ok("gc", "--uri", fresh_store.uri, "--yes", "--json").json()
    assert report == {
        "deleted": True,
        "blobs": [blob],
        "parts": [orphan],
        "covered_parts": [],
        "trash": [],
        "temp_files": [],
        "recent_temp_files": [],
        "snapshots": [],
    }
    assert _keys(fresh_store.uri) == before - {blob, orphan}
    # what runs produced (model) and used (data) stays, and every run still reads
    assert pacha.open_artifact(fresh_store.model_hash, uri=fresh_store.uri).read() == b"weights"
    assert pacha.open_artifact(fresh_store.data_hash, uri=fresh_store.uri).read() == b"the data"
    assert pacha.read_metrics(uri=fresh_store.uri).num_rows == 81
    assert cli.ok("gc", "--uri", fresh_store.uri, "--json").json()["blobs"] == []


def test_gc_keeps_a_blob_only_an_input_mentions(cli: Cli, fresh_store: Store) -> None:
    backend = get_backend(fresh_store.uri)
    backend.delete(run_record_key(RunId(fresh_store.runs["prepare"])))  # the producer is gone
    report = cli.ok("gc", "--uri", fresh_store.uri, "--json").json()
    assert report["blobs"] == []  # bert-0 and bert-1 used it
    assert len(report["parts"]) == 0  # "prepare" logged no metrics


def test_gc_refuses_with_an_unreadable_record(cli: Cli, fresh_store: Store) -> None:
    _add_garbage(fresh_store)
    backend = get_backend(fresh_store.uri)
    backend.replace(run_record_key(RunId(fresh_store.runs["bert-1"])), b"{not json")
    before = _keys(fresh_store.uri)
    result = cli("gc", "--uri", fresh_store.uri, "--yes")
    assert result.code == 1
    assert "is not a valid run record" in result.err
    assert _keys(fresh_store.uri) == before


# sync


def test_sync_uploads_the_spool(cli: Cli, fresh_store: Store, tmp_path: Path) -> None:
    uri, run_id = fresh_store.uri, RunId(fresh_store.runs["bert-0"])
    backend = get_backend(uri)
    (part,) = backend.list(metrics_prefix(run_id))
    spool_root = tmp_path / "spool"
    spool = Spool(str(spool_root), uri=backend.uri, run_id=run_id, writer_id="w1")
    spool.put(part, backend.read_bytes(part))
    backend.delete(part)  # as if the store had been down when the run flushed
    other = Spool(
        str(spool_root), uri="memory://elsewhere", run_id=str(RunId.new()), writer_id="w2"
    )
    other.put("metrics/x/part.parquet", b"not for this store")

    result = cli.ok("sync", str(spool_root), "--uri", uri, "--json")
    assert result.json() == {
        "runs": [run_id],
        "parts": 1,
        "records": 0,
        "kept_newer": 0,
        "failed": [],
    }
    assert backend.exists(part)
    assert pacha.read_metrics(run_id, uri=uri).num_rows == 40
    assert not Path(spool.path).exists()
    assert Path(other.path).exists()  # bound for another store: left alone
    text = cli.ok("sync", str(spool_root))
    assert text.out == "synced 1 part(s) and 0 record(s) of 1 run(s)\n"  # the other store's
    assert not Path(other.path).exists()


def test_sync_of_an_empty_spool(cli: Cli, tmp_path: Path) -> None:
    result = cli.ok("sync", str(tmp_path / "nothing"), "--json")
    assert json.loads(result.out) == {
        "runs": [],
        "parts": 0,
        "records": 0,
        "kept_newer": 0,
        "failed": [],
    }
