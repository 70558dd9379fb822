"""The S3 backend against SeaweedFS (a real S3 server) and moto, on 127.0.0.1."""

from __future__ import annotations

import functools
import logging
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

import pacha_sdk as pacha
from pacha_sdk.backends import get_backend, registry
from pacha_sdk.backends.s3 import S3Backend
from pacha_sdk.exceptions import BackendNotInstalledError, StoreError
from tests.backends.conformance import BackendConformance
from tests.backends.conformance import _race as race
from tests.servers import backend_operations

if TYPE_CHECKING:
    from pacha_sdk.backends import Backend
    from tests.servers import MotoS3, ObjectStore, SeaweedFS

pytest_plugins = ["tests.servers"]
pytestmark = pytest.mark.servers


def open_backend(store: ObjectStore) -> S3Backend:
    backend = get_backend(store.uri, storage_options=store.storage_options)
    assert isinstance(backend, S3Backend)
    return backend


class TestSeaweedFSConformance(BackendConformance):
    @pytest.fixture
    def backend(self, seaweedfs_store: ObjectStore) -> Backend:
        return open_backend(seaweedfs_store)


class TestMotoConformance(BackendConformance):
    @pytest.fixture
    def backend(self, moto_store: ObjectStore) -> Backend:
        return open_backend(moto_store)


class TestSeaweedFSNativeReadsConformance(BackendConformance):
    """Every batched read through pyarrow's own client (see backends/_s3_arrow.py)."""

    @pytest.fixture
    def backend(self, seaweedfs_store: ObjectStore) -> Backend:
        backend = open_backend(seaweedfs_store)
        backend.native_batch = 1
        return backend


class TestMotoNativeReadsConformance(BackendConformance):
    @pytest.fixture
    def backend(self, moto_store: ObjectStore) -> Backend:
        backend = open_backend(moto_store)
        backend.native_batch = 1
        return backend


@pytest.fixture(params=["seaweedfs", "moto"])
def s3_store(request: pytest.FixtureRequest) -> ObjectStore:
    store: ObjectStore = request.getfixturevalue(f"{request.param}_store")
    return store


def test_create_only_refusal_comes_from_the_server(s3_store: ObjectStore) -> None:
    """Two backends (two clients, no shared lock) race for one key: the server picks one."""
    one, two = open_backend(s3_store), open_backend(s3_store)
    for attempt in range(5):
        key = f"metrics/run_id=r/part-{attempt}.parquet"
        outcome = race(
            [functools.partial(b.write_new, key, n) for b, n in ((one, b"1"), (two, b"2"))]
        )
        winners = [i for i, error in enumerate(outcome) if error is None]
        assert len(winners) == 1, outcome
        assert isinstance(outcome[1 - winners[0]], FileExistsError), outcome
        assert one.read_bytes(key) == [b"1", b"2"][winners[0]]


def test_create_only_is_a_conditional_put(faulty_s3: ObjectStore) -> None:
    """The refusal needs no extra request: one PUT that the server answers 412."""
    backend = open_backend(faulty_s3)
    backend.write_new("a/b", b"first")
    assert faulty_s3.proxy is not None
    faulty_s3.proxy.reset_counts()
    with pytest.raises(FileExistsError):
        backend.write_new("a/b", b"second")
    assert faulty_s3.proxy.requests == 1
    assert backend.read_bytes("a/b") == b"first"


def test_bad_secret_is_a_clear_error_without_the_secret(
    seaweedfs_server: SeaweedFS, seaweedfs_store: ObjectStore
) -> None:
    bad_secret = "not-the-secret-" + "x" * 24
    options = {**seaweedfs_store.storage_options, "secret": bad_secret}
    backend = get_backend(seaweedfs_store.uri, storage_options=options)
    for name, call in backend_operations(backend).items():
        with pytest.raises(StoreError) as caught:
            call()
        text = f"{caught.value} {caught.value!r} {caught.value.__cause__!r}"
        assert "denied" in str(caught.value), name
        assert seaweedfs_store.bucket in str(caught.value), name
        for secret in (bad_secret, seaweedfs_server.secret_key):
            assert secret not in text, name
    for secret in (bad_secret, seaweedfs_server.secret_key):
        assert secret not in repr(backend)
        assert secret not in str(backend.uri)


def test_unknown_access_key_is_denied(seaweedfs_store: ObjectStore) -> None:
    options = {**seaweedfs_store.storage_options, "key": "nobody", "secret": "nothing-at-all"}
    backend = get_backend(seaweedfs_store.uri, storage_options=options)
    with pytest.raises(StoreError, match="denied"):
        backend.write_new("a", b"x")


def test_missing_bucket_is_a_clear_error(s3_store: ObjectStore) -> None:
    uri = "s3://pacha-no-such-bucket-4711/exp"
    backend = get_backend(uri, storage_options=s3_store.storage_options)
    for call in backend_operations(backend).values():
        with pytest.raises(StoreError, match="'pacha-no-such-bucket-4711' does not exist"):
            call()


def test_missing_key_in_existing_bucket_is_not_found(s3_store: ObjectStore) -> None:
    backend = open_backend(s3_store)
    with pytest.raises(FileNotFoundError):
        backend.read_bytes("runs/x/run.json")
    assert not backend.exists("runs/x/run.json")
    assert backend.list("runs") == []


def test_listing_reports_etags_and_many_reads_are_concurrent(faulty_s3: ObjectStore) -> None:
    backend = open_backend(faulty_s3)
    keys = [f"runs/r{i:02d}/run.json" for i in range(40)]
    for key in keys:
        backend.write_new(key, key.encode())
    listed = backend.list_objects("runs")
    assert all(item.version for item in listed)
    assert len({item.version for item in listed}) == len(keys)  # content-derived
    assert faulty_s3.proxy is not None
    faulty_s3.proxy.delay(0.5)
    faulty_s3.proxy.reset_counts()
    assert backend.read_many(keys) == [key.encode() for key in keys]
    # One GET per key (no HEAD first), many of them in flight together.
    assert faulty_s3.proxy.requests == len(keys)
    assert faulty_s3.proxy.peak_held >= 10


LISTED_KEYS = [
    *(f"runs/{i:02x}{'ab' * (i % 3)}/run.json" for i in range(0, 256, 5)),
    *(f"runs/{digit}" for digit in "0123456789abcdef"),  # exactly on a range boundary
    "runs/~tilde",
    "runs/Zebra/x",
    "runs/é/x",
    "runs/-/x",
    "metrics/run_id=a/part-1.parquet",
]


@pytest.mark.parametrize("page_size", [3, 7, 1000])
def test_a_listing_of_many_pages_has_every_key_once(
    moto_store: ObjectStore, page_size: int
) -> None:
    backend = open_backend(moto_store)
    for key in LISTED_KEYS:
        backend.write_new(key, key.encode())
    backend.page_size = page_size
    expected = sorted(key for key in LISTED_KEYS if key.startswith("runs/"))
    listed = backend.list_objects("runs")
    assert [item.key for item in listed] == expected
    assert [item.size for item in listed] == [len(key.encode()) for key in expected]
    assert backend.list() == sorted(LISTED_KEYS)


def test_environment_variables_alone_reach_the_server(
    seaweedfs_store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS_ENDPOINT_URL and the key variables work with no storage_options (signed requests)."""
    for name, value in seaweedfs_store.env.items():
        monkeypatch.setenv(name, value)
    backend = get_backend(seaweedfs_store.uri)
    backend.write_new("runs/a/run.json", b"{}")
    assert backend.list() == ["runs/a/run.json"]
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", seaweedfs_store.endpoint_url)
    assert get_backend(seaweedfs_store.uri).read_bytes("runs/a/run.json") == b"{}"


def test_explicit_endpoint_wins_over_the_environment(
    moto_store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard port: nothing there
    backend = open_backend(moto_store)
    backend.replace("k", b"v")
    assert backend.read_bytes("k") == b"v"


@pytest.mark.parametrize("uri", ["s3a://{bucket}/{prefix}", "S3://{bucket}/{prefix}/"])
def test_uri_forms(moto_store: ObjectStore, uri: str) -> None:
    first = open_backend(moto_store)
    first.write_new("k", b"v")
    other = get_backend(
        uri.format(bucket=moto_store.bucket, prefix=moto_store.prefix),
        storage_options=moto_store.storage_options,
    )
    assert isinstance(other, S3Backend)
    assert other.read_bytes("k") == b"v"
    assert other.bucket == moto_store.bucket
    assert not other.uri.endswith("/")


def test_bucket_root_without_prefix(moto_server: MotoS3) -> None:
    bucket = f"pacha-root-{time.monotonic_ns()}"
    moto_server.create_bucket(bucket)
    backend = get_backend(f"s3://{bucket}", storage_options=moto_server.store().storage_options)
    backend.write_new("runs/a/run.json", b"{}")
    assert backend.list() == ["runs/a/run.json"]
    assert backend.arrow_filesystem()[1] == bucket


def test_uri_without_bucket_is_refused() -> None:
    with pytest.raises(ValueError, match="bucket"):
        S3Backend("s3://")


# Transient failures stay OSError (the writer retries them), quickly.


def test_store_down_is_a_quick_connection_error(faulty_s3: ObjectStore) -> None:
    """With default retries a write to a dead store fails in seconds, as a plain OSError."""
    backend = open_backend(faulty_s3)
    backend.write_new("a", b"x")
    assert faulty_s3.proxy is not None
    faulty_s3.proxy.refuse()
    started = time.monotonic()
    with pytest.raises(ConnectionError):
        backend.write_new("b", b"x")
    assert time.monotonic() - started < 10
    faulty_s3.proxy.heal()
    assert backend.read_bytes("a") == b"x"


def test_store_down_is_transient_for_every_operation(faulty_s3: ObjectStore) -> None:
    options = {**faulty_s3.storage_options, "config_kwargs": {"retries": {"max_attempts": 1}}}
    backend = get_backend(faulty_s3.uri, storage_options=options)
    backend.write_new("a", b"x")
    assert faulty_s3.proxy is not None
    faulty_s3.proxy.refuse()
    for call in backend_operations(backend, "a").values():
        with pytest.raises(ConnectionError) as caught:
            call()
        assert not isinstance(caught.value, StoreError)
    faulty_s3.proxy.heal()
    assert backend.read_bytes("a") == b"x"


def test_http_500_is_retried_then_a_transient_error(faulty_s3: ObjectStore) -> None:
    backend = open_backend(faulty_s3)
    assert faulty_s3.proxy is not None
    faulty_s3.proxy.http_500()
    with pytest.raises(OSError, match="injected by FaultProxy") as caught:
        backend.replace("a", b"x")
    assert not isinstance(caught.value, StoreError)
    assert 2 <= faulty_s3.proxy.failed <= 6  # bounded retries, not one and not forever
    faulty_s3.proxy.heal()
    backend.replace("a", b"x")
    assert backend.read_bytes("a") == b"x"


def test_a_slow_store_is_only_slow(faulty_s3: ObjectStore) -> None:
    """Every operation succeeds through added latency, and create-only still holds."""
    backend = open_backend(faulty_s3)
    assert faulty_s3.proxy is not None
    faulty_s3.proxy.delay(0.2)
    backend.write_new("a", b"x")
    with pytest.raises(FileExistsError):
        backend.write_new("a", b"y")
    assert backend.read_bytes("a") == b"x"


def test_throttling_is_retried_then_a_transient_error(faulty_s3: ObjectStore) -> None:
    backend = open_backend(faulty_s3)
    assert faulty_s3.proxy is not None
    faulty_s3.proxy.http_error(503)  # SlowDown
    with pytest.raises(OSError, match="injected by FaultProxy") as caught:
        backend.write_new("a", b"x")
    assert not isinstance(caught.value, StoreError)
    assert faulty_s3.proxy.failed >= 2


@pytest.mark.parametrize("status", [401, 403])
def test_denied_by_the_server_is_permanent(faulty_s3: ObjectStore, status: int) -> None:
    backend = open_backend(faulty_s3)
    assert faulty_s3.proxy is not None
    faulty_s3.proxy.http_error(status)
    for name, call in backend_operations(backend).items():
        faulty_s3.proxy.reset_counts()
        with pytest.raises(StoreError, match=f"bucket '{faulty_s3.bucket}'.*denied"):
            call()
        # Never retried (gcsfs' open() falls back from a denied GET to listings).
        assert faulty_s3.proxy.failed <= 3, name


# The optional extra.


def test_missing_s3fs_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)
    for scheme in ("s3", "s3a"):
        with pytest.raises(BackendNotInstalledError, match=r"pip install 'pacha-sdk\[s3\]'"):
            get_backend(f"{scheme}://bucket/prefix")


def test_missing_s3fs_before_the_backend_module_is_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)
    monkeypatch.delitem(sys.modules, "pacha_sdk.backends.s3")
    with pytest.raises(BackendNotInstalledError, match=r"pip install 'pacha-sdk\[s3\]'"):
        registry.get_backend("s3://bucket/prefix")


@pytest.mark.subprocess
def test_import_pacha_does_not_import_s3fs() -> None:
    code = "import sys, pacha_sdk; print('s3fs' in sys.modules, 'botocore' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# What a user sees through pacha's public API.


def test_run_on_a_missing_bucket_fails_fast_naming_it(s3_store: ObjectStore) -> None:
    uri = "s3://pacha-no-such-bucket-4711/exp"
    with pytest.raises(StoreError, match="'pacha-no-such-bucket-4711' does not exist"):
        pacha.run(uri=uri, storage_options=s3_store.storage_options)
    with pytest.raises(StoreError, match="'pacha-no-such-bucket-4711' does not exist"):
        pacha.list_runs(uri=uri, storage_options=s3_store.storage_options)


def test_secret_is_never_stored_logged_or_shown(
    seaweedfs_server: SeaweedFS, seaweedfs_store: ObjectStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    options = seaweedfs_store.storage_options
    with pacha.run({"lr": 0.1}, uri=seaweedfs_store.uri, storage_options=options) as run:
        run.log_metric("loss", 0.5, 0)
        shown = f"{run!r} {run.uri} {run.record.model_dump_json()}"
    secret = seaweedfs_server.secret_key
    assert secret not in shown
    backend = open_backend(seaweedfs_store)
    stored = [backend.read_bytes(key) for key in backend.list()]
    assert len(stored) >= 2
    assert all(secret.encode() not in data for data in stored)
    assert secret not in caplog.text


def test_credentials_in_the_uri_are_refused_without_echoing_them() -> None:
    with pytest.raises(ValueError, match="storage_options") as caught:
        get_backend("s3://AKIA:very-secret-value@bucket/prefix")
    assert "very-secret-value" not in str(caught.value)
