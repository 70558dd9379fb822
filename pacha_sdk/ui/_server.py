"""The HTTP side of ``pacha ui``: a token-guarded server from the standard library.

:class:`UiServer` is a :class:`http.server.ThreadingHTTPServer`: one
thread per connection, enough for one person's browser and a few scripts,
and no dependency beyond Python itself. It serves the page and its
scripts from a fixed list of package files (:data:`STATIC_FILES`) and the
JSON API of :mod:`pacha_sdk.ui._api`.

Safety, by construction rather than by filtering:

* Every request must carry the per-start random token: ``?token=``, the
  cookie the page gets from it (HttpOnly, SameSite=Strict, named after
  the port so two servers do not clobber each other), ``Authorization:
  Bearer`` or an ``X-Pacha-Token`` header. Without it: 401 JSON. ``/?token=...`` sets the cookie and
  redirects to ``/``, so the token leaves the address bar and history.
* No path is ever joined to a folder: static files come from a fixed map,
  runs are addressed by UUID and artifacts by 64-hex hash, so no request
  reaches anything outside the store.
* Responses forbid sniffing and framing, and the page's Content Security
  Policy allows scripts, styles and requests to this server only; the
  page renders every stored string with ``textContent``.
* The access log never prints query strings (the token would be in them).

Writes (curation: tags, notes, names, archive, delete, restore) are
``POST`` requests to the routes of :mod:`pacha_sdk.ui._curation`, which
write only through the curation API. Beyond the token, a write must carry
it in a header (``X-Pacha-Token`` or ``Authorization: Bearer``; the cookie
alone is not enough) and a JSON body (``Content-Type: application/json``),
and an ``Origin`` header, when sent, must be this server's. A form or
script on another site can send neither the header nor that content type
without a CORS preflight, which this server never grants, so it can never
make the browser write. The page reads the token for that header from
``GET /api/session``, which another site cannot read. ``--read-only``
(``UiServer(read_only=True)``) answers every write with 405.
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

from pacha_sdk.ui._api import Api
from pacha_sdk.ui._curation import MAX_BODY_BYTES
from pacha_sdk.ui._json import Response, error_response, json_response
from pacha_sdk.ui._store import StoreCurator

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
    "/static/curate.js": ("curate.js", "text/javascript; charset=utf-8"),
    "/static/trash.js": ("trash.js", "text/javascript; charset=utf-8"),
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
        read_only: turn every write route off (405), as ``pacha ui --read-only``.
    """

    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        reader: StoreReader,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        read_only: bool = False,
    ) -> None:
        self.api = Api(reader, None if read_only else StoreCurator(reader))
        self.token = secrets.token_urlsafe(32)
        super().__init__((host, port), _Handler)

    @property
    def read_only(self) -> bool:
        """Whether every write is refused."""
        return self.api.read_only

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
        """Whether the request carries the token: query, cookie, Bearer or ``X-Pacha-Token``."""
        offered = [query.get("token", ""), handler.headers.get("X-Pacha-Token", "")]
        bearer = handler.headers.get("Authorization", "")
        if bearer.startswith("Bearer "):
            offered.append(bearer.removeprefix("Bearer ").strip())
        for cookie in handler.headers.get_all("Cookie") or []:
            for pair in cookie.split(";"):
                name, _, value = pair.strip().partition("=")
                if name == self.cookie_name:
                    offered.append(value)
        return any(secrets.compare_digest(value, self.token) for value in offered if value)

    def write_refusal(self, handler: _Handler) -> Response | None:
        """Why a write request must be refused (already authorized), or ``None``.

        Checked after the token (401) and the route (404, 405), in this
        order: a read-only server (405), a foreign ``Origin`` (403), no token
        in a header (403), a body not declared JSON (415). The last three
        are what keeps other sites out.
        """
        if self.read_only:
            message = "this server is read-only (pacha ui --read-only): it never changes the store"
            return error_response(405, message)
        origin = handler.headers.get("Origin")
        host = handler.headers.get("Host", "")
        if origin is not None and urlsplit(origin).netloc != host:
            return error_response(403, f"cross-origin write refused (Origin {origin})")
        offered = handler.headers.get("X-Pacha-Token", "")
        bearer = handler.headers.get("Authorization", "")
        if bearer.startswith("Bearer "):
            offered = offered or bearer.removeprefix("Bearer ").strip()
        if not offered or not secrets.compare_digest(offered, self.token):
            message = (
                "a write needs the token in an X-Pacha-Token or Authorization: Bearer header "
                "(a cookie alone is not enough, so no other site can write through your browser)"
            )
            return error_response(403, message)
        content_type = handler.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            shown = content_type or "none"
            message = f"a write's body must be Content-Type: application/json, not {shown}"
            return error_response(415, message)
        return None


def _unauthorized() -> Response:
    return error_response(401, "missing or wrong token: open the URL that `pacha ui` printed")


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

    def do_POST(self) -> None:
        """A write (curation), behind the checks of :meth:`UiServer.write_refusal`."""
        body = self._read_body()
        if body is None:
            return
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        if not self.server.authorized(self, query):
            self._send(_unauthorized(), head=False)
            return
        query.pop("token", None)
        if not url.path.startswith("/api/"):
            response = error_response(405, f"{url.path} answers GET, HEAD only")
        else:
            response = (
                self.server.api.method_refusal(url.path, "POST")
                or self.server.write_refusal(self)
                or self._api(url.path, query, body)
            )
        self._send(response, head=False)

    def _method_not_allowed(self) -> None:
        self._send(error_response(405, "the UI answers GET, HEAD and POST only"), head=False)
        self.close_connection = True  # the request's body, if any, was not read

    do_PUT = do_DELETE = do_PATCH = _method_not_allowed

    def _read_body(self) -> bytes | None:
        """The request's body, or ``None`` once a refusal is sent (no length, too long)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            refusal = error_response(411, "a write needs a Content-Length (no chunked bodies)")
        else:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if 0 <= length <= MAX_BODY_BYTES:
                return self.rfile.read(length)
            refusal = error_response(
                413, f"a write's body must be at most {MAX_BODY_BYTES:,} bytes", "body"
            )
        self.close_connection = True
        self._send(refusal, head=False)
        return None

    def _api(self, path: str, query: dict[str, str], body: bytes, method: str = "POST") -> Response:
        try:
            return self.server.api.handle(path, query, method=method, body=body)
        except Exception as error:  # a bug or an unreadable file: 500, the server goes on
            self.log_error("%s: %s", type(error).__name__, error)
            return error_response(500, f"{type(error).__name__}: {error}")

    def _answer(self, *, head: bool) -> None:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        if not self.server.authorized(self, query):
            self._send(_unauthorized(), head=head)
            return
        if url.path == "/" and "token" in query:
            self._send(self._token_exchange(query["token"]), head=head)
            return
        query.pop("token", None)
        if url.path == "/api/session":
            self._send(self._session(), head=head)
        elif url.path.startswith("/api/"):
            self._send(self._api(url.path, query, b"", method="GET"), head=head)
        elif url.path in STATIC_FILES:
            self._send(self._static_file(url.path), head=head)
        else:
            self._send(error_response(404, "not found"), head=head)

    def _session(self) -> Response:
        """What the page needs to write: whether it may, and the token for the header."""
        read_only = self.server.read_only
        token = None if read_only else self.server.token
        return json_response({"read_only": read_only, "write_token": token})

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
