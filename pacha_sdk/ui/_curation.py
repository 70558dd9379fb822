"""The write routes of ``pacha ui``: curating runs, through the curation API only.

::

    POST /api/runs/<run_id>/annotations   {"add_tags", "remove_tags", "note", "name", "archived"}
    POST /api/runs/<run_id>/delete        {"force": false}
    POST /api/runs/<run_id>/restore       {}
    GET  /api/trash                       the deleted runs, most recently deleted first

Each write goes through :class:`~pacha_sdk.ui._store.StoreCurator`, which
calls :func:`pacha_sdk.annotate`, :func:`pacha_sdk.delete_run` and
:func:`pacha_sdk.restore_run`: an edit is a new create-only annotation
file, a deletion or restore moves the run's files to or from the trash;
nothing here writes ``run.json`` or a part file. The HTTP layer
(:mod:`pacha_sdk.ui._server`) lets a write reach these routes only with
the token in a header and a JSON body, and never on a ``--read-only``
server.

This module reads the request's JSON: each field is checked for its JSON
type here (400 naming it), and for its value by the curation API, whose
:class:`~pacha_sdk.exceptions.InvalidAnnotationError` names the argument
at fault (also a 400 naming it).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pacha_sdk.ui._json import Response, json_response, run_detail, run_summary
from pacha_sdk.ui._store import Edit

if TYPE_CHECKING:
    from pacha_sdk.models import DeletedRun, RunId
    from pacha_sdk.ui._store import StoreCurator, StoreReader

__all__ = ["EDIT_FIELDS", "MAX_BODY_BYTES", "WRITE_ACTIONS", "CurationRoutes", "parse_body"]

WRITE_ACTIONS = frozenset({"annotations", "delete", "restore"})
"""The last part of ``POST /api/runs/<run_id>/<action>``."""
EDIT_FIELDS = ("add_tags", "remove_tags", "note", "name", "archived")
"""The fields an annotation request may have: :func:`pacha_sdk.annotate`'s keywords."""
MAX_BODY_BYTES = 1024 * 1024
"""Largest request body read (a note of 65,536 characters is at most 256 KiB of UTF-8)."""


def parse_body(body: bytes) -> dict[str, Any]:
    """The request's JSON object (an empty body is ``{}``); ``ValueError(..., "body")`` if not."""
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"the body is not JSON: {error}", "body") from None
    if not isinstance(value, dict):
        raise ValueError(f"the body must be a JSON object, got {type(value).__name__}", "body")
    return value


def _only_fields(body: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for name in body:
        if name not in allowed:
            expected = ", ".join(allowed) or "none"
            raise ValueError(f"unknown field {name!r} (expected: {expected})", name)


def _names(body: Mapping[str, Any], name: str) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{name} must be a list of strings", name)
    return value


def _tags(body: Mapping[str, Any]) -> dict[str, str] | list[str]:
    """``add_tags``: a list of names (each valued ``""``), or an object of names to text."""
    value = body.get("add_tags", [])
    if isinstance(value, dict):
        if not all(isinstance(item, str) for item in value.values()):
            raise ValueError("add_tags values must be strings", "add_tags")
        return value
    return _names(body, "add_tags")


def _optional(body: Mapping[str, Any], name: str, kind: type[Any], said: str) -> Any:
    value = body.get(name)
    if value is not None and not isinstance(value, kind):
        raise ValueError(f"{name} must be {said} or null, got {json.dumps(value)[:40]}", name)
    return value


def edit_from(body: Mapping[str, Any]) -> Edit:
    """The edit a request's body asks for, each field's JSON type checked."""
    _only_fields(body, EDIT_FIELDS)
    edit = Edit(
        add_tags=_tags(body),
        remove_tags=_names(body, "remove_tags"),
        note=_optional(body, "note", str, "a string"),
        name=_optional(body, "name", str, "a string"),
        archived=_optional(body, "archived", bool, "true, false"),
    )
    if edit == Edit():
        raise ValueError(f"nothing to change: give one of {', '.join(EDIT_FIELDS)}", "body")
    return edit


def _force(body: Mapping[str, Any]) -> bool:
    _only_fields(body, ("force",))
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise ValueError("force must be true or false", "force")
    return force


def deleted_entry(deletion: DeletedRun) -> dict[str, Any]:
    """One run in the trash, as ``GET /api/trash`` and ``POST .../delete`` answer it."""
    return {
        "run_id": str(deletion.run_id),
        "deleted_at": deletion.deleted_at,
        "deleted_by": deletion.deleted_by,
        "state": deletion.state.value,
        "files": len(deletion.keys),
        "record": run_summary(deletion.record) if deletion.record is not None else None,
    }


class CurationRoutes:
    """The trash listing and, unless the server is read-only, the write routes.

    Args:
        reader: the store shown.
        curator: its writes; ``None`` on a read-only server.
    """

    def __init__(self, reader: StoreReader, curator: StoreCurator | None) -> None:
        self.reader = reader
        self.curator = curator

    def route(self, run_id: RunId, action: str, body: bytes) -> Callable[[], Response]:
        """The write *action* asks for, its body checked (nothing read or written yet)."""
        fields = parse_body(body)
        if action == "annotations":
            return functools.partial(self.annotate, run_id, edit_from(fields))
        if action == "delete":
            return functools.partial(self.delete, run_id, force=_force(fields))
        _only_fields(fields, ())
        return functools.partial(self.restore, run_id)

    def _writer(self) -> StoreCurator:
        if self.curator is None:  # the server refuses writes before they get here
            raise RuntimeError("this server is read-only")
        return self.curator

    def annotate(self, run_id: RunId, edit: Edit) -> Response:
        """Store the edit; the record as ``GET /api/runs/<run_id>`` answers it, edit included."""
        record = self._writer().annotate(run_id, edit)
        return json_response(run_detail(record, self.reader.rank_records(run_id)))

    def delete(self, run_id: RunId, *, force: bool) -> Response:
        """Move the run to the trash; its entry as ``GET /api/trash`` lists it."""
        return json_response(deleted_entry(self._writer().delete(run_id, force=force)))

    def restore(self, run_id: RunId) -> Response:
        """Move the run back; its record as ``GET /api/runs/<run_id>`` answers it."""
        record = self._writer().restore(run_id)
        return json_response(run_detail(record, self.reader.rank_records(run_id)))

    def trash(self) -> Response:
        """Every run in the trash, most recently deleted first."""
        return json_response([deleted_entry(deletion) for deletion in self.reader.deleted_runs()])
