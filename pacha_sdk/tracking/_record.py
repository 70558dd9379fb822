"""A run's record (:class:`ExperimentRun`) and how it reaches ``runs/<id>/run.json``.

The record is written whole (the backend replaces it atomically) at start,
by the writer thread at every flush (a fresh heartbeat and the summary of
latest values), whenever an artifact or input is added, and once more with
the final status. One re-entrant lock orders those writes; after the final
one, nothing else is written.

A rank above 0 of a shared run (:mod:`pacha_sdk.tracking._ranks`) uses
:class:`RankKeeper` instead: the same writes, at the same moments, of a
:class:`~pacha_sdk.models.RankRecord` to ``runs/<id>/ranks/<rank>.json``;
it never writes ``run.json``, which rank 0 owns. Both read and write
through :mod:`pacha_sdk.storage.records`.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
from typing import TYPE_CHECKING

from pacha_sdk._clock import SYSTEM_CLOCK
from pacha_sdk._version import __version__
from pacha_sdk.exceptions import InvalidRecordError, StoreError
from pacha_sdk.models import ExperimentRun, RankRecord, format_timestamp
from pacha_sdk.storage import records
from pacha_sdk.storage.layout import rank_record_key, run_record_key

if TYPE_CHECKING:
    from pacha_sdk._clock import Clock
    from pacha_sdk.backends import Backend
    from pacha_sdk.storage.buffer import MetricBuffer
    from pacha_sdk.storage.writer import RetryPolicy

__all__ = ["RankKeeper", "RecordKeeper"]

logger = logging.getLogger("pacha_sdk")

HEARTBEAT_LOCK_SECONDS = 1.0
"""How long a heartbeat waits for the record before skipping this beat."""


class RecordKeeper:
    """Holds one run's record and writes it to the store, on *clock*'s time."""

    def __init__(
        self,
        record: ExperimentRun,
        backend: Backend,
        buffer: MetricBuffer,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.record = record
        self.lock = threading.RLock()
        """Held while the record changes or is written."""
        self.final_written = False
        self.last_error: BaseException | None = None
        self._backend = backend
        self._buffer = buffer
        self._clock = clock
        self._base_summary: dict[str, float | None] = {}

    @property
    def key(self) -> str:
        """The record's key in the store."""
        return run_record_key(self.record.run_id)

    def attach_stored(self, *, keep_stored_hparams: bool) -> None:
        """Take over the stored record of this run id, if there is one (resume, other ranks)."""
        stored = records.read_run(self._backend, self.record.run_id)
        if stored is None:
            return
        mine = self.record
        stored.extra.update({k: v for k, v in mine.extra.items() if k != "parent_run_id"})
        if not keep_stored_hparams:
            stored.hyperparameters = mine.hyperparameters
        stored.recipe = mine.recipe or stored.recipe
        stored.finished_at = None
        stored.error_message = None
        self._base_summary = dict(stored.summary)
        self.record = stored

    def stored_latest(self, name: str) -> float | None:
        """The latest value of *name* in the record this run attached to, if any."""
        if name not in self._base_summary:
            return None
        value = self._base_summary[name]
        return math.nan if value is None else float(value)

    def summary(self) -> dict[str, float | None]:
        """Latest value of each flushed metric (non-finite ones as ``None``: strict JSON)."""
        summary: dict[str, float | None] = dict(self._base_summary)
        for name, (_, value) in self._buffer.flushed_latest().items():
            summary[name] = value if math.isfinite(value) else None
        return summary

    def snapshot(self) -> ExperimentRun:
        """A copy of the record with ``extra.summary`` filled from the flushed points."""
        record = self.record.model_copy(deep=True)
        record.extra["summary"] = dict(self.summary())
        return record

    def to_json(self) -> bytes:
        """The record as ``run.json`` bytes, with a fresh heartbeat."""
        self.record.extra["heartbeat_at"] = format_timestamp(self._clock.now())
        return records.record_bytes(self.snapshot())

    def write(self) -> None:
        """Replace ``run.json`` now; a store error becomes :class:`StoreError`."""
        records.write_record(self._backend, self.key, self.to_json())

    def heartbeat(self) -> None:
        """Writer thread: rewrite the record unless it is final.

        Skipped (the next flush beats again) if the record stays busy for a
        second: a SIGTERM handler may have interrupted the main thread while
        it held the lock, and now waits for the writer thread.
        """
        if not self.lock.acquire(timeout=HEARTBEAT_LOCK_SECONDS):
            return
        try:
            if not self.final_written:
                self.write()
        finally:
            self.lock.release()

    def write_soon(self) -> None:
        """Write now if possible; a store error is only noted (the next flush writes again)."""
        with self.lock:
            if self.final_written:
                return
            try:
                self.write()
            except StoreError as error:
                self.last_error = error
                logger.warning("pacha: %s; the next flush writes it again", error)

    def write_final(self, deadline: float, retry: RetryPolicy) -> bool:
        """Write the final status, retrying with backoff until *deadline* (one try at least).

        *deadline* is a reading of the keeper's clock (``clock.monotonic()``).
        """
        attempt = 0
        with self.lock:
            while True:
                try:
                    self.write()
                    self.final_written = True
                    return True
                except StoreError as error:
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
    ) -> None:
        super().__init__(record, backend, buffer, clock=clock)
        self.rank = rank
        self._world_size = world_size
        self._hostname = socket.gethostname()

    @property
    def key(self) -> str:
        """The rank record's key in the store."""
        return rank_record_key(self.record.run_id, self.rank)

    def attach_stored(self, *, keep_stored_hparams: bool) -> None:
        """Continue this rank's own earlier record, if any (its summary); never read run.json."""
        try:
            stored = records.read_rank_record(self._backend, self.record.run_id, self.rank)
        except InvalidRecordError as error:
            logger.warning("pacha: %s; rank %d starts a new record", error, self.rank)
            return
        if stored is not None:
            self._base_summary = dict(stored.summary)

    def to_json(self) -> bytes:
        """The rank record as JSON bytes, with a fresh heartbeat."""
        beat = self._clock.now()
        run = self.record
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
            summary=self.summary(),
            hostname=self._hostname,
            pid=os.getpid(),
            world_size=self._world_size,
            log_uri=run.log_uri,
            sdk_version=__version__,
        )
        return records.record_bytes(rank_record)
