"""The GCS backend against fake-gcs-server on 127.0.0.1."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING

import pytest

import pacha_sdk as pacha
from pacha_sdk.backends import get_backend
from pacha_sdk.backends.gcs import GCSBackend
from pacha_sdk.exceptions import BackendNotInstalledError, StoreError
from tests.backends.conformance import BackendConformance
from tests.backends.conformance import _race as race
from tests.servers import backend_operations

if TYPE_CHECKING:
    from pacha_sdk.backends import Backend
    from tests.servers import ObjectStore

pytest_plugins = ["tests.servers"]
pytestmark = pytest.mark.servers


def open_backend(store: ObjectStore) -> GCSBackend:
    backend = get_backend(store.uri, storage_options=store.storage_options)
    assert isinstance(backend, GCSBackend)
    return backend


class TestFakeGcsConformance(BackendConformance):
    @pytest.fixture
    def backend(self, gcs_store: ObjectStore) -> Backend:
        return open_backend(gcs_store)


def test_create_only_refusal_comes_from_the_server(gcs_store: ObjectStore) -> None:
    """Two backends (two clients, no shared lock) race for one key: the server picks one."""
    one, two = open_backend(gcs_store), open_backend(gcs_store)
    for attempt in range(5):
        key = f"metrics/run_id=r/part-{attempt}.parquet"
        outcome = race(
            [functools.partial(b.write_new, key, n) for b, n in ((one, b"1"), (two, b"2"))]
        )
        winners = [i for i, error in enumerate(outcome) if error is None]
        assert len(winners) == 1, outcome
        assert isinstance(outcome[1 - winners[0]], FileExistsError), outcome
        assert one.read_bytes(key) == [b"1", b"2"][winners[0]]


def test_create_only_is_one_conditional_upload(faulty_gcs: ObjectStore) -> None:
    backend = open_backend(faulty_gcs)
    backend.write_new("a/b", b"first")
    assert faulty_gcs.proxy is not None
    faulty_gcs.proxy.reset_counts()
    with pytest.raises(FileExistsError):
        backend.write_new("a/b", b"second")
    assert faulty_gcs.proxy.requests == 1
    assert backend.read_bytes("a/b") == b"first"


def test_missing_bucket_is_a_clear_error(gcs_store: ObjectStore) -> None:
    uri = "gs://pacha-no-such-bucket-4711/exp"
    backend = get_backend(uri, storage_options=gcs_store.storage_options)
    for call in backend_operations(backend).values():
        with pytest.raises(StoreError, match="'pacha-no-such-bucket-4711' does not exist"):
            call()


def test_missing_key_in_existing_bucket_is_not_found(gcs_store: ObjectStore) -> None:
    backend = open_backend(gcs_store)
    with pytest.raises(FileNotFoundError):
        backend.read_bytes("runs/x/run.json")
    assert not backend.exists("runs/x/run.json")
    assert backend.list("runs") == []


def test_listing_reports_generations(gcs_store: ObjectStore) -> None:
    backend = open_backend(gcs_store)
    backend.write_new("runs/a/run.json", b"one")
    (before,) = backend.list_objects("runs")
    backend.replace("runs/a/run.json", b"two")
    (after,) = backend.list_objects("runs")
    assert before.version
    assert after.version
    assert before.version != after.version
    assert after.size == 3


def test_emulator_variable_alone_reaches_the_server(
    gcs_store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STORAGE_EMULATOR_HOST with no storage_options: anonymous, and no layout probe."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_store.endpoint_url)
    started = time.monotonic()
    backend = get_backend(gcs_store.uri)
    backend.write_new("runs/a/run.json", b"{}")
    assert backend.read_bytes("runs/a/run.json") == b"{}"
    assert backend.list() == ["runs/a/run.json"]
    assert time.monotonic() - started < 10


def test_uri_forms(gcs_store: ObjectStore) -> None:
    open_backend(gcs_store).write_new("k", b"v")
    other = get_backend(
        f"GCS://{gcs_store.bucket}/{gcs_store.prefix}/", storage_options=gcs_store.storage_options
    )
    assert isinstance(other, GCSBackend)
    assert other.read_bytes("k") == b"v"
    assert other.bucket == gcs_store.bucket
    assert not other.uri.endswith("/")


def test_uri_without_bucket_is_refused() -> None:
    with pytest.raises(ValueError, match="bucket"):
        GCSBackend("gs://")


def test_store_down_is_a_quick_connection_error(faulty_gcs: ObjectStore) -> None:
    backend = open_backend(faulty_gcs)
    backend.write_new("a", b"x")
    assert faulty_gcs.proxy is not None
    faulty_gcs.proxy.refuse()
    for call in backend_operations(backend, "a").values():
        started = time.monotonic()
        with pytest.raises(ConnectionError) as caught:
            call()
        assert not isinstance(caught.value, StoreError)
        assert time.monotonic() - started < 5
    faulty_gcs.proxy.heal()
    assert backend.read_bytes("a") == b"x"


def test_http_500_is_retried_then_a_transient_error(faulty_gcs: ObjectStore) -> None:
    backend = open_backend(faulty_gcs)
    assert faulty_gcs.proxy is not None
    faulty_gcs.proxy.http_500()
    with pytest.raises(OSError, match="HTTP 500") as caught:
        backend.replace("a", b"x")
    assert not isinstance(caught.value, StoreError)
    assert faulty_gcs.proxy.failed == 3
    faulty_gcs.proxy.heal()
    backend.replace("a", b"x")
    assert backend.read_bytes("a") == b"x"


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_is_retried_then_a_transient_error(faulty_gcs: ObjectStore, status: int) -> None:
    backend = open_backend(faulty_gcs)
    assert faulty_gcs.proxy is not None
    faulty_gcs.proxy.http_error(status)
    with pytest.raises(OSError, match=f"HTTP {status}") as caught:
        backend.write_new("a", b"x")
    assert not isinstance(caught.value, StoreError)
    assert faulty_gcs.proxy.failed == 3


@pytest.mark.parametrize("status", [401, 403])
def test_denied_by_the_server_is_permanent(faulty_gcs: ObjectStore, status: int) -> None:
    backend = open_backend(faulty_gcs)
    assert faulty_gcs.proxy is not None
    faulty_gcs.proxy.http_error(status)
    for name, call in backend_operations(backend).items():
        faulty_gcs.proxy.reset_counts()
        with pytest.raises(StoreError, match=f"bucket '{faulty_gcs.bucket}'.*denied"):
            call()
        # Never retried (gcsfs' open() falls back from a denied GET to listings).
        assert faulty_gcs.proxy.failed <= 3, name


def test_missing_gcsfs_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gcsfs", None)
    for scheme in ("gs", "gcs"):
        with pytest.raises(BackendNotInstalledError, match=r"pip install 'pacha-sdk\[gcs\]'"):
            get_backend(f"{scheme}://bucket/prefix")


_PROBE_CHECK = textwrap.dedent(
    """
    import os, sys
    from pacha_sdk.backends import get_backend
    backend = get_backend("gs://bucket/prefix")
    import gcsfs, gcsfs.core
    print(os.environ.get("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"))
    print(type(backend.fs).__mro__[1] is gcsfs.core.GCSFileSystem)
    """
)


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("preset", "expected"),
    [(None, "false"), ("true", "true"), ("false", "false")],
    ids=["unset", "user-true", "user-false"],
)
def test_emulator_host_turns_off_the_layout_probe(preset: str | None, expected: str) -> None:
    """Only STORAGE_EMULATOR_HOST set: the SDK sets the variable before gcsfs loads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GCSFS_", "STORAGE_"))}
    env["STORAGE_EMULATOR_HOST"] = "http://127.0.0.1:9"  # nothing is contacted
    if preset is not None:
        env["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = preset
    out = subprocess.run(
        [sys.executable, "-c", _PROBE_CHECK], env=env, capture_output=True, text=True, check=True
    )
    variable, plain = out.stdout.split()
    assert variable == expected
    assert plain == "True"  # an emulator always gets gcsfs' plain filesystem


@pytest.mark.subprocess
def test_no_emulator_leaves_the_variable_alone() -> None:
    code = "import os, pacha_sdk.backends.gcs as g; print(os.environ.get(g.LAYOUT_PROBE))"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GCSFS_", "STORAGE_"))}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["None"]


def test_run_on_a_missing_bucket_fails_fast_naming_it(gcs_store: ObjectStore) -> None:
    uri = "gs://pacha-no-such-bucket-4711/exp"
    with pytest.raises(StoreError, match="'pacha-no-such-bucket-4711' does not exist"):
        pacha.run(uri=uri, storage_options=gcs_store.storage_options)
    with pytest.raises(StoreError, match="'pacha-no-such-bucket-4711' does not exist"):
        pacha.list_runs(uri=uri, storage_options=gcs_store.storage_options)
