"""How a run ends: the final status for how it ended, the report of what the store missed.

DESIGN's status table lives in :func:`outcome_of`: a block that ends
normally or with ``SystemExit(0 / None)`` completes, ``KeyboardInterrupt``
and ``asyncio.CancelledError`` cancel, anything else fails with the error's
type, message and traceback. Runs started but never finished are finished
at interpreter exit (:data:`open_runs`).
"""

from __future__ import annotations

import atexit
import logging
import sys
import traceback
import weakref
from typing import TYPE_CHECKING, NamedTuple, Protocol

from pacha_sdk._names import json_text
from pacha_sdk.models import RunStatus

if TYPE_CHECKING:
    from collections.abc import Callable

    from pacha_sdk.models import ExperimentRun

__all__ = ["Outcome", "error_message", "failure", "open_runs", "outcome_of"]

logger = logging.getLogger("pacha_sdk")


class Outcome(NamedTuple):
    """A final status, with the error message and traceback of a failure."""

    status: RunStatus
    message: str | None = None
    trace: str | None = None

    def scrubbed(self, scrub: Callable[[str], str]) -> Outcome:
        """This outcome with *scrub* applied to its message and traceback (secrets out)."""
        return Outcome(
            self.status,
            None if self.message is None else scrub(self.message),
            None if self.trace is None else scrub(self.trace),
        )

    def apply(self, record: ExperimentRun) -> None:
        """Set *record*'s final status (and ``extra.traceback``) to this outcome."""
        if self.status is RunStatus.COMPLETED:
            record.complete()
        elif self.status is RunStatus.CANCELLED:
            record.cancel()
        else:
            record.fail(json_text(self.message or "failed"))
        if self.trace is not None:
            record.extra["traceback"] = json_text(self.trace)


def error_message(error: BaseException) -> str:
    """``"TypeName: message"`` for a failed run's ``error_message``."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def failure(error: BaseException | str) -> Outcome:
    """A failed outcome: an exception's type, message and traceback, or a plain message."""
    if isinstance(error, BaseException):
        trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        return Outcome(RunStatus.FAILED, error_message(error), trace)
    return Outcome(RunStatus.FAILED, str(error))


def outcome_of(error: BaseException | None) -> Outcome:
    """The outcome DESIGN's table gives for a block that ended with *error* (``None``: normally)."""
    import asyncio  # here, not at the top: most scripts never load it

    if error is None:
        return Outcome(RunStatus.COMPLETED)
    if isinstance(error, (KeyboardInterrupt, asyncio.CancelledError)):
        return Outcome(RunStatus.CANCELLED)
    if isinstance(error, SystemExit):
        if error.code in (0, None):
            return Outcome(RunStatus.COMPLETED)
        return Outcome(RunStatus.FAILED, f"SystemExit: {error.code}")
    return failure(error)


class _Finishable(Protocol):
    def finish_for(self, error: BaseException | None) -> None: ...


open_runs: weakref.WeakSet[_Finishable] = weakref.WeakSet()
"""Runs started and not finished yet: finished at interpreter exit."""


@atexit.register
def _finish_open_runs() -> None:
    """At interpreter exit, finish runs that were started but never finished.

    Their points are flushed; the run completes, or fails with the error
    that ended the interpreter if one did (as MLflow and W&B do). Python
    gives exit hooks no exit code, so ``sys.exit(3)`` with a run left open
    records ``completed``: use ``with pacha.run(...)`` or ``@pacha.track``,
    which see the ``SystemExit`` and record ``failed``.
    """
    uncaught = getattr(sys, "last_value", None)
    for run in list(open_runs):
        run.finish_for(uncaught)
