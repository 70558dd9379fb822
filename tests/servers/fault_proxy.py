"""A TCP proxy in front of a test server whose faults can be switched while a test runs.

Refused connections, HTTP errors with S3-style bodies, and latency: what a
store that stops answering looks like to the SDK, without a Python mock.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

from tests.servers._helpers import LOOPBACK

__all__ = ["FaultProxy"]


_STATUS_CODES = {
    401: (b"Unauthorized", b"InvalidAccessKeyId"),
    403: (b"Forbidden", b"AccessDenied"),
    429: (b"Too Many Requests", b"SlowDown"),
    500: (b"Internal Server Error", b"InternalError"),
    503: (b"Service Unavailable", b"SlowDown"),
}
"""Statuses :meth:`FaultProxy.http_error` can answer: reason phrase and S3 error code."""
_MAX_HEAD = 64 * 1024


class _Reader:
    """Buffered reads of HTTP/1.1 request framing from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()

    def _fill(self) -> bool:
        chunk = self._sock.recv(65536)
        if not chunk:
            return False
        self._buf += chunk
        return True

    def head(self) -> bytes | None:
        """Return the next request's head (through the blank line), or None at EOF."""
        while (end := self._buf.find(b"\r\n\r\n")) < 0:
            if len(self._buf) > _MAX_HEAD or not self._fill():
                return None
        head = bytes(self._buf[: end + 4])
        del self._buf[: end + 4]
        return head

    def line(self) -> bytes:
        """Return one CRLF-terminated line, CRLF included."""
        while (end := self._buf.find(b"\r\n")) < 0:
            if not self._fill():
                raise ConnectionError("client closed mid-request")
        line = bytes(self._buf[: end + 2])
        del self._buf[: end + 2]
        return line

    def copy(self, count: int, sink: Callable[[bytes], Any]) -> None:
        """Pass exactly *count* bytes to *sink*."""
        while count > 0:
            if not self._buf and not self._fill():
                raise ConnectionError("client closed mid-body")
            piece = bytes(self._buf[:count])
            del self._buf[: len(piece)]
            count -= len(piece)
            sink(piece)

    def body(self, head: bytes, sink: Callable[[bytes], Any]) -> None:
        """Pass the body that follows *head* to *sink* (Content-Length or chunked)."""
        headers = _headers(head)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                size_line = self.line()
                sink(size_line)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while (trailer := self.line()) != b"\r\n":
                        sink(trailer)
                    sink(b"\r\n")
                    return
                self.copy(size + 2, sink)
        self.copy(int(headers.get("content-length", "0") or "0"), sink)


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    pairs = (line.split(":", 1) for line in lines if ":" in line)
    return {name.strip().lower(): value.strip() for name, value in pairs}


def _reset(sock: socket.socket) -> None:
    """Close *sock* with a TCP reset, as a store that dropped the connection.

    ``shutdown(SHUT_RD)`` first wakes a thread blocked in ``recv`` on it
    (closing alone does not on Linux) without sending a FIN.
    """
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
    with contextlib.suppress(OSError):
        sock.close()


class FaultProxy:
    """A TCP proxy on 127.0.0.1 in front of an HTTP server, with faults switchable at runtime.

    Modes: pass-through (the default, and after :meth:`heal`), :meth:`refuse`
    (every connection is reset, open ones included: the store stops
    answering), :meth:`http_500` / :meth:`http_error` (every request gets that
    status, with an S3-style error body such as ``500 InternalError``)
    and :meth:`delay` (each request waits before it is forwarded). It parses
    only request framing, so keep-alive connections work, and counts requests
    in :attr:`requests`. Bounded: at most *max_connections* at once (more are
    reset), every socket times out after *idle_timeout* seconds, and
    :meth:`stop` closes everything.

    Args:
        upstream: ``(host, port)`` of the real server.
        max_connections: connections served at once.
        idle_timeout: seconds a connection may stay silent.
    """

    def __init__(
        self, upstream: tuple[str, int], *, max_connections: int = 64, idle_timeout: float = 60.0
    ) -> None:
        self.upstream = upstream
        self._idle = idle_timeout
        self._listener = socket.create_server((LOOPBACK, 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._mode = "pass"
        self._delay = 0.0
        self._status = 500
        self._sockets: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._stopped = threading.Event()
        self._healed = threading.Event()
        self.requests = 0
        """HTTP requests seen, whatever the mode."""
        self.refused = 0
        """Connections and requests reset by :meth:`refuse` or the connection bound."""
        self.failed = 0
        """Requests answered with an injected HTTP error."""
        self.peak_held = 0
        """Most requests held by :meth:`delay` at one time: how many a client had in flight."""
        self._held = 0
        self._acceptor = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)

    @property
    def endpoint_url(self) -> str:
        """The proxy's URL, to use instead of the server's."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def mode(self) -> str:
        """``"pass"``, ``"refuse"``, ``"http_error"`` or ``"delay"``."""
        return self._mode

    def start(self) -> FaultProxy:
        """Start accepting connections."""
        self._acceptor.start()
        return self

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def refuse(self) -> None:
        """Reset every connection, open and new, until :meth:`heal`."""
        self._set("refuse")
        self._close_all()

    def http_500(self) -> None:
        """Answer every request with ``500 InternalError`` until :meth:`heal`."""
        self.http_error(500)

    def http_error(self, status: int) -> None:
        """Answer every request with HTTP *status* (401, 403, 429, 500, 503) until :meth:`heal`."""
        if status not in _STATUS_CODES:
            raise ValueError(f"status must be one of {sorted(_STATUS_CODES)}, got {status}")
        self._set("http_error", status=status)

    def delay(self, seconds: float) -> None:
        """Hold each request *seconds* before forwarding it, until :meth:`heal`."""
        self._set("delay", seconds)

    def heal(self) -> None:
        """Pass everything through again."""
        self._set("pass")

    def reset_counts(self) -> None:
        """Set :attr:`requests`, :attr:`refused`, :attr:`failed` and :attr:`peak_held` to zero."""
        with self._lock:
            self.requests = self.refused = self.failed = self.peak_held = 0

    def _set(self, mode: str, delay: float = 0.0, status: int = 500) -> None:
        with self._lock:
            self._mode, self._delay, self._status = mode, delay, status
            if mode == "delay":
                self._healed.clear()
            else:
                self._healed.set()

    def _close_all(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _reset(sock)

    def stop(self) -> None:
        """Stop accepting, close every connection and wait for the threads."""
        self._stopped.set()
        self._healed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._close_all()
        if self._acceptor.is_alive():
            self._acceptor.join(5)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(5)

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._mode == "refuse" or not self._slots.acquire(blocking=False):
                with self._lock:
                    self.refused += 1
                _reset(client)
                continue
            self._spawn(self._serve, client)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=self._run, args=(target, *args), daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _run(self, target: Callable[..., None], *args: Any) -> None:
        try:
            target(*args)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _track(self, sock: socket.socket) -> None:
        sock.settimeout(self._idle)
        with self._lock:
            self._sockets.add(sock)

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()

    def _serve(self, client: socket.socket) -> None:
        """Relay one client connection, request by request, applying the current mode."""
        self._track(client)
        upstream: socket.socket | None = None
        reader = _Reader(client)
        try:
            while not self._stopped.is_set():
                head = reader.head()
                if head is None:
                    return
                with self._lock:
                    self.requests += 1
                    mode, delay, status = self._mode, self._delay, self._status
                if mode == "refuse":
                    with self._lock:
                        self.refused += 1
                    return
                if mode == "http_error":
                    self._answer_error(client, reader, head, status)
                    return
                if mode == "delay":
                    self._hold(delay)
                if upstream is None:
                    upstream = socket.create_connection(self.upstream, timeout=self._idle)
                    self._track(upstream)
                    self._spawn(self._pump, upstream, client)
                upstream.sendall(head)
                reader.body(head, upstream.sendall)
        except OSError:
            return
        finally:
            self._forget(client)
            if upstream is not None:
                self._forget(upstream)
            self._slots.release()

    def _hold(self, delay: float) -> None:
        """Wait *delay* seconds (or until healed), counting the requests held together."""
        with self._lock:
            self._held += 1
            self.peak_held = max(self.peak_held, self._held)
        try:
            self._healed.wait(delay)
        finally:
            with self._lock:
                self._held -= 1

    def _answer_error(
        self, client: socket.socket, reader: _Reader, head: bytes, status: int
    ) -> None:
        with self._lock:
            self.failed += 1
        if "100-continue" not in _headers(head).get("expect", "").lower():
            reader.body(head, lambda _: None)  # unread bytes would turn close() into a reset
        reason, code = _STATUS_CODES[status]
        body = (
            b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
            b"<Message>injected by FaultProxy</Message></Error>" % code
        )
        response = (
            b"HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s"
        ) % (status, reason, len(body), b"" if head.startswith(b"HEAD ") else body)
        client.sendall(response)
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)

    def _pump(self, upstream: socket.socket, client: socket.socket) -> None:
        """Copy the server's responses back to the client until either side closes."""
        try:
            while chunk := upstream.recv(65536):
                client.sendall(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
