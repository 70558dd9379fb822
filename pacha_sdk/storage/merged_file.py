"""One merged part file, written from its inputs a chunk at a time.

What :func:`~pacha_sdk.storage.compaction.merge_parts` writes before it
creates the merged part: the inputs' points, in seq order, read one row
group at a time and written out in chunks of at most :data:`CHUNK_ROWS`
points (a bigger row group is a chunk of its own), each sorted by name and
step (stable, so ties keep logging order) into row groups that name
statistics prune. Each chunk is decoded, sorted and written within one
*turn* (the live writer's :class:`~pacha_sdk.storage.arrow_turns.ArrowTurns`),
and Arrow's freed memory goes back to the OS before the turn is let go, so
a merge's memory peak never adds to the writer's encode. No turn is held
across a store call.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from pacha_sdk.exceptions import InvalidPartError
from pacha_sdk.storage.encoder import release_arrow_memory
from pacha_sdk.storage.records import location

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pacha_sdk.backends import Backend
    from pacha_sdk.storage.compaction import Part, StoreCall

__all__ = ["CHUNK_ROWS", "Turn", "write_merged"]

CHUNK_ROWS = 128 * 1024
"""Points held in memory at once while merging (sorted together into row groups)."""
_WHOLE_READ_BYTES = 4 * 2**20
"""Inputs up to this size are read with one request; larger ones by row group."""
_BATCH_PARTS = 256
_BATCH_BYTES = 8 * 2**20
"""Small inputs fetched in one batch: at most this many, or this many bytes."""

Turn = Callable[[], contextlib.AbstractContextManager[object]]
"""What a merge holds while it decodes, sorts and writes one chunk."""


def write_merged(
    backend: Backend, parts: Sequence[Part], sink: object, call: StoreCall, turn: Turn
) -> None:
    """Write the points of *parts*, in order, as one Parquet file into *sink*.

    Each chunk is decoded, sorted and written within one ``turn()``, so
    nothing decoded is held outside it: a chunk is written before the row
    group that would take it past :data:`CHUNK_ROWS` is decoded (a row group
    bigger than that is a chunk of its own). The turn is let go between
    chunks and before every store call, reads of a big input (a file, read
    a row group at a time) included: a turn never waits for the store.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pacha_sdk.storage.parts import ROW_GROUP_SIZE, WRITE_OPTIONS

    holder = _TurnHolder(turn)
    chunk: list[pa.Table] = []
    rows = 0
    try:
        with pq.ParquetWriter(sink, _merge_schema(), **WRITE_OPTIONS) as writer:
            for part, source in _fetched(backend, parts, call, before_io=holder.let_go):
                in_memory = isinstance(source, pa.BufferReader)
                if not in_memory:
                    holder.let_go()  # opening reads the footer
                for group_rows, read in _row_groups(backend, part, source):
                    if chunk and rows + group_rows > CHUNK_ROWS:
                        holder.hold()
                        _write_sorted(writer, chunk, ROW_GROUP_SIZE)
                        rows = 0
                        holder.let_go()
                    if in_memory:
                        holder.hold()
                    else:
                        holder.let_go()
                    chunk.append(read())
                    rows += group_rows
                    release_arrow_memory()  # the decoder's scratch: mimalloc keeps it a while
            if chunk:
                holder.hold()
                _write_sorted(writer, chunk, ROW_GROUP_SIZE)
    finally:
        holder.let_go()


class _TurnHolder:
    """Holds a :data:`Turn` across steps; letting go hands Arrow's freed memory back first."""

    def __init__(self, turn: Turn) -> None:
        self._turn = turn
        self._held: contextlib.AbstractContextManager[object] | None = None

    def hold(self) -> None:
        if self._held is None:
            held = self._turn()
            held.__enter__()
            self._held = held

    def let_go(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            try:
                release_arrow_memory()
            finally:
                held.__exit__(None, None, None)


def _write_sorted(writer: pq.ParquetWriter, chunk: list[pa.Table], row_group_size: int) -> None:
    """Write the tables of *chunk* (emptied) sorted by name, then step (stable).

    The inputs are let go of before the write (a chunk already in order is
    not copied at all), so the sorted copy and the Parquet encoding never
    sit beside them.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    table = pa.concat_tables(chunk)
    chunk.clear()
    order = pc.sort_indices(table, sort_keys=[("name", "ascending"), ("step", "ascending")])
    count = len(order)
    if count > 1 and not pc.all(pc.greater(order[1:], order[: count - 1])).as_py():
        table = table.take(order)
    del order
    release_arrow_memory()
    writer.write_table(table, row_group_size=row_group_size)


def _fetched(
    backend: Backend,
    parts: Sequence[Part],
    call: StoreCall,
    *,
    before_io: Callable[[], None] = lambda: None,
) -> Iterator[tuple[Part, object]]:
    """Each input with its bytes (small ones, fetched a batch at a time) or a file open on it.

    *before_io* is called before each store call (the merge lets go of its turn).
    """
    import pyarrow as pa

    batch: list[Part] = []
    total = 0
    for index, part in enumerate(parts):
        big = part.size is not None and part.size > _WHOLE_READ_BYTES
        if not big:
            batch.append(part)
            total += part.size or 0
        last = index == len(parts) - 1
        if batch and (big or last or len(batch) >= _BATCH_PARTS or total >= _BATCH_BYTES):
            keys = [each.key for each in batch]
            before_io()
            contents = call(f"read {keys[0]} and on", functools.partial(backend.read_many, keys))
            for each, data in zip(batch, contents):
                if data is None:
                    raise FileNotFoundError(location(backend, each.key))
                yield each, pa.BufferReader(data)
            batch, total = [], 0
        if big:
            filesystem, root = backend.arrow_filesystem()
            opening = functools.partial(filesystem.open_input_file, f"{root}/{part.key}")
            before_io()
            yield part, call(f"open {part.key}", opening)


def _merge_schema() -> pa.Schema:
    """:data:`METRIC_SCHEMA` with ``run_id`` kept as an Arrow dictionary while merging.

    The same Parquet is written; held decoded, the run id (one value per
    part) would be 36 bytes a point, half a merge's working set.
    """
    import pyarrow as pa

    from pacha_sdk.storage.schema import METRIC_SCHEMA

    index = METRIC_SCHEMA.get_field_index("run_id")
    field = METRIC_SCHEMA.field(index)
    return METRIC_SCHEMA.set(index, field.with_type(pa.dictionary(pa.int32(), field.type)))


def _row_groups(
    backend: Backend, part: Part, source: object
) -> Iterator[tuple[int, Callable[[], pa.Table]]]:
    """Each row group of one input: its points, and what decodes it (the metric schema).

    One at a time, so that merging a big part never holds all of it
    decoded, and counted before it is decoded, so that a chunk is written
    before a row group that would not fit in it is read.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pacha_sdk.storage.schema import METRIC_SCHEMA, schema_problem

    where = location(backend, part.key)
    unreadable = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)
    try:
        file = pq.ParquetFile(source, read_dictionary=["run_id"])
        problem = schema_problem(file.schema_arrow)
        metadata = file.metadata
    except unreadable as error:
        raise InvalidPartError(where, str(error)) from None
    if problem is not None:
        raise InvalidPartError(where, problem)
    schema = _merge_schema()

    def read(group: int) -> pa.Table:
        try:
            table = file.read_row_group(group, columns=METRIC_SCHEMA.names, use_threads=False)
            return table.cast(schema)
        except unreadable as error:
            raise InvalidPartError(where, str(error)) from None

    for group in range(metadata.num_row_groups):
        yield metadata.row_group(group).num_rows, functools.partial(read, group)
