"""The trash: deleted runs' files and deletion records, read and listed.

A deleted run's files wait under ``trash/<id>/``, each at its original key
(``trash/<id>/runs/<id>/run.json``, ``trash/<id>/metrics/run_id=<id>/part-...``),
beside its deletion record ``trash/<id>/deleted.json``
(:class:`~pacha_sdk.models.DeletedRun`). Nothing under ``trash/`` is in
``runs/`` or ``metrics/``, so listings and Parquet engines no longer see the
run. Moving files in and out is :mod:`pacha_sdk.query.curation`'s job; this
module only reads what is there, for it and for garbage collection.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pacha_sdk.backends import StoredObject
from pacha_sdk.exceptions import InvalidRecordError, RunDeletedError, RunNotFoundError
from pacha_sdk.models import DeletedRun, ExperimentRun, RunId
from pacha_sdk.storage.annotated import RecordKeys, read_records, runs_in_listing
from pacha_sdk.storage.layout import (
    TRASH_DIR,
    deletion_record_key,
    original_key,
    run_id_from_deletion_record_key,
    run_record_key,
    trash_key,
    trash_prefix,
)
from pacha_sdk.storage.records import (
    list_objects,
    location,
    parse_record,
    read_objects,
    record_bytes,
    write_record,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pacha_sdk.backends import Backend

__all__ = [
    "TrashListing",
    "list_trash",
    "missing_run_error",
    "parse_deletion",
    "read_deletion",
    "read_deletions",
    "read_trashed_records",
    "write_deletion",
]


@dataclass
class TrashListing:
    """What one listing of ``trash/`` shows."""

    deletions: dict[RunId, StoredObject] = field(default_factory=dict)
    """Runs with a deletion record, and that record as listed."""
    files: dict[RunId, dict[str, StoredObject]] = field(default_factory=dict)
    """Each run's files in the trash: original key to the file in the trash."""

    def record_keys(self, run_id: RunId) -> RecordKeys | None:
        """Where the trash keeps the run's ``run.json`` and annotations, if it has its record."""
        files = self.files.get(run_id, {})
        found = runs_in_listing(item._replace(key=key) for key, item in files.items())
        mine = [entry for entry in found if entry.run_id == run_id]
        if not mine:
            return None
        entry = mine[0]
        edits = tuple(files[edit.key] for edit in entry.annotations)
        return RecordKeys(run_id, files[entry.record.key], edits)


def _listing(listed: Iterable[StoredObject]) -> TrashListing:
    listing = TrashListing()
    for item in listed:
        if (run_id := run_id_from_deletion_record_key(item.key)) is not None:
            listing.deletions[run_id] = item
        elif (moved := original_key(item.key)) is not None:
            listing.files.setdefault(moved[0], {})[moved[1]] = item
    return listing


def list_trash(backend: Backend, run_id: RunId | None = None) -> TrashListing:
    """One listing of ``trash/`` (or only of *run_id*'s folder in it)."""
    prefix = TRASH_DIR if run_id is None else trash_prefix(run_id)
    return _listing(list_objects(backend, prefix))


def parse_deletion(data: bytes, where: str) -> DeletedRun:
    """Parse a deletion record; raise :class:`InvalidRecordError` naming *where* if invalid."""
    return parse_record(DeletedRun, data, where, "deletion record")


def read_deletion(backend: Backend, run_id: RunId) -> DeletedRun | None:
    """The run's deletion record, or ``None`` if it is not in the trash."""
    key = deletion_record_key(run_id)
    (data,) = read_objects(backend, [StoredObject(key)], where=key)
    return None if data is None else parse_deletion(data, location(backend, key))


def missing_run_error(backend: Backend, run_id: RunId) -> RunNotFoundError:
    """The error for a run that is not stored: :class:`RunDeletedError` if in the trash."""
    if read_deletion(backend, run_id) is not None:
        return RunDeletedError(str(run_id), backend.uri)
    return RunNotFoundError(str(run_id), backend.uri)


def write_deletion(backend: Backend, deletion: DeletedRun) -> None:
    """Replace the run's deletion record with *deletion*."""
    write_record(backend, deletion_record_key(deletion.run_id), record_bytes(deletion))


def read_deletions(
    backend: Backend, listing: TrashListing, *, with_records: bool
) -> list[DeletedRun]:
    """The deletion records of *listing*, in parallel; with their runs' records if asked.

    A deletion record that cannot be parsed is skipped with a warning; a
    record is ``None`` where the trash has no copy of the run's ``run.json``
    (a deletion interrupted before it moved it).
    """
    listed = [listing.deletions[run_id] for run_id in sorted(listing.deletions)]
    deletions: list[DeletedRun] = []
    for item, data in zip(listed, read_objects(backend, listed, where=TRASH_DIR)):
        if data is None:
            continue  # restored or emptied meanwhile
        try:
            deletions.append(parse_deletion(data, location(backend, item.key)))
        except InvalidRecordError as error:
            warnings.warn(f"pacha: skipping {error}", stacklevel=3)
    if with_records:
        wanted = [hit for d in deletions if (hit := listing.record_keys(d.run_id)) is not None]
        records = read_records(backend, wanted, skip_invalid=True)
        by_id = {record.run_id: record for record in records}
        for deletion in deletions:
            deletion.record = by_id.get(deletion.run_id)
    return deletions


def read_trashed_records(backend: Backend, run_ids: Iterable[RunId]) -> list[ExperimentRun]:
    """The trash's copies of the ``run.json`` of *run_ids*, as written, where it has one.

    For callers that must know every record (garbage collection): one that
    cannot be parsed raises :class:`InvalidRecordError`.
    """
    wanted = [
        RecordKeys.unlisted(rid, trash_key(rid, run_record_key(rid))) for rid in sorted(run_ids)
    ]
    return read_records(backend, wanted, skip_invalid=False)
