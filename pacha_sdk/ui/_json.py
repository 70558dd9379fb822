"""What ``pacha ui``'s API answers: :class:`Response`, JSON bodies, and the shape of a run.

Shared by the read routes (:mod:`pacha_sdk.ui._api`) and the write routes
(:mod:`pacha_sdk.ui._curation`), which answer with the same shapes: an
edit or a restore answers with the run as ``GET /api/runs/<run_id>`` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pacha_sdk.views.display import jsonable

if TYPE_CHECKING:
    from pydantic import BaseModel

    from pacha_sdk.models import ExperimentRun

__all__ = ["Response", "error_response", "json_response", "run_detail", "run_summary"]


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


def error_response(
    status: int,
    message: str,
    parameter: str | None = None,
    *,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """``{"error": message}`` (and ``"parameter"`` when one is to blame) with *status*."""
    body: dict[str, Any] = {"error": message}
    if parameter is not None:
        body["parameter"] = parameter
    body.update(extra or {})
    response = json_response(body, status)
    response.headers.update(headers or {})
    return response


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
        "note": record.note,
        "archived": record.archived,
    }


def run_detail(record: ExperimentRun, ranks: Sequence[BaseModel]) -> dict[str, Any]:
    """``GET /api/runs/<run_id>``: the record as ``load_run`` returns it, computed fields, ranks."""
    body = record.model_dump(mode="json")
    body.update(
        {
            "name": record.name,
            "tags": record.tags,
            "note": record.note,
            "archived": record.archived,
            "is_stale": record.is_stale,
            "duration_secs": record.duration_secs,
            "summary": record.summary,
            "hyperparameters_flat": record.hyperparameters.as_flat_dict(),
            "ranks": [rank.model_dump(mode="json") for rank in ranks],
            "has_console": bool(record.log_uri),
        }
    )
    return body
