"""The in-memory metric buffer between the training loop and the writer.

The hot path extends one flat list, :attr:`MetricBuffer.rows`, with the four
fields of a point: ``name, value, step, time_ns``. ``list.extend`` with a
tuple is one C call under the GIL, so the four fields of a point always
land together and any number of threads can log into one run without a
lock. A flat list of numbers also keeps the garbage collector out of the
hot path: floats and ints are not tracked, while a tuple per point would
be (and a million surviving tuples make every collection slow).

The writer takes a prefix of the list (:meth:`MetricBuffer.take`); extends
only ever go to the end, so nothing logged meanwhile is lost. A ``prepare``
hook, if given, turns the taken rows into what is written (the run reads
accelerator tensors there, in the writer thread, rather than on the loop).

A point is always visible to :meth:`MetricBuffer.latest` wherever it is: in
``rows``, in a batch the writer holds, or merged into the flushed latest
values. No lock is needed for that: only the writer thread moves points,
always copying a point to the next place before removing it from the last,
and readers snapshot the places in the same order (each snapshot is one
atomic C-level copy). A lock here could deadlock a SIGTERM handler that
interrupts a reader in the main thread and then waits for the writer.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from pacha_sdk.storage.parts import Latest, Rows

__all__ = ["FIELDS", "MetricBuffer", "merge_latest"]

FIELDS = 4
"""Slots per point in the flat list: name, value, step, time_ns."""


def merge_latest(into: Latest, newer: Latest) -> None:
    """Merge *newer* latest points into *into*: higher step wins, ties go to *newer*."""
    for name, (step, value) in newer.items():
        current = into.get(name)
        if current is None or step >= current[0]:
            into[name] = (step, value)


def _latest_of_rows(rows: Rows, name: str) -> tuple[int, float] | None:
    best: tuple[int, float] | None = None
    for index in range(0, len(rows) - FIELDS + 1, FIELDS):
        if rows[index] == name:
            step = rows[index + 2]
            if best is None or step >= best[0]:
                best = (step, rows[index + 1])
    return best


class MetricBuffer:
    """Points not yet written, batches being written, and the latest point per name."""

    def __init__(self, prepare: Callable[[Rows], Rows] | None = None) -> None:
        self.rows: Rows = []
        self._prepare = prepare
        self._in_flight: list[Rows] = []
        self._flushed_latest: Latest = {}
        self.parts_settled = 0
        """Part files 0 .. ``parts_settled - 1`` of the writer are merged into the latest points."""
        self.writer_wake = threading.Event()
        """What the writer waits on between polls: the run sets it when logging must wait."""

    def batches(self, limit: int) -> Iterator[Rows]:
        """The points buffered now, taken in turn in batches of at most *limit* points.

        Points logged meanwhile wait for the next call, so a loop logging
        faster than the writer encodes cannot keep it from storing; a batch
        may come out empty (the ``prepare`` hook left out all its points).
        """
        for _ in range(-(-len(self) // limit)):
            yield self.take(limit)

    def take(self, limit: int | None = None) -> Rows:
        """Remove and return the oldest points, at most *limit* (may be empty). Writer thread only.

        With a ``prepare`` hook, returns what it makes of the points (it must
        not raise); the points stay visible to :meth:`latest` throughout.
        """
        size = len(self.rows)
        end = size - size % FIELDS
        if limit is not None:
            end = min(end, limit * FIELDS)
        taken = self.rows[:end]
        if not taken:
            return taken
        batch = taken if self._prepare is None else self._prepare(taken)
        if batch:
            self._in_flight = [*self._in_flight, batch]
        del self.rows[: len(taken)]
        return batch

    def settle(self, batch: Rows, latest: Latest, *, part: int | None = None) -> None:
        """Merge *batch*'s latest points (*latest*) and drop the batch. Writer thread only.

        *part* is the sequence number of the part file the batch went into.
        The latest points are merged before :attr:`parts_settled` moves, so
        a reader that reads the count first never counts a part whose points
        it does not see.
        """
        merged = dict(self._flushed_latest)
        merge_latest(merged, latest)
        self._flushed_latest = merged
        self._in_flight = [b for b in self._in_flight if b is not batch]
        if part is not None:
            self.parts_settled = max(self.parts_settled, part + 1)

    def for_fork_child(self) -> MetricBuffer:
        """A buffer for a forked child process: none of these points, the same latest values.

        The parent's writer stores every point logged before the fork, so
        the child's writer must not store them again; they stay visible to
        :meth:`latest` in the child (as a batch never written), and cost no
        copy: the child shares the parent's memory until either writes it.
        """
        child = MetricBuffer()
        child._in_flight = [*self._in_flight, self.rows]  # nothing in the child extends it
        child._flushed_latest = dict(self._flushed_latest)
        return child

    def latest(self, name: str) -> tuple[int, float] | None:
        """The ``(step, value)`` of *name*'s highest step (ties: logged last), or ``None``."""
        size = len(self.rows)
        rows = self.rows[: size - size % FIELDS]
        in_flight = self._in_flight
        best = self._flushed_latest.get(name)
        for batch in [*in_flight, rows]:
            candidate = _latest_of_rows(batch, name)
            if candidate is not None and (best is None or candidate[0] >= best[0]):
                best = candidate
        return best

    @property
    def unsettled_points(self) -> int:
        """Points the writer has taken and not settled yet (being encoded or written)."""
        return sum(len(batch) for batch in self._in_flight) // FIELDS

    def flushed_latest(self) -> Latest:
        """A copy of the latest points of everything settled so far."""
        return dict(self._flushed_latest)

    def __len__(self) -> int:
        """Points waiting in :attr:`rows`."""
        return len(self.rows) // FIELDS
