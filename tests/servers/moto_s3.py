"""moto's S3 emulator, served from a thread of this process."""

from __future__ import annotations

import logging
import urllib.request
from typing import TYPE_CHECKING

from tests.servers._helpers import BUCKET, LOOPBACK, fresh_prefix
from tests.servers.object_store import ObjectStore

if TYPE_CHECKING:
    from tests.servers.fault_proxy import FaultProxy

__all__ = ["MotoS3"]


class MotoS3:
    """moto's S3 emulator, served from a thread of this process (no signature checks)."""

    kind = "moto"

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.bucket = BUCKET
        self._server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
        self._port = 0

    @property
    def endpoint_url(self) -> str:
        """The S3 endpoint."""
        return f"http://{LOOPBACK}:{self._port}"

    def start(self) -> None:
        """Start the server thread and create :data:`BUCKET`."""
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self._server.start()
        self._port = self._server.get_host_and_port()[1]
        self.create_bucket(self.bucket)

    def create_bucket(self, name: str) -> None:
        """Create bucket *name* with an unsigned PUT (moto does not check signatures)."""
        request = urllib.request.Request(f"{self.endpoint_url}/{name}", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def store(
        self, endpoint_url: str | None = None, proxy: FaultProxy | None = None
    ) -> ObjectStore:
        """Return a fresh prefix in the bucket, reached through *endpoint_url* if given."""
        url = endpoint_url or self.endpoint_url
        return ObjectStore(
            kind=self.kind,
            uri=f"s3://{self.bucket}/{fresh_prefix()}",
            storage_options={"key": "testing", "secret": "testing", "endpoint_url": url},
            env={
                "AWS_ENDPOINT_URL": url,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
            },
            endpoint_url=url,
            bucket=self.bucket,
            proxy=proxy,
        )

    def stop(self) -> None:
        """Stop the server thread."""
        self._server.stop()
