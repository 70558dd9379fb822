"""Edits kept beside a run's record, and the record as readers see it: edits folded in.

An edit made after the fact (tags, a note, a name, archived; see
:class:`~pacha_sdk.models.RunAnnotation`) is its own create-only file,
``runs/<id>/annotations/<time>-<uuid>.json`` (:func:`write_annotation`): a
live run's writer replaces ``run.json`` at every flush and would erase an
edit made there. Every reader of records (``pacha.load_run``,
``list_runs``, ``best_run``, the CLI, the report, the UI) goes through
:func:`load_run` and :func:`list_run_records` here, which fold the edits
over ``run.json`` in key order (time, then a random UUID: a later edit
wins). The edits come from the same listing of ``runs/`` that finds the
records (:func:`runs_in_listing`) and are read in the same batch
(:func:`read_records`, over :func:`pacha_sdk.storage.records.read_objects`);
they never change once written, so the records cache serves them after
the first read. Code that rewrites ``run.json`` reads it raw
(:func:`pacha_sdk.storage.records.read_run`), so edits never get baked in.
"""

from __future__ import annotations

import uuid
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pacha_sdk.backends import StoredObject
from pacha_sdk.exceptions import InvalidRecordError, RunNotFoundError
from pacha_sdk.models import RunAnnotation
from pacha_sdk.storage import snapshots
from pacha_sdk.storage.layout import (
    RUNS_DIR,
    annotation_key,
    run_id_from_annotation_key,
    run_id_from_record_key,
    run_prefix,
    run_record_key,
)
from pacha_sdk.storage.records import (
    list_objects,
    location,
    parse_record,
    parse_run,
    read_objects,
    record_bytes,
    store_errors,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from pacha_sdk.backends import Backend
    from pacha_sdk.models import ExperimentRun, RunId

__all__ = [
    "RecordKeys",
    "list_run_records",
    "load_run",
    "parse_annotation",
    "read_records",
    "refresh_records_snapshot",
    "runs_in_listing",
    "write_annotation",
]


@dataclass(frozen=True)
class RecordKeys:
    """Where one run's record is: its ``run.json`` and its annotations, in fold order."""

    run_id: RunId
    """The run."""
    record: StoredObject
    """Its ``run.json`` (or the trash's copy of it), as listed."""
    annotations: tuple[StoredObject, ...] = ()
    """Its annotations, sorted by key: the order they fold in."""

    @classmethod
    def unlisted(cls, run_id: RunId, key: str) -> RecordKeys:
        """The record at *key*, read fresh, without edits."""
        return cls(run_id, StoredObject(key))


def parse_annotation(data: bytes, where: str) -> RunAnnotation:
    """Parse an annotation; raise :class:`InvalidRecordError` naming *where* if invalid."""
    return parse_record(RunAnnotation, data, where, "annotation")


def write_annotation(backend: Backend, annotation: RunAnnotation) -> str:
    """Store *annotation* create-only under a new key of its own; return the key.

    The key (time, then a random UUID) is new, so the write never replaces
    anything: two people editing the same run at once both land.
    """
    key = annotation_key(annotation.run_id, annotation.created_at, uuid.uuid4().hex)
    with store_errors(backend, "write", key):
        backend.write_new(key, record_bytes(annotation))
    return key


def runs_in_listing(listed: Iterable[StoredObject]) -> list[RecordKeys]:
    """The runs a listing of ``runs/`` shows (those with a ``run.json``), with their annotations.

    Annotations of a folder without a ``run.json`` are left out: such a run
    is not stored (yet, or any more).
    """
    records: dict[RunId, StoredObject] = {}
    edits: dict[RunId, list[StoredObject]] = {}
    for item in listed:
        if (run_id := run_id_from_record_key(item.key)) is not None:
            records[run_id] = item
        elif (run_id := run_id_from_annotation_key(item.key)) is not None:
            edits.setdefault(run_id, []).append(item)
    return [
        RecordKeys(run_id, item, tuple(sorted(edits.get(run_id, ()), key=lambda e: e.key)))
        for run_id, item in records.items()
    ]


def _fold(backend: Backend, record: ExperimentRun, key: str, data: bytes | None) -> None:
    """Apply the edit stored at *key* to *record*; a bad edit is skipped with a warning."""
    if data is None:
        return  # removed meanwhile: its run is being deleted
    where = location(backend, key)
    try:
        edit = parse_annotation(data, where)
    except InvalidRecordError as error:
        warnings.warn(f"pacha: skipping an edit of run {record.run_id}: {error}", stacklevel=4)
        return
    if edit.run_id != record.run_id:
        warnings.warn(f"pacha: skipping {where}: it edits run {edit.run_id}", stacklevel=4)
        return
    edit.apply_to(record)


def _objects(wanted: Sequence[RecordKeys]) -> list[StoredObject]:
    """Every object the records at *wanted* are read from: records, then annotations."""
    listed = [found.record for found in wanted]
    return listed + [item for found in wanted for item in found.annotations]


def read_records(
    backend: Backend,
    wanted: Sequence[RecordKeys],
    *,
    skip_invalid: bool,
    through_snapshot: bool = False,
    prefetched: snapshots.Prefetch | None = None,
) -> list[ExperimentRun]:
    """The records at *wanted*, edits folded in; a record removed meanwhile is left out.

    Every ``run.json`` and annotation is read in one batch; with
    *through_snapshot*, those the newest records snapshot holds at their
    listed version come from it (:func:`pacha_sdk.storage.snapshots.read_listed`,
    for reads of the whole store; *prefetched* the snapshot fetched and
    parsed beside the listing, :func:`pacha_sdk.storage.snapshots.prefetch`).
    A record that
    cannot be parsed is skipped with a warning if *skip_invalid*, else
    raises :class:`InvalidRecordError`; an annotation that cannot be parsed
    is skipped with a warning, so one bad file never hides a run.
    """
    listed = _objects(wanted)
    where = listed[0].key if len(listed) == 1 else RUNS_DIR  # what errors name
    if through_snapshot:
        fetched = snapshots.read_listed(backend, listed, where=where, prefetched=prefetched)
    else:
        fetched = read_objects(backend, listed, where=where)
    content = dict(zip((item.key for item in listed), fetched))
    records: list[ExperimentRun] = []
    for found in wanted:
        data = content[found.record.key]
        if data is None:
            continue
        try:
            record = prefetched.record(found.record) if prefetched is not None else None
            if record is None:
                record = parse_run(data, location(backend, found.record.key))
        except InvalidRecordError as error:
            if not skip_invalid:
                raise
            warnings.warn(f"pacha: skipping run {found.run_id}: {error}", stacklevel=3)
            continue
        for item in found.annotations:
            _fold(backend, record, item.key, content[item.key])
        records.append(record)
    return records


def load_run(backend: Backend, run_id: RunId) -> ExperimentRun:
    """The run's record with its edits folded in; :class:`RunNotFoundError` if it has none.

    One listing of ``runs/<id>/`` and one batched read. A ``run.json`` the
    listing does not show is read all the same, so a store that fails says
    so instead of passing for a missing run.
    """
    listed = runs_in_listing(list_objects(backend, run_prefix(run_id)))
    wanted = listed or [RecordKeys.unlisted(run_id, run_record_key(run_id))]
    found = read_records(backend, wanted, skip_invalid=False)
    if not found:
        raise RunNotFoundError(str(run_id), backend.uri)
    return found[0]


def list_run_records(backend: Backend, *, skip_invalid: bool = True) -> list[ExperimentRun]:
    """Every run record in the store with its edits folded in, in listing order.

    One listing of ``runs/`` finds the records and their annotations, then
    one batched read fetches those neither in the records cache nor in the
    newest records snapshot at their listed version (see :func:`read_records`
    and :mod:`pacha_sdk.storage.snapshots`).
    """
    prefetched = snapshots.prefetch(backend)  # the snapshot comes while the store lists
    found = runs_in_listing(list_objects(backend, RUNS_DIR))
    return read_records(
        backend, found, skip_invalid=skip_invalid, through_snapshot=True, prefetched=prefetched
    )


def refresh_records_snapshot(backend: Backend) -> str | None:
    """Write a records snapshot of every run's record and edits, unless the newest holds them.

    Its key, or ``None`` (nothing changed since, a store without versions,
    or one that refused it: see :func:`pacha_sdk.storage.snapshots.refresh`).
    """
    if not backend.lists_versions:
        return None  # a snapshot's entries could never be matched: read nothing for it
    found = runs_in_listing(list_objects(backend, RUNS_DIR))
    return snapshots.refresh(backend, _objects(found), where=RUNS_DIR)
