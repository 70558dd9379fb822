"""A run's record (:class:`ExperimentRun`) and how it reaches ``runs/<id>/run.json``.

The record is written whole (the backend replaces it atomically) at start,
by the writer thread at every flush (a fresh heartbeat and the summary of
latest values), whenever an artifact or input is added, and once more with
the final status. One re-entrant lock guards the record while it changes
and while a write is snapshotted; it is never held across a store call.
Every write goes through the run's
:class:`~pacha_sdk.storage.deadlines.StoreCalls` with a deadline, one at a
time, and a write whose snapshot is older than one already stored is
skipped, so a slow heartbeat can never land over the final record. Once the
final write has begun, heartbeats stop.

Every record says which writer wrote it and how many of that writer's
part files its summary counts (:class:`~pacha_sdk.models.WriterMark`, in
``extra.writer``), and the step of each summary value (``summary_steps``):
a resumed run goes on from there (:mod:`pacha_sdk.tracking._resume`), and a
process that attaches a run another live process writes is refused
(:mod:`pacha_sdk.storage.sessions`).

A rank above 0 of a shared run (:mod:`pacha_sdk.tracking._ranks`) uses
:class:`RankKeeper` instead: the same writes, at the same moments, of a
:class:`~pacha_sdk.models.RankRecord` to ``runs/<id>/ranks/<rank>.json``;
it never writes ``run.json``, which rank 0 owns. Both read and write
through :mod:`pacha_sdk.storage.records`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from pacha_sdk._clock import SYSTEM_CLOCK
from pacha_sdk._version import __version__
from pacha_sdk.exceptions import InvalidRecordError, StoreError
from pacha_sdk.models import ExperimentRun, RankRecord, WriterMark, format_timestamp
from pacha_sdk.storage import records
from pacha_sdk.storage.deadlines import StoreCalls
from pacha_sdk.storage.layout import rank_record_key, run_record_key
from pacha_sdk.storage.sessions import claim_run, hold, process_started, release, writer_of
from pacha_sdk.storage.writer import DEFAULT_CALL_TIMEOUT
from pacha_sdk.tracking._resume import Carried

if TYPE_CHECKING:
    from datetime import datetime

    from pacha_sdk._clock import Clock
    from pacha_sdk.backends import Backend
    from pacha_sdk.storage.buffer import MetricBuffer
    from pacha_sdk.storage.writer import RetryPolicy

__all__ = ["RankKeeper", "RecordKeeper"]

logger = logging.getLogger("pacha_sdk")

HEARTBEAT_LOCK_SECONDS = 1.0
"""How long a heartbeat waits for the record before skipping this beat."""
FINAL_WRITE_SECONDS = 0.5
"""The least a final write waits for the store, even once the close deadline has passed."""


class RecordKeeper:
    """Holds one run's record and writes it to the store, on *clock*'s time.

    *writer_id* names the run's part files (``part-<writer_id>-<seq>``) and
    *rank* is their ``rank`` column: what a resumed record reads back.
    """

    def __init__(
        self,
        record: ExperimentRun,
        backend: Backend,
        buffer: MetricBuffer,
        *,
        clock: Clock = SYSTEM_CLOCK,
        writer_id: str = "",
        rank: int = 0,
        calls: StoreCalls | None = None,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
    ) -> None:
        self.record = record
        self.lock = threading.RLock()
        """Held while the record changes or is snapshotted for a write."""
        self.final_written = False
        self.last_error: BaseException | None = None
        self.writer_id = writer_id
        self.rank = rank
        self.call_timeout = call_timeout
        """Seconds a write may take while the run goes on."""
        self._backend = backend
        self._buffer = buffer
        self._clock = clock
        self._calls = calls or StoreCalls(backend.uri)
        self._hostname = socket.gethostname()
        self._process_started = process_started()
        self._carried = Carried()
        self._stored_start: datetime | None = None
        self._snapshots = 0
        self._stored_snapshot = 0
        self._finishing = False

    @property
    def key(self) -> str:
        """The record's key in the store."""
        return run_record_key(self.record.run_id)

    def attach_stored(self, *, keep_stored_hparams: bool) -> None:
        """Take over the stored record of this run id, if there is one (resume, a shared id).

        Claims the run first (:func:`~pacha_sdk.storage.sessions.claim_run`):
        :class:`RunInUseError` if another live process writes its ``run.json``.
        The store's answers are waited for at most :attr:`call_timeout`
        seconds: a store that does not answer is a :class:`StoreError`.
        """
        try:
            self._calls.call(
                f"read the stored run {self.record.run_id}",
                lambda: self._take_over(keep_stored_hparams=keep_stored_hparams),
                timeout=self.call_timeout,
            )
        except TimeoutError as error:
            raise StoreError(f"could not attach run {self.record.run_id}: {error}") from error

    def _take_over(self, *, keep_stored_hparams: bool) -> None:
        """In the call thread: read the stored record and make it this keeper's."""
        stored = records.read_run(self._backend, self.record.run_id)
        claim_run(self._backend, self.record.run_id, self.writer_mark(), stored)
        if stored is None:
            return
        mine = self.record
        stored.extra.update({k: v for k, v in mine.extra.items() if k != "parent_run_id"})
        stored.extra.pop("traceback", None)  # the error of an earlier session
        if not keep_stored_hparams:
            stored.hyperparameters = mine.hyperparameters
        stored.recipe = mine.recipe or stored.recipe
        stored.finished_at = None
        stored.error_message = None
        self._carry(stored.summary, stored.extra.get("summary_steps"), writer_of(stored))
        self._stored_start = stored.started_at
        self.record = stored

    def _carry(
        self, summary: dict[str, float | None], steps: object, mark: WriterMark | None
    ) -> None:
        self._carried = Carried.from_store(
            self._backend,
            self.record.run_id,
            summary=summary,
            steps=steps,
            mark=mark,
            rank=self.rank,
        )

    def start(self) -> None:
        """Mark the record running; a resumed one keeps the ``started_at`` it had."""
        hold(self.writer_id)
        self.record.start()
        if self._stored_start is not None:
            self.record.started_at = self._stored_start

    def next_steps(self) -> dict[str, int]:
        """The last stored step of each name: where automatic steps go on from."""
        return self._carried.next_steps()

    def or_stored(self, name: str, latest: tuple[int, float] | None) -> tuple[int, float] | None:
        """*latest* of *name*, or the attached record's point of it if that is at a higher step."""
        stored = self._carried.point(name)
        if stored is not None and (latest is None or stored[0] > latest[0]):
            return stored
        return latest

    def writer_mark(self) -> WriterMark:
        """This process's writer, and how many of its part files the summary counts now."""
        return WriterMark(
            id=self.writer_id,
            parts=self._buffer.parts_settled,  # read before the points: never counts too many
            pid=os.getpid(),
            hostname=self._hostname,
            process_started=self._process_started,
        )

    def summary(self) -> tuple[dict[str, float | None], dict[str, int]]:
        """Latest value of each metric (non-finite as ``None``: strict JSON), and its step."""
        return self._carried.merge(self._buffer.flushed_latest())

    def snapshot(self) -> ExperimentRun:
        """A copy of the record with ``extra.summary`` and its steps filled from the points."""
        record = self.record.model_copy(deep=True)
        mark = self.writer_mark()
        summary, steps = self.summary()
        record.extra["summary"] = dict(summary)
        record.extra["summary_steps"] = dict(steps)
        record.extra["writer"] = mark.model_dump(mode="json")
        return record

    def to_json(self) -> bytes:
        """The record as ``run.json`` bytes, with a fresh heartbeat."""
        self.record.extra["heartbeat_at"] = format_timestamp(self._clock.now())
        return records.record_bytes(self.snapshot())

    def update(self, change: Callable[[ExperimentRun], None]) -> None:
        """Apply *change* to the record, under its lock (the next write stores it)."""
        with self.lock:
            change(self.record)

    def write_first(self, *, timeout: float) -> None:
        """The write at the run's start: :class:`StoreError` unless stored within *timeout* s."""
        try:
            self.write(timeout=timeout)
        except TimeoutError as error:
            raise StoreError(f"could not start run {self.record.run_id}: {error}") from error

    def write(self, timeout: float | None = None) -> None:
        """Replace the record in the store now, waiting at most *timeout* seconds.

        Raises :class:`StoreError` if the store refused, :class:`TimeoutError`
        if it did not answer in time (default :attr:`call_timeout`).
        """
        with self.lock:
            data = self.to_json()
            self._snapshots += 1
            snapshot = self._snapshots
        self._calls.call(
            f"write {self.key}",
            lambda: self._store(snapshot, data),
            timeout=self.call_timeout if timeout is None else timeout,
        )

    def _store(self, snapshot: int, data: bytes) -> None:
        """In the call thread: write *data* unless a newer snapshot is stored already."""
        if snapshot < self._stored_snapshot:
            return
        records.write_record(self._backend, self.key, data)
        self._stored_snapshot = snapshot

    def heartbeat(self) -> None:
        """Writer thread: rewrite the record unless the final write has begun.

        Skipped (the next flush beats again) if the record stays busy for a
        second: a SIGTERM handler may have interrupted the main thread while
        it held the lock, and now waits for the writer thread.
        """
        if not self.lock.acquire(timeout=HEARTBEAT_LOCK_SECONDS):
            return
        try:
            if self._finishing:
                return
        finally:
            self.lock.release()
        self.write()

    def write_soon(self) -> None:
        """Write now if possible; a store error is only noted (the next flush writes again)."""
        if self._finishing:
            return
        try:
            self.write()
        except OSError as error:
            self.last_error = error
            logger.warning("pacha: %s; the next flush writes it again", error)

    def write_final(self, deadline: float, retry: RetryPolicy) -> bool:
        """Write the final status, retrying with backoff until *deadline* (one try at least).

        *deadline* is a reading of the keeper's clock (``clock.monotonic()``);
        each try waits for the store until then, and at least
        :data:`FINAL_WRITE_SECONDS`. Heartbeats stop from here on.
        """
        release(self.writer_id)  # the run ends here: this process may attach it again
        with self.lock:
            self._finishing = True
        attempt = 0
        while True:
            remaining = deadline - self._clock.monotonic()
            try:
                self._calls.limit(max(remaining, FINAL_WRITE_SECONDS))
                self.write(timeout=max(remaining, FINAL_WRITE_SECONDS))
                self.final_written = True
                return True
            except OSError as error:  # StoreError, or TimeoutError from the deadline
                self.last_error = error
                delay = retry.delay(attempt)
                if self._clock.monotonic() + delay > deadline:
                    return False
                self._clock.sleep(delay)
                attempt += 1


class RankKeeper(RecordKeeper):
    """Holds a rank's view of a shared run and writes it as ``runs/<id>/ranks/<rank>.json``.

    The run's record stays in memory (status, summary, error); what is
    written is the small :class:`RankRecord` built from it.
    """

    def __init__(
        self,
        record: ExperimentRun,
        backend: Backend,
        buffer: MetricBuffer,
        *,
        rank: int,
        world_size: int | None,
        clock: Clock = SYSTEM_CLOCK,
        writer_id: str = "",
        calls: StoreCalls | None = None,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
    ) -> None:
        super().__init__(
            record,
            backend,
            buffer,
            clock=clock,
            writer_id=writer_id,
            rank=rank,
            calls=calls,
            call_timeout=call_timeout,
        )
        self._world_size = world_size

    @property
    def key(self) -> str:
        """The rank record's key in the store."""
        return rank_record_key(self.record.run_id, self.rank)

    def _take_over(self, *, keep_stored_hparams: bool) -> None:
        """Continue this rank's own earlier record, if any (its summary); never read run.json."""
        try:
            stored = records.read_rank_record(self._backend, self.record.run_id, self.rank)
        except InvalidRecordError as error:
            logger.warning("pacha: %s; rank %d starts a new record", error, self.rank)
            return
        if stored is not None:
            steps = stored.summary_steps if "summary_steps" in stored.model_fields_set else None
            self._carry(stored.summary, steps, stored.writer)
            self._stored_start = stored.started_at

    def to_json(self) -> bytes:
        """The rank record as JSON bytes, with a fresh heartbeat."""
        beat = self._clock.now()
        run = self.record
        mark = self.writer_mark()
        summary, steps = self.summary()
        trace = run.extra.get("traceback")
        rank_record = RankRecord(
            run_id=run.run_id,
            rank=self.rank,
            status=run.status,
            error_message=run.error_message,
            traceback=trace if isinstance(trace, str) else None,
            started_at=run.started_at,
            finished_at=run.finished_at,
            heartbeat_at=beat,
            flush_interval=run.flush_interval,
            summary=summary,
            summary_steps=steps,
            writer=mark,
            hostname=self._hostname,
            pid=os.getpid(),
            world_size=self._world_size,
            log_uri=run.log_uri,
            sdk_version=__version__,
        )
        return records.record_bytes(rank_record)
