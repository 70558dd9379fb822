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

With the C accelerator (:mod:`pacha_sdk.storage._pointbuf`, built at
install where a compiler is found), :attr:`MetricBuffer.rows` is a
``PointBuffer`` instead: the same ``extend``/``len`` face (``len`` counts
fields, four per point), the points kept as columns (int32 name codes,
float64 values, int64 steps and timestamps) and one C call per append
under the GIL, so the guarantees above hold as they are. Values that must
stay objects until the writer (accelerator tensors) are kept beside the
columns. :meth:`MetricBuffer.take` then hands the writer a ``PointBuffer``
batch (a copy; the points leave ``rows`` only once the batch is in flight)
whose columns become Arrow arrays without per-point Python work. The C
extension also holds ``FastLog``, the run's ``log_metric`` for the common
case (:meth:`pacha_sdk.tracking.run.Run._bind_fast_log_metric`).
``PACHA_SDK_PURE_PYTHON=1`` forces the flat list; :data:`ACCELERATED`
says which is in use.

A point is always visible to :meth:`MetricBuffer.latest` wherever it is: in
``rows``, in a batch the writer holds, or merged into the flushed latest
values. No lock is needed for that: only the writer thread moves points,
always copying a point to the next place before removing it from the last,
and readers snapshot the places in the same order (each snapshot is one
atomic C-level copy). A lock here could deadlock a SIGTERM handler that
interrupts a reader in the main thread and then waits for the writer.
"""

from __future__ import annotations

import os
import threading
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from pacha_sdk.storage.parts import Latest, Rows

__all__ = ["ACCELERATED", "FIELDS", "PURE_PYTHON_ENV", "MetricBuffer", "merge_latest", "native"]

FIELDS = 4
"""Slots per point in the flat list: name, value, step, time_ns."""

PURE_PYTHON_ENV = "PACHA_SDK_PURE_PYTHON"
"""Set to ``1`` to use the pure-Python buffer and hot path even where the C one is built."""


def _load_native() -> ModuleType | None:
    if os.environ.get(PURE_PYTHON_ENV, "").strip() not in ("", "0"):
        return None
    try:
        from pacha_sdk.storage import _pointbuf
    except ImportError:  # installed without a compiler: the pure-Python path
        return None
    return _pointbuf


native = _load_native()
"""The C buffer and hot path module, or ``None`` on the pure-Python path."""

ACCELERATED = native is not None
"""Whether runs of this process buffer points in C (``pacha_sdk.storage._pointbuf``)."""


def new_rows() -> Rows:
    """An empty buffer of points: a C ``PointBuffer``, or the flat list (pure Python)."""
    if native is None:
        return []
    rows: Rows = native.PointBuffer()
    return rows


def merge_latest(into: Latest, newer: Latest) -> None:
    """Merge *newer* latest points into *into*: higher step wins, ties go to *newer*."""
    for name, (step, value) in newer.items():
        current = into.get(name)
        if current is None or step >= current[0]:
            into[name] = (step, value)


def _latest_of_rows(rows: Rows, name: str) -> tuple[int, float] | None:
    if not isinstance(rows, list):  # a PointBuffer
        found = rows.latest(name)
        if found is not NotImplemented:
            return found
        rows = rows.to_rows()  # it holds objects (tensors): read those as the list holds them
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
        self.rows: Rows = new_rows()
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
        rows = self.rows
        if isinstance(rows, list):
            size = len(rows)
            end = size - size % FIELDS
            if limit is not None:
                end = min(end, limit * FIELDS)
            taken: Rows = rows[:end]
        else:
            taken = rows.take(limit)  # a copy: the points stay in rows until discarded
        if not taken:
            return taken
        batch = taken if self._prepare is None else self._prepare(taken)
        if batch:
            self._in_flight = [*self._in_flight, batch]
        if isinstance(rows, list):
            del rows[: len(taken)]
        else:
            rows.discard(len(taken) // FIELDS)
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
        child = MetricBuffer(prepare=self._prepare)  # its tensors are read as the parent's are
        if type(child.rows) is not type(self.rows):  # the parent's kind, whatever the env says
            child.rows = [] if isinstance(self.rows, list) else type(self.rows)()
        child._in_flight = [*self._in_flight, self.rows]  # nothing in the child extends it
        child._flushed_latest = dict(self._flushed_latest)
        return child

    def latest(self, name: str) -> tuple[int, float] | None:
        """The ``(step, value)`` of *name*'s highest step (ties: logged last), or ``None``."""
        rows = self.rows
        if isinstance(rows, list):
            size = len(rows)
            buffered = _latest_of_rows(rows[: size - size % FIELDS], name)
        else:
            buffered = _latest_of_rows(rows, name)  # one C call: a snapshot
        in_flight = self._in_flight
        best = self._flushed_latest.get(name)
        for candidate in [*(_latest_of_rows(batch, name) for batch in in_flight), buffered]:
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
