"""What a store fixture hands a test: a fresh prefix on a server, and every way to reach it."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pacha_sdk.backends import Backend
    from tests.servers.fault_proxy import FaultProxy

__all__ = ["Call", "ObjectStore", "backend_operations", "without_proxy"]

Call = Callable[[], object]


@dataclass(frozen=True)
class ObjectStore:
    """A fresh, empty place on a test server, and every way to reach it.

    Attributes:
        kind: ``"seaweedfs"``, ``"moto"`` or ``"fake-gcs"``.
        uri: the root URI to give pacha, e.g. ``s3://pacha-test/t-1a2b``.
        storage_options: what to pass as ``storage_options`` (credentials, endpoint).
        env: the environment variables a user would set instead of ``storage_options``.
        endpoint_url: the server's (or the proxy's) HTTP endpoint.
        bucket: the bucket the prefix lives in.
        proxy: the fault proxy between client and server, for ``faulty_*`` fixtures.
    """

    kind: str
    uri: str
    storage_options: Mapping[str, Any]
    env: Mapping[str, str]
    endpoint_url: str
    bucket: str
    proxy: FaultProxy | None = field(default=None, compare=False)

    @property
    def scheme(self) -> str:
        """``"s3"`` or ``"gs"``."""
        return self.uri.split("://", 1)[0]

    @property
    def prefix(self) -> str:
        """The key prefix of the root inside the bucket."""
        return self.uri.split("://", 1)[1].partition("/")[2]


def backend_operations(backend: Backend, key: str = "runs/x/run.json") -> dict[str, Call]:
    """Return every primitive of *backend* on *key* as a zero-argument call, by name.

    Fault tests run each one against a broken store and check the error.
    """
    return {
        "write_new": lambda: backend.write_new(key, b"x"),
        "replace": lambda: backend.replace(key, b"x"),
        "read_bytes": lambda: backend.read_bytes(key),
        "exists": lambda: backend.exists(key),
        "list": lambda: backend.list(key.partition("/")[0]),
        "list_objects": lambda: backend.list_objects(key.partition("/")[0]),
        "read_many": lambda: backend.read_many([key, key + ".other"]),
        "delete": lambda: backend.delete(key),
        "open_read": lambda: backend.open_read(key).close(),
        "write_new_from": lambda: backend.write_new_from(key, io.BytesIO(b"x")),
    }


def without_proxy(store: ObjectStore) -> ObjectStore:
    """Return *store* as it is, minus its proxy (for comparisons and repr)."""
    return replace(store, proxy=None)
