"""Merging part files of one writer into one part, and planning which to merge.

A merged part is named ``part-<writer>-<first:06d>-<last:06d>.parquet``
(:func:`~pacha_sdk.storage.layout.merged_part_key`) and holds exactly the
points of every part of that writer whose seq lies in ``first..last``. The
rules that keep this true:

* only parts that are all in the store are merged, and only a contiguous
  run of them: each input begins where the one before ended, plus one. A seq
  missing from the listing (a part still in a local spool, not yet synced)
  is a gap, never merged across, or the part that arrives later would be
  taken for covered. A missing tail is harmless: a range only names what
  it holds;
* the merged part is created (create-only, like every part), then the
  inputs are deleted. A crash in between leaves both; every SDK reader
  drops the covered ones (:mod:`pacha_sdk.storage.coverage`), and the next
  compaction or ``pacha gc`` deletes them;
* a part that cannot be read is never merged nor deleted: the merge stops
  with :class:`~pacha_sdk.exceptions.InvalidPartError` naming it, and the
  planner treats it as a gap from then on.

Inputs are read one at a time and written out in chunks of
:data:`CHUNK_ROWS` points, each sorted by name and step (stable, so ties
keep logging order) into row groups that name statistics prune; the merged
file is built in a spooled temporary file, so memory stays bounded whatever
the run's size. No part grows past :data:`MAX_PART_BYTES`: a run larger
than that keeps one part per 256 MB.

Every store call goes through a *call* (:class:`StoreCall`): the live run's
writer passes its :class:`~pacha_sdk.storage.deadlines.StoreCalls`, so a
hung store costs one deadline; ``pacha compact`` calls directly.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from pacha_sdk.exceptions import InvalidPartError
from pacha_sdk.storage.coverage import covered_keys, overlapping
from pacha_sdk.storage.encoder import release_arrow_memory
from pacha_sdk.storage.layout import PartRange, merged_part_key, part_range
from pacha_sdk.storage.records import location

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pacha_sdk.backends import Backend, StoredObject
    from pacha_sdk.models import RunId

__all__ = [
    "CHUNK_ROWS",
    "FAN_IN",
    "MAX_PART_BYTES",
    "Merged",
    "Part",
    "StoreCall",
    "Turn",
    "WriterParts",
    "direct_call",
    "merge_parts",
    "plan_writers",
]

FAN_IN = 8
"""Parts of one level that the live writer merges into one part of the next level."""
MAX_PART_BYTES = 256 * 2**20
"""No merge makes a part larger than this (by its inputs' sizes): bigger runs keep several."""
CHUNK_ROWS = 128 * 1024
"""Points held in memory at once while merging (sorted together into row groups)."""
_WHOLE_READ_BYTES = 4 * 2**20
"""Inputs up to this size are read with one request; larger ones by row group."""
_BATCH_PARTS = 256
_BATCH_BYTES = 8 * 2**20
"""Small inputs fetched in one batch: at most this many, or this many bytes."""
_SPILL_BYTES = 4 * 2**20
"""The merged file stays in memory up to this size, then moves to a temporary file."""

_Result = TypeVar("_Result")

Turn = Callable[[], contextlib.AbstractContextManager[object]]
"""What a merge holds while it sorts and writes one chunk (see :func:`merge_parts`)."""


class StoreCall(Protocol):
    """Runs one store call (*what* says what it does, for errors) and returns its result."""

    def __call__(self, what: str, function: Callable[[], _Result], /) -> _Result:
        """Return ``function()``, or raise what it raised (or a timeout)."""
        ...


def direct_call(what: str, function: Callable[[], _Result], /) -> _Result:
    """A :class:`StoreCall` without a deadline (``pacha compact`` in the foreground)."""
    del what
    return function()


@dataclass(frozen=True)
class Part:
    """One stored part of a writer: its key, its seq range and its size if known."""

    key: str
    range: PartRange
    size: int | None = None

    @classmethod
    def listed(cls, item: StoredObject) -> Part | None:
        """The part a listing shows, or ``None`` if the key is not a part file's."""
        found = part_range(item.key) if item.key.endswith(".parquet") else None
        return None if found is None else cls(item.key, found, item.size)


@dataclass
class Merged:
    """What one merge did."""

    key: str
    """The merged part's key."""
    size: int
    """Its size in bytes."""
    inputs: list[Part]
    """The parts it holds (deleted, but for :attr:`left`)."""
    left: list[str] = field(default_factory=list)
    """Inputs that could not be deleted: duplicates readers drop, deleted by the next run."""

    @property
    def range(self) -> PartRange:
        """The seqs the merged part holds."""
        first, last = self.inputs[0].range, self.inputs[-1].range
        return PartRange(first.writer, first.first, last.last)


@dataclass
class WriterParts:
    """One writer's listed parts as :func:`plan_writers` sorted them."""

    writer: str
    groups: list[list[Part]] = field(default_factory=list)
    """Runs of contiguous parts to merge, each into one part."""
    covered: list[Part] = field(default_factory=list)
    """Parts another listed part covers: left by a merge that was cut short; to delete."""
    overlaps: list[tuple[str, str]] = field(default_factory=list)
    """Pairs of parts whose ranges overlap without nesting: this writer is left alone."""


def plan_writers(
    listed: Sequence[Part],
    *,
    skip: frozenset[str] = frozenset(),
    max_bytes: int = MAX_PART_BYTES,
) -> list[WriterParts]:
    """How to leave each writer of one run's folder with as few parts as possible.

    Uncovered parts are sorted by seq and cut into runs at every gap, at
    every key in *skip* (parts found unreadable) and wherever a group would
    pass *max_bytes*; runs of two parts or more become groups. A writer
    whose ranges overlap without nesting gets no groups (see
    :mod:`pacha_sdk.storage.coverage`). Writers come in id order.
    """
    by_writer: dict[str, list[Part]] = {}
    for part in listed:
        by_writer.setdefault(part.range.writer, []).append(part)
    plans = []
    for writer in sorted(by_writer):
        parts = by_writer[writer]
        keys = [part.key for part in parts]
        covered = covered_keys(keys)
        plan = WriterParts(writer, covered=[part for part in parts if part.key in covered])
        plan.overlaps = overlapping(keys)
        if not plan.overlaps and "-" not in writer:  # a dashed (old) id cannot name a range
            kept = sorted((p for p in parts if p.key not in covered), key=lambda p: p.range.first)
            plan.groups = _contiguous_groups(kept, skip, max_bytes)
        plans.append(plan)
    return plans


def _contiguous_groups(parts: list[Part], skip: frozenset[str], max_bytes: int) -> list[list[Part]]:
    groups: list[list[Part]] = []
    current: list[Part] = []
    total = 0
    for part in parts:
        size = part.size or 0
        follows = bool(current) and part.range.first == current[-1].range.last + 1
        if part.key in skip or not follows or total + size > max_bytes:
            if len(current) > 1:
                groups.append(current)
            current, total = [], 0
        if part.key in skip:
            continue
        current.append(part)
        total += size
    if len(current) > 1:
        groups.append(current)
    return groups


def merge_parts(
    backend: Backend,
    run_id: RunId,
    parts: Sequence[Part],
    *,
    call: StoreCall = direct_call,
    still_wanted: Callable[[], bool] = lambda: True,
    threads: int = 1,
    turn: Turn = contextlib.nullcontext,
) -> Merged | None:
    """Merge *parts* (one writer, contiguous seqs, oldest first) into one part; delete them.

    Small inputs are fetched in batches (:meth:`Backend.read_many`: many
    requests in flight on an object store); with *threads* above 1 the
    inputs are deleted that many at a time (only with a *call* that allows
    calls side by side). Each chunk is decoded, sorted and written while
    holding ``turn()`` (the live writer passes its
    :meth:`ArrowTurns.merge <pacha_sdk.storage.arrow_turns.ArrowTurns.merge>`),
    never across a store call, and its memory goes back to the OS before
    the turn ends. Returns ``None`` without writing if *still_wanted* says
    no just before the merged part would be created (the run went to the trash meanwhile).
    Raises :class:`InvalidPartError` naming an input that cannot be read
    (nothing written, nothing deleted), :class:`FileNotFoundError` if an
    input is gone (another compaction took it), or the store's error.
    """
    _check_contiguous(parts)
    span = PartRange(parts[0].range.writer, parts[0].range.first, parts[-1].range.last)
    key = merged_part_key(run_id, span.writer, span.first, span.last)
    with tempfile.SpooledTemporaryFile(max_size=_SPILL_BYTES) as sink:
        try:
            _write_merged(backend, parts, sink, call, turn)
        finally:
            release_arrow_memory()
        size = sink.tell()
        sink.seek(0)
        if not still_wanted():
            return None
        # FileExistsError: an earlier attempt landed (its reply lost, or it was cut
        # short before deleting): it holds these very points.
        with contextlib.suppress(FileExistsError):
            call(f"write {key}", lambda: backend.write_new_from(key, sink))
    merged = Merged(key, size, list(parts))
    merged.left = delete_parts(backend, [part.key for part in parts], call=call, threads=threads)
    return merged


def delete_parts(
    backend: Backend, keys: Sequence[str], *, call: StoreCall = direct_call, threads: int = 1
) -> list[str]:
    """Delete *keys* (parts a merged part holds); return those the store would not delete."""

    def delete(doomed: str) -> bool:
        try:
            with contextlib.suppress(FileNotFoundError):
                call(f"delete {doomed}", lambda: backend.delete(doomed))
        except OSError:
            return False
        return True

    if threads > 1 and len(keys) > 1:
        with ThreadPoolExecutor(min(threads, len(keys))) as pool:
            deleted = list(pool.map(delete, keys))
    else:
        deleted = [delete(doomed) for doomed in keys]
    return [doomed for doomed, done in zip(keys, deleted) if not done]


def _check_contiguous(parts: Sequence[Part]) -> None:
    if len(parts) < 2:
        raise ValueError("a merge needs at least two parts")
    for before, after in itertools.pairwise(parts):
        if after.range.writer != before.range.writer or after.range.first != before.range.last + 1:
            raise ValueError(f"{after.key} does not follow {before.key}: not contiguous")


def _write_merged(
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
