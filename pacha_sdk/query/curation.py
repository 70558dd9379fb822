"""Curating runs after the fact: tags, notes, names, archiving, and deletion with undo.

* :func:`annotate` stores one edit as its own create-only file,
  ``runs/<id>/annotations/<time>-<uuid>.json``, never in ``run.json``: a
  live run's writer replaces ``run.json`` at every flush and would erase
  an edit made there. Readers fold the edits over ``run.json``
  (:mod:`pacha_sdk.storage.records`), so a run annotated while it runs
  keeps both the edit and its later heartbeats and summary, and two people
  editing at once both land.
* :func:`delete_run` moves everything a run has under ``runs/<id>/`` and
  ``metrics/run_id=<id>/`` to ``trash/<id>/`` (same keys below it), so
  listings, DuckDB, Polars, pyarrow and Spark no longer see it;
  :func:`restore_run` moves it back, and ``pacha gc --trash-older-than 7d``
  (:func:`pacha_sdk.gc`) empties the trash for good.

Object stores have no rename, so a move is a copy, then a delete of the
original, file by file. A deletion first writes its deletion record
(``trash/<id>/deleted.json``, listing every key it will move), then moves
``run.json`` (the run leaves listings at once), then the rest; a restore
marks the record ``restoring``, moves the rest back, then ``run.json``, then
removes the record. Every step can be repeated, so a delete or restore
killed halfway (SIGKILL, a store gone) is finished by running it again, or
undone by running the other: nothing is ever lost in between, and ``gc``
leaves the files of a run in the trash (or on its way there) alone.
"""

from __future__ import annotations

import contextlib
import getpass
import socket
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pacha_sdk._names import (
    MAX_RUN_NAME_LENGTH,
    check_display_name,
    check_note,
    check_tag_names,
    check_tags,
)
from pacha_sdk.exceptions import (
    InvalidAnnotationError,
    RunNotFoundError,
    RunStateError,
    StoreError,
    UnsafeNameError,
)
from pacha_sdk.models import (
    DeletedRun,
    DeletionState,
    ExperimentRun,
    RunAnnotation,
    RunId,
    RunStatus,
    seconds_since_beat,
    utc_now,
)
from pacha_sdk.query._store import open_store
from pacha_sdk.storage import annotated, records
from pacha_sdk.storage.layout import (
    deletion_record_key,
    metrics_prefix,
    run_id_from_record_key,
    run_prefix,
    trash_key,
    trash_prefix,
)
from pacha_sdk.storage.trash import (
    list_trash,
    missing_run_error,
    read_deletion,
    read_deletions,
    write_deletion,
)

if TYPE_CHECKING:
    from pacha_sdk.backends import Backend, StoredObject
    from pacha_sdk.storage.trash import TrashListing

__all__ = ["annotate", "check_not_running", "delete_run", "list_deleted_runs", "restore_run"]


def _author() -> str | None:
    """``user@host`` of this process, as far as the machine says."""
    try:
        user: str | None = getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name in some containers
        user = None
    host = socket.gethostname() or None
    return "@".join(part for part in (user, host) if part) or None


# Edits.


@contextlib.contextmanager
def _blaming(argument: str) -> Iterator[None]:
    """Mark a refused value's error with the argument of :func:`annotate` that held it."""
    try:
        yield
    except (InvalidAnnotationError, UnsafeNameError) as error:
        error.argument = argument
        raise


def _check_run_name(name: str) -> None:
    check_display_name("run name", name)
    if len(name) > MAX_RUN_NAME_LENGTH:
        raise InvalidAnnotationError(
            "run name",
            name,
            f"is {len(name):,} characters long; the limit is {MAX_RUN_NAME_LENGTH}",
        )


def _edit(
    run_id: RunId,
    add_tags: Mapping[str, Any] | Iterable[str],
    remove_tags: Iterable[str],
    note: str | None,
    name: str | None,
    *,
    archived: bool | None,
) -> RunAnnotation:
    """The edit *annotate* was asked for, every value checked; nothing is read or written.

    A refused value's error says which argument held it (``error.argument``),
    so callers such as ``pacha ui``'s API can name the field.
    """
    with _blaming("add_tags"):
        added = check_tags(add_tags)
    with _blaming("remove_tags"):
        removed = check_tag_names(remove_tags)
        if both := sorted(set(added) & set(removed)):
            raise InvalidAnnotationError("tag", both[0], "is both added and removed")
    if note is not None:
        with _blaming("note"):
            check_note(note)
    if name is not None:
        with _blaming("name"):
            _check_run_name(name)
    if archived is not None and not isinstance(archived, bool):
        raise TypeError(f"archived must be True, False or None, got {archived!r}")
    if not (added or removed) and note is None and name is None and archived is None:
        raise ValueError(
            "annotate() needs something to change: add_tags, remove_tags, note, name or archived"
        )
    return RunAnnotation(
        run_id=run_id,
        author=_author(),
        add_tags=added,
        remove_tags=removed,
        note=note,
        name=name,
        archived=archived,
    )


def annotate(
    run_id: str,
    *,
    add_tags: Mapping[str, Any] | Iterable[str] = (),
    remove_tags: Iterable[str] = (),
    note: str | None = None,
    name: str | None = None,
    archived: bool | None = None,
    uri: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> ExperimentRun:
    """Edit a stored run's tags, note, name or archived flag, even while it runs.

    Args:
        run_id: the run (a full id; the CLI takes prefixes).
        add_tags: tags to set, as ``pacha.run(tags=...)`` takes them: a
            ``{name: value}`` mapping, or names (valued ``""``).
        remove_tags: names of tags to remove (absent ones are ignored).
        note: the run's note, replacing any earlier one; ``""`` clears it.
        name: the run's new display name.
        archived: ``True`` hides the run from :func:`pacha_sdk.list_runs` and
            ``pacha runs list`` unless asked; ``False`` shows it again.
        uri: the store (default ``$PACHA_URI`` else ``./pacha-runs``).
        storage_options: settings for the store's client.

    Every value is checked before anything is read: a tag name is non-empty
    text of at most 128 characters, a tag value at most 1,024, a note at
    most 65,536, a name at most 256 (:class:`InvalidAnnotationError`
    otherwise, whose ``argument`` names the argument at fault). An unknown
    run raises :class:`RunNotFoundError` (:class:`RunDeletedError` if it is
    in the trash) and writes nothing.

    The edit is stored as a new file beside the run's record, folded over
    it by every reader; later edits win. Returns the run's record as
    stored now, this edit included.
    """
    rid = RunId(run_id)
    edit = _edit(rid, add_tags, remove_tags, note, name, archived=archived)
    backend = open_store(uri, storage_options)
    if not records.has_run(backend, rid):
        raise missing_run_error(backend, rid)
    annotated.write_annotation(backend, edit)
    return annotated.load_run(backend, rid)


# Moving files in and out of the trash.


def _copy(backend: Backend, source: str, target: str) -> None:
    with backend.open_read(source) as stream:
        backend.write_new_from(target, stream)


def _move(backend: Backend, source: str, target: str, *, keep_existing: bool) -> None:
    """Copy *source* to *target*, then delete *source*; a no-op if *source* is gone.

    A *target* already there is kept if *keep_existing* (a restore: the
    live file is the newer one), else replaced (a deletion: the live file
    is the truth, the trash's copy is from an earlier attempt).
    """
    with records.store_errors(backend, "move", f"{source} to {target}"):
        try:
            _copy(backend, source, target)
        except FileNotFoundError:
            return  # moved by an earlier, interrupted attempt
        except FileExistsError:
            if not keep_existing:
                with contextlib.suppress(FileNotFoundError):
                    backend.delete(target)
                _copy(backend, source, target)
        with contextlib.suppress(FileNotFoundError):
            backend.delete(source)


def _is_record(key: str) -> bool:
    return run_id_from_record_key(key) is not None


def _move_out(backend: Backend, run_id: RunId, keys: list[str]) -> None:
    """Move *keys* to the trash: ``run.json`` first, so the run leaves listings at once."""
    first = [key for key in keys if _is_record(key)]
    rest = [key for key in keys if not _is_record(key)]
    for key in first:
        _move(backend, key, trash_key(run_id, key), keep_existing=False)
    records.in_parallel(
        lambda key: _move(backend, key, trash_key(run_id, key), keep_existing=False), rest
    )


def _move_back(backend: Backend, files: Mapping[str, str]) -> None:
    """Move trashed *files* (original key to trash key) back: ``run.json`` last."""
    rest = [key for key in files if not _is_record(key)]
    records.in_parallel(lambda key: _move(backend, files[key], key, keep_existing=True), rest)
    for key in files:
        if _is_record(key):
            _move(backend, files[key], key, keep_existing=True)


@contextlib.contextmanager
def _resumable(run_id: RunId, doing: str) -> Iterator[None]:
    """Say how to go on when a store error stops a deletion or restore halfway."""
    try:
        yield
    except OSError as error:
        raise StoreError(
            f"{doing} run {run_id} stopped halfway ({error}); nothing is lost: "
            f"run the {'deletion' if doing == 'deleting' else 'restore'} again to finish it, "
            f"or {'restore' if doing == 'deleting' else 'delete'} the run to undo it"
        ) from error


def _live(backend: Backend, run_id: RunId) -> list[StoredObject]:
    """Every file the run has outside the trash: its folder under runs/ and its metric parts."""
    listed = records.list_each(backend, [run_prefix(run_id), metrics_prefix(run_id)])
    return [item for listing in listed for item in listing]


def check_not_running(record: ExperimentRun) -> None:
    """Raise :class:`RunStateError` if *record* is ``running`` and not stale (alive).

    :func:`delete_run` refuses such a run unless forced; the command line
    checks every run it was given before it deletes any.
    """
    if record.status is not RunStatus.RUNNING or record.is_stale:
        return
    beat = seconds_since_beat(record, utc_now())
    raise RunStateError(
        f"run {record.run_id} is running (last heartbeat {beat:.0f} s ago): stop it first, "
        "or force the deletion (force=True, --force); a run that goes on running writes "
        "its record and new points again"
    )


def _trashed_record(backend: Backend, listing: TrashListing, run_id: RunId) -> ExperimentRun | None:
    wanted = listing.record_keys(run_id)
    if wanted is None:
        return None
    found = annotated.read_records(backend, [wanted], skip_invalid=True)
    return found[0] if found else None


def delete_run(
    run_id: str,
    *,
    force: bool = False,
    uri: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> DeletedRun:
    """Move a run to the trash: its record, edits, rank records, logs and metric parts.

    Afterwards :func:`pacha_sdk.load_run` and listings no longer find it and
    Parquet engines reading ``metrics/`` no longer count its points;
    :func:`restore_run` puts every file back, until ``gc`` empties the trash.
    Artifacts stay where they are (other runs may share them); ``gc``
    removes those no live or trashed run refers to.

    A run that is ``running`` and not stale is refused
    (:class:`RunStateError`) unless *force*: its process would go on writing
    its record and points. Deleting a run that is already in the trash
    finishes a deletion that was interrupted, else does nothing. An unknown
    run raises :class:`RunNotFoundError`. Returns the deletion record, with
    the run's record as it was deleted.
    """
    rid = RunId(run_id)
    backend = open_store(uri, storage_options)
    listed = _live(backend, rid)
    live = [item.key for item in listed]
    previous = read_deletion(backend, rid)
    if not live and previous is None:
        raise RunNotFoundError(str(rid), backend.uri)
    found = annotated.read_records(backend, annotated.runs_in_listing(listed), skip_invalid=True)
    record = found[0] if found else None
    if record is not None and not force:
        check_not_running(record)
    deletion = previous or DeletedRun(run_id=rid)
    if live or deletion.state is not DeletionState.DELETED:
        deletion = DeletedRun(
            run_id=rid, deleted_by=_author(), keys=sorted({*deletion.keys, *live})
        )
        write_deletion(backend, deletion)  # before anything moves
        with _resumable(rid, "deleting"):
            _move_out(backend, rid, live)
            more = sorted({item.key for item in _live(backend, rid)} - set(live))  # meanwhile
            if more:
                deletion.keys = sorted({*deletion.keys, *more})
                write_deletion(backend, deletion)
                _move_out(backend, rid, more)
            deletion.state = DeletionState.DELETED
            write_deletion(backend, deletion)
        for prefix in (run_prefix(rid), metrics_prefix(rid)):
            backend.remove_empty_folders(prefix)
    deletion.record = record or _trashed_record(backend, list_trash(backend, rid), rid)
    return deletion


def restore_run(
    run_id: str, *, uri: str | None = None, storage_options: Mapping[str, Any] | None = None
) -> ExperimentRun:
    """Move a deleted run back from the trash, exactly the files its deletion moved.

    A file that exists again at its original key is kept as it is (a run
    force-deleted while running may have written its record again). A run
    that is not in the trash is left as it is. Returns the restored record;
    raises :class:`RunNotFoundError` if the run is neither stored nor in the
    trash.
    """
    rid = RunId(run_id)
    backend = open_store(uri, storage_options)
    deletion = read_deletion(backend, rid)
    if deletion is not None:
        deletion.state = DeletionState.RESTORING
        write_deletion(backend, deletion)  # gc leaves a run being restored alone
        listed_files = list_trash(backend, rid).files.get(rid, {})
        files = {key: item.key for key, item in listed_files.items()}
        with _resumable(rid, "restoring"):
            _move_back(backend, files)
            key = deletion_record_key(rid)
            with (
                contextlib.suppress(FileNotFoundError),  # another restore got there first
                records.store_errors(backend, "delete", key, passing=(FileNotFoundError,)),
            ):
                backend.delete(key)
        backend.remove_empty_folders(trash_prefix(rid))
    return annotated.load_run(backend, rid)


def list_deleted_runs(
    *, uri: str | None = None, storage_options: Mapping[str, Any] | None = None
) -> list[DeletedRun]:
    """The runs in the trash, most recently deleted first, each with its record as deleted.

    One listing of ``trash/`` and one parallel batch of reads. A run whose
    deletion was interrupted has state ``deleting`` (run :func:`delete_run`
    again, or :func:`restore_run`).
    """
    backend = open_store(uri, storage_options)
    deletions = read_deletions(backend, list_trash(backend), with_records=True)
    return sorted(deletions, key=lambda deletion: deletion.deleted_at, reverse=True)
