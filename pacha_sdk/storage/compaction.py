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

The merged file is written a chunk at a time
(:mod:`pacha_sdk.storage.merged_file`: at most :data:`CHUNK_ROWS` points
decoded at once, sorted by name and step, within the live writer's turn)
into a spooled temporary file, so memory stays bounded whatever the run's
size. No part grows past :data:`MAX_PART_BYTES`: a run larger
than that keeps one part per 256 MB.

Every store call goes through a *call* (:class:`StoreCall`): the live run's
writer passes its :class:`~pacha_sdk.storage.deadlines.StoreCalls`, so a
hung store costs one deadline; ``pacha compact`` calls directly.
"""

from __future__ import annotations

import contextlib
import itertools
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from pacha_sdk.storage.coverage import covered_keys, overlapping
from pacha_sdk.storage.encoder import release_arrow_memory
from pacha_sdk.storage.layout import PartRange, merged_part_key, part_range
from pacha_sdk.storage.merged_file import CHUNK_ROWS, Turn, write_merged

if TYPE_CHECKING:
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
_SPILL_BYTES = 4 * 2**20
"""The merged file stays in memory up to this size, then moves to a temporary file."""

_Result = TypeVar("_Result")


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
            write_merged(backend, parts, sink, call, turn)
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
