"""The JSON API of ``pacha ui``: requests in, :class:`Response` out, no HTTP in sight.

The page uses only these routes, and scripts may too (the README lists
them). The ``GET`` routes read the store::

    GET /api/runs[?archived=false|true|all]        runs, newest first (archived: left out)
    GET /api/runs/<run_id>                         the record (as load_run) and rank records
    GET /api/runs/<run_id>/metrics?name=&max_points=&after_step=&min_step=&max_step=&rank=
    GET /api/runs/<run_id>/lineage                 artifacts produced and used, with their runs
    GET /api/runs/<run_id>/console                 the end of the captured console output
    GET /api/artifacts/<content_hash>[?name=]      the blob, verified while it streams
    GET /api/trash                                 the deleted runs

and the ``POST`` routes of :mod:`pacha_sdk.ui._curation` curate runs
through the curation API (annotation files and trash moves, never
``run.json``), unless the server is read-only.

Errors are JSON ``{"error": "...", "parameter": "..."}``: 400 for a bad
parameter or field (named), 404 for an unknown run, metric or artifact
(with ``"deleted": true`` for a run in the trash), 405 for a route asked
with the wrong method, 409 for deleting a live run without ``force``, 502
when the store cannot be read or written.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote

from pacha_sdk.exceptions import (
    ArtifactCorruptedError,
    ArtifactNotFoundError,
    ExtraNotInstalledError,
    InvalidAnnotationError,
    PachaError,
    RunDeletedError,
    RunNotFoundError,
    RunStateError,
    StoreError,
    UnsafeNameError,
)
from pacha_sdk.models import RunId
from pacha_sdk.ui._curation import WRITE_ACTIONS, CurationRoutes
from pacha_sdk.ui._json import (
    Response,
    error_response,
    json_response,
    run_detail,
    run_summary,
)
from pacha_sdk.ui._series import PartIndex, Series, SeriesQuery, read_series

if TYPE_CHECKING:
    from pacha_sdk.ui._store import StoreCurator, StoreReader

__all__ = ["MAX_POINTS_DEFAULT", "MAX_POINTS_LIMIT", "Api"]

_READ_METHODS = ("GET", "HEAD")
_ARCHIVED = {"false": False, "true": True, "all": None}

MAX_POINTS_DEFAULT = 2000
"""Points per series when ``max_points`` is not given (about a chart's width, twice)."""
MAX_POINTS_LIMIT = 200_000
"""Most points one request may ask for."""

STREAM_CHUNK = 1024 * 1024
"""Bytes of an artifact read and sent at a time."""

_HASH = re.compile(r"^[0-9a-fA-F]{64}$")
_SAFE_FILE_NAME = re.compile(r"[^A-Za-z0-9._+-]+")


def require_numpy() -> None:
    """Import numpy now (the thinning needs it), or say which extra brings it."""
    try:
        import numpy  # noqa: F401
    except ImportError:
        raise ExtraNotInstalledError("pacha ui's charts", package="numpy", extra="ui") from None


def _integer(query: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    text = query.get(name)
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {text!r}", name) from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}", name)
    return value


def _only(query: Mapping[str, str], allowed: set[str]) -> None:
    for name in query:
        if name not in allowed:
            raise ValueError(f"unknown parameter {name!r}", name)


def _series_query(query: Mapping[str, str]) -> SeriesQuery:
    _only(query, {"name", "max_points", "after_step", "min_step", "max_step", "rank"})
    name = query.get("name")
    if not name:
        raise ValueError("name is required (the metric's name)", "name")
    min_step = _integer(query, "min_step", 0, 2**63 - 1)
    max_step = _integer(query, "max_step", 0, 2**63 - 1)
    if min_step is not None and max_step is not None and max_step < min_step:
        raise ValueError(f"max_step {max_step} is below min_step {min_step}", "max_step")
    return SeriesQuery(
        name=name,
        max_points=_integer(query, "max_points", 4, MAX_POINTS_LIMIT) or MAX_POINTS_DEFAULT,
        after_step=_integer(query, "after_step", -1, 2**63 - 2),
        min_step=min_step,
        max_step=max_step,
        rank=_integer(query, "rank", 0, 2**31 - 1),
    )


def _run_id(text: str) -> RunId:
    try:
        return RunId(text)
    except ValueError:
        raise LookupError(f"no run {text!r} (a run id is a UUID)") from None


def _content_hash(text: str) -> str:
    if not _HASH.match(text):
        raise ValueError("content_hash must be 64 hex characters (BLAKE3)", "content_hash")
    return text.lower()


def _archived(query: Mapping[str, str]) -> bool | None:
    text = query.get("archived", "false")
    if text not in _ARCHIVED:
        raise ValueError(f"archived must be false, true or all, got {text!r}", "archived")
    return _ARCHIVED[text]


def _methods(parts: list[str]) -> tuple[str, ...] | None:
    """The methods a route answers (``Allow``), or ``None`` if there is no such route."""
    match parts:
        case ["runs", _, action] if action in WRITE_ACTIONS:
            return ("POST",)
        case ["runs"] | ["runs", _] | ["runs", _, "metrics" | "lineage" | "console"]:
            return _READ_METHODS
        case ["artifacts", _] | ["trash"]:
            return _READ_METHODS
    return None


def _failure(error: PachaError) -> Response:
    """The answer to an error the SDK raised while doing a request."""
    match error:
        case RunDeletedError():
            return error_response(404, str(error), extra={"deleted": True})
        case RunNotFoundError() | ArtifactNotFoundError():
            return error_response(404, str(error))
        case InvalidAnnotationError() | UnsafeNameError():  # only the curation API's checks
            return error_response(400, str(error), error.argument)
        case RunStateError():
            return error_response(409, str(error))
        case StoreError():
            return error_response(502, str(error))
    return error_response(500, f"{type(error).__name__}: {error}")


class Api:
    """The routes over one store; safe to call from many threads at once.

    Args:
        reader: the store shown.
        curator: its writes, or ``None`` for a read-only server.
    """

    def __init__(self, reader: StoreReader, curator: StoreCurator | None = None) -> None:
        self.reader = reader
        self.parts = PartIndex()
        self.curation = CurationRoutes(reader, curator)
        require_numpy()

    @property
    def read_only(self) -> bool:
        """Whether every write route is off (``pacha ui --read-only``)."""
        return self.curation.curator is None

    def method_refusal(self, path: str, method: str) -> Response | None:
        """404 for a path that is no route, 405 for a route that does not take *method*."""
        allowed = _methods(path.rstrip("/").split("/")[2:])
        if allowed is None:
            return error_response(404, "no such API route")
        if method in allowed:
            return None
        methods = ", ".join(allowed)
        return error_response(405, f"{path} answers {methods} only", headers={"Allow": methods})

    def handle(
        self, path: str, query: Mapping[str, str], *, method: str = "GET", body: bytes = b""
    ) -> Response:
        """Answer ``METHOD path?query``; every failure becomes a JSON error response.

        Two steps: reading the request (route, parameters and body, no store
        access), whose ``ValueError(message, parameter)`` is a 400 and
        ``LookupError`` a 404; then doing it, where the SDK's errors map to
        404 (unknown run or artifact), 400 (a refused edit), 409 (a live
        run), 502 (store unreadable or unwritable) or 500.
        """
        refusal = self.method_refusal(path, method)
        if refusal is not None:
            return refusal
        parts = path.rstrip("/").split("/")[2:]
        try:
            if method == "POST":
                _only(query, set())
                action = self.curation.route(_run_id(parts[1]), parts[2], body)
            else:
                action = self._route(parts, query)
        except ValueError as error:  # raised by the parameter checks, and only there
            message, *blamed = error.args
            return error_response(400, str(message), blamed[0] if blamed else None)
        except LookupError as error:
            return error_response(404, str(error.args[0]))
        try:
            return action()
        except PachaError as error:
            return _failure(error)

    def _route(self, parts: list[str], query: Mapping[str, str]) -> Callable[[], Response]:
        """The action a read names, its parameters checked."""
        match parts:
            case ["runs"]:
                _only(query, {"archived"})
                return functools.partial(self.runs, archived=_archived(query))
            case ["runs", run_id]:
                _only(query, set())
                return functools.partial(self.run, _run_id(run_id))
            case ["runs", run_id, "metrics"]:
                return functools.partial(self.metrics, _run_id(run_id), _series_query(query))
            case ["runs", run_id, "lineage"]:
                _only(query, set())
                return functools.partial(self.lineage, _run_id(run_id))
            case ["runs", run_id, "console"]:
                _only(query, set())
                return functools.partial(self.console, _run_id(run_id))
            case ["artifacts", content_hash]:
                _only(query, {"name"})
                name = query.get("name")
                return functools.partial(self.artifact, _content_hash(content_hash), name)
            case ["trash"]:
                _only(query, set())
                return self.curation.trash
        raise LookupError("no such API route")

    def runs(self, *, archived: bool | None) -> Response:
        """``GET /api/runs``: the table's entries, newest first."""
        return json_response([run_summary(r) for r in self.reader.runs(archived=archived)])

    def run(self, run_id: RunId) -> Response:
        """The record as ``load_run`` returns it, plus computed fields and rank records."""
        record = self.reader.run(run_id)
        return json_response(run_detail(record, self.reader.rank_records(run_id)))

    def metrics(self, run_id: RunId, wanted: SeriesQuery) -> Response:
        """One metric's points, thinned on the server (M4) to at most ``max_points``.

        A live chart asks this for every metric of every running run at each
        flush interval, so it reads no ``run.json`` unless the answer is a 404.
        """
        filesystem, _ = self.reader.arrow
        paths = self.reader.part_paths(run_id)
        series = read_series(filesystem, paths, wanted, self.parts)
        if series is None:  # the record says whether the run or only the metric is unknown
            record = self.reader.run(run_id)
            name = wanted.name
            if name not in record.summary:
                known = ", ".join(sorted(record.summary)) or "none"
                return error_response(404, f"run {run_id} has no metric {name!r} (it has: {known})")
            series = Series(name=name, rank=wanted.rank)  # in the record, no point flushed yet
        body = series.as_json()
        body["run_id"] = str(run_id)
        return json_response(body)

    def lineage(self, run_id: RunId) -> Response:
        """What the run produced and used, each artifact with the other runs on it."""
        return json_response(self.reader.run_lineage(self.reader.run(run_id)))

    def console(self, run_id: RunId) -> Response:
        """The end of the run's console log (``{"text": null}`` when it has none)."""
        record = self.reader.run(run_id)
        return json_response({"text": self.reader.console_output(record)})

    def artifact(self, content_hash: str, name: str | None) -> Response:
        """Stream a blob; a corrupted one is cut short (the download fails, never completes)."""
        source = self.reader.open_artifact(content_hash)
        file_name = _SAFE_FILE_NAME.sub("_", name or content_hash).strip("._") or content_hash

        def pieces() -> Iterator[bytes]:
            with source:
                try:
                    while chunk := source.read(STREAM_CHUNK):
                        yield chunk
                except ArtifactCorruptedError as error:
                    raise ConnectionAbortedError(str(error)) from error

        disposition = (
            f"attachment; filename=\"{file_name}\"; filename*=UTF-8''{quote(name or file_name)}"
        )
        return Response(
            200,
            pieces(),
            content_type="application/octet-stream",
            headers={"Content-Disposition": disposition, "X-Content-Hash": content_hash},
        )
