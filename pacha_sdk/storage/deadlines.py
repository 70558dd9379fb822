"""Store calls with a deadline: a store that never answers cannot hold a run.

A client library's own timeouts and retries can keep one call waiting for
minutes (botocore: 60 s connect and read timeouts, three attempts, under
s3fs' own retries). The writer and the record keeper therefore never call
the store directly: :meth:`StoreCalls.call` runs the call in a helper
thread and waits for it only until its deadline. A call that misses it
raises :class:`TimeoutError` (a transient :class:`OSError`, so the writer
keeps the part in the spool and retries later); the helper thread is left
to finish or fail on its own, and its result is ignored.

One call runs at a time, per run. A record written twice never has two
writes in flight at once, so the store sees them in the order they ran;
and while an abandoned call still hangs, the next one fails at once
("has not answered ... for N s") instead of queueing behind it, which keeps
the writer draining points into the spool during an outage.

The end of a run bounds every wait with :meth:`StoreCalls.limit`: from then
on no wait, even one already under way, lasts past that moment.

Waits are real time (:func:`time.monotonic`), not the run's injected clock:
a store call is work the store does, not a delay the SDK chooses, and a test
clock that only moves when waited on would make every call time out.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["StoreCalls"]

_Result = TypeVar("_Result")


class _Call:
    """One call: what it does, and what came of it."""

    def __init__(self, what: str, function: Callable[[], Any]) -> None:
        self.what = what
        self.function = function
        self.started = time.monotonic()
        self.done = False
        self.abandoned = False
        self.result: Any = None
        self.error: BaseException | None = None


class StoreCalls:
    """The calls one run makes to its store, one at a time, each waited for until a deadline.

    Args:
        uri: the store, as timeout messages name it.
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._changed = threading.Condition()
        self._running: _Call | None = None
        self._limit = math.inf

    def limit(self, seconds: float | None) -> None:
        """From now on, no wait lasts more than *seconds* from now (``None``: no limit).

        Waits already under way are cut short too; a later call may set a
        new limit, later or earlier.
        """
        with self._changed:
            self._limit = math.inf if seconds is None else time.monotonic() + max(seconds, 0.0)
            self._changed.notify_all()

    def call(self, what: str, function: Callable[[], _Result], *, timeout: float) -> _Result:
        """Return ``function()``, run in a helper thread, waiting at most *timeout* seconds.

        *what* says what the call does (``"write runs/<id>/run.json"``), for
        the error. Raises what *function* raised, or :class:`TimeoutError`
        when the deadline (or the :meth:`limit`) passes first.
        """
        began = time.monotonic()
        deadline = began + max(timeout, 0.0)
        with self._changed:
            while self._running is not None:
                if self._running.abandoned:
                    raise self._still_hanging(self._running)
                if not self._wait(deadline):
                    raise self._missed(what, began, deadline)
            call = _Call(what, function)
            self._running = call
            helper = threading.Thread(
                target=self._run, args=(call,), name="pacha-store-call", daemon=True
            )
            helper.start()
            while not call.done:
                if not self._wait(deadline):
                    call.abandoned = True
                    raise self._missed(what, began, deadline)
        if call.error is not None:
            raise call.error
        result: _Result = call.result
        return result

    def _wait(self, deadline: float) -> bool:
        """Wait (lock held) for a change until *deadline* or the limit; False once past it."""
        remaining = min(deadline, self._limit) - time.monotonic()
        if remaining <= 0:
            return False
        self._changed.wait(remaining)
        return True

    def _run(self, call: _Call) -> None:
        try:
            call.result = call.function()
        except BaseException as error:  # handed to the caller, who raises it
            call.error = error
        finally:
            with self._changed:
                call.done = True
                if self._running is call:
                    self._running = None
                self._changed.notify_all()

    def _missed(self, what: str, began: float, deadline: float) -> TimeoutError:
        waited = min(deadline, self._limit) - began
        return TimeoutError(f"{self.uri} did not answer within {max(waited, 0.0):g} s ({what})")

    def _still_hanging(self, call: _Call) -> TimeoutError:
        age = time.monotonic() - call.started
        return TimeoutError(f"{self.uri} has not answered for {age:.0f} s ({call.what})")
