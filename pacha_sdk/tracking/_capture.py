"""Console capture: a run's stdout and stderr teed into ``runs/<id>/output.log``.

With ``capture_output=True`` a run replaces :data:`sys.stdout` and
:data:`sys.stderr` with tees that pass every write on unchanged and also
append it to a local temporary log (both streams interleaved, as a
terminal shows them). The log is uploaded with each flush while it is
small (up to :data:`PERIODIC_UPLOAD_LIMIT`, so a crashed run still leaves
most of it) and always at the end; the run's ``log_uri`` names it.

The capture is at the Python level: ``print``, warnings, tracebacks and
``logging`` are captured, from every thread (stream handlers already
writing to stdout or stderr, as ``logging.basicConfig()`` makes them, are
pointed at the tees for the run). Output that C extensions or child
processes write straight to file descriptors 1 and 2 is not: redirecting
the descriptors would need a pipe and a thread per stream, and would break
programs that expect a terminal. The streams and handlers are restored when
the run ends, however it ends; if other code wrapped a stream meanwhile,
the tee stays in place as a plain pass-through.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from typing import TYPE_CHECKING, Any, TextIO, cast

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pacha_sdk.backends import Backend
    from pacha_sdk.storage.deadlines import StoreCalls

__all__ = ["PERIODIC_UPLOAD_LIMIT", "OutputCapture"]

PERIODIC_UPLOAD_LIMIT = 4 * 1024 * 1024
"""Largest log re-uploaded at each flush; a larger one is uploaded at the end only."""

logger = logging.getLogger("pacha_sdk")


class _Tee:
    """A text stream that writes to the original stream and to the run's log."""

    def __init__(self, stream: TextIO, capture: OutputCapture) -> None:
        self.stream = stream
        self.capture: OutputCapture | None = capture

    def write(self, text: str) -> int:
        capture = self.capture
        if capture is not None:
            capture.record(text)
        return self.stream.write(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)  # encoding, isatty, fileno, buffer...


def _stream_handlers() -> list[logging.StreamHandler[Any]]:
    """Every ``StreamHandler`` (not file handlers) of every logger."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    return [
        handler
        for logger in loggers
        if isinstance(logger, logging.Logger)
        for handler in logger.handlers
        if type(handler) is logging.StreamHandler
    ]


def _rebind_handlers(tees: Iterable[_Tee]) -> list[tuple[logging.StreamHandler[Any], _Tee]]:
    """Point handlers writing to a teed stream at its tee; return what was changed."""
    by_stream = {id(tee.stream): tee for tee in tees}
    changed = []
    for handler in _stream_handlers():
        tee = by_stream.get(id(handler.stream))
        if tee is not None:
            handler.setStream(cast("Any", tee))
            changed.append((handler, tee))
    return changed


class OutputCapture:
    """Tees this process's stdout and stderr into a log, uploaded to *key* in *backend*."""

    def __init__(self, backend: Backend, key: str, calls: StoreCalls) -> None:
        self._backend = backend
        self._key = key
        self._calls = calls
        fd, self.path = tempfile.mkstemp(prefix="pacha-output-", suffix=".log")
        self._file = os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace", newline="")
        self._write_lock = threading.Lock()
        self._upload_lock = threading.Lock()
        self._uploaded_size = -1
        self._tees: dict[str, _Tee] = {}
        self._handlers: list[tuple[logging.StreamHandler[Any], _Tee]] = []

    def start(self) -> OutputCapture:
        """Install the tees on :data:`sys.stdout` and :data:`sys.stderr`."""
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if stream is not None:
                tee = _Tee(stream, self)
                self._tees[name] = tee
                setattr(sys, name, cast("TextIO", tee))
        self._handlers = _rebind_handlers(self._tees.values())
        return self

    def record(self, text: str) -> None:
        """Append *text* to the log (any thread); never raises."""
        with self._write_lock, contextlib.suppress(Exception):
            if not self._file.closed:
                self._file.write(text)

    def stop(self) -> None:
        """Restore the streams and logging handlers, close the log; safe to call twice."""
        for handler, tee in self._handlers:
            if handler.stream is tee:
                handler.setStream(tee.stream)
        self._handlers.clear()
        for name, tee in self._tees.items():
            tee.capture = None
            if getattr(sys, name) is tee:
                setattr(sys, name, tee.stream)
        self._tees.clear()
        with self._write_lock:
            self._file.close()

    def upload(self, *, final: bool, timeout: float) -> bool:
        """Upload the log if it changed, waiting at most *timeout* s; return whether it is stored.

        Before *final*, a log over :data:`PERIODIC_UPLOAD_LIMIT` is left for
        the end. Never raises: a failed final upload keeps the local file
        and says where it is.
        """
        with self._upload_lock:
            try:
                data = self._snapshot(final=final)
                if data is not None:
                    payload = data
                    self._calls.call(
                        f"write {self._key}",
                        lambda: self._backend.replace(self._key, payload),
                        timeout=timeout,
                    )
                    self._uploaded_size = len(payload)
            except Exception as error:
                self._report_failure(error, final=final)
                return False
        if final:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        return True

    def _snapshot(self, *, final: bool) -> bytes | None:
        """The log's bytes if they should be uploaded now, else ``None``."""
        with self._write_lock:
            if not self._file.closed:
                self._file.flush()
        size = os.path.getsize(self.path)
        if size == self._uploaded_size or (not final and size > PERIODIC_UPLOAD_LIMIT):
            return None
        with open(self.path, "rb") as f:
            return f.read()

    def _report_failure(self, error: Exception, *, final: bool) -> None:
        if final:
            logger.warning(
                "pacha: could not store the console log at %s/%s (%s); it is kept in %s",
                self._backend.uri,
                self._key,
                error,
                self.path,
            )
        else:
            logger.debug("pacha: console log upload failed, will retry: %s", error)
