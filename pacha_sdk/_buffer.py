"""The in-memory metric buffer between the training loop and the writer.

The hot path appends one ``(name, value, step, time_ns)`` tuple to
:attr:`MetricBuffer.rows`: a single ``list.append`` is atomic, so any number
of threads can log into one run without a lock and without rows tearing.
The writer takes a prefix of the list (:meth:`MetricBuffer.take`); appends
only ever go to the end, so nothing logged meanwhile is lost.

A point is always visible to :meth:`MetricBuffer.latest` wherever it is: in
``rows``, in a batch the writer holds, or merged into the flushed latest
values. No lock is needed for that: only the writer thread moves points,
always copying a point to the next place before removing it from the last,
and readers snapshot the places in the same order (each snapshot is one
atomic C-level copy). A lock here could deadlock a SIGTERM handler that
interrupts a reader in the main thread and then waits for the writer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pacha_sdk._parts import Latest, Row

__all__ = ["MetricBuffer"]


def merge_latest(into: Latest, newer: Latest) -> None:
    """Merge *newer* latest points into *into*: higher step wins, ties go to *newer*."""
    for name, (step, value) in newer.items():
        current = into.get(name)
        if current is None or step >= current[0]:
            into[name] = (step, value)


def _latest_of_rows(rows: list[Row], name: str) -> tuple[int, float] | None:
    best: tuple[int, float] | None = None
    for row_name, value, step, _ in rows:
        if row_name == name and (best is None or step >= best[0]):
            best = (step, value)
    return best


class MetricBuffer:
    """Rows not yet written, batches being written, and the latest point per name."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self._in_flight: list[list[Row]] = []
        self._flushed_latest: Latest = {}

    def take(self) -> list[Row]:
        """Remove and return every row appended so far (may be empty). Writer thread only."""
        batch = self.rows[: len(self.rows)]
        if batch:
            self._in_flight = [*self._in_flight, batch]
            del self.rows[: len(batch)]
        return batch

    def settle(self, batch: list[Row], latest: Latest) -> None:
        """Merge *batch*'s latest points (*latest*) and drop the batch. Writer thread only."""
        merged = dict(self._flushed_latest)
        merge_latest(merged, latest)
        self._flushed_latest = merged
        self._in_flight = [b for b in self._in_flight if b is not batch]

    def latest(self, name: str) -> tuple[int, float] | None:
        """The ``(step, value)`` of *name*'s highest step (ties: logged last), or ``None``."""
        rows = self.rows[:]
        in_flight = self._in_flight
        best = self._flushed_latest.get(name)
        for batch in [*in_flight, rows]:
            candidate = _latest_of_rows(batch, name)
            if candidate is not None and (best is None or candidate[0] >= best[0]):
                best = candidate
        return best

    def flushed_latest(self) -> Latest:
        """A copy of the latest points of everything settled so far."""
        return dict(self._flushed_latest)

    def __len__(self) -> int:
        return len(self.rows)
