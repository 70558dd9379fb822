"""Runs in a forked child process: ``os.fork()`` and multiprocessing's ``"fork"`` start method.

A forked child inherits its parent's running runs as memory, without the
threads behind them: no writer, no sampler. Left as they are, the points
the child logs would sit in a buffer nobody writes, and the child leaving
the ``with`` block (or its ``atexit``) would rewrite the parent's
``run.json`` with its own, stale summary and status. Instead, right after
the fork, each run of the child (:meth:`ForkChild.continue_in_fork_child`)

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
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from pacha_sdk.tracking._setup import new_writer, new_writer_id

if TYPE_CHECKING:
    from pacha_sdk._clock import Clock
    from pacha_sdk.backends import Backend
    from pacha_sdk.models import RunId
    from pacha_sdk.storage.buffer import MetricBuffer
    from pacha_sdk.storage.writer import MetricWriter
    from pacha_sdk.tracking._options import RunOptions

__all__ = ["ChildWriter", "ForkChild", "finish_when_main_ends", "running"]

logger = logging.getLogger("pacha_sdk")


class ForkChild(Protocol):
    """What the fork hook acts on: a run that can carry on in a child process."""

    def continue_in_fork_child(self) -> None:
        """Detach from the parent's writer and record; called in the child, right after fork."""
        ...


running: weakref.WeakSet[ForkChild] = weakref.WeakSet()
"""Runs started and not finished in this process: carried on in a forked child."""


def _after_fork_in_child() -> None:
    for run in list(running):
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
        self, options: RunOptions, *, backend: Backend, run_id: RunId, rank: int, clock: Clock
    ) -> None:
        self.parent_pid = os.getppid()
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


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)
