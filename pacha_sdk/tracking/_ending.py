"""The end of a run: last points, final status, and a true account of what was kept.

:func:`end_run` runs once per run, in the thread that finishes it, with
SIGINT and SIGTERM held (:func:`pacha_sdk.tracking._signals.held`). It

1. stops the sampler and the console capture,
2. stops the writer, which flushes what is left (within ``close_timeout``),
3. uploads the console log and waits for the run's context (hardware,
   git, environment: gathered in the background since the start),
4. decides the final status: a signal that arrived meanwhile turns
   ``completed`` into ``cancelled``; points that reached neither the store
   nor the spool turn it into ``failed`` (see :func:`final_outcome`),
5. writes the final record, retrying until the deadline,
6. says what the store did not get: points and record kept in the spool
   (and how to upload them), or points lost, with the store's and the
   spool's errors.

Every step is guarded: an error in one is logged and kept as the run's
``last_error``, the next steps still run, and nothing is raised to the
user's ``with`` block, whose own exception always comes through.
Everything ends within ``close_timeout`` plus :data:`CLOSE_MARGIN`.

:class:`RunEnding` gives :class:`~pacha_sdk.tracking.run.Run` its
``complete`` / ``fail`` / ``cancel`` / ``finish_for``: once per run, with the
signals held, in a forked child only its own points (``_fork``).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pacha_sdk.exceptions import RunStateError
from pacha_sdk.models import RunStatus
from pacha_sdk.storage.write_errors import describe_error
from pacha_sdk.tracking import _signals
from pacha_sdk.tracking._finish import Outcome, failure, open_runs, outcome_of
from pacha_sdk.tracking._view import RunState, RunView

if TYPE_CHECKING:
    from pacha_sdk._clock import Clock
    from pacha_sdk.storage.writer import MetricWriter, RetryPolicy
    from pacha_sdk.tracking._observers import Observers
    from pacha_sdk.tracking._options import RunOptions
    from pacha_sdk.tracking._record import RecordKeeper
    from pacha_sdk.tracking._signals import HeldSignals

__all__ = ["CLOSE_MARGIN", "RunEnding", "RunParts", "end_run", "final_outcome"]

logger = logging.getLogger("pacha_sdk")

CLOSE_MARGIN = 1.5
"""Seconds past ``close_timeout`` the end of a run may take, whatever the store does.

Half a second for the final record's last try (it always gets that long,
even when the points used all of ``close_timeout``), half a second for the
writer's last spill to the local spool, and the rest for writing the
final record there.
"""

_Result = TypeVar("_Result")


@dataclass
class RunParts:
    """What a started run is made of, as its end needs it."""

    writer: MetricWriter
    keeper: RecordKeeper
    observers: Observers
    context: threading.Thread | None
    """The thread gathering the run's context, if rank 0 started one."""
    retry: RetryPolicy
    clock: Clock
    close_timeout: float
    uri: str
    scrub: Callable[[str], str]
    """Replaces the run's credentials in what the record keeps of an error (``_redact``)."""

    def heartbeat(self) -> None:
        """Writer thread, every flush: rewrite the record and upload the console log."""
        self.keeper.heartbeat()
        self.observers.upload_output(final=False, timeout=self.keeper.call_timeout)


@dataclass
class Account:
    """Where the run's points are once the writer has stopped."""

    logged: int
    lost: int
    spooled: int
    all_stored: bool


def final_outcome(
    outcome: Outcome, held: HeldSignals, account: Account, causes: str
) -> tuple[Outcome, str | None]:
    """The status to record, and the loss to note in ``extra`` (``None`` if nothing was lost).

    A signal that would have cancelled the run, arriving while it ended,
    cancels a run that was completing. Points that reached neither the
    store nor the spool mean the run is not complete: a completing run
    fails with a message saying how many points were lost and why; a run
    already failed or cancelled keeps its status and message.
    """
    if outcome.status is RunStatus.COMPLETED and held.stopping:
        outcome = Outcome(RunStatus.CANCELLED)
    if not account.lost:
        return outcome, None
    loss = (
        f"pacha could not store {account.lost} of {account.logged} points of this run, "
        f"which are lost: {causes}"
    )
    if outcome.status is RunStatus.COMPLETED:
        outcome = Outcome(RunStatus.FAILED, loss)
    return outcome, loss


def end_run(parts: RunParts, outcome: Outcome, held: HeldSignals) -> BaseException | None:
    """End the run (see the module doc); return the error to keep as its ``last_error``."""
    clock = parts.clock
    deadline = clock.monotonic() + parts.close_timeout

    def remaining() -> float:
        return max(deadline - clock.monotonic(), 0.0)

    problems: list[BaseException] = []
    writer, keeper = parts.writer, parts.keeper
    _guarded(problems, "stop the observers", lambda: parts.observers.stop(min(5.0, remaining())))
    all_stored = _guarded(problems, "stop the writer", lambda: writer.stop(remaining())) or False
    if remaining() > 0:
        _guarded(
            problems,
            "upload the console log",
            lambda: parts.observers.upload_output(final=True, timeout=remaining()),
        )
    if parts.context is not None:
        parts.context.join(remaining())
    account = _account(writer, all_stored=all_stored)
    final, loss = final_outcome(outcome, held, account, parts.scrub(writer.errors.causes()))
    final = final.scrubbed(parts.scrub)
    with keeper.lock:
        final.apply(keeper.record)
        if loss is not None:
            keeper.record.extra["lost_points"] = account.lost
            keeper.record.extra["lost_points_error"] = loss
    written = _guarded(
        problems, "write the final record", lambda: keeper.write_final(deadline, parts.retry)
    )
    if not (account.all_stored and written):
        _guarded(
            problems, "report", lambda: _report(parts, account, loss, record_written=bool(written))
        )
    return writer.last_error or keeper.last_error or (problems[-1] if problems else None)


def _account(writer: MetricWriter, *, all_stored: bool) -> Account:
    lost = writer.points_lost + writer.unsaved_points
    return Account(
        logged=writer.points_logged,
        lost=lost,
        spooled=writer.spooled_points,
        all_stored=all_stored and not lost,
    )


def _guarded(problems: list[BaseException], what: str, step: Callable[[], _Result]) -> Any:
    """Run one step of the end; an error is logged and noted, never raised."""
    try:
        return step()
    except Exception as error:
        problems.append(error)
        logger.error(
            "pacha: could not %s at the end of the run (%s)",
            what,
            describe_error(error),
            exc_info=error,
        )
        return None


def _report(parts: RunParts, account: Account, loss: str | None, *, record_written: bool) -> None:
    """Say what the store did not get: kept in the spool (with how to upload it), or lost."""
    writer, keeper = parts.writer, parts.keeper
    spool = writer.spool
    record_kept = record_written
    if not record_written:
        try:
            spool.put(keeper.key, keeper.to_json(), replace=True)
            record_kept = True
        except OSError as error:
            writer.errors.spool_failed(error)
    kept = []
    if account.spooled:
        kept.append(f"{account.spooled} points")
    if record_kept and not record_written:
        kept.append("the final record")
    where = (
        f"{' and '.join(kept)} kept in {spool.path}; upload them with pacha_sdk.sync() "
        "or `python -m pacha_sdk sync`"
        if kept
        else "the spool took none of it"
    )
    record_fate = "" if record_kept else "; the final record could not be written anywhere"
    if loss is not None:
        logger.error("pacha: run %s: %s; %s%s", keeper.record.run_id, loss, where, record_fate)
        return
    logger.error(
        "pacha: %s did not take everything of run %s within %.0f s (%s): %s%s",
        parts.uri,
        keeper.record.run_id,
        parts.close_timeout,
        writer.errors.store or keeper.last_error,
        where,
        record_fate,
    )


class RunEnding(RunView):
    """The end of :class:`~pacha_sdk.tracking.run.Run`: its final-status methods."""

    _options: RunOptions
    _lifecycle: threading.RLock
    _finishing: bool
    _finisher: int | None
    _ended: threading.Event
    _ending: RunParts
    """What the end of the run works with, from the start on."""
    _last_step: dict[str, int]
    _finish_in_fork_child: Callable[..., None]

    def complete(self) -> None:
        """Finish the run as ``completed`` (after flushing every point)."""
        self._finish(Outcome(RunStatus.COMPLETED))

    def fail(self, error: BaseException | str) -> None:
        """Finish the run as ``failed`` with *error* (an exception or a message)."""
        self._finish(failure(error))

    def cancel(self) -> None:
        """Finish the run as ``cancelled`` (Ctrl-C, SIGTERM, a cancelled task)."""
        self._finish(Outcome(RunStatus.CANCELLED))

    def finish_for(self, error: BaseException | None) -> None:
        """Finish with the status DESIGN's table gives for how the block ended.

        Normal exit and ``SystemExit(0 / None)`` complete; ``KeyboardInterrupt``
        and ``asyncio.CancelledError`` cancel; anything else fails.
        """
        self._finish(outcome_of(error), interrupted=isinstance(error, KeyboardInterrupt))

    def _finish(self, outcome: Outcome, *, interrupted: bool = False) -> None:
        """End the run once (``_ending``); raises only for a run never started.

        SIGINT and SIGTERM are held meanwhile, then raised again (but a
        Ctrl-C while the block already ends by one: *interrupted*). A later
        call returns at once; from another thread, once the end is done.
        """
        with self._lifecycle:
            if self._state is RunState.PENDING:
                raise RunStateError(f"run {self.run_id} was never started")
            already = self._state is RunState.FINISHED or self._finishing
            waiting = already and self._finisher != threading.get_ident()
            if not already:
                self._finishing, self._finisher = True, threading.get_ident()
        if self._child is not None:
            self._finish_in_fork_child(self._options["close_timeout"], already=already)
            return
        if already:  # the first final status wins
            if waiting:
                self._ended.wait(self._options["close_timeout"] + CLOSE_MARGIN)
            return
        with _signals.held() as held:
            if interrupted:
                held.drop(signal.SIGINT)
            try:
                self._state = RunState.FINISHED
                self._last_step = {}
                self._last_error = end_run(self._ending, outcome, held) or self._last_error
            finally:
                _signals.unregister(self)
                open_runs.discard(self)
                self._ended.set()
