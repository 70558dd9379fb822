"""Shared test setup: a clean environment, a private working directory, and :func:`wait_until`."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

__all__ = ["wait_until"]

_CLOUD_VARIABLES = (
    "PACHA_URI",
    "PACHA_RUN_ID",
    "RANK",
    "SLURM_PROCID",
    "WORLD_SIZE",
    "SLURM_NTASKS",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "STORAGE_EMULATOR_HOST",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's store settings or writes into the repo or the home folder."""
    for name in _CLOUD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("PACHA_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A fresh local store root for one test."""
    return str(tmp_path / "store")


def wait_until(
    predicate: Callable[[], object],
    timeout: float = 30.0,
    interval: float = 0.02,
    message: str | None = None,
) -> None:
    """Return as soon as *predicate()* is true; fail the test if it is not within *timeout* s.

    For waits on something another thread or process does (a flush, a
    heartbeat, a sampler's points): the test goes on the moment it happened,
    and a loaded machine gets the whole *timeout* before the test fails. The
    predicate is checked once more at the deadline. Imported by tests as
    ``from tests.conftest import wait_until``; its source is also pasted
    into the child scripts of ``test_signals.py``.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            if predicate():
                return
            raise AssertionError(message or f"not true within {timeout} s: {predicate}")
        time.sleep(interval)
