"""The memory backend against the conformance suite, plus memory-only behaviour."""

from __future__ import annotations

import uuid

import pytest

from pacha_sdk.backends import Backend, get_backend
from pacha_sdk.backends.memory import MemoryBackend
from tests.backends.conformance import BackendConformance


class MemoryFixtures:
    @pytest.fixture
    def backend(self) -> Backend:
        return MemoryBackend(f"memory://{uuid.uuid4().hex}")


class TestMemoryConformance(MemoryFixtures, BackendConformance): ...


def test_instances_share_one_store() -> None:
    uri = f"memory://{uuid.uuid4().hex}"
    writer, reader = get_backend(uri), get_backend(uri)
    writer.write_new("runs/a/run.json", b"{}")
    assert isinstance(reader, MemoryBackend)
    assert reader.read_bytes("runs/a/run.json") == b"{}"
    assert reader.list() == ["runs/a/run.json"]


def test_roots_are_separate() -> None:
    one, two = (MemoryBackend(f"memory://{uuid.uuid4().hex}") for _ in range(2))
    one.write_new("k", b"1")
    assert two.list() == []
    assert not two.exists("k")


def test_root_is_an_absolute_memory_path() -> None:
    name = uuid.uuid4().hex
    backend = MemoryBackend(f"memory://{name}")
    assert backend.arrow_filesystem()[1] == f"/{name}"
    backend.write_new("a/b", b"x")
    assert backend.fs.cat_file(f"/{name}/a/b") == b"x"
