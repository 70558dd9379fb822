"""The built wheel ships ``backends/`` as ``pacha_sdk.backends``, never top level.

``backends/`` sits at the repository root and is mapped into the package by
``[tool.setuptools.package-dir]``; a broken mapping would ship a bare
``backends`` package or none at all, which no import-based test can see.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    "pacha-runs",
)


def _build_wheel(tmp_path: Path) -> Path:
    """Build a wheel from a clean copy of the repository (no stale ``build/``)."""
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCE)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    done = subprocess.run(
        [*command, "--quiet", "-w", str(tmp_path / "wheels"), str(source)],
        timeout=120,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = (tmp_path / "wheels").glob("pacha_sdk-*.whl")
    return wheel


def test_wheel_maps_backends_into_the_package(tmp_path: Path) -> None:
    with zipfile.ZipFile(_build_wheel(tmp_path)) as wheel:
        names = set(wheel.namelist())
    for required in [
        "pacha_sdk/__init__.py",
        "pacha_sdk/py.typed",
        "pacha_sdk/backends/__init__.py",
        "pacha_sdk/backends/base.py",
        "pacha_sdk/backends/registry.py",
        "pacha_sdk/backends/local.py",
        "pacha_sdk/backends/memory.py",
    ]:
        assert required in names
    assert not [name for name in names if name.startswith("backends/")]
    tops = {name.split("/", 1)[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"pacha_sdk"}
