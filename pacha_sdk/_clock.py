"""The clock the SDK's background machinery reads and sleeps on, injected so tests are exact.

The writer (flush interval, retry backoff, give-up deadline), the record
keeper (final-write retries, heartbeat timestamps) and a run's own waits
(backpressure, close deadline) take a :class:`Clock` instead of calling
:mod:`time` directly. Production passes :data:`SYSTEM_CLOCK`; a test passes
a clock of its own that moves only when waited on, and asserts delays and
deadlines exactly without sleeping (as rich's ``get_time=`` and its tests'
``MockClock`` do).

The hot path is left out on purpose: :meth:`Run.log_metric` stamps points
with a module-level ``time.time_ns``, one call and no attribute lookup.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


class Clock(Protocol):
    """What the SDK asks of time: read it, sleep on it, wait for an event with it."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (deadlines, intervals)."""
        ...

    def now(self) -> datetime:
        """The current wall-clock time as an aware UTC datetime (heartbeats)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block for *seconds* (retry backoff, backpressure)."""
        ...

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Wait up to *timeout* seconds for *event*; return whether it is set."""
        ...


class SystemClock:
    """The real clock: :func:`time.monotonic`, :func:`time.sleep` and :meth:`Event.wait`."""

    def monotonic(self) -> float:
        """:func:`time.monotonic`."""
        return time.monotonic()

    def now(self) -> datetime:
        """``datetime.now(timezone.utc)``."""
        return datetime.now(timezone.utc)

    def sleep(self, seconds: float) -> None:
        """:func:`time.sleep`."""
        time.sleep(seconds)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """:meth:`threading.Event.wait`."""
        return event.wait(timeout)

    def __repr__(self) -> str:
        return "SYSTEM_CLOCK"


SYSTEM_CLOCK: Clock = SystemClock()
"""The clock everything uses unless a test passes its own."""
