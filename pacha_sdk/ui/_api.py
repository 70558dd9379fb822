"""The JSON API of ``pacha ui``: requests in, :class:`Response` out, no HTTP in sight.

Every route is a ``GET`` and reads the store; none writes. The page uses
only these routes, and scripts may too (the README lists them)::

    GET /api/runs                                  every run, newest first
    GET /api/runs/<run_id>                         the record (as load_run) and rank records
    GET /api/runs/<run_id>/metrics?name=&max_points=&after_step=&min_step=&max_step=&rank=
    GET /api/runs/<run_id>/lineage                 artifacts produced and used, with their runs
    GET /api/runs/<run_id>/console                 the end of the captured console output
    GET /api/artifacts/<content_hash>[?name=]      the blob, verified while it streams

Errors are JSON ``{"error": "...", "parameter": "..."}``: 400 for a bad
parameter (named), 404 for an unknown run, metric or artifact, 502 when the
store cannot be read. Write routes (curation) would be added here as
``POST``, behind the same token.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pacha_sdk.exceptions import (
    ArtifactCorruptedError,
    ArtifactNotFoundError,
    ExtraNotInstalledError,
    PachaError,
    RunNotFoundError,
    StoreError,
)
from pacha_sdk.models import RunId
from pacha_sdk.ui._series import PartIndex, Series, SeriesQuery, read_series
from pacha_sdk.views.display import jsonable

if TYPE_CHECKING:
    from pacha_sdk.models import ExperimentRun
    from pacha_sdk.ui._store import StoreReader

__all__ = [
    "MAX_POINTS_DEFAULT",
    "MAX_POINTS_LIMIT",
    "Api",
    "Response",
    "error_response",
    "run_summary",
]

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


@dataclass
class Response:
    """What the HTTP layer sends: a status, a body (bytes or streamed pieces) and headers."""

    status: int
    body: bytes | Iterator[bytes]
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(value: Any, status: int = 200) -> Response:
    """*value* as strict JSON (non-finite numbers become ``null``)."""
    text = json.dumps(jsonable(value), allow_nan=False, separators=(",", ":"))
    return Response(status, text.encode("utf-8"))


def error_response(status: int, message: str, parameter: str | None = None) -> Response:
    """``{"error": message}`` (and ``"parameter"`` when one is to blame) with *status*."""
    body: dict[str, Any] = {"error": message}
    if parameter is not None:
        body["parameter"] = parameter
    return json_response(body, status)


def run_summary(record: ExperimentRun) -> dict[str, Any]:
    """One entry of ``GET /api/runs``: what the runs table shows and filters on."""
    return {
        "run_id": str(record.run_id),
        "name": record.name,
        "status": record.status.value,
        "is_stale": record.is_stale,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "duration_secs": record.duration_secs,
        "heartbeat_at": record.heartbeat_at,
        "flush_interval": record.extra.get("flush_interval"),
        "recipe": str(record.recipe) if record.recipe else None,
        "parent_run_id": record.parent_run_id,
        "tags": record.tags,
        "hyperparameters": record.hyperparameters.as_flat_dict(),
        "summary": record.summary,
        "error_message": record.error_message,
    }


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


class Api:
    """The routes over one store; safe to call from many threads at once."""

    def __init__(self, reader: StoreReader) -> None:
        self.reader = reader
        self.parts = PartIndex()
        require_numpy()

    def handle(self, path: str, query: Mapping[str, str]) -> Response:
        """Answer ``GET path?query``; every failure becomes a JSON error response.

        Two steps: reading the request (route and parameters, no store
        access), whose ``ValueError(message, parameter)`` is a 400 and
        ``LookupError`` a 404; then doing it, where the SDK's errors map to
        404 (unknown run or artifact), 502 (store unreadable) or 500.
        """
        try:
            action = self._route(path.rstrip("/").split("/")[2:], query)
        except ValueError as error:  # raised by the parameter checks below, and only there
            message, *blamed = error.args
            return error_response(400, str(message), blamed[0] if blamed else None)
        except LookupError as error:
            return error_response(404, str(error.args[0]))
        try:
            return action()
        except (RunNotFoundError, ArtifactNotFoundError) as error:
            return error_response(404, str(error))
        except StoreError as error:
            return error_response(502, str(error))
        except PachaError as error:
            return error_response(500, f"{type(error).__name__}: {error}")

    def _route(self, parts: list[str], query: Mapping[str, str]) -> Callable[[], Response]:
        """The action a request names, its parameters checked."""
        match parts:
            case ["runs"]:
                _only(query, set())
                return lambda: json_response([run_summary(r) for r in self.reader.runs()])
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
        raise LookupError("no such API route")

    def run(self, run_id: RunId) -> Response:
        """The record as ``load_run`` returns it, plus computed fields and rank records."""
        record = self.reader.run(run_id)
        body = record.model_dump(mode="json")
        body.update(
            {
                "name": record.name,
                "tags": record.tags,
                "is_stale": record.is_stale,
                "duration_secs": record.duration_secs,
                "summary": record.summary,
                "hyperparameters_flat": record.hyperparameters.as_flat_dict(),
                "ranks": [
                    rank.model_dump(mode="json") for rank in self.reader.rank_records(run_id)
                ],
                "has_console": bool(record.log_uri),
            }
        )
        return json_response(body)

    def metrics(self, run_id: RunId, wanted: SeriesQuery) -> Response:
        """One metric's points, thinned on the server (M4) to at most ``max_points``.

        A live chart asks this for every metric of every running run at each
        flush interval, so it reads no ``run.json`` unless the answer is a 404.
        """
        filesystem, _ = self.reader.arrow
        for attempt in range(3):  # a part merged away between the listing and the read: again
            try:
                series = read_series(filesystem, self.reader.part_paths(run_id), wanted, self.parts)
                break
            except FileNotFoundError:
                if attempt == 2:
                    raise
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
