"""The built wheel ships ``backends/`` as ``pacha_sdk.backends``, never top level.

``backends/`` sits at the repository root and is mapped into the package by
``[tool.setuptools.package-dir]``; a broken mapping would ship a bare
``backends`` package or none at all, which no import-based test can see.

The package list in ``pyproject.toml`` is explicit (auto-discovery would
also find ``backends/`` as a top-level package), so a new subpackage
(``ui/``, ``integrations/``) that nobody adds to it would silently be left
out of the wheel: the wheel is compared with the source tree, file by file.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every file name in a wheel built once for this module."""
    with zipfile.ZipFile(_build_wheel(tmp_path_factory.mktemp("wheel"))) as wheel:
        return set(wheel.namelist())


def test_wheel_maps_backends_into_the_package(wheel_names: set[str]) -> None:
    names = wheel_names
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


_COMPILED = (".so", ".pyd")
_EXTENSION = "pacha_sdk/storage/_pointbuf"


def _is_extension(name: str) -> bool:
    """Whether *name* is the built C extension (``_pointbuf.cpython-311-...so``)."""
    return name.startswith(f"{_EXTENSION}.") and name.endswith(_COMPILED)


def _source_files() -> set[str]:
    """Where each file of ``pacha_sdk/`` and ``backends/`` belongs in the wheel."""
    shipped: set[str] = set()
    for folder, prefix in [("pacha_sdk", "pacha_sdk"), ("backends", "pacha_sdk/backends")]:
        for path in (REPO / folder).rglob("*"):
            relative = path.relative_to(REPO / folder)
            if not path.is_file() or "__pycache__" in relative.parts:
                continue
            if path.name.startswith(".") or path.name.endswith(("~", ".pyc")):
                continue  # editor and tool leftovers, never package files
            if path.suffix in _COMPILED:
                continue  # built in place by `pip install -e`: a build output, not source
            shipped.add(f"{prefix}/{relative.as_posix()}")
    return shipped


def test_wheel_ships_every_module_and_data_file_of_the_source(wheel_names: set[str]) -> None:
    source = _source_files()
    assert {name for name in source if name.endswith(".py")} >= {
        "pacha_sdk/__init__.py",
        "pacha_sdk/backends/__init__.py",
    }
    missing = sorted(source - wheel_names)
    assert not missing, (
        "not in the wheel (add the subpackage to [tool.setuptools] packages, "
        f"or its data files to package-data): {missing}"
    )
    extra = sorted(
        name
        for name in wheel_names - source
        if not name.startswith("pacha_sdk-") and not _is_extension(name)
    )
    assert not extra, f"in the wheel but not in the source tree: {extra}"


def _has_compiler() -> bool:
    compiler = (sysconfig.get_config_var("CC") or "").split()
    return bool(compiler) and shutil.which(compiler[0]) is not None


def test_wheel_ships_the_c_buffer_with_its_source_and_stub(wheel_names: set[str]) -> None:
    # The source and the stub always; the built module wherever a compiler is (CI has one).
    assert {f"{_EXTENSION}.c", f"{_EXTENSION}.pyi"} <= wheel_names
    built = [name for name in wheel_names if _is_extension(name)]
    if _has_compiler():
        assert len(built) == 1, wheel_names
        assert sysconfig.get_config_var("EXT_SUFFIX") in built[0]
