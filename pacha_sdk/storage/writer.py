"""The background writer: buffered rows to Parquet part files, with retries.

One small thread per run, shaped like rich's refresh thread: it waits on an
:class:`threading.Event` with a timeout and, every ``flush_interval``
seconds, when the buffer reaches ``flush_rows`` points, on request or when
stopped, it

1. takes every buffered row and encodes it as one Parquet part (in memory),
2. creates each pending part in the store (create-only, so a retry after a
   lost reply finds its own file and moves on),
3. calls the heartbeat (the run rewrites ``run.json``).

The training loop never signals the writer: the writer looks at the
buffer's length every :data:`POLL_SECONDS`, which keeps even that check
off the hot path.

For a remote store each part goes to a local :class:`~pacha_sdk.storage.spool.Spool`
(fsynced) before it is sent, and leaves it once the store has it: a remote
call can hang for seconds before it fails, and a process killed meanwhile
must still lose nothing older than one flush interval. A store error never
reaches the training loop: failed parts stay spooled (and leave memory),
and the writer retries with exponential backoff and jitter, in order,
until they are stored or the run's final wait runs out. What is left then
stays in the spool for :func:`pacha_sdk.storage.sync`.

Every wait, interval and deadline reads the injected
:class:`~pacha_sdk._clock.Clock`, so a test can drive the writer through
minutes of backoff in no time and assert each delay exactly.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pacha_sdk._clock import SYSTEM_CLOCK
from pacha_sdk.exceptions import StoreError
from pacha_sdk.storage.buffer import FIELDS
from pacha_sdk.storage.layout import part_key

if TYPE_CHECKING:
    from pacha_sdk._clock import Clock
    from pacha_sdk.backends import Backend
    from pacha_sdk.models import RunId
    from pacha_sdk.storage.buffer import MetricBuffer
    from pacha_sdk.storage.spool import Spool

__all__ = ["MetricWriter", "RetryPolicy"]

logger = logging.getLogger("pacha_sdk")

POLL_SECONDS = 0.05
"""How often the writer checks whether ``flush_rows`` points are waiting."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff from ``base`` up to ``cap`` seconds, with jitter.

    Each delay is drawn between half and all of ``min(cap, base * 2**attempt)``;
    *jitter* is the source of that draw (a number in ``[0, 1)``), so a test can
    make every delay exact.
    """

    base: float = 0.2
    cap: float = 10.0
    jitter: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number *attempt* (0-based)."""
        return min(self.cap, self.base * 2.0**attempt) * (0.5 + self.jitter() / 2)


@dataclass
class _PendingPart:
    key: str
    rows: int
    """Points in the part (the buffer's flat batch holds FIELDS slots per point)."""
    data: bytes | None
    """The Parquet bytes in memory, or ``None`` once only the spool has them."""
    spooled: bool = False
    """Whether the spool holds a copy (removed once the store has the part)."""


class MetricWriter(threading.Thread):
    """Flushes one run's buffer to its store from a daemon thread."""

    def __init__(
        self,
        *,
        buffer: MetricBuffer,
        backend: Backend,
        run_id: RunId,
        writer_id: str,
        rank: int,
        flush_interval: float,
        flush_rows: int,
        heartbeat: Callable[[], None],
        spool: Spool,
        retry: RetryPolicy | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(name=f"pacha-writer-{run_id}", daemon=True)
        self._buffer = buffer
        self._backend = backend
        self._run_id = run_id
        self._writer_id = writer_id
        self._rank = rank
        self._interval = flush_interval
        self.flush_rows = flush_rows
        self._heartbeat = heartbeat
        self.spool = spool
        self._retry = retry or RetryPolicy(cap=max(flush_interval, 1.0))
        self._clock = clock
        self._pending: deque[_PendingPart] = deque()
        self._seq = 0
        self._wake = threading.Event()
        self._done = threading.Condition()
        self._requested = 0
        self._completed = 0
        self._stopping = False
        self._give_up_at = float("inf")
        self._failures = 0
        self.points_written = 0
        self.last_error: BaseException | None = None

    @property
    def pending_points(self) -> int:
        """Points taken from the buffer but not yet stored (in memory or spooled)."""
        return sum(part.rows for part in list(self._pending))

    @property
    def spooled_points(self) -> int:
        """Points waiting in the local spool for the store to answer."""
        return sum(part.rows for part in list(self._pending) if part.spooled)

    def flush(self, timeout: float | None = None) -> bool:
        """Write everything buffered so far; return whether it all reached the store."""
        with self._done:
            self._requested += 1
            ticket = self._requested
        self._wake.set()
        with self._done:
            return self._done.wait_for(lambda: self._completed >= ticket, timeout)

    def stop(self, timeout: float) -> bool:
        """Flush what is left and end the thread, waiting at most *timeout* seconds.

        Returns whether every point reached the store.
        """
        self._give_up_at = self._clock.monotonic() + timeout
        self._stopping = True
        self._wake.set()
        self.join(timeout + 1.0)
        return not self.is_alive() and not self._pending and not len(self._buffer)

    def run(self) -> None:
        """The thread's loop: flush when due, retry while the store fails, end when stopped."""
        clock = self._clock
        next_flush = clock.monotonic() + self._interval
        next_retry = 0.0
        while True:
            now = clock.monotonic()
            wake_at = min(next_flush, self._give_up_at, next_retry if self._pending else math.inf)
            clock.wait(self._wake, max(0.0, min(wake_at - now, POLL_SECONDS)))
            self._wake.clear()
            with self._done:
                ticket = self._requested
            stopping = self._stopping  # read before taking rows: later rows need another cycle
            now = clock.monotonic()
            flush_due = (
                stopping
                or ticket > self._completed
                or now >= next_flush
                or len(self._buffer) >= self.flush_rows
            )
            if self._pending and now < next_retry:
                if flush_due:  # the store is failing: keep the buffer drained into the spool
                    self._encode_new_rows()
                    self._spill()
                    next_flush = now + self._interval
                if stopping and now >= self._give_up_at:
                    return
                continue
            if not (flush_due or self._pending):
                continue
            stored = self._cycle()
            now = clock.monotonic()
            next_flush = now + self._interval
            if stored:
                with self._done:
                    self._completed = max(self._completed, ticket)
                    self._done.notify_all()
            else:
                next_retry = now + self._backoff()
            if stopping and (stored or now >= self._give_up_at):
                if not stored:
                    self._encode_new_rows()
                    self._spill()
                return

    def _backoff(self) -> float:
        if isinstance(self.last_error, StoreError):  # permanent: no point in trying soon
            return self._retry.cap
        return self._retry.delay(max(self._failures - 1, 0))

    def _cycle(self) -> bool:
        """One flush: encode new rows, store pending parts, beat. Returns success."""
        self._encode_new_rows()
        try:
            while self._pending:
                part = self._pending[0]
                data = part.data if part.data is not None else self.spool.get(part.key)
                # FileExistsError: our own earlier attempt landed but its reply was lost.
                with contextlib.suppress(FileExistsError):
                    self._backend.write_new(part.key, data)
                self._pending.popleft()
                if part.spooled:
                    self.spool.discard(part.key)
                self.points_written += part.rows
            self._heartbeat()
        except Exception as error:
            self._spill()
            self._note_failure(error)
            return False
        if self._failures:
            logger.info("pacha: store %s answers again; writes resumed", self._backend.uri)
        self._failures = 0
        return True

    def _encode_new_rows(self) -> None:
        batch = self._buffer.take()
        if not batch:
            return
        # pyarrow loads here, in the writer thread, keeping `import pacha_sdk` light.
        from pacha_sdk.storage.parts import build_part, latest_points, part_bytes

        part = build_part(self._run_id, self._rank, batch)
        key = part_key(self._run_id, self._writer_id, self._seq)
        self._seq += 1
        pending = _PendingPart(key=key, rows=len(batch) // FIELDS, data=part_bytes(part))
        self._pending.append(pending)
        if self._backend.write_ahead:
            self._spool_part(pending, keep_in_memory=True)
        self._buffer.settle(batch, latest_points(part), part=self._seq - 1)

    def _spill(self) -> None:
        """Move every pending part to the local spool, oldest first, freeing memory."""
        for part in list(self._pending):
            if not self._spool_part(part, keep_in_memory=False):
                return

    def _spool_part(self, part: _PendingPart, *, keep_in_memory: bool) -> bool:
        """Make sure the spool holds *part*; return False if the local disk refused."""
        if not part.spooled:
            assert part.data is not None
            try:
                self.spool.put(part.key, part.data)
            except OSError as error:
                logger.error("pacha: cannot spool to %s: %s", self.spool.path, error)
                return False
            part.spooled = True
        if not keep_in_memory:
            part.data = None
        return True

    def _note_failure(self, error: BaseException) -> None:
        permanent = isinstance(error, StoreError) and not isinstance(self.last_error, StoreError)
        self.last_error = error
        self._failures += 1
        if permanent:
            logger.error(
                "pacha: %s; %d points kept in %s, retried every %.0f s",
                error,
                self.pending_points,
                self.spool.path,
                self._retry.cap,
            )
        elif self._failures == 1:
            logger.warning(
                "pacha: writing to %s failed (%s: %s); %d points kept in %s, retrying",
                self._backend.uri,
                type(error).__name__,
                error,
                self.pending_points,
                self.spool.path,
            )
