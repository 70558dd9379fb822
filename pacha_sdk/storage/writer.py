"""The background writer: buffered rows to Parquet part files, with retries.

One small thread per run, shaped like rich's refresh thread: it waits on an
:class:`threading.Event` with a timeout and, every ``flush_interval``
seconds, when the buffer reaches ``flush_rows`` points, on request or when
stopped, it

1. takes the buffered rows and encodes them as parts of at most ``flush_rows`` points,
2. creates each pending part in the store (create-only, so a retry after a
   lost reply finds its own file and moves on),
3. calls the heartbeat (the run rewrites ``run.json``).

The training loop wakes the writer only from its backpressure's slow path
(``MetricBuffer.writer_wake``); else the writer looks at the buffer's length
every :data:`POLL_SECONDS`, which keeps even that check off the hot path.

For a remote store each part goes to a local :class:`~pacha_sdk.storage.spool.Spool`
(fsynced) before it is sent, and leaves it once the store has it: a remote
call can hang for seconds before it fails, and a process killed meanwhile
must still lose nothing older than one flush interval. A store error never
reaches the training loop: failed parts stay spooled (and leave memory),
and the writer retries with exponential backoff and jitter, in order,
until they are stored or the run's final wait runs out. What is left then
stays in the spool for :func:`pacha_sdk.storage.sync`.

Every store call goes through :class:`~pacha_sdk.storage.deadlines.StoreCalls`
with a deadline (:attr:`MetricWriter.call_timeout` while the run goes on,
the run's remaining ``close_timeout`` once it ends): a store that accepts
connections and never answers costs one deadline, then the parts wait in
the spool like in any other outage.

Nothing the writer is given can end its thread. The encode step is
guarded (:meth:`MetricWriter._encode`): a batch that cannot be encoded is
counted in :attr:`MetricWriter.points_lost`, logged with its traceback and
kept as :attr:`MetricWriter.last_error`, and the writer goes on with the
next points; the run's end then records the loss. So is any other error
the loop did not expect. The thread also prepares the encoder as soon as
it starts (:func:`~pacha_sdk.storage.encoder.warm_up`: pyarrow's import and
first Parquet write take a few hundred milliseconds), so the first points
are stored one flush interval after they are logged, like the rest.

Every wait, interval and deadline reads the injected :class:`~pacha_sdk._clock.Clock`,
so a test can drive the writer through minutes of backoff and assert each delay exactly.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pacha_sdk._clock import SYSTEM_CLOCK
from pacha_sdk.exceptions import StoreError
from pacha_sdk.storage import encoder
from pacha_sdk.storage.buffer import FIELDS
from pacha_sdk.storage.deadlines import StoreCalls
from pacha_sdk.storage.layout import part_key
from pacha_sdk.storage.retry import RetryPolicy
from pacha_sdk.storage.write_errors import WriteErrors, describe_error

if TYPE_CHECKING:
    from pacha_sdk._clock import Clock
    from pacha_sdk.backends import Backend
    from pacha_sdk.models import RunId
    from pacha_sdk.storage.buffer import MetricBuffer
    from pacha_sdk.storage.parts import Latest, Rows
    from pacha_sdk.storage.spool import Spool

__all__ = ["DEFAULT_CALL_TIMEOUT", "MetricWriter", "RetryPolicy"]

logger = logging.getLogger("pacha_sdk")

POLL_SECONDS = 0.05
"""How often the writer checks whether ``flush_rows`` points are waiting."""

STOP_JOIN_MARGIN = 0.5
"""Seconds :meth:`MetricWriter.stop` waits for the thread past its timeout (the last spill)."""

DEFAULT_CALL_TIMEOUT = 10.0
"""Seconds a store call may take while the run goes on before its part goes to the spool."""


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
        calls: StoreCalls | None = None,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
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
        self._calls = calls or StoreCalls(backend.uri)
        self.call_timeout = call_timeout
        """Seconds one store call may take while the run goes on."""
        self._pending: deque[_PendingPart] = deque()
        self._seq = 0
        self._wake = buffer.writer_wake
        self._done = threading.Condition()
        self._requested = 0
        self._completed = 0
        self._stopping = False
        self._give_up_at = float("inf")
        self._spool_lock = threading.Lock()
        self._released = False
        self._failures = 0
        self._points_taken = 0
        self.points_written = 0
        self.errors = WriteErrors(str(run_id), spool.path)
        """What went wrong so far: the store's, the spool's and unexpected errors."""

    @property
    def last_error(self) -> BaseException | None:
        """The last error of a store write, a spool write or an encode (never cleared)."""
        return self.errors.last

    @property
    def points_lost(self) -> int:
        """Points that could not be encoded: gone, counted for the run's end."""
        return self.errors.points_lost

    @property
    def pending_points(self) -> int:
        """Points taken from the buffer but not yet stored (in memory or spooled)."""
        return sum(part.rows for part in list(self._pending))

    @property
    def spooled_points(self) -> int:
        """Points waiting in the local spool for the store to answer."""
        return sum(part.rows for part in list(self._pending) if part.spooled)

    @property
    def points_logged(self) -> int:
        """Every point the run logged: taken by the writer so far, or still buffered."""
        return self._points_taken + len(self._buffer)

    @property
    def unsaved_points(self) -> int:
        """Points only in memory (buffered, encoding, refused by the spool): lost at the end."""
        in_memory = sum(part.rows for part in list(self._pending) if not part.spooled)
        return in_memory + self._buffer.unsettled_points + len(self._buffer)

    def flush(self, timeout: float | None = None) -> bool:
        """Write everything buffered so far; return whether it all reached the store."""
        lost = self.points_lost
        with self._done:
            self._requested += 1
            ticket = self._requested
        self._wake.set()
        with self._done:
            flushed = self._done.wait_for(lambda: self._completed >= ticket, timeout)
        return flushed and self.points_lost == lost

    def stop(self, timeout: float) -> bool:
        """Flush what is left and end the thread, waiting at most *timeout* seconds.

        Returns whether every point reached the store. A thread still busy then is
        released: it no longer touches the spool, which is the run's end's and ``sync``'s.
        """
        self._give_up_at = self._clock.monotonic() + timeout
        self._calls.limit(timeout)  # a call already under way gives up in time too
        self._stopping = True
        self._wake.set()
        self.join(timeout + STOP_JOIN_MARGIN)
        if self.is_alive():  # late, on a loaded machine
            with self._spool_lock:
                self._released = True
        stored = not (self._pending or len(self._buffer) or self.points_lost)
        return stored and not self.is_alive()

    def run(self) -> None:
        """The thread: prepare the encoder, then loop; no error ends it before it is stopped."""
        first_flush = self._clock.monotonic() + self._interval  # due even while warming up
        self._warm_up()
        while True:
            try:
                self._loop(first_flush)
                return
            except Exception as error:  # a bug of the writer's own: loud, then carry on
                self.errors.unexpected("the writer failed", error)
                gave_up = self._stopping and self._clock.monotonic() >= self._give_up_at
                if gave_up or self._released:
                    return
                self._clock.wait(self._wake, POLL_SECONDS)

    def _warm_up(self) -> None:
        """Load pyarrow now, not when the first points wait (:func:`encoder.warm_up`)."""
        try:
            encoder.warm_up()
        except Exception as error:  # the first real flush meets it again, and reports it
            logger.debug("pacha: the writer could not prepare its encoder: %s", error)

    def _loop(self, first_flush: float) -> None:
        """Flush when due (first at *first_flush*), retry while the store fails, stop when told."""
        clock = self._clock
        next_flush = first_flush
        next_retry = 0.0
        while not self._released:
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
        if isinstance(self.errors.store, StoreError):  # permanent: no point in trying soon
            return self._retry.cap
        return self._retry.delay(max(self._failures - 1, 0))

    def _cycle(self) -> bool:
        """One flush: encode new rows, store pending parts, beat. Returns success."""
        self._encode_new_rows()
        try:
            while self._pending and not self._released:
                self._store(self._pending[0])
                part = self._pending.popleft()
                if part.spooled:
                    self._in_spool(functools.partial(self.spool.discard, part.key))
                self.points_written += part.rows
            if not self._released:
                self._heartbeat()
        except Exception as error:
            self._spill()
            self._note_failure(error)
            return False
        if self._failures:
            logger.info("pacha: store %s answers again; writes resumed", self._backend.uri)
        self._failures = 0
        return True

    def _store(self, part: _PendingPart) -> None:
        """Create *part* in the store, waiting for it no longer than the current deadline.

        Once stopping, that is :meth:`stop`'s limit, in real time (``StoreCalls``).
        """
        data = part.data if part.data is not None else self.spool.get(part.key)
        # FileExistsError: our own earlier attempt landed but its reply was lost.
        with contextlib.suppress(FileExistsError):
            self._calls.call(
                f"write {part.key}",
                lambda: self._backend.write_new(part.key, data),
                timeout=self.call_timeout,
            )

    def _encode_new_rows(self) -> None:
        for batch in self._buffer.batches(self.flush_rows):  # what is buffered now
            if not batch:
                continue
            self._points_taken += len(batch) // FIELDS
            encoded = self._encode(batch)
            if encoded is None:
                self._buffer.settle(batch, {})
                continue
            data, latest = encoded
            key = part_key(self._run_id, self._writer_id, self._seq)
            self._seq += 1
            pending = _PendingPart(key=key, rows=len(batch) // FIELDS, data=data)
            self._pending.append(pending)
            if self._backend.write_ahead:
                self._spool_part(pending, keep_in_memory=True)
            self._buffer.settle(batch, latest, part=self._seq - 1)

    def _encode(self, batch: Rows) -> tuple[bytes, Latest] | None:
        """The batch as Parquet bytes and its latest points; ``None`` if it cannot be encoded.

        The one guard around encoding: whatever goes wrong, the writer goes
        on, and the batch's points are counted lost and reported.
        """
        try:
            return encoder.encode(str(self._run_id), self._rank, batch)
        except Exception as error:
            points = len(batch) // FIELDS
            self.errors.unexpected(f"could not encode {points} points", error, points_lost=points)
            return None

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
                if not self._in_spool(functools.partial(self.spool.put, part.key, part.data)):
                    return False
            except OSError as error:
                self.errors.spool_failed(error)
                return False
            part.spooled = True
        if not keep_in_memory:
            part.data = None
        return True

    def _in_spool(self, change: Callable[[], None]) -> bool:
        """Make *change* to the spool unless :meth:`stop` released the thread; return whether."""
        with self._spool_lock:
            if self._released:
                return False
            change()
            return True

    def _note_failure(self, error: BaseException) -> None:
        permanent = isinstance(error, StoreError) and not isinstance(self.errors.store, StoreError)
        self.errors.store_failed(error)
        self._failures += 1
        if permanent:
            logger.error(
                "pacha: %s; %s, retried every %.0f s", error, self._where_kept(), self._retry.cap
            )
        elif self._failures == 1:
            logger.warning(
                "pacha: writing to %s failed (%s); %s, retrying",
                self._backend.uri,
                describe_error(error),
                self._where_kept(),
            )

    def _where_kept(self) -> str:
        """Where the points not stored yet are: ``"N points kept in <spool>"`` and/or in memory."""
        spooled, pending = self.spooled_points, self.pending_points
        said = f"{spooled} points kept in {self.spool.path}" if spooled or not pending else ""
        if pending > spooled:
            held = f"{pending - spooled} points held in memory (the spool refused them)"
            said = f"{said} and {held}" if said else held
        return said
