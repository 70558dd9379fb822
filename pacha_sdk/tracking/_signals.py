"""SIGTERM while a run is active, and signals while a run ends.

Schedulers (SLURM, Kubernetes, torchrun) stop jobs with SIGTERM. While at
least one run is active, a handler is installed (from the main thread,
the only place Python allows it); it cancels every active run, flushing
their points, then restores the previous handler and hands it the signal:
the default action still ends the process, a user handler still runs, an
ignored signal stays ignored. With no run active the previous handler is
back in place.

While a run writes its last points (:func:`held`), SIGINT and SIGTERM are
held instead: a scheduler's SIGTERM at the end of a job, or a second
Ctrl-C, must not cut the final flush short and leave the run ``running``
with its last points lost. The run finishes (within its ``close_timeout``),
records ``cancelled``, and then each held signal is raised again, so the
handler in place by then acts on it as it would have: the default action,
the user's handler, ``KeyboardInterrupt``. An ignored signal is not held.

The module knows nothing of runs: it keeps objects with a ``cancel()``
method (:class:`Cancellable`), which a :class:`~pacha_sdk.tracking.run.Run` is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any, Protocol

__all__ = ["Cancellable", "HeldSignals", "held", "register", "unregister"]

logger = logging.getLogger("pacha_sdk")

HELD = (signal.SIGINT, signal.SIGTERM)
"""The signals :func:`held` keeps back while a run ends."""


class Cancellable(Protocol):
    """What SIGTERM acts on: something that records itself cancelled and flushes."""

    def cancel(self) -> None:
        """Finish as cancelled; called from the signal handler, in the main thread."""
        ...


class HeldSignals:
    """The signals that arrived while :func:`held` held them, in order."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.dropped: set[int] = set()
        self.interrupting: set[int] = set()
        """Of those received, the ones whose handler would have ended the block or the process."""

    @property
    def stopping(self) -> bool:
        """Whether a received signal would have stopped the run had it come a moment earlier."""
        return bool(self.interrupting)

    def drop(self, signum: int) -> None:
        """Do not raise *signum* again afterwards (the caller is handling it already)."""
        self.dropped.add(signum)


_lock = threading.RLock()
_runs: list[Cancellable] = []
_previous: Any = None
_installed = False
_holding: HeldSignals | None = None
_saved: dict[int, Any] = {}
"""While holding: each held signal's handler from before, which :func:`held` puts back."""


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _sigterm_handler() -> Any:
    """The SIGTERM handler in place, or the one to put back once holding ends."""
    if signal.SIGTERM in _saved:
        return _saved[signal.SIGTERM]
    return signal.getsignal(signal.SIGTERM)


def _set_sigterm_handler(handler: Any) -> None:
    if signal.SIGTERM in _saved:
        _saved[signal.SIGTERM] = handler
    else:
        signal.signal(signal.SIGTERM, handler)


def register(run: Cancellable) -> None:
    """Track *run* as active; install the handler if this is the main thread."""
    global _installed, _previous
    with _lock:
        _runs.append(run)
        if not _installed and _in_main_thread():
            _previous = _sigterm_handler()
            _set_sigterm_handler(_on_sigterm)
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
        if _sigterm_handler() is _on_sigterm:
            _set_sigterm_handler(_previous)
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


def _would_interrupt(handler: Any) -> bool:
    """Whether *handler* would have cancelled the run: pacha's own, Python's default, SIG_DFL."""
    return handler in (_on_sigterm, signal.default_int_handler, signal.SIG_DFL, None)


def _hold(signum: int, frame: FrameType | None) -> None:
    holding = _holding
    if holding is None:  # holding has ended: the handler from before is back
        return
    if not holding.received:
        with contextlib.suppress(Exception):
            logger.warning(
                "pacha: %s received while a run writes its last points; "
                "it is handled once they are written (at most close_timeout)",
                signal.Signals(signum).name,
            )
    holding.received.append(signum)
    if _would_interrupt(_saved.get(signum)):
        holding.interrupting.add(signum)


@contextlib.contextmanager
def held() -> Iterator[HeldSignals]:
    """Hold SIGINT and SIGTERM while the block runs; raise each again once it is over.

    Only the main thread can do this (elsewhere the block runs as it is:
    signals go to the main thread). Nested uses share the outermost's
    holding; the signals are raised again when the outermost ends, after
    the handlers in place before it (updated by :func:`unregister` meanwhile)
    are back.
    """
    global _holding
    if not _in_main_thread():
        yield HeldSignals()
        return
    if _holding is not None:
        yield _holding
        return
    holding = _holding = HeldSignals()
    try:
        for signum in HELD:
            handler = signal.getsignal(signum)
            if handler is not signal.SIG_IGN and handler is not None:
                _saved[signum] = handler
                signal.signal(signum, _hold)
        yield holding
    finally:
        with _lock:
            for saved, before in _saved.items():
                if signal.getsignal(saved) is _hold:
                    signal.signal(saved, before)
            _saved.clear()
            _holding = None
        for received in dict.fromkeys(holding.received):
            if received not in holding.dropped:
                signal.raise_signal(received)
