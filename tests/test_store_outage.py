"""A store that stops answering: nothing is lost, nothing is written twice, the loop never waits.

The store is SeaweedFS behind a :class:`FaultProxy` that refuses connections,
answers HTTP 500 or adds latency on demand: real network failures, no
Python-level mocks.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import pacha_sdk as pacha
from tests.conftest import wait_until

if TYPE_CHECKING:
    from tests.servers import ObjectStore

pytest_plugins = ["tests.servers"]

pytestmark = pytest.mark.servers


def spool_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def stored_steps(store: ObjectStore, run_id: str, name: str = "loss") -> list[int]:
    table = pacha.read_metrics(run_id, uri=store.uri, storage_options=store.storage_options)
    return [
        step for step, n in zip(table["step"].to_pylist(), table["name"].to_pylist()) if n == name
    ]


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool"  # conftest points PACHA_SPOOL_DIR here


def test_points_logged_while_the_store_refuses_are_stored_once_it_answers(
    faulty_s3: ObjectStore, spool: Path
) -> None:
    proxy = faulty_s3.proxy
    assert proxy is not None
    with pacha.run(
        uri=faulty_s3.uri, storage_options=faulty_s3.storage_options, flush_interval=0.2
    ) as run:
        for step in range(500):
            run.log_metric("loss", 1.0 / (step + 1), step)
        assert run.flush(timeout=30)
        proxy.refuse()
        for step in range(500, 1500):
            run.log_metric("loss", 1.0 / (step + 1), step)
        wait_until(lambda: proxy.refused > 0)
        assert any(p.suffix == ".parquet" for p in spool_files(spool))
        proxy.heal()
        assert run.flush(timeout=30)
    assert sorted(stored_steps(faulty_s3, run.run_id)) == list(range(1500))
    assert spool_files(spool) == []
    record = pacha.load_run(
        run.run_id, uri=faulty_s3.uri, storage_options=faulty_s3.storage_options
    )
    assert record.status is pacha.RunStatus.COMPLETED


def test_http_500s_for_a_while_lose_and_duplicate_nothing(faulty_s3: ObjectStore) -> None:
    proxy = faulty_s3.proxy
    assert proxy is not None
    with pacha.run(
        uri=faulty_s3.uri, storage_options=faulty_s3.storage_options, flush_interval=0.2
    ) as run:
        proxy.http_500()
        for step in range(2000):
            run.log_metric("loss", float(step), step)
        time.sleep(0.8)  # the outage lasts four flush intervals
        wait_until(lambda: proxy.failed > 0)
        proxy.heal()
    assert sorted(stored_steps(faulty_s3, run.run_id)) == list(range(2000))


def test_a_run_ending_during_an_outage_leaves_a_spool_that_sync_uploads(
    faulty_s3: ObjectStore, spool: Path, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = faulty_s3.proxy
    assert proxy is not None
    options = faulty_s3.storage_options
    run = pacha.run(uri=faulty_s3.uri, storage_options=options, flush_interval=0.2, close_timeout=1)
    proxy.refuse()
    for step in range(1000):
        run.log_metric("loss", float(step), step)
    with caplog.at_level(logging.ERROR, logger="pacha_sdk"):
        run.complete()
    assert "pacha_sdk.sync()" in caplog.text
    assert str(spool) in caplog.text
    files = spool_files(spool)
    assert any(p.name == "run.json" for p in files)
    assert any(p.suffix == ".parquet" for p in files)
    secret = str(options["secret"])
    assert all(secret not in p.read_text(errors="replace") for p in files)
    manifest = json.loads(next(p for p in files if p.name == "spool.json").read_text())
    assert manifest == {"uri": faulty_s3.uri, "run_id": str(run.run_id)}

    proxy.heal()
    report = pacha.sync(str(spool), storage_options=options)
    assert report.runs == {str(run.run_id)}
    assert report.records == 1
    assert spool_files(spool) == []
    assert sorted(stored_steps(faulty_s3, run.run_id)) == list(range(1000))
    record = pacha.load_run(run.run_id, uri=faulty_s3.uri, storage_options=options)
    assert record.status is pacha.RunStatus.COMPLETED


def test_sync_while_the_store_still_refuses_keeps_the_spool(
    faulty_s3: ObjectStore, spool: Path
) -> None:
    proxy = faulty_s3.proxy
    assert proxy is not None
    run = pacha.run(uri=faulty_s3.uri, storage_options=faulty_s3.storage_options, close_timeout=0.5)
    proxy.refuse()
    run.log_metric("loss", 1.0, 0)
    logging.disable(logging.ERROR)
    try:
        run.complete()
    finally:
        logging.disable(logging.NOTSET)
    before = spool_files(spool)
    with pytest.raises(pacha.StoreError, match="could not upload from the spool"):
        pacha.sync(str(spool), storage_options=faulty_s3.storage_options)
    assert spool_files(spool) == before


CHILD = textwrap.dedent(
    """
    import json, sys, time
    import pacha_sdk as pacha
    uri, options = sys.argv[1], json.loads(sys.argv[2])
    run = pacha.run(uri=uri, storage_options=options, flush_interval=0.2)
    print(run.run_id, flush=True)
    sys.stdin.readline()  # the parent has cut the store off
    for step in range(3000):
        run.log_metric("loss", float(step), step)
    time.sleep(1.0)  # several flush intervals: every point is due on disk
    print("ready", flush=True)
    time.sleep(60)
    """
)


@pytest.mark.subprocess
def test_sigkill_during_an_outage_loses_nothing_older_than_the_flush_interval(
    faulty_s3: ObjectStore, spool: Path
) -> None:
    proxy = faulty_s3.proxy
    assert proxy is not None
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, faulty_s3.uri, json.dumps(dict(faulty_s3.storage_options))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PACHA_SPOOL_DIR": str(spool)},
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdin is not None
            run_id = child.stdout.readline().strip()
            proxy.refuse()
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline().strip() == "ready"
            child.send_signal(signal.SIGKILL)
            assert child.wait(timeout=30) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
    proxy.heal()
    assert stored_steps(faulty_s3, run_id) == []
    pacha.sync(str(spool), storage_options=faulty_s3.storage_options)
    assert sorted(stored_steps(faulty_s3, run_id)) == list(range(3000))


def test_a_slow_store_never_makes_the_loop_wait(faulty_s3: ObjectStore) -> None:
    proxy = faulty_s3.proxy
    assert proxy is not None
    with pacha.run(
        uri=faulty_s3.uri, storage_options=faulty_s3.storage_options, flush_interval=0.1
    ) as run:
        proxy.delay(2.0)
        started = time.monotonic()
        for step in range(20_000):
            run.log_metric("loss", float(step), step)
        logging_seconds = time.monotonic() - started
        proxy.heal()
    # Each store request now takes 2 s; logging 20k points must not have waited for one.
    assert logging_seconds < 1.5
    assert sorted(stored_steps(faulty_s3, run.run_id)) == list(range(20_000))


def test_a_bucket_deleted_mid_run_is_reported_and_the_points_kept(
    seaweedfs_store: ObjectStore,
    seaweedfs_server: object,
    spool: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import boto3

    options = seaweedfs_store.storage_options
    client = boto3.client(
        "s3",
        endpoint_url=seaweedfs_store.endpoint_url,
        aws_access_key_id=options["key"],
        aws_secret_access_key=options["secret"],
        region_name="us-east-1",
    )
    bucket = f"doomed-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    client.create_bucket(Bucket=bucket)
    uri = f"s3://{bucket}/exp"
    run = pacha.run(uri=uri, storage_options=options, flush_interval=0.2, close_timeout=1)
    run.log_metric("loss", 1.0, 0)
    assert run.flush(timeout=30)
    for item in client.list_objects_v2(Bucket=bucket).get("Contents", []):
        client.delete_object(Bucket=bucket, Key=item["Key"])
    client.delete_bucket(Bucket=bucket)
    run.log_metric("loss", 2.0, 1)
    with caplog.at_level(logging.ERROR, logger="pacha_sdk"):
        run.complete()
    assert bucket in caplog.text
    assert "does not exist" in caplog.text
    assert isinstance(run.last_error, pacha.BucketNotFoundError)
    assert any(p.suffix == ".parquet" for p in spool_files(spool))
