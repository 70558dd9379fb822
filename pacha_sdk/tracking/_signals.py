"""SIGTERM while a run is active: record ``cancelled``, then behave as before.

Schedulers (SLURM, Kubernetes, torchrun) stop jobs with SIGTERM. While at
least one run is active, a handler is installed (from the main thread,
the only place Python allows it); it cancels every active run, flushing
their points, then restores the previous handler and hands it the signal:
the default action still ends the process, a user handler still runs, an
ignored signal stays ignored. With no run active the previous handler is
back in place.

The module knows nothing of runs: it keeps objects with a ``cancel()``
method (:class:`Cancellable`), which a :class:`~pacha_sdk.tracking.run.Run` is.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any, Protocol

__all__ = ["Cancellable", "register", "unregister"]


class Cancellable(Protocol):
    """What SIGTERM acts on: something that records itself cancelled and flushes."""

    def cancel(self) -> None:
        """Finish as cancelled; called from the signal handler, in the main thread."""
        ...


_lock = threading.RLock()
_runs: list[Cancellable] = []
_previous: Any = None
_installed = False


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def register(run: Cancellable) -> None:
    """Track *run* as active; install the handler if this is the main thread."""
    global _installed, _previous
    with _lock:
        _runs.append(run)
        if not _installed and _in_main_thread():
            _previous = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, _on_sigterm)
            _installed = True


def unregister(run: Cancellable) -> None:
    """Forget *run*; restore the previous handler once no run is active."""
    with _lock:
        if run in _runs:
            _runs.remove(run)
        if not _runs:
            _restore()


def _restore() -> None:
    global _installed
    if _installed and _in_main_thread():
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, _previous)
        _installed = False


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    with _lock:
        runs = list(reversed(_runs))
        previous = _previous
    for run in runs:
        run.cancel()
    with _lock:
        _restore()
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:  # SIG_DFL, or None for a handler set outside Python
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
