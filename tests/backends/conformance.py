"""The contract every backend must meet, as one reusable test class.

In the style of fsspec's ``tests/abstract``: a backend's test module mixes
:class:`BackendConformance` with a class that supplies a ``backend`` fixture
rooted at a fresh, empty location, e.g.::

    class TestMemory(MemoryFixtures, BackendConformance): ...

Covered: byte round-trips, create-only writes (also under a race), atomic
replace under concurrent readers, recursive sorted listing with Hive-style
folders, listings with sizes and versions, batched reads of many keys,
missing keys, unsafe keys, and reading Parquet parts back through
``arrow_filesystem()`` as a Hive-partitioned pyarrow dataset.
"""

from __future__ import annotations

import functools
import io
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from pacha_sdk.backends import StoredObject
from pacha_sdk.exceptions import UnsafeNameError

if TYPE_CHECKING:
    from pacha_sdk.backends import Backend

__all__ = ["BackendConformance"]

UNSAFE_KEYS = ["../x", "/abs", "a//b", "", "a/../b", "./a"]
HIVE_KEYS = [
    "metrics/run_id=abc/part-1.parquet",
    "metrics/run_id=abc/part-2.parquet",
    "metrics/run_id=abd/part-1.parquet",
    "runs/abc/run.json",
    "runs/abc/nested/deeper/note.txt",
    "artifacts/d7/d74981ef",
    "top.txt",
]


def _value(i: int) -> bytes:
    """Return the i-th distinct payload: a 4-byte counter, then 64 KiB of its low byte."""
    return i.to_bytes(4, "big") + bytes([i % 256]) * (64 * 1024 + i)


def _is_whole(data: bytes) -> bool:
    """Return whether *data* is exactly one of the :func:`_value` payloads."""
    return len(data) >= 4 and data == _value(int.from_bytes(data[:4], "big"))


def _race(workers: list[Callable[[], None]]) -> list[BaseException | None]:
    """Start *workers* together behind a barrier; return each one's exception or None."""
    barrier = threading.Barrier(len(workers))
    outcome: list[BaseException | None] = [None] * len(workers)

    def run(index: int) -> None:
        barrier.wait()
        try:
            workers[index]()
        except BaseException as exc:
            outcome[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcome


class BackendConformance:
    """Tests every backend must pass; subclasses provide the ``backend`` fixture."""

    @pytest.mark.parametrize(
        "data", [b"", b"hello", bytes(range(256)) * 4096], ids=["empty", "small", "1MiB"]
    )
    def test_round_trip(self, backend: Backend, data: bytes) -> None:
        backend.write_new("runs/a/blob.bin", data)
        assert backend.read_bytes("runs/a/blob.bin") == data
        assert backend.exists("runs/a/blob.bin")

    def test_write_new_refuses_existing_key(self, backend: Backend) -> None:
        backend.write_new("runs/a/run.json", b"first")
        with pytest.raises(FileExistsError):
            backend.write_new("runs/a/run.json", b"second")
        assert backend.read_bytes("runs/a/run.json") == b"first"

    def test_replace_creates_then_overwrites(self, backend: Backend) -> None:
        backend.replace("runs/a/run.json", b"one")
        assert backend.read_bytes("runs/a/run.json") == b"one"
        backend.replace("runs/a/run.json", b"two, longer")
        assert backend.read_bytes("runs/a/run.json") == b"two, longer"
        backend.replace("runs/a/run.json", b"")
        assert backend.read_bytes("runs/a/run.json") == b""
        assert backend.list("runs") == ["runs/a/run.json"]

    def test_replace_is_atomic_for_readers(self, backend: Backend) -> None:
        backend.replace("runs/a/run.json", _value(0))
        started, done = threading.Event(), threading.Event()
        reads: list[int] = []
        torn: list[int] = []

        def read_until_done() -> None:
            while not done.is_set():
                data = backend.read_bytes("runs/a/run.json")
                reads.append(len(data))
                if not _is_whole(data):
                    torn.append(len(data))
                started.set()

        def write_200() -> None:
            try:
                started.wait(timeout=30)
                for i in range(1, 201):
                    backend.replace("runs/a/run.json", _value(i))
                    time.sleep(0)  # let the reader run between replaces
            finally:
                done.set()

        assert _race([read_until_done, write_200]) == [None, None]
        assert reads
        assert torn == [], f"{len(torn)} of {len(reads)} reads saw a partial object"
        assert backend.read_bytes("runs/a/run.json") == _value(200)

    def test_write_new_race_has_one_winner(self, backend: Backend) -> None:
        for attempt in range(10):
            key = f"runs/race/{attempt}.json"
            payloads = [_value(2 * attempt), _value(2 * attempt + 1)]
            outcome = _race([functools.partial(backend.write_new, key, p) for p in payloads])
            winners = [i for i, exc in enumerate(outcome) if exc is None]
            assert len(winners) == 1, outcome
            loser = outcome[1 - winners[0]]
            assert isinstance(loser, FileExistsError), loser
            assert backend.read_bytes(key) == payloads[winners[0]]

    def test_list_is_recursive_and_sorted(self, backend: Backend) -> None:
        for key in reversed(HIVE_KEYS):
            backend.write_new(key, key.encode())
        assert backend.list() == sorted(HIVE_KEYS)
        assert backend.list("") == sorted(HIVE_KEYS)
        assert backend.list("metrics") == sorted(HIVE_KEYS[:3])
        assert backend.list("metrics/") == sorted(HIVE_KEYS[:3])
        assert backend.list("metrics/run_id=abc") == HIVE_KEYS[:2]
        assert backend.list("runs/abc/nested") == ["runs/abc/nested/deeper/note.txt"]

    def test_list_objects_gives_keys_sizes_and_versions(self, backend: Backend) -> None:
        for key in reversed(HIVE_KEYS):
            backend.write_new(key, key.encode() * 3)
        listed = backend.list_objects()
        assert all(isinstance(item, StoredObject) for item in listed)
        assert [item.key for item in listed] == backend.list() == sorted(HIVE_KEYS)
        assert {item.key: item.size for item in listed} == {k: 3 * len(k) for k in HIVE_KEYS}
        assert [item.key for item in backend.list_objects("metrics/")] == sorted(HIVE_KEYS[:3])
        assert backend.list_objects("nothing") == []

    def test_a_listed_version_changes_with_the_content(self, backend: Backend) -> None:
        backend.replace("runs/a/run.json", b"one")
        backend.replace("runs/b/run.json", b"same")
        first = {item.key: item.version for item in backend.list_objects("runs")}
        backend.replace("runs/a/run.json", b"two")
        second = {item.key: item.version for item in backend.list_objects("runs")}
        if first["runs/a/run.json"] is None:  # this store gives no versions: nothing to check
            assert set(second.values()) == {None}
            return
        assert second["runs/a/run.json"] != first["runs/a/run.json"]
        assert second["runs/b/run.json"] == first["runs/b/run.json"]

    def test_read_many_returns_each_object_in_order(self, backend: Backend) -> None:
        keys = [f"runs/r{i:03d}/run.json" for i in range(150)]  # more than one batch
        for i, key in enumerate(keys):
            backend.write_new(key, _value(i)[: 100 + i])
        wanted = [*reversed(keys), "runs/missing/run.json", keys[0]]
        found = backend.read_many(wanted)
        assert found[:150] == [_value(i)[: 100 + i] for i in reversed(range(150))]
        assert found[150:] == [None, _value(0)[:100]]
        assert backend.read_many([]) == []

    def test_read_many_of_an_empty_object_and_of_nothing(self, backend: Backend) -> None:
        backend.write_new("runs/a/empty", b"")
        assert backend.read_many(["runs/a/empty", "runs/a/absent", "nowhere/x"]) == [
            b"",
            None,
            None,
        ]

    @pytest.mark.parametrize("prefix", ["nothing", "nothing/deeper/", "metrics/run_id=ab"])
    def test_list_of_absent_folder_is_empty(self, backend: Backend, prefix: str) -> None:
        assert backend.list(prefix) == []
        backend.write_new("metrics/run_id=abc/part-1.parquet", b"x")
        assert backend.list(prefix) == []

    def test_list_of_empty_store_is_empty(self, backend: Backend) -> None:
        assert backend.list() == []

    def test_missing_key(self, backend: Backend) -> None:
        backend.write_new("runs/a/run.json", b"x")
        assert not backend.exists("runs/a/other.json")
        with pytest.raises(FileNotFoundError):
            backend.read_bytes("runs/a/other.json")
        with pytest.raises(FileNotFoundError):
            backend.delete("runs/a/other.json")
        with pytest.raises(FileNotFoundError):
            backend.read_bytes("nowhere/at/all")

    def test_exists_is_for_objects_not_folders(self, backend: Backend) -> None:
        backend.write_new("runs/a/run.json", b"x")
        assert backend.exists("runs/a/run.json")
        assert not backend.exists("runs/a")
        assert not backend.exists("runs")

    def test_delete(self, backend: Backend) -> None:
        backend.write_new("runs/a/run.json", b"x")
        backend.write_new("runs/b/run.json", b"y")
        backend.delete("runs/a/run.json")
        assert not backend.exists("runs/a/run.json")
        assert backend.list() == ["runs/b/run.json"]
        backend.write_new("runs/a/run.json", b"again")
        assert backend.read_bytes("runs/a/run.json") == b"again"

    @pytest.mark.parametrize("key", UNSAFE_KEYS)
    @pytest.mark.parametrize(
        "call",
        [
            pytest.param(lambda b, k: b.read_bytes(k), id="read_bytes"),
            pytest.param(lambda b, k: b.write_new(k, b"x"), id="write_new"),
            pytest.param(lambda b, k: b.replace(k, b"x"), id="replace"),
            pytest.param(lambda b, k: b.exists(k), id="exists"),
            pytest.param(lambda b, k: b.delete(k), id="delete"),
            pytest.param(lambda b, k: b.list(k) if k else b.list("/"), id="list"),
            pytest.param(
                lambda b, k: b.list_objects(k) if k else b.list_objects("/"), id="list_objects"
            ),
            pytest.param(lambda b, k: b.read_many(["runs/a/ok.json", k]), id="read_many"),
        ],
    )
    def test_unsafe_key_is_refused(
        self, backend: Backend, key: str, call: Callable[[Backend, str], Any]
    ) -> None:
        with pytest.raises(UnsafeNameError, match="key"):
            call(backend, key)
        assert backend.list() == []

    def test_parquet_parts_read_as_hive_dataset(self, backend: Backend) -> None:
        for run_id, values in {"abc": [1.0, 2.0], "xyz": [3.0]}.items():
            buffer = io.BytesIO()
            table = pa.table({"step": list(range(len(values))), "value": values})
            pq.write_table(table, buffer)
            backend.write_new(f"metrics/run_id={run_id}/part-0-1.parquet", buffer.getvalue())
        fs, root = backend.arrow_filesystem()
        dataset = pads.dataset(
            root + "/metrics", filesystem=fs, format="parquet", partitioning="hive"
        )
        got = dataset.to_table().sort_by([("run_id", "ascending"), ("step", "ascending")])
        assert got.column("run_id").to_pylist() == ["abc", "abc", "xyz"]
        assert got.column("value").to_pylist() == [1.0, 2.0, 3.0]
