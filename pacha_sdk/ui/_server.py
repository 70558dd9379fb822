"""The HTTP side of ``pacha ui``: a token-guarded, read-only server from the standard library.

:class:`UiServer` is a :class:`http.server.ThreadingHTTPServer`: one
thread per connection, enough for one person's browser and a few scripts,
and no dependency beyond Python itself. It serves the page and its
scripts from a fixed list of package files (:data:`STATIC_FILES`) and the
JSON API of :mod:`pacha_sdk.ui._api`.

Safety, by construction rather than by filtering:

* Every request must carry the per-start random token: ``?token=``, the
  cookie the page gets from it (HttpOnly, SameSite=Strict, named after
  the port so two servers do not clobber each other), or ``Authorization:
  Bearer``. Without it: 401 JSON. ``/?token=...`` sets the cookie and
  redirects to ``/``, so the token leaves the address bar and history.
* No path is ever joined to a folder: static files come from a fixed map,
  runs are addressed by UUID and artifacts by 64-hex hash, so no request
  reaches anything outside the store.
* Responses forbid sniffing and framing, and the page's Content Security
  Policy allows scripts, styles and requests to this server only; the
  page renders every stored string with ``textContent``.
* The access log never prints query strings (the token would be in them).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sys
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from pacha_sdk.ui._api import Api, Response, error_response

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pacha_sdk.ui._store import StoreReader

__all__ = ["CONTENT_SECURITY_POLICY", "STATIC_FILES", "UiServer"]

STATIC_FILES: dict[str, tuple[str, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.css": ("app.css", "text/css; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/util.js": ("util.js", "text/javascript; charset=utf-8"),
    "/static/filter.js": ("filter.js", "text/javascript; charset=utf-8"),
    "/static/runs.js": ("runs.js", "text/javascript; charset=utf-8"),
    "/static/charts.js": ("charts.js", "text/javascript; charset=utf-8"),
    "/static/plot.js": ("plot.js", "text/javascript; charset=utf-8"),
    "/static/run.js": ("run.js", "text/javascript; charset=utf-8"),
    "/static/compare.js": ("compare.js", "text/javascript; charset=utf-8"),
    "/static/uPlot.iife.min.js": ("vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    "/static/uPlot.min.css": ("vendor/uPlot.min.css", "text/css; charset=utf-8"),
    "/static/uPlot.LICENSE": ("vendor/uPlot.LICENSE", "text/plain; charset=utf-8"),
}
"""URL path -> (file under ``pacha_sdk/ui/static/``, content type): all the server serves."""

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)

_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@cache
def _static(name: str) -> tuple[bytes, str]:
    """A packaged static file and its ETag, read once."""
    data = resources.files("pacha_sdk.ui").joinpath("static", *name.split("/")).read_bytes()
    return data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


class UiServer(ThreadingHTTPServer):
    """``pacha ui``'s server over one store; :attr:`url` carries the token.

    Args:
        reader: the store to show.
        host: address to bind; ``127.0.0.1`` keeps it on this machine.
        port: TCP port; 0 picks a free one.
    """

    daemon_threads = True
    block_on_close = False

    def __init__(self, reader: StoreReader, host: str = "127.0.0.1", port: int = 0) -> None:
        self.api = Api(reader)
        self.token = secrets.token_urlsafe(32)
        super().__init__((host, port), _Handler)

    @property
    def port(self) -> int:
        """The port actually bound."""
        return int(self.server_address[1])

    @property
    def cookie_name(self) -> str:
        """The token cookie's name (per port: cookies ignore ports)."""
        return f"pacha_ui_{self.port}"

    @property
    def url(self) -> str:
        """``http://HOST:PORT/?token=...``: what to open in a browser."""
        host = str(self.server_address[0])
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/?token={self.token}"

    def authorized(self, handler: _Handler, query: dict[str, str]) -> bool:
        """Whether the request carries the token in any of the three accepted ways."""
        offered = [query.get("token", "")]
        bearer = handler.headers.get("Authorization", "")
        if bearer.startswith("Bearer "):
            offered.append(bearer.removeprefix("Bearer ").strip())
        for cookie in handler.headers.get_all("Cookie") or []:
            for pair in cookie.split(";"):
                name, _, value = pair.strip().partition("=")
                if name == self.cookie_name:
                    offered.append(value)
        return any(secrets.compare_digest(value, self.token) for value in offered if value)


class _Handler(BaseHTTPRequestHandler):
    """One connection's requests; HTTP/1.1 keep-alive so polling reuses the socket."""

    server: UiServer
    protocol_version = "HTTP/1.1"
    server_version = "pacha-ui"
    sys_version = ""
    error_content_type = "application/json"
    error_message_format = '{"error": "%(message)s"}'
    _NO_BODY: ClassVar[set[int]] = {204, 304}

    def version_string(self) -> str:
        """``Server: pacha-ui`` (no Python version)."""
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Only errors reach stderr, and never with a query string."""

    def log_error(self, format: str, *args: Any) -> None:
        """Server-side failures: method and path only."""
        path = urlsplit(getattr(self, "path", "")).path
        message = format % args
        sys.stderr.write(f"pacha ui: {getattr(self, 'command', '-')} {path}: {message}\n")

    def do_HEAD(self) -> None:
        """As GET, without a body."""
        self._answer(head=True)

    def do_GET(self) -> None:
        """Static files, the token exchange, and the read-only API."""
        self._answer(head=False)

    def _method_not_allowed(self) -> None:
        self._send(error_response(405, "the UI is read-only: only GET"), head=False)

    do_POST = do_PUT = do_DELETE = do_PATCH = _method_not_allowed

    def _answer(self, *, head: bool) -> None:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        if not self.server.authorized(self, query):
            message = "missing or wrong token: open the URL that `pacha ui` printed"
            self._send(error_response(401, message), head=head)
            return
        if url.path == "/" and "token" in query:
            self._send(self._token_exchange(query["token"]), head=head)
            return
        query.pop("token", None)
        if url.path.startswith("/api/"):
            try:
                response = self.server.api.handle(url.path, query)
            except Exception as error:  # a bug or an unreadable file: 500, the server goes on
                self.log_error("%s: %s", type(error).__name__, error)
                response = error_response(500, f"{type(error).__name__}: {error}")
            self._send(response, head=head)
        elif url.path in STATIC_FILES:
            self._send(self._static_file(url.path), head=head)
        else:
            self._send(error_response(404, "not found"), head=head)

    def _token_exchange(self, token: str) -> Response:
        """Set the cookie from ``?token=`` and send the browser to ``/`` without it."""
        cookie = f"{self.server.cookie_name}={token}; Path=/; HttpOnly; SameSite=Strict"
        return Response(303, b"", "text/plain", {"Location": "/", "Set-Cookie": cookie})

    def _static_file(self, path: str) -> Response:
        name, content_type = STATIC_FILES[path]
        data, etag = _static(name)
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if self.headers.get("If-None-Match") == etag:
            return Response(304, b"", content_type, headers)
        return Response(200, data, content_type, headers)

    def _send(self, response: Response, *, head: bool) -> None:
        self.send_response(response.status)
        headers = {**_COMMON_HEADERS, **response.headers}
        headers["Content-Type"] = response.content_type
        if response.content_type.startswith("text/html"):
            headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        if response.content_type == "application/json":
            headers["Cache-Control"] = "no-store"
        streamed = not isinstance(response.body, bytes)
        if streamed:
            headers["Transfer-Encoding"] = "chunked"
        elif response.status not in self._NO_BODY:
            headers["Content-Length"] = str(len(response.body))  # type: ignore[arg-type]
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if head or response.status in self._NO_BODY:
            return
        if isinstance(response.body, bytes):
            self.wfile.write(response.body)
            return
        self._stream(response.body)

    def _stream(self, pieces: Iterator[bytes]) -> None:
        """Chunked transfer; a failure midway drops the connection without the final chunk."""
        try:
            for piece in pieces:
                if piece:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        except (ConnectionAbortedError, OSError) as error:
            self.log_error("stream cut short: %s", error)
            self.close_connection = True
        except Exception as error:  # a store failure midway: the client must not see success
            self.log_error("stream cut short: %s", json.dumps(str(error)))
            self.close_connection = True
