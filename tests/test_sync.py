"""``pacha sync`` keeps the newest record and tolerates other syncs of the same spool.

Real stores: SeaweedFS behind the fault proxy (a store that stops answering
at the end of a run leaves its final ``run.json`` in the spool), and a local
folder; the concurrent syncs are real ``pacha sync`` processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import pacha_sdk as pacha
from pacha_sdk.backends import get_backend
from pacha_sdk.models import RunId
from pacha_sdk.storage.parts import build_part, part_bytes
from pacha_sdk.storage.spool import Spool
from tests.conftest import wait_until

if TYPE_CHECKING:
    from tests.servers import ObjectStore

pytest_plugins = ["tests.servers"]

WAIT = 120.0


def _steps(store: ObjectStore, run_id: str, name: str = "loss") -> list[int]:
    table = pacha.read_metrics(
        run_id, uri=store.uri, storage_options=store.storage_options, names=name
    )
    return sorted(table["step"].to_pylist())


def _ended_during_an_outage(store: ObjectStore) -> pacha.Run:
    """A run whose final record (and last points) stayed in the spool: the store was down."""
    proxy = store.proxy
    assert proxy is not None
    run = pacha.run(
        uri=store.uri, storage_options=store.storage_options, flush_interval=0.2,
        close_timeout=0.5, system_metrics=False,
    )  # fmt: skip
    for step in range(100):
        run.log_metric("loss", float(step))
    assert run.flush(timeout=30)
    proxy.refuse()
    for step in range(100, 150):
        run.log_metric("loss", float(step))
    run.complete()
    proxy.heal()
    return run


@pytest.mark.servers
def test_sync_keeps_a_stored_record_newer_than_the_spooled_one(
    faulty_s3: ObjectStore, tmp_path: Path
) -> None:
    options = faulty_s3.storage_options
    first = _ended_during_an_outage(faulty_s3)
    assert any(p.name == "run.json" for p in (tmp_path / "spool").rglob("*"))
    wait_until(
        lambda: pacha.load_run(first.run_id, uri=faulty_s3.uri, storage_options=options).is_stale
    )

    # Resumed before anyone synced: the resumed run writes the newer record.
    with pacha.run(
        uri=faulty_s3.uri, storage_options=options, run_id=first.run_id, system_metrics=False
    ) as again:
        again.log_metric("acc", 0.9)
    newer = pacha.load_run(first.run_id, uri=faulty_s3.uri, storage_options=options)
    # The last part's write, given up on at close_timeout, may still land once the
    # store is back (the client retries in the background): then the resume sees it.
    assert newer.summary in ({"loss": 99.0, "acc": 0.9}, {"loss": 149.0, "acc": 0.9})

    report = pacha.sync(str(tmp_path / "spool"), storage_options=options)
    assert (report.records, report.kept_newer) == (0, 1)
    kept = pacha.load_run(first.run_id, uri=faulty_s3.uri, storage_options=options)
    assert kept.summary == newer.summary
    assert kept.heartbeat_at == newer.heartbeat_at
    assert kept.status is pacha.RunStatus.COMPLETED
    assert _steps(faulty_s3, first.run_id) == list(range(150))  # the parts still arrive
    assert not any((tmp_path / "spool").rglob("*.json"))


@pytest.mark.servers
def test_sync_replaces_a_reaped_record_with_the_final_one(
    faulty_s3: ObjectStore, tmp_path: Path
) -> None:
    options = faulty_s3.storage_options
    run = _ended_during_an_outage(faulty_s3)
    where: dict[str, Any] = {"uri": faulty_s3.uri, "storage_options": options}
    wait_until(lambda: pacha.load_run(run.run_id, **where).is_stale)
    (reaped,) = pacha.reap(**where)  # its process looked dead: it could not write
    assert reaped.error_message == "heartbeat lost"

    report = pacha.sync(str(tmp_path / "spool"), storage_options=options)
    assert (report.records, report.kept_newer) == (1, 0)
    record = pacha.load_run(run.run_id, **where)
    assert record.status is pacha.RunStatus.COMPLETED  # what really happened
    assert record.error_message is None
    assert record.summary == {"loss": 149.0}


def _spool_many(spool_root: Path, uri: str, runs: int, parts: int) -> list[str]:
    """Spool folders as runs cut off from their store leave them: parts and final records."""
    ids = []
    for _ in range(runs):
        run_id = RunId.new()
        spool = Spool(str(spool_root), uri=uri, run_id=run_id, writer_id=run_id.as_uuid().hex[:16])
        for seq in range(parts):
            rows = [v for step in range(10) for v in ("loss", float(step), seq * 10 + step, 0)]
            key = f"metrics/run_id={run_id}/part-{run_id.as_uuid().hex[:16]}-{seq:06d}.parquet"
            spool.put(key, part_bytes(build_part(run_id, 0, rows)))
        record = pacha.ExperimentRun(run_id=run_id)
        record.start()
        record.complete()
        spool.put(f"runs/{run_id}/run.json", record.model_dump_json().encode(), replace=True)
        ids.append(str(run_id))
    return ids


def _concurrent_syncs(spool_root: Path, env: dict[str, str], count: int) -> list[tuple[int, str]]:
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "pacha_sdk", "sync", str(spool_root)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(count)
    ]
    outputs = [child.communicate(timeout=WAIT)[0] for child in children]
    return [(child.returncode, out) for child, out in zip(children, outputs)]


@pytest.mark.subprocess
@pytest.mark.parametrize("where", ["local", "seaweedfs"])
def test_concurrent_syncs_of_one_spool_all_succeed(
    where: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    env = {**os.environ}
    if where == "local":
        uri = str(tmp_path / "store")
        options: dict[str, Any] = {}
    else:
        store: ObjectStore = request.getfixturevalue("seaweedfs_store")
        uri, options = store.uri, dict(store.storage_options)
        env.update(store.env)
    spool_root = tmp_path / "spool"
    ids = _spool_many(spool_root, get_backend(uri, storage_options=options).uri, runs=3, parts=60)

    results = _concurrent_syncs(spool_root, env, count=4)
    assert [code for code, _ in results] == [0] * 4, results
    assert not any("Traceback" in out or "error" in out for _, out in results)
    assert not any(spool_root.rglob("*.parquet"))
    for run_id in ids:
        table = pacha.read_metrics(run_id, uri=uri, storage_options=options or None)
        assert sorted(table["step"].to_pylist()) == list(range(600))  # each part once
        assert pacha.load_run(run_id, uri=uri, storage_options=options or None).is_finished
