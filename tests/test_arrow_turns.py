"""A merge takes turns with the writer's encode, and merges the same points as before.

:class:`ArrowTurns` lets one holder at a time in, a waiting writer first;
:func:`merge_parts` decodes, sorts and writes each chunk within one turn and
never holds a turn across a store call.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pacha_sdk.backends import get_backend
from pacha_sdk.models import RunId
from pacha_sdk.storage import merged_file
from pacha_sdk.storage.arrow_turns import ArrowTurns
from pacha_sdk.storage.compaction import Part, merge_parts
from pacha_sdk.storage.encoder import encode
from pacha_sdk.storage.layout import part_key, part_range

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    import pytest

_Result = TypeVar("_Result")
WRITER = "00000000000000aa"


def test_a_waiting_writer_goes_before_a_waiting_merge() -> None:
    turns = ArrowTurns()
    order: list[str] = []
    merge_waiting = threading.Event()

    def merge() -> None:
        merge_waiting.set()
        with turns.merge():
            order.append("merge")

    def writer() -> None:
        with turns.writer():
            order.append("writer")

    with turns.writer():  # the writer's encode under way
        merging = threading.Thread(target=merge)
        merging.start()
        merge_waiting.wait()
        writing = threading.Thread(target=writer)
        writing.start()
        while not turns._writers_waiting:  # the second encode is queued
            threading.Event().wait(0.001)
        order.append("first encode done")
    merging.join()
    writing.join()
    assert order == ["first encode done", "writer", "merge"]
    assert turns.merge_waits == 1


def test_a_merge_holding_the_turn_keeps_the_writer_out_until_it_lets_go() -> None:
    turns = ArrowTurns()
    order: list[str] = []
    with turns.merge():
        writing = threading.Thread(target=lambda: _hold(turns.writer, order, "writer"))
        writing.start()
        while not turns._writers_waiting:
            threading.Event().wait(0.001)
        order.append("chunk written")
    writing.join()
    assert order == ["chunk written", "writer"]


def test_an_error_inside_a_turn_lets_go_of_it() -> None:
    turns = ArrowTurns()
    with contextlib.suppress(RuntimeError), turns.merge():
        raise RuntimeError("a chunk could not be written")
    with turns.writer():  # would wait forever if the turn were still held
        pass


def _hold(
    turn: Callable[[], contextlib.AbstractContextManager[None]], log: list[str], who: str
) -> None:
    with turn():
        log.append(who)


class _RecordingTurn:
    """A turn that counts its holds and says whether it is held."""

    def __init__(self) -> None:
        self.held = False
        self.holds = 0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        assert not self.held
        self.held, self.holds = True, self.holds + 1
        try:
            yield
        finally:
            self.held = False


def _store_parts(root: str, run_id: RunId, batches: list[list[tuple[str, int]]]) -> list[Part]:
    """Each batch of ``(name, step)`` as one stored part; values number the points in order."""
    backend = get_backend(root)
    parts, index = [], 0
    for seq, batch in enumerate(batches):
        rows: list[Any] = []
        for name, step in batch:
            rows.extend((name, float(index), step, 1_700_000_000_000_000_000 + index * 1000))
            index += 1
        data, _ = encode(str(run_id), 0, rows)
        key = part_key(run_id, WRITER, seq)
        backend.write_new(key, data)
        found = part_range(key)
        assert found is not None
        parts.append(Part(key, found, len(data)))
    return parts


_POINT = st.tuples(st.sampled_from(["loss", "acc", "lr", "grad/norm"]), st.integers(0, 30))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(st.lists(_POINT, min_size=1, max_size=40), min_size=2, max_size=6),
    chunk_rows=st.sampled_from([1, 16, 64, merged_file.CHUNK_ROWS]),
    as_files=st.booleans(),
)
def test_a_merge_taking_turns_keeps_every_point_clustered_with_ties_in_logging_order(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    batches: list[list[tuple[str, int]]],
    chunk_rows: int,
    as_files: bool,
) -> None:
    """Chunks of any size, inputs read whole or as files a row group at a time."""
    monkeypatch.setattr(merged_file, "CHUNK_ROWS", chunk_rows)
    if as_files:
        monkeypatch.setattr(merged_file, "_WHOLE_READ_BYTES", 0)
    root = str(tmp_path / uuid.uuid4().hex)
    run_id = RunId(str(uuid.uuid4()))
    parts = _store_parts(root, run_id, batches)
    backend = get_backend(root)
    turn = _RecordingTurn()

    def call(what: str, function: Callable[[], _Result], /) -> _Result:
        assert not turn.held, f"{what} while holding the turn"
        return function()

    merged = merge_parts(backend, run_id, parts, call=call, turn=turn)
    assert merged is not None
    assert turn.holds >= 1
    assert not turn.held
    file = pq.ParquetFile(backend.arrow_filesystem()[1] + "/" + merged.key)
    logged = [
        (name, step, float(i)) for i, (name, step) in enumerate(p for b in batches for p in b)
    ]
    stored: list[tuple[str, int, float]] = []
    for group in range(file.metadata.num_row_groups):
        table = file.read_row_group(group, columns=["name", "step", "value"])
        points = list(zip(*(table.column(c).to_pylist() for c in ["name", "step", "value"])))
        # clustered by name, then step; equal steps of a name in logging order (value)
        assert points == sorted(points)
        stored += points
    assert sorted(stored) == sorted(logged)
    assert [key for key in backend.list("") if key.endswith(".parquet")] == [merged.key]
