"""Shared test setup: a clean environment and a private working directory per test."""

from __future__ import annotations

from pathlib import Path

import pytest

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
