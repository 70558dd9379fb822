"""Looking backends up by URI scheme: built-ins, hints, clobbering, entry points."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
import textwrap
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from pacha_sdk.backends import Backend, available_schemes, get_backend, register_backend, registry
from pacha_sdk.backends.local import LocalBackend
from pacha_sdk.backends.memory import MemoryBackend
from pacha_sdk.backends.registry import known_backends, split_scheme
from pacha_sdk.exceptions import BackendNotInstalledError, PachaError, UnknownSchemeError


class FakeBackend(MemoryBackend):
    """A memory backend under another name, to register in tests."""


@pytest.fixture(autouse=True)
def restore_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo every registration a test makes."""
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))
    monkeypatch.setattr(registry, "_targets", dict(registry._targets))
    monkeypatch.setattr(registry, "_from_entry_points", set(registry._from_entry_points))
    yield
    registry._reset_entry_points()


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket/exp", ("s3", "bucket/exp")),
        ("GS://bucket", ("gs", "bucket")),
        ("memory://exp", ("memory", "exp")),
        ("file:///tmp/x", ("file", "/tmp/x")),
        ("./pacha-runs", ("file", "./pacha-runs")),
        ("/data/runs", ("file", "/data/runs")),
        ("C:\\runs", ("file", "C:\\runs")),
        ("my+store.v2-x://a", ("my+store.v2-x", "a")),
    ],
)
def test_split_scheme(uri: str, expected: tuple[str, str]) -> None:
    assert split_scheme(uri) == expected


def test_split_scheme_refuses_non_strings() -> None:
    with pytest.raises(TypeError, match="str"):
        split_scheme(b"s3://x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("uri", "cls"),
    [("memory://exp", MemoryBackend), ("runs", LocalBackend), ("file:///tmp/r", LocalBackend)],
)
def test_builtin_schemes(uri: str, cls: type[Backend]) -> None:
    assert type(get_backend(uri)) is cls


def test_available_schemes_is_sorted_and_has_builtins() -> None:
    schemes = available_schemes()
    assert schemes == sorted(schemes)
    assert {"file", "local", "memory", "s3", "s3a", "gs", "gcs"} <= set(schemes)


def test_unknown_scheme_names_the_scheme_and_the_known_ones() -> None:
    with pytest.raises(UnknownSchemeError, match="'hdfs'") as info:
        get_backend("hdfs://namenode/exp")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, PachaError)
    assert "memory" in str(info.value)
    assert "s3" in str(info.value)


def test_missing_module_becomes_not_installed_error() -> None:
    register_backend("nope", "pacha_sdk_no_such_module_xyz:Backend")
    with pytest.raises(BackendNotInstalledError, match="nope://") as info:
        get_backend("nope://x")
    assert isinstance(info.value, ImportError)
    assert "pacha_sdk_no_such_module_xyz" in str(info.value)


def test_builtin_hint_is_used_when_the_module_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        registry._registry, "s3", registry._Entry("pacha_sdk_missing_xyz:S3", "HINT TEXT")
    )
    with pytest.raises(BackendNotInstalledError, match="HINT TEXT"):
        get_backend("s3://bucket/exp")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


@pytest.mark.parametrize(
    ("uri", "module", "extra"),
    [
        ("s3://bucket/exp", "s3fs", "s3"),
        ("s3a://bucket/exp", "s3fs", "s3"),
        ("gs://bucket/exp", "gcsfs", "gcs"),
        ("gcs://bucket/exp", "gcsfs", "gcs"),
    ],
)
def test_cloud_schemes_say_which_extra_to_install(uri: str, module: str, extra: str) -> None:
    backend_module = {"s3": "pacha_sdk.backends.s3", "gcs": "pacha_sdk.backends.gcs"}[extra]
    if _importable(module) and _importable(backend_module):
        pytest.skip(f"{module} and {backend_module} are installed")
    with pytest.raises(BackendNotInstalledError) as info:
        get_backend(uri)
    assert f"pip install 'pacha-sdk[{extra}]'" in str(info.value)


def test_register_refuses_to_replace_without_clobber() -> None:
    with pytest.raises(ValueError, match=r"'memory'.*clobber"):
        register_backend("memory", FakeBackend)
    register_backend("memory", FakeBackend, clobber=True)
    assert type(get_backend("memory://x")) is FakeBackend


def test_register_new_scheme_by_class_and_by_string() -> None:
    register_backend("fake", FakeBackend)
    register_backend("Fake2", f"{__name__}:FakeBackend")
    assert type(get_backend("fake://x")) is FakeBackend
    assert type(get_backend("fake2://x")) is FakeBackend
    assert known_backends()["fake"] is FakeBackend
    assert known_backends()["fake2"] == f"{__name__}:FakeBackend"
    with pytest.raises(ValueError, match="'fake'"):
        register_backend("FAKE", FakeBackend)


@pytest.mark.parametrize("target", [object, "no-colon", 3])
def test_register_refuses_what_is_not_a_backend(target: object) -> None:
    with pytest.raises(TypeError, match="Backend subclass"):
        register_backend("bad", target)  # type: ignore[arg-type]


@pytest.mark.parametrize("scheme", ["", "has space", "1abc", "a:b"])
def test_register_refuses_bad_scheme(scheme: str) -> None:
    with pytest.raises(ValueError, match="URI scheme"):
        register_backend(scheme, FakeBackend)


def test_string_target_that_is_not_a_backend_is_a_type_error() -> None:
    register_backend("notabackend", "pathlib:Path")
    with pytest.raises(TypeError, match="not a Backend subclass"):
        get_backend("notabackend://x")


def test_known_backends_is_a_read_only_live_view() -> None:
    view = known_backends()
    assert view["s3"] == "pacha_sdk.backends.s3:S3Backend"
    with pytest.raises(TypeError):
        view["x"] = "a:b"  # type: ignore[index]
    register_backend("later", FakeBackend)
    assert "later" in view


def _install_distribution(root: Path, scheme: str, module: str) -> None:
    """Write a module and a dist-info whose entry point registers it for *scheme*."""
    (root / f"{module}.py").write_text(
        textwrap.dedent(
            """
            from pacha_sdk.backends.memory import MemoryBackend

            class PluginBackend(MemoryBackend):
                scheme = "plugin"
            """
        )
    )
    dist_info = root / f"{module}-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        f"[pacha_sdk.backends]\n{scheme} = {module}:PluginBackend\nmemory = {module}:Hijack\n"
    )


def test_entry_point_backend_is_found_on_first_lookup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheme, module = f"plugin{uuid.uuid4().hex[:8]}", f"pacha_plugin_{uuid.uuid4().hex[:8]}"
    _install_distribution(tmp_path, scheme, module)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry._reset_entry_points()
    assert module not in sys.modules
    backend = get_backend(f"{scheme}://exp")
    assert type(backend).__name__ == "PluginBackend"
    assert type(backend).__module__ == module
    assert scheme in available_schemes()
    assert type(get_backend("memory://x")) is MemoryBackend, "built-ins are never replaced"
    monkeypatch.delitem(sys.modules, module)


def test_entry_points_are_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def fake_entry_points(*, group: str) -> list[object]:
        calls.append(group)
        return []

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    registry._reset_entry_points()
    get_backend("memory://x")
    available_schemes()
    known_backends()
    assert calls == ["pacha_sdk.backends"]


def test_import_does_not_read_entry_points() -> None:
    import subprocess

    # Other libraries (pydantic's plugin loader) may read their own groups; ours must wait.
    code = (
        "import importlib.metadata as m\n"
        "original = m.entry_points\n"
        "def guarded(**kw):\n"
        "    assert kw.get('group') != 'pacha_sdk.backends', 'read at import'\n"
        "    return original(**kw)\n"
        "m.entry_points = guarded\n"
        "import pacha_sdk\n"
        "import pacha_sdk.backends.registry as r\n"
        "assert not r._entry_points_done\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


class LazyClientBackend(MemoryBackend):
    """A backend that imports its client only when constructed."""

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None) -> None:
        import pacha_sdk_no_such_client_xyz  # type: ignore[import-not-found]  # noqa: F401


def test_import_error_while_constructing_carries_the_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(registry._registry, "lazy", registry._Entry(LazyClientBackend, "HINT"))
    with pytest.raises(BackendNotInstalledError, match=r"lazy://.*HINT"):
        get_backend("lazy://x")
