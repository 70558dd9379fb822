"""Store upkeep: short run ids, reaping dead runs, collecting garbage, finding spools.

These are the operations ``pacha`` runs from the terminal that the read API
does not cover; they live here so that code and the command line share one
implementation.

* :func:`resolve_run_id` turns a prefix such as ``1a2b3c4d`` into the full id.
* :func:`reap` marks ``running`` runs whose process died (stale heartbeat)
  as ``failed`` with the error message ``"heartbeat lost"``.
* :func:`gc` finds artifact blobs no run refers to, metric part files
  whose run has neither a ``run.json`` nor a rank record (nor is in the
  trash) or that a merged part covers, temporary files that killed writers
  left behind, and (when given a retention) runs deleted long enough ago;
  it deletes them only when asked.
* :func:`pending_spools` lists the spool folders :func:`pacha_sdk.storage.sync` would upload.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pacha_sdk.backends import Backend, get_backend
from pacha_sdk.exceptions import AmbiguousRunIdError, RunDeletedError, RunNotFoundError
from pacha_sdk.models import (
    DeletedRun,
    DeletionState,
    ExperimentRun,
    RunId,
    RunStatus,
    seconds_since_beat,
    utc_now,
)
from pacha_sdk.query._store import open_store
from pacha_sdk.query._temp_files import TEMP_FILE_AGE, delete_temporary, temporaries
from pacha_sdk.query.compacting import garbage_parts
from pacha_sdk.storage.annotated import list_run_records
from pacha_sdk.storage.inputs import input_hashes
from pacha_sdk.storage.layout import (
    ARTIFACTS_DIR,
    METRICS_DIR,
    deletion_record_key,
    hash_from_artifact_key,
    trash_prefix,
)
from pacha_sdk.storage.records import (
    list_keys,
    ranked_run_ids,
    read_run,
    read_runs,
    store_errors,
    stored_run_ids,
    write_run,
)
from pacha_sdk.storage.snapshots import superseded
from pacha_sdk.storage.spool import MANIFEST, default_spool_root
from pacha_sdk.storage.sync import spool_folders
from pacha_sdk.storage.trash import (
    TrashListing,
    list_trash,
    read_deletions,
    read_trashed_records,
)

__all__ = [
    "HEARTBEAT_LOST",
    "TEMP_FILE_AGE",
    "GcReport",
    "gc",
    "pending_spools",
    "reap",
    "resolve_run_id",
]

HEARTBEAT_LOST = "heartbeat lost"
"""The ``error_message`` :func:`reap` gives a run it marks failed."""

_PREFIX = re.compile(r"^[0-9a-f-]+$")


def _matching(run_ids: set[RunId], wanted: str) -> list[RunId]:
    return sorted(rid for rid in run_ids if rid.replace("-", "").startswith(wanted))


def resolve_run_id(
    prefix: str,
    *,
    uri: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    trash: bool | None = False,
) -> RunId:
    """The full id of the one run whose id starts with *prefix*.

    A complete UUID is returned as it is, without reading the store (loading
    it then says whether it exists). A shorter prefix (hyphens optional,
    any case) is matched against the store's run ids: none raises
    :class:`RunNotFoundError` (:class:`RunDeletedError` if it matches a run
    in the trash), several :class:`AmbiguousRunIdError`. *trash* says where
    to look: ``False`` among the stored runs, ``True`` among the deleted
    ones (to restore one), ``None`` among both (a deletion interrupted
    halfway is in both).
    """
    text = prefix.strip().lower()
    with contextlib.suppress(ValueError):
        return RunId(str(uuid.UUID(text)))
    backend = open_store(uri, storage_options)  # also checks the URI: never echo a raw one
    if not _PREFIX.match(text) or not text.strip("-"):
        raise RunNotFoundError(repr(prefix), backend.uri)
    wanted = text.replace("-", "")
    candidates = set(stored_run_ids(backend)) if trash is not True else set()
    if trash is not False:
        candidates |= set(list_trash(backend).deletions)
    matches = _matching(candidates, wanted)
    if not matches:
        deleted = _matching(set(list_trash(backend).deletions), wanted) if trash is False else []
        if len(deleted) == 1:
            raise RunDeletedError(deleted[0], backend.uri)
        where = backend.uri if trash is False else f"{backend.uri} (in the trash)"
        raise RunNotFoundError(prefix, where)
    if len(matches) > 1:
        raise AmbiguousRunIdError(prefix, [str(rid) for rid in matches], backend.uri)
    return matches[0]


# Reaping.


def _is_dead(record: ExperimentRun, now: datetime, older_than: float | None) -> bool:
    if not record.stale_at(now):
        return False
    if older_than is None:
        return True
    return seconds_since_beat(record, now) > older_than


def reap(
    *,
    older_than: float | None = None,
    uri: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    dry_run: bool = False,
) -> list[ExperimentRun]:
    """Mark every stale ``running`` run ``failed`` with the error ``"heartbeat lost"``.

    A run is stale once its heartbeat is older than 3 flush intervals (see
    :meth:`ExperimentRun.stale_at`): its process was killed or its machine
    lost. *older_than* (seconds) only narrows that: a stale run is reaped
    only if its last heartbeat is also older than this. Each record is read
    again just before it is rewritten, and left alone if it beat meanwhile.
    ``finished_at`` becomes now.

    Returns the records as written (or, with *dry_run*, the records that
    would be reaped, unchanged), oldest first.
    """
    if older_than is not None and older_than < 0:
        raise ValueError(f"older_than must be >= 0 seconds, got {older_than!r}")
    backend = open_store(uri, storage_options)
    now = utc_now()
    candidates = [
        record for record in list_run_records(backend) if _is_dead(record, now, older_than)
    ]
    reaped: list[ExperimentRun] = []
    for candidate in sorted(candidates, key=lambda record: record.started_at):
        fresh = read_run(backend, candidate.run_id)
        if fresh is None or not _is_dead(fresh, utc_now(), older_than):
            continue  # removed, finished or beating again since the first read
        if not dry_run:
            _write_failed(backend, fresh)
        reaped.append(fresh)
    return reaped


def _write_failed(backend: Backend, record: ExperimentRun) -> None:
    record.fail(HEARTBEAT_LOST)
    write_run(backend, record)


# Garbage collection.


@dataclass
class GcReport:
    """What :func:`gc` found (and removed, if ``deleted``)."""

    blobs: list[str] = field(default_factory=list)
    """Keys of blobs no live or trashed run's ``artifacts`` or ``extra.inputs`` mentions."""
    parts: list[str] = field(default_factory=list)
    """Keys of metric part files of no run (no ``run.json``, no rank record, not in the trash)."""
    covered_parts: list[str] = field(default_factory=list)
    """Parts a merged part holds (a compaction killed before deleting them; readers skip them)."""
    trash: list[str] = field(default_factory=list)
    """Ids of the runs in the trash deleted longer ago than the retention (emptied for good)."""
    temp_files: list[str] = field(default_factory=list)
    """Temporary files of interrupted writes (local stores), unwritten for long enough."""
    recent_temp_files: list[str] = field(default_factory=list)
    """Temporary files written to recently: kept, a write may be under way."""
    snapshots: list[str] = field(default_factory=list)  # records snapshots gc removes
    deleted: bool = False
    """Whether they were deleted (``False`` for a dry run)."""


def _references(records: list[ExperimentRun]) -> set[str]:
    """Content hashes every run produced or used."""
    hashes = {ref.content_hash for record in records for ref in record.artifacts}
    hashes.update(digest for record in records for digest in input_hashes(record))
    return hashes


def _unreferenced_blobs(
    backend: Backend, blob_keys: list[str], records: list[ExperimentRun]
) -> list[str]:
    referenced = _references(records)
    unreferenced = [
        key
        for key in blob_keys
        if (digest := hash_from_artifact_key(key)) is not None and digest not in referenced
    ]
    if not unreferenced:
        return []
    # A running run stores a blob first and records it right after: read
    # the running runs again, now that the blob listing is older than that.
    running = [r.run_id for r in records if r.status is RunStatus.RUNNING]
    late = _references(read_runs(backend, running, skip_invalid=False))
    return [key for key in unreferenced if hash_from_artifact_key(key) not in late]


def _referring_records(
    backend: Backend, live: set[RunId], trashed: set[RunId]
) -> list[ExperimentRun]:
    """The records of the *live* runs and of the *trashed* ones gc keeps, wherever each is now.

    A run deleted or restored between the listings and these reads has
    moved: it is read again where it went, so its artifacts stay referred to.
    """
    found = read_runs(backend, sorted(live), skip_invalid=False)
    found += read_trashed_records(backend, trashed)
    moved = (live | trashed) - {record.run_id for record in found}
    if moved:
        found += read_runs(backend, sorted(moved), skip_invalid=False)
        found += read_trashed_records(backend, moved)
    return found


def _retention(older_than: float | timedelta | None) -> float | None:
    seconds = older_than.total_seconds() if isinstance(older_than, timedelta) else older_than
    if seconds is not None and (isinstance(seconds, bool) or not seconds >= 0):
        raise ValueError(f"trash_older_than must be >= 0 seconds, got {older_than!r}")
    return seconds


def _expired(
    deletions: list[DeletedRun], older_than: float | None, live: set[RunId]
) -> list[DeletedRun]:
    """The trashed runs to empty: deleted at least *older_than* seconds ago.

    Never one being restored, nor one that has a ``run.json`` again (a run
    force-deleted while it ran, that went on writing).
    """
    if older_than is None:
        return []
    now = utc_now()
    return [
        deletion
        for deletion in deletions
        if deletion.state is not DeletionState.RESTORING
        and deletion.run_id not in live
        and (now - deletion.deleted_at).total_seconds() >= older_than
    ]


def _trash_keys(listing: TrashListing, run_ids: list[str]) -> list[str]:
    """Every key of the trashed *run_ids*, each run's deletion record last."""
    keys: list[str] = []
    for rid in map(RunId, run_ids):
        keys += sorted(item.key for item in listing.files.get(rid, {}).values())
        keys.append(deletion_record_key(rid))
    return keys


def gc(
    *,
    uri: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    delete: bool = False,
    progress: Callable[[int, int], None] | None = None,
    trash_older_than: float | timedelta | None = None,
    temp_older_than: float = TEMP_FILE_AGE,
) -> GcReport:
    """Find (and with *delete*, remove) what no run needs any more.

    * an artifact blob is unreferenced when no run, live or in the trash,
      lists its hash in ``artifacts`` (produced) or ``extra.inputs`` (used);
    * a metric part file is orphaned when its ``run_id=<id>`` folder belongs
      to no run with a ``runs/<id>/run.json`` or a ``runs/<id>/ranks/<rank>.json``
      (a rank whose rank 0 never wrote ``run.json`` keeps its points), and
      none in the trash;
    * with *trash_older_than* (seconds, or a :class:`~datetime.timedelta`),
      a run deleted (:func:`pacha_sdk.delete_run`) at least that long ago is
      emptied from the trash for good, and the blobs only it referred to go
      with it. Without it, the trash is kept (``0`` empties all of it);
    * a temporary file a local write left when it was killed midway, once
      unwritten for *temp_older_than* seconds (see :mod:`._temp_files`);
    * a part file a merged part covers (``pacha compact``, killed between
      writing the merged part and deleting what it holds);
    * a records snapshot (``index/``) superseded an hour ago or more (the newest stays).

    The dry run (the default) deletes nothing. The blobs and parts are
    listed before the records are read, and ``runs/`` once more after
    ``trash/``, so a run that starts, logs an artifact, is deleted or is
    restored meanwhile is seen. A ``run.json`` that cannot be parsed stops
    the collection (:class:`InvalidRecordError`): its references are
    unknown. *progress* is called after each deletion with the number
    deleted so far and the number to delete (progress bars).
    """
    retention = _retention(trash_older_than)
    backend = open_store(uri, storage_options)
    temp_files, recent_temp_files = temporaries(backend, temp_older_than)
    part_keys = list_keys(backend, METRICS_DIR)
    blob_keys = list_keys(backend, ARTIFACTS_DIR)
    live = set(stored_run_ids(backend))
    listing = list_trash(backend)
    live |= set(stored_run_ids(backend))  # a run restored since the first listing
    deletions = read_deletions(backend, listing, with_records=False)
    emptied = {d.run_id for d in _expired(deletions, retention, live)}
    kept = set(listing.deletions) - emptied
    records = _referring_records(backend, live, kept)
    orphans, covered = garbage_parts(part_keys, live | kept | ranked_run_ids(backend))
    report = GcReport(
        blobs=_unreferenced_blobs(backend, blob_keys, records),
        parts=orphans,
        covered_parts=covered,
        trash=sorted(emptied),
        temp_files=temp_files,
        recent_temp_files=recent_temp_files,
        snapshots=superseded(backend),
    )
    if delete:
        doomed = [*report.blobs, *report.parts, *report.covered_parts]
        doomed += _trash_keys(listing, report.trash)
        doomed += report.temp_files + report.snapshots
        for done, key in enumerate(doomed, 1):
            (delete_temporary if key in report.temp_files else _delete)(backend, key)
            if progress is not None:
                progress(done, len(doomed))
        for run_id in report.trash:
            backend.remove_empty_folders(trash_prefix(RunId(run_id)))
        report.deleted = True
    return report


def _delete(backend: Backend, key: str) -> None:
    with (
        contextlib.suppress(FileNotFoundError),  # another collector got there first
        store_errors(backend, "delete", key, passing=(FileNotFoundError,)),
    ):
        backend.delete(key)


# Spools.


def _manifest_uri(folder: str) -> str | None:
    try:
        with open(os.path.join(folder, MANIFEST), encoding="utf-8") as manifest:
            value = json.load(manifest).get("uri")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def pending_spools(
    spool: str | None = None,
    *,
    uri: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> list[str]:
    """The spool folders (one per run writer) waiting for :func:`pacha_sdk.storage.sync`.

    Args:
        spool: the spool root (default ``$PACHA_SPOOL_DIR``, else
            ``~/.cache/pacha-sdk/spool``), a run's folder or a writer's folder.
        uri: only folders bound for this store (any store when ``None``).
        storage_options: settings used to normalise *uri* as the writer did.

    Each folder can be passed to :func:`pacha_sdk.storage.sync` on its own, which is
    how ``pacha sync`` shows progress.
    """
    root = os.path.abspath(os.path.expanduser(spool or default_spool_root()))
    folders = spool_folders(root) if os.path.isdir(root) else []
    if uri is None:
        return folders
    wanted = get_backend(uri, storage_options=storage_options).uri
    return [folder for folder in folders if _manifest_uri(folder) == wanted]
