"""A live run's writer merges its own part files as it goes, and at the run's end.

Tiered, like a log-structured merge tree: every part the writer stores is
one of level 0; whenever :data:`~pacha_sdk.storage.compaction.FAN_IN` (8)
contiguous parts of one level are stored, they become one part of the next
level (:func:`~pacha_sdk.storage.compaction.merge_parts`). After ``n``
flushes a writer holds at most 7 parts per level, about ``7 * log8(n)``: a
24 h run at the default 5 s interval (17,280 flushes: 4 * 8**4 + ...)
holds at most 32, plus a merge's inputs while it runs, and each point is
rewritten once per level (five times in those 24 h). Fan-in 16 would
rewrite each point once less but hold up to 49 parts, more than 50 while
merges lag behind a fast run (measured: 58 at flushes 9 ms apart).

The merges run in a thread of their own (``pacha-compact-<run>``), handed
each stored part by :meth:`OwnCompaction.stored`, which never waits. A merge
takes turns with the writer's encode (:attr:`OwnCompaction.turns`): the
writer goes first, and waits at most for the merge chunk under way (tens of
milliseconds), never for a merge's store call, so their memory peaks do
not add up and a merge delays the flush of fresh points by at most one
chunk. Its store calls go through a
:class:`~pacha_sdk.storage.deadlines.StoreCalls` of its own, so a hung store
costs one deadline and never blocks the writer's part writes behind it. A
merge that fails (the store is down) is retried after a backoff; the parts
stay as they are meanwhile, which readers see just as well.

At the run's end (:meth:`OwnCompaction.finish`, called by the writer once
every part is stored) the remaining parts are merged into one (one per
:data:`~pacha_sdk.storage.compaction.MAX_PART_BYTES`), but only within the
time the run's ``close_timeout`` has left: every call is cut at that
deadline, and the final merge is not started if earlier merges' speed says
it cannot end in time. Skipping it loses nothing: ``pacha compact`` does it
later. Parts still in the local spool at the end are never merged here
(this writer only merges what it stored, always a contiguous prefix of its
seqs); ``pacha sync`` uploads them under their own names.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pacha_sdk.exceptions import InvalidPartError
from pacha_sdk.storage.arrow_turns import ArrowTurns
from pacha_sdk.storage.compaction import (
    FAN_IN,
    MAX_PART_BYTES,
    Part,
    delete_parts,
    merge_parts,
    plan_writers,
)
from pacha_sdk.storage.deadlines import StoreCalls
from pacha_sdk.storage.layout import deletion_record_key, part_range
from pacha_sdk.storage.writer import MetricWriter

if TYPE_CHECKING:
    from collections.abc import Callable

    from pacha_sdk.backends import Backend
    from pacha_sdk.models import RunId
    from pacha_sdk.storage.parts import Latest, Rows
    from pacha_sdk.storage.writer import _PendingPart

__all__ = ["CompactingWriter", "OwnCompaction"]

logger = logging.getLogger("pacha_sdk")

CALL_TIMEOUT = 60.0
"""Seconds one store call of a merge may take while the run goes on."""
_RETRY_SECONDS = (1.0, 60.0)
"""Backoff after a failed merge: from the first to the last, doubling."""
_CAPPED = -1
"""The level of a part never merged again (too big, or unreadable)."""

_Result = TypeVar("_Result")


@dataclass
class _Tier:
    level: int
    part: Part


class OwnCompaction:
    """Merges the parts one writer stores, tiered, in a background thread.

    Args:
        backend: the run's store.
        run_id: the run.
        fan_in: parts of one level merged into one of the next.
        max_bytes: no merge makes a part larger (by its inputs' sizes).
    """

    def __init__(
        self,
        backend: Backend,
        run_id: RunId,
        *,
        fan_in: int = FAN_IN,
        max_bytes: int = MAX_PART_BYTES,
    ) -> None:
        if fan_in < 2:
            raise ValueError(f"fan_in must be at least 2, got {fan_in}")
        self._backend = backend
        self._run_id = run_id
        self._fan_in = fan_in
        self._max_bytes = max_bytes
        self._calls = StoreCalls(backend.uri)
        self._tiers: list[_Tier] = []
        self._changed = threading.Condition()
        self._closing = False
        self._deadline = float("inf")
        self._retry_at = 0.0
        self._failures = 0
        self._leftovers: list[str] = []
        self._seconds_per_byte = 0.0
        self._thread: threading.Thread | None = None
        self.turns = ArrowTurns()
        """Shared with the writer's encode, so that a merge chunk and an encode never overlap."""
        self.merges = 0
        """Merged parts written so far."""
        self.max_parts = 0
        """The most parts this writer had in the store at once (for benchmarks)."""

    @property
    def parts(self) -> int:
        """The writer's parts in the store now, as readers count them."""
        with self._changed:
            return len(self._tiers)

    def stored(self, key: str, size: int | None = None) -> None:
        """Note that the writer stored the part *key* (*size* bytes); never waits.

        The writer calls this for each part, in seq order, once the store has it.
        """
        found = part_range(key)
        if found is None:
            return
        with self._changed:
            if self._closing:
                return
            self._tiers.append(_Tier(0, Part(key, found, size)))
            self.max_parts = max(self.max_parts, len(self._tiers))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name=f"pacha-compact-{self._run_id}", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def finish(self, timeout: float) -> bool:
        """Merge what is left into one part, within *timeout* seconds; end the thread.

        Returns whether the writer was left with at most one part (per
        :data:`MAX_PART_BYTES`). Nothing is lost when it is not.
        """
        deadline = time.monotonic() + max(timeout, 0.0)
        self._calls.limit(max(timeout, 0.0))
        with self._changed:
            self._closing = True
            self._deadline = deadline
            self._changed.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(max(deadline - time.monotonic(), 0.0) + 0.1)
        with self._changed:
            return len(self._tiers) <= 1 or not self._final_groups()

    # The thread.

    def _loop(self) -> None:
        """Merge each group of FAN_IN as it fills; once closing, go to the final merge."""
        while True:
            with self._changed:
                group = self._next_group()
                while group is None and not self._closing:
                    wait = self._retry_at - time.monotonic()
                    self._changed.wait(wait if wait > 0 else None)
                    group = self._next_group()
                if self._closing:
                    break
            assert group is not None
            self._merge(group)
        self._final_merge()

    def _next_group(self) -> list[_Tier] | None:
        """The first run of FAN_IN contiguous tiers of one level, unless a retry must wait."""
        if time.monotonic() < self._retry_at:
            return None
        tiers = self._tiers
        start = 0
        for index in range(1, len(tiers) + 1):
            if index == len(tiers) or tiers[index].level != tiers[start].level:
                if tiers[start].level != _CAPPED and index - start >= self._fan_in:
                    return tiers[start : start + self._fan_in]
                start = index
        return None

    def _final_groups(self) -> list[list[Part]]:
        parts = [tier.part for tier in self._tiers]
        capped = frozenset(tier.part.key for tier in self._tiers if tier.level == _CAPPED)
        groups = [g for plan in plan_writers(parts, skip=capped) for g in plan.groups]
        return [group for group in groups if len(group) > 1]

    def _final_merge(self) -> None:
        """At the run's end: every tier into one part, if the time left allows."""
        with self._changed:
            groups = self._final_groups()
        for group in groups:
            size = sum(part.size or 0 for part in group)
            left = self._deadline - time.monotonic()
            if left <= 0 or size * self._seconds_per_byte > left:
                logger.info("pacha: final merge of %s skipped (no time left)", self._run_id)
                return
            with self._changed:
                tiers = [tier for tier in self._tiers if tier.part in group]
            self._merge(tiers)

    def _merge(self, tiers: list[_Tier]) -> None:
        """Merge *tiers* into one part of the next level; on failure leave them as they are."""
        parts = [tier.part for tier in tiers]
        size = sum(part.size or 0 for part in parts)
        if size > self._max_bytes:
            with self._changed:
                for tier in tiers:
                    tier.level = _CAPPED
            return
        began = time.monotonic()
        try:
            self._leftovers = delete_parts(self._backend, self._leftovers, call=self._call)
            merged = merge_parts(
                self._backend,
                self._run_id,
                parts,
                call=self._call,
                still_wanted=self._not_deleted,
                turn=self.turns.merge,
            )
        except InvalidPartError as bad:
            logger.warning("pacha: not merging %s: %s", bad.location, bad.problem)
            with self._changed:
                for tier in tiers:
                    if bad.location.endswith(tier.part.key):
                        tier.level = _CAPPED
            return
        except Exception as error:  # the store failed or vanished: retry later
            self._failed(error)
            return
        if merged is None:  # the run went to the trash: leave its parts alone
            with self._changed:
                self._closing, self._tiers = True, []
            return
        elapsed = time.monotonic() - began
        self._seconds_per_byte = max(self._seconds_per_byte, elapsed / max(merged.size, 1))
        self._leftovers += merged.left
        level = max(tier.level for tier in tiers) + 1
        merged_tier = _Tier(level, Part(merged.key, merged.range, merged.size))
        with self._changed:
            start = self._tiers.index(tiers[0])
            self._tiers[start : start + len(tiers)] = [merged_tier]
            self._failures = 0
            self.merges += 1

    def _failed(self, error: BaseException) -> None:
        first, cap = _RETRY_SECONDS
        with self._changed:
            self._failures += 1
            delay = min(cap, first * 2.0 ** (self._failures - 1))
            self._retry_at = time.monotonic() + delay
        if self._failures == 1:
            logger.info("pacha: merging parts of %s failed (%s); retrying", self._run_id, error)

    def _not_deleted(self) -> bool:
        key = deletion_record_key(self._run_id)
        return not self._call(f"read {key}", lambda: self._backend.exists(key))

    def _call(self, what: str, function: Callable[[], _Result], /) -> _Result:
        timeout = min(CALL_TIMEOUT, self._deadline - time.monotonic())
        return self._calls.call(what, function, timeout=timeout)


class CompactingWriter(MetricWriter):
    """A :class:`~pacha_sdk.storage.writer.MetricWriter` whose parts :class:`OwnCompaction` merges.

    Three hooks, and the writer's loop is left as it is: each encode holds
    the :class:`~pacha_sdk.storage.arrow_turns.ArrowTurns` it shares with
    the merges (so their memory peaks never add up); after each part is
    stored (:meth:`_store` returned: the store has it), the part goes to
    :meth:`OwnCompaction.stored`, which never waits; when the loop ends,
    the final merge gets the time ``stop`` has left if every point is
    stored, and none otherwise (the parts in the spool are not this
    writer's to merge).
    """

    def __init__(self, *, compaction: OwnCompaction, **writer: Any) -> None:
        super().__init__(**writer)
        self.compaction = compaction
        """What merges this writer's parts."""

    def _encode(self, batch: Rows) -> tuple[bytes, Latest] | None:
        with self.compaction.turns.writer():  # a merge chunk never peaks beside it
            return super()._encode(batch)

    def _store(self, part: _PendingPart) -> None:
        super()._store(part)
        self.compaction.stored(part.key, None if part.data is None else len(part.data))

    def _loop(self, first_flush: float) -> None:
        super()._loop(first_flush)
        everything_stored = not self._pending and not len(self._buffer)
        left = self._give_up_at - self._clock.monotonic() if everything_stored else 0.0
        try:
            self.compaction.finish(left)
        except Exception as error:  # the parts stay as they are: nothing is lost
            logger.warning("pacha: the final merge of %s failed: %s", self._run_id, error)
