"""A run's record (:class:`ExperimentRun`) and how it reaches ``runs/<id>/run.json``.

The record is written whole (the backend replaces it atomically) at start,
by the writer thread at every flush (a fresh heartbeat and the summary of
latest values), whenever an artifact or input is added, and once more with
the final status. One re-entrant lock orders those writes; after the final
one, nothing else is written.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any

from pacha_sdk._layout import run_record_key
from pacha_sdk.exceptions import StoreError
from pacha_sdk.models import ExperimentRun, format_timestamp, utc_now

if TYPE_CHECKING:
    from pacha_sdk._buffer import MetricBuffer
    from pacha_sdk._writer import RetryPolicy
    from pacha_sdk.backends import Backend

__all__ = ["RecordKeeper"]

logger = logging.getLogger("pacha_sdk")

HEARTBEAT_LOCK_SECONDS = 1.0
"""How long a heartbeat waits for the record before skipping this beat."""


class RecordKeeper:
    """Holds one run's record and writes it to the store."""

    def __init__(self, record: ExperimentRun, backend: Backend, buffer: MetricBuffer) -> None:
        self.record = record
        self.lock = threading.RLock()
        """Held while the record changes or is written."""
        self.final_written = False
        self.last_error: BaseException | None = None
        self._backend = backend
        self._buffer = buffer
        self._base_summary: dict[str, Any] = {}

    @property
    def key(self) -> str:
        """The record's key in the store."""
        return run_record_key(self.record.run_id)

    def attach_stored(self, *, keep_stored_hparams: bool) -> None:
        """Take over the stored record of this run id, if there is one (resume, other ranks)."""
        from pacha_sdk.read import parse_record

        try:
            data = self._backend.read_bytes(self.key)
        except FileNotFoundError:
            return
        except OSError as error:
            raise StoreError(f"could not read {self._backend.uri}/{self.key}: {error}") from error
        stored = parse_record(data, f"{self._backend.uri}/{self.key}")
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

    def snapshot(self) -> ExperimentRun:
        """A copy of the record with ``extra.summary`` filled from the flushed points."""
        summary: dict[str, Any] = dict(self._base_summary)
        for name, (_, value) in self._buffer.flushed_latest().items():
            summary[name] = value if math.isfinite(value) else None
        record = self.record.model_copy(deep=True)
        record.extra["summary"] = summary
        return record

    def to_json(self) -> bytes:
        """The record as ``run.json`` bytes, with a fresh heartbeat."""
        self.record.extra["heartbeat_at"] = format_timestamp(utc_now())
        return self.snapshot().model_dump_json(indent=2).encode("utf-8")

    def write(self) -> None:
        """Replace ``run.json`` now; a store error becomes :class:`StoreError`."""
        try:
            self._backend.replace(self.key, self.to_json())
        except StoreError:
            raise  # already says what is wrong with the store
        except OSError as error:
            raise StoreError(f"could not write {self._backend.uri}/{self.key}: {error}") from error

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
        """Write the final status, retrying with backoff until *deadline* (one try at least)."""
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
                    if time.monotonic() + delay > deadline:
                        return False
                    time.sleep(delay)
                    attempt += 1
