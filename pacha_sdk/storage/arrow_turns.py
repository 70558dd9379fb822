"""Turns at Arrow's memory: the live writer's encode and a merge never peak together.

A live run's writer encodes a part (about 200 B a point of Arrow memory
while it does) while its compaction thread merges older parts beside it
(the sort and Parquet write of one chunk: about as much again). Left to
themselves their peaks add up, and so do the allocator's leftovers of
each (measured flat out over 50M points at defaults: 96 MiB above the
baseline with compaction, 54 MiB without). :class:`ArrowTurns` makes them
take turns: one holder at a time, and the writer first, so that a merge
waits for a pending encode, and an encode waits for at most one merge
chunk (tens of milliseconds), never for a store call or a whole merge.
Whoever holds a turn hands the memory it freed back to the OS before it
lets go, so the next holder starts from what the other left.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["ArrowTurns"]


class ArrowTurns:
    """One turn at a time between a writer and its merges; a waiting writer goes first."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._held = False
        self._writers_waiting = 0
        self.merge_waits = 0
        """How often a merge chunk waited for the writer (for tests and benchmarks)."""

    @contextlib.contextmanager
    def writer(self) -> Iterator[None]:
        """Hold the turn for one encode: waits only for the merge chunk under way."""
        with self._changed:
            self._writers_waiting += 1
            try:
                self._changed.wait_for(lambda: not self._held)
            finally:
                self._writers_waiting -= 1
            self._held = True
        try:
            yield
        finally:
            self._let_go()

    @contextlib.contextmanager
    def merge(self) -> Iterator[None]:
        """Hold the turn for one merge chunk, once no encode holds or waits for it."""
        with self._changed:
            if self._held or self._writers_waiting:
                self.merge_waits += 1
            self._changed.wait_for(lambda: not (self._held or self._writers_waiting))
            self._held = True
        try:
            yield
        finally:
            self._let_go()

    def _let_go(self) -> None:
        with self._changed:
            self._held = False
            self._changed.notify_all()
