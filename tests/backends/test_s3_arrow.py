"""pyarrow's own S3 client for scans: which settings map to it, and how it fails.

The mapping is checked on plain dicts; the client itself against SeaweedFS,
directly and through the fault proxy (a store that stops answering, one
that refuses connections), and in a forked child, which must read through
s3fs instead.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

import pyarrow.dataset as ds
import pyarrow.fs
import pytest
from botocore.utils import parse_timestamp as botocore_parse  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st

import pacha_sdk as pacha
from pacha_sdk.backends import get_backend
from pacha_sdk.backends._s3_arrow import arrow_s3_options
from pacha_sdk.backends._s3_session import parse_timestamp
from pacha_sdk.backends.s3 import S3Backend
from pacha_sdk.exceptions import BucketNotFoundError, StoreError, StorePermissionError

if TYPE_CHECKING:
    from tests.servers import ObjectStore

pytest_plugins = ["tests.servers"]

KEYS = {"key": "AKIDEXAMPLE", "secret": "wJalrXUtnFEMI/K7MDENG"}
LOCAL = {**KEYS, "endpoint_url": "http://127.0.0.1:9000"}


# The mapping from s3fs' storage_options.


def test_keys_and_a_local_endpoint_map_with_botocore_defaults() -> None:
    assert arrow_s3_options(LOCAL, {}) == {
        "access_key": "AKIDEXAMPLE",
        "secret_key": "wJalrXUtnFEMI/K7MDENG",
        "scheme": "http",
        "endpoint_override": "127.0.0.1:9000",
        "region": "us-east-1",
        "connect_timeout": 60.0,
        "request_timeout": 60.0,
        "max_attempts": 4,
    }


def test_client_settings_map_to_their_pyarrow_names() -> None:
    options = {
        **KEYS,
        "token": "session-token",
        "client_kwargs": {"endpoint_url": "https://s3.example.com", "region_name": "eu-west-3"},
        "config_kwargs": {
            "connect_timeout": 2,
            "read_timeout": 5,
            "retries": {"max_attempts": 1, "mode": "standard"},
            "s3": {"addressing_style": "virtual"},
            "max_pool_connections": 64,
        },
    }
    mapped = arrow_s3_options(options, {})
    assert mapped is not None
    assert mapped["session_token"] == "session-token"
    assert (mapped["scheme"], mapped["endpoint_override"]) == ("https", "s3.example.com")
    assert mapped["region"] == "eu-west-3"
    assert (mapped["connect_timeout"], mapped["request_timeout"]) == (2.0, 5.0)
    assert mapped["max_attempts"] == 2  # botocore counts retries after the first try
    assert mapped["force_virtual_addressing"] is True


def test_the_environment_gives_keys_endpoint_and_region() -> None:
    env = {
        "AWS_ACCESS_KEY_ID": "AKIDENV",
        "AWS_SECRET_ACCESS_KEY": "secret-env",
        "AWS_SESSION_TOKEN": "token-env",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:8333",
        "AWS_DEFAULT_REGION": "ap-south-1",
    }
    mapped = arrow_s3_options({}, env)
    assert mapped is not None
    assert (mapped["access_key"], mapped["secret_key"]) == ("AKIDENV", "secret-env")
    assert mapped["session_token"] == "token-env"
    assert (mapped["endpoint_override"], mapped["region"]) == ("127.0.0.1:8333", "ap-south-1")
    with_bundle = arrow_s3_options(LOCAL, {"AWS_CA_BUNDLE": "/etc/ssl/private-ca.pem"})
    assert with_bundle is not None
    assert with_bundle["tls_ca_file_path"] == "/etc/ssl/private-ca.pem"
    assert arrow_s3_options({"anon": True, "endpoint_url": "http://h:1"}, {})["anonymous"] is True  # type: ignore[index]


@pytest.mark.parametrize(
    ("options", "env"),
    [
        ({"profile": "dev"}, {}),  # profiles, SSO, credential processes: botocore's chain
        ({"endpoint_url": "http://127.0.0.1:9000"}, {}),  # no keys at all
        ({**KEYS}, {}),  # AWS without a region: botocore follows redirects, pyarrow cannot
        ({**LOCAL, "requester_pays": True}, {}),
        ({**LOCAL, "s3_additional_kwargs": {"ServerSideEncryption": "aws:kms"}}, {}),
        ({**LOCAL, "client_kwargs": {"verify": False}}, {}),
        ({**LOCAL, "config_kwargs": {"signature_version": "s3"}}, {}),
        ({**LOCAL, "config_kwargs": {"proxies": {"http": "http://proxy:3128"}}}, {}),
        ({**LOCAL, "config_kwargs": {"read_timeout": 0}}, {}),
        ({**LOCAL, "config_kwargs": {"retries": {"max_attempts": "3"}}}, {}),
        ({**KEYS, "endpoint_url": "http://127.0.0.1:9000/base/path"}, {}),
        ({**KEYS, "endpoint_url": "ftp://127.0.0.1:9000"}, {}),
        ({"secret": "only-a-secret", "endpoint_url": "http://h:1"}, {}),
        (LOCAL, {"HTTPS_PROXY": "http://proxy:3128"}),
    ],
)
def test_settings_it_cannot_map_keep_s3fs(options: dict[str, Any], env: dict[str, str]) -> None:
    assert arrow_s3_options(options, env) is None


def test_an_unmappable_store_scans_through_s3fs() -> None:
    backend = get_backend("s3://bucket/prefix", storage_options={**LOCAL, "requester_pays": True})
    filesystem, root = backend.arrow_filesystem()
    assert isinstance(filesystem, pyarrow.fs.PyFileSystem)
    assert root == "bucket/prefix"


# The faster timestamp parser gives what botocore gives.


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1)))
def test_timestamps_parse_as_botocore_parses_them(moment: datetime) -> None:
    moment = moment.replace(tzinfo=timezone.utc)
    iso = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    http = format_datetime(moment.replace(microsecond=0), usegmt=True)
    for text in (iso, http, moment.strftime("%Y-%m-%dT%H:%M:%SZ")):
        ours = parse_timestamp(text)
        assert ours == botocore_parse(text)
        assert ours.utcoffset() == timedelta(0)


def test_other_timestamp_forms_go_to_botocore() -> None:
    for text in ("1700000000", "2026-12-01T13:24:00+02:00", "not a time at all Z"):
        try:
            expected = botocore_parse(text)
        except ValueError as error:
            with pytest.raises(ValueError, match=str(error)[:20]):
                parse_timestamp(text)
        else:
            assert parse_timestamp(text) == expected


# Against SeaweedFS.


def log_runs(store: ObjectStore, count: int) -> None:
    for index in range(count):
        with pacha.run(uri=store.uri, storage_options=store.storage_options) as run:
            for step in range(5):
                run.log_metric("loss", index + step / 10, step)


@pytest.mark.servers
def test_scans_use_pyarrows_own_client_and_agree_with_read_metrics(
    seaweedfs_store: ObjectStore,
) -> None:
    log_runs(seaweedfs_store, 3)
    backend = get_backend(seaweedfs_store.uri, storage_options=seaweedfs_store.storage_options)
    filesystem, _ = backend.arrow_filesystem()
    assert isinstance(filesystem, pyarrow.fs.S3FileSystem)
    where: dict[str, Any] = {
        "uri": seaweedfs_store.uri,
        "storage_options": seaweedfs_store.storage_options,
    }
    scanned = pacha.metrics_dataset(**where).to_table(filter=ds.field("name") == "loss")
    read = pacha.read_metrics(names=["loss"], **where)
    key = [("run_id", "ascending"), ("step", "ascending")]
    assert scanned.num_rows == read.num_rows == 15
    assert scanned.sort_by(key).column("value") == read.sort_by(key).column("value")


@pytest.mark.servers
def test_a_store_that_stops_answering_fails_a_scan_in_bounded_time(
    faulty_s3: ObjectStore,
) -> None:
    log_runs(faulty_s3, 2)
    options = {
        **faulty_s3.storage_options,
        "config_kwargs": {"connect_timeout": 1, "read_timeout": 1, "retries": {"max_attempts": 1}},
    }
    dataset = pacha.metrics_dataset(faulty_s3.uri, storage_options=options, check_parts=False)
    assert isinstance(dataset.filesystem, pyarrow.fs.S3FileSystem)
    assert faulty_s3.proxy is not None
    faulty_s3.proxy.delay(30)
    started = time.monotonic()
    with pytest.raises(OSError, match=r"(?i)timeout|timed out|curl"):
        dataset.to_table()
    assert time.monotonic() - started < 15
    faulty_s3.proxy.heal()
    assert dataset.to_table().num_rows == 10


@pytest.mark.servers
def test_a_store_that_refuses_connections_is_a_store_error(faulty_s3: ObjectStore) -> None:
    log_runs(faulty_s3, 1)
    backend = get_backend(faulty_s3.uri, storage_options=faulty_s3.storage_options)
    listed = [key for key in backend.list("metrics") if key.endswith(".parquet")]
    assert faulty_s3.proxy is not None
    options = {**faulty_s3.storage_options, "config_kwargs": {"retries": {"max_attempts": 1}}}
    with pytest.MonkeyPatch.context() as patch:
        # The listing goes through s3fs first: let it, then refuse the footer reads.
        from pacha_sdk.query.part_files import list_part_files as real

        def listed_then_down(*args: Any, **kwargs: Any) -> Any:
            found = real(*args, **kwargs)
            faulty_s3.proxy.refuse()  # type: ignore[union-attr]
            return found

        patch.setattr("pacha_sdk.query.read.list_part_files", listed_then_down)
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"could not read metrics in s3://"):
            pacha.metrics_dataset(faulty_s3.uri, storage_options=options)
        assert time.monotonic() - started < 15
    faulty_s3.proxy.heal()
    assert listed


@pytest.mark.servers
def test_a_forked_child_scans_through_s3fs(seaweedfs_store: ObjectStore) -> None:
    log_runs(seaweedfs_store, 1)
    where: dict[str, Any] = {
        "uri": seaweedfs_store.uri,
        "storage_options": seaweedfs_store.storage_options,
    }
    backend = get_backend(seaweedfs_store.uri, storage_options=seaweedfs_store.storage_options)
    assert isinstance(backend.arrow_filesystem()[0], pyarrow.fs.S3FileSystem)
    assert pacha.metrics_dataset(**where).count_rows() == 5
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            kind = type(backend.arrow_filesystem()[0]).__name__
            rows = pacha.metrics_dataset(**where).count_rows()
            os.write(write_end, f"{kind} {rows}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read_end) as answer:
        assert answer.read() == "PyFileSystem 5"
    assert status == 0


# Batched reads of whole objects through pyarrow's own client.


def native_backend(store: ObjectStore, **config: Any) -> S3Backend:
    options = {**store.storage_options, "config_kwargs": config} if config else None
    backend = get_backend(store.uri, storage_options=options or store.storage_options)
    assert isinstance(backend, S3Backend)
    backend.native_batch = 1
    return backend


@pytest.mark.servers
def test_a_large_batch_is_read_natively_and_a_small_one_by_s3fs(faulty_s3: ObjectStore) -> None:
    backend = native_backend(faulty_s3)
    keys = [f"runs/r{i:02d}/run.json" for i in range(8)]
    for key in keys:
        backend.write_new(key, key.encode())
    assert faulty_s3.proxy is not None
    faulty_s3.proxy.reset_counts()
    assert backend.read_many([*keys, "runs/absent/run.json"]) == [*map(str.encode, keys), None]
    assert faulty_s3.proxy.requests >= 2 * len(keys)  # pyarrow: a HEAD, then a GET
    backend.native_batch = 64
    faulty_s3.proxy.reset_counts()
    assert backend.read_many(keys) == [key.encode() for key in keys]
    assert faulty_s3.proxy.requests == len(keys)  # s3fs: one GET each


@pytest.mark.servers
def test_a_store_that_stops_answering_fails_a_batched_read_in_bounded_time(
    faulty_s3: ObjectStore,
) -> None:
    backend = native_backend(
        faulty_s3, connect_timeout=1, read_timeout=1, retries={"max_attempts": 0}
    )
    keys = [f"runs/r{i}/run.json" for i in range(4)]
    for key in keys:
        backend.write_new(key, b"{}")
    assert faulty_s3.proxy is not None
    faulty_s3.proxy.delay(30)
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="S3 did not answer") as caught:
        backend.read_many(keys)
    assert not isinstance(caught.value, StoreError)  # transient: the caller may retry
    assert time.monotonic() - started < 15
    faulty_s3.proxy.heal()
    assert backend.read_many(keys) == [b"{}"] * 4


@pytest.mark.servers
def test_a_denied_batched_read_says_so_as_s3fs_does(faulty_s3: ObjectStore) -> None:
    backend = native_backend(faulty_s3, retries={"max_attempts": 0})
    backend.write_new("runs/a/run.json", b"{}")
    assert faulty_s3.proxy is not None
    faulty_s3.proxy.http_error(403)
    with pytest.raises(StorePermissionError, match=f"bucket '{faulty_s3.bucket}'.*denied"):
        backend.read_many(["runs/a/run.json", "runs/b/run.json"])
    faulty_s3.proxy.heal()


@pytest.mark.servers
def test_a_batched_read_in_a_missing_bucket_names_the_bucket(seaweedfs_store: ObjectStore) -> None:
    backend = get_backend(
        "s3://no-such-bucket-here/x", storage_options=seaweedfs_store.storage_options
    )
    assert isinstance(backend, S3Backend)
    backend.native_batch = 1
    with pytest.raises(BucketNotFoundError, match="no-such-bucket-here"):
        backend.read_many(["runs/a/run.json", "runs/b/run.json"])
