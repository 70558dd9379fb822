"""Runs in a forked child process: ``os.fork()`` and multiprocessing's ``"fork"`` start method.

A forked child inherits its parent's running runs as memory, without the
threads behind them: no writer, no sampler. Left as they are, the points
the child logs would sit in a buffer nobody writes, and the child leaving
the ``with`` block (or its ``atexit``) would rewrite the parent's
``run.json`` with its own, stale summary and status. Instead, right after
the fork, each run of the child (:meth:`ForkedRun.continue_in_fork_child`)

* forgets the parent's unwritten points (the parent's writer stores them),
  keeping their latest values for ``get_metric``;
* starts, on its first logged point, a writer of its own: a new writer id,
  so its own part files in the same run, and no record writes at all
  (``run.json`` and rank records stay the parent's);
* stores what it logged when the child ends, however it ends short of a
  kill: leaving the block, ``sys.exit``, a multiprocessing worker returning
  (which skips ``atexit``) or SIGTERM (a Pool terminating its workers).
  The exit path is :func:`finish_when_main_ends`: a non-daemon thread
  waits for the child's main thread, and the interpreter waits for it.

``os._exit()`` and SIGKILL run no code at all: a child ended so loses what
it logged since its last flush, as any killed process does.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from pacha_sdk.storage.deadlines import StoreCalls
from pacha_sdk.tracking import _signals
from pacha_sdk.tracking._finish import open_runs
from pacha_sdk.tracking._setup import new_writer, new_writer_id
from pacha_sdk.tracking._view import RunState, RunView

if TYPE_CHECKING:
    from pacha_sdk._clock import Clock
    from pacha_sdk.backends import Backend
    from pacha_sdk.models import RunId
    from pacha_sdk.storage.buffer import MetricBuffer
    from pacha_sdk.storage.parts import Rows
    from pacha_sdk.storage.writer import MetricWriter
    from pacha_sdk.tracking._observers import Observers
    from pacha_sdk.tracking._options import RunOptions

__all__ = ["ChildWriter", "ForkedRun", "finish_when_main_ends"]

logger = logging.getLogger("pacha_sdk")


def _after_fork_in_child() -> None:
    for run in list(open_runs):
        if isinstance(run, ForkedRun):
            run.continue_in_fork_child()


def finish_when_main_ends(finish: Callable[[], None], name: str) -> threading.Thread:
    """Call *finish* once this process's main thread has ended; return the watching thread.

    The thread is not a daemon, so the interpreter's exit (``sys.exit``, the
    end of the script, a multiprocessing worker's return) waits for it,
    before ``atexit`` hooks and even where they never run.
    """

    def watch() -> None:
        threading.main_thread().join()
        finish()

    watcher = threading.Thread(target=watch, name=name, daemon=False)
    watcher.start()
    return watcher


class ChildWriter:
    """The writer of a run in a forked child: its own part files, never a record write."""

    def __init__(
        self,
        options: RunOptions,
        *,
        backend: Backend,
        run_id: RunId,
        rank: int,
        clock: Clock,
        max_slots: int,
    ) -> None:
        self.parent_pid = os.getppid()
        self.max_slots = max_slots
        """Buffer slots past which the child's logging waits for its writer."""
        self.writer: MetricWriter | None = None
        self._options = options
        self._backend = backend
        self._run_id = run_id
        self._rank = rank
        self._clock = clock
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def start(self, buffer: MetricBuffer, finish: Callable[[], None]) -> MetricWriter:
        """Start the child's writer (once) and the thread that finishes the run at exit."""
        with self._lock:
            if self.writer is None:
                self.writer = new_writer(
                    self._options,
                    backend=self._backend,
                    buffer=buffer,
                    run_id=self._run_id,
                    rank=self._rank,
                    heartbeat=_no_record,
                    clock=self._clock,
                    writer_id=new_writer_id(),
                    calls=StoreCalls(self._backend.uri),  # the parent's helper threads are gone
                )
                self.writer.start()
                finish_when_main_ends(finish, name=f"pacha-fork-exit-{self._run_id}")
            return self.writer

    def stop(self, close_timeout: float) -> None:
        """Store what the child logged; say where it stays if the store does not take it."""
        try:
            self._stop(close_timeout)
        finally:
            self._stopped.set()

    def wait_stopped(self, timeout: float) -> None:
        """Wait until :meth:`stop`, under way in another thread, has stored what it could.

        A multiprocessing Pool ends its workers with SIGTERM while they may
        be finishing on their own: the signal must not cut that flush short.
        """
        if self.writer is not None:
            self._stopped.wait(timeout)

    def _stop(self, close_timeout: float) -> None:
        writer = self.writer
        if writer is None or writer.stop(close_timeout):
            return
        logger.error(
            "pacha: %s did not take everything a forked child (pid %d) logged in run %s "
            "within %.0f s (%s): %d points kept in %s; upload them with `pacha sync`",
            self._backend.uri,
            os.getpid(),
            self._run_id,
            close_timeout,
            writer.last_error,
            writer.pending_points,
            writer.spool.path,
        )


def _no_record() -> None:
    """A child's heartbeat: the run's record belongs to the process that started it."""


class ForkedRun(RunView):
    """The part of :class:`~pacha_sdk.tracking.run.Run` that carries it on in a forked child."""

    _options: RunOptions
    _clock: Clock
    _lifecycle: threading.RLock
    _finishing: bool
    _buffer: MetricBuffer
    _rows: Rows
    _writer: MetricWriter | None
    _observers: Observers | None
    _max_slots: int
    _last_step: dict[str, int]
    _child: ChildWriter | None = None
    """The child's writer once this process is a fork of the one that started the run."""
    cancel: Callable[[], None]
    finish_for: Callable[[BaseException | None], None]

    def continue_in_fork_child(self) -> None:
        """In a forked child, right after the fork: carry the run on without the parent's threads.

        The parent's unwritten points stay the parent's to store; the child
        starts its own writer at its first point and never writes the record.
        """
        self._lifecycle = threading.RLock()  # a parent thread may have held these at the fork
        self._keeper.lock = threading.RLock()
        self._finishing = False
        self._buffer = self._buffer.for_fork_child()
        self._rows = self._buffer.rows
        self._writer = None
        self._observers = None
        self._child = ChildWriter(
            self._options, backend=self._backend, run_id=self.run_id, rank=self._rank,
            clock=self._clock, max_slots=self._max_slots,
        )  # fmt: skip
        self._max_slots = -1  # so the hot path's size check starts the child's writer

    def _start_child_writer(self) -> None:
        """The child's first point: start its writer, and stop checking at every point."""
        if self._child is None:
            return  # not a forked child: the run has not started its writer yet
        self._writer = self._child.start(self._buffer, finish=self._end_child)
        self._max_slots = self._child.max_slots

    def _end_child(self) -> None:
        """Called when the child's main thread has ended: store what it logged."""
        self.finish_for(None)

    def _finish_in_fork_child(self, close_timeout: float, *, already: bool) -> None:
        """End the run in a forked child: store its points; the record stays the parent's.

        *already*: another thread is finishing it (a Pool's SIGTERM arriving
        while the worker ends on its own): wait for that flush, do not cut it.
        """
        assert self._child is not None
        if already:
            self._child.wait_stopped(close_timeout + 1.0)
            return
        self._last_step = {}
        self._state = RunState.FINISHED
        self._child.stop(close_timeout)
        _signals.unregister(self)
        open_runs.discard(self)


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)
