"""Run and rank records in the store: parse, read, list and write them.

``runs/<id>/run.json`` (:class:`~pacha_sdk.models.ExperimentRun`) and
``runs/<id>/ranks/<rank>.json`` (:class:`~pacha_sdk.models.RankRecord`) are
read and written here and nowhere else (edits beside them in
:mod:`~pacha_sdk.storage.annotated`): the record keeper of a live run, the
read API, store upkeep and ``sync`` all go through these functions.

:func:`read_run`, :func:`read_runs` and :func:`stored_run_ids` give
``run.json`` as its writer wrote it, for code that rewrites it (the live
run, ``reap``) and garbage collection. Readers see it with the edits made
after the fact folded in: :mod:`pacha_sdk.storage.annotated` builds
``load_run`` and ``list_run_records`` on this module's listing and batched read.

This is also where a store's failure becomes :class:`StoreError`, for every
module that talks to a backend (:func:`store_errors`): the error names what
was being done, the key and the store, so ``could not read runs in
s3://bucket/prefix: ...`` says where to look.

A listing of many records is one listing of their folder (:func:`list_objects`)
and one batched read (:func:`read_objects`): the backend keeps dozens of
requests in flight on an object store, and records the listing shows at a
version already read come from :data:`~pacha_sdk.storage.read_cache.records_cache`
without a request. An object store answers each read in milliseconds to
tens of milliseconds, and a store with thousands of runs would take minutes
one read at a time. Listings of several folders run side by side
(:func:`list_each`, :data:`READ_THREADS` at a time).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel, ValidationError

from pacha_sdk.backends import StoredObject
from pacha_sdk.exceptions import InvalidRecordError, RunNotFoundError, StoreError
from pacha_sdk.models import ExperimentRun, RankRecord, RunId
from pacha_sdk.storage.layout import (
    RUNS_DIR,
    rank_from_record_key,
    rank_record_key,
    rank_records_prefix,
    run_id_from_rank_record_key,
    run_id_from_record_key,
    run_record_key,
)
from pacha_sdk.storage.read_cache import records_cache

if TYPE_CHECKING:
    from datetime import datetime

    from pacha_sdk.backends import Backend

__all__ = [
    "READ_THREADS",
    "has_rank_records",
    "has_run",
    "in_parallel",
    "list_each",
    "list_keys",
    "list_objects",
    "list_rank_records",
    "location",
    "missing_runs",
    "parse_rank_record",
    "parse_record",
    "parse_run",
    "ranked_run_ids",
    "read_objects",
    "read_rank_record",
    "read_run",
    "read_runs",
    "record_bytes",
    "store_errors",
    "stored_run_ids",
    "write_record",
    "write_run",
    "written_at",
]

READ_THREADS = 16
"""Most folders :func:`list_each` lists at once."""

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")
_Record = TypeVar("_Record", bound=BaseModel)


# Store errors.


@contextlib.contextmanager
def store_errors(
    backend: Backend, action: str, key: str, *, passing: tuple[type[OSError], ...] = ()
) -> Iterator[None]:
    """Turn an :class:`OSError` raised while doing *action* on *key* into :class:`StoreError`.

    The new error names the action, the key and the store, and keeps the
    original as its cause. A :class:`StoreError` passes unchanged (the backend
    already said what is wrong, e.g. :class:`StorePermissionError`), and so do
    the errors in *passing*: answers the caller asked for, such as
    :class:`FileNotFoundError` for a blob that is not there.
    """
    try:
        yield
    except StoreError:
        raise
    except OSError as error:
        if isinstance(error, passing):
            raise
        raise StoreError(
            f"could not {action} {key} in {backend.uri}: {type(error).__name__}: {error}"
        ) from error


def location(backend: Backend, key: str) -> str:
    """Where *key* is, as error messages and warnings name it."""
    return f"{backend.uri}/{key}"


def list_keys(backend: Backend, prefix: str) -> list[str]:
    """Every key under *prefix* (none if there is no such folder); a store error is a StoreError."""
    with store_errors(backend, "read", prefix):
        return backend.list(prefix)


def list_objects(backend: Backend, prefix: str) -> list[StoredObject]:
    """Every object under *prefix* with its listed size and version, in one listing."""
    with store_errors(backend, "read", prefix):
        return backend.list_objects(prefix)


def list_each(backend: Backend, prefixes: Sequence[str]) -> list[list[StoredObject]]:
    """:func:`list_objects` of each of *prefixes*, up to :data:`READ_THREADS` at a time."""
    return in_parallel(lambda prefix: list_objects(backend, prefix), prefixes)


def read_objects(
    backend: Backend,
    listed: Sequence[StoredObject],
    *,
    where: str,
    fallback: Callable[[Sequence[StoredObject]], Mapping[str, bytes]] | None = None,
) -> list[bytes | None]:
    """The content of each listed object, in order; ``None`` for one removed meanwhile.

    One batched read (:meth:`Backend.read_many`) of those not already held
    at their listed version in the records cache, nor by *fallback* (called
    once, with those the cache lacks, even none; it gives the content of
    those it holds at exactly their listed version, by key: the records
    snapshot). What comes at a known version is kept in the cache. *where*
    names the folder in errors.
    """
    cached = [records_cache.get(backend.uri, item) for item in listed]
    missing = [item for item, data in zip(listed, cached) if data is None]
    held = fallback(missing) if fallback is not None else {}
    wanted = [item for item in missing if item.key not in held]
    with store_errors(backend, "read", where):
        fetched: Iterator[bytes | None] = iter(backend.read_many([item.key for item in wanted]))
    found: list[bytes | None] = []
    for item, data in zip(listed, cached):
        if data is None:
            data = held[item.key] if item.key in held else next(fetched)
            if data is not None:
                records_cache.put(backend.uri, item, data)
        found.append(data)
    return found


# Parsing and writing.


def parse_record(
    model: type[_Record], data: bytes, where: str, kind: str = "run record"
) -> _Record:
    """Parse *data* as a *model*; raise :class:`InvalidRecordError` naming *where* if invalid."""
    try:
        return model.model_validate_json(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "document"
        raise InvalidRecordError(where, f"{field}: {first['msg']}", kind=kind) from None


def parse_run(data: bytes, where: str) -> ExperimentRun:
    """Parse a ``run.json``; raise :class:`InvalidRecordError` naming *where* if invalid."""
    return parse_record(ExperimentRun, data, where)


def parse_rank_record(data: bytes, where: str) -> RankRecord:
    """Parse a rank record; raise :class:`InvalidRecordError` naming *where* if invalid."""
    return parse_record(RankRecord, data, where)


def record_bytes(record: BaseModel) -> bytes:
    """A record as the JSON bytes stored for it."""
    return record.model_dump_json(indent=2).encode("utf-8")


def write_record(backend: Backend, key: str, data: bytes) -> None:
    """Replace the record at *key* whole (atomically, as the backend does)."""
    with store_errors(backend, "write", key):
        backend.replace(key, data)


def write_run(backend: Backend, record: ExperimentRun) -> None:
    """Replace the run's ``run.json`` with *record*."""
    write_record(backend, run_record_key(record.run_id), record_bytes(record))


def written_at(key: str, data: bytes, where: str) -> datetime | None:
    """When the record at *key* (a run's or a rank's) was written: its heartbeat.

    Every write of a live run stamps a fresh heartbeat, the final one too;
    a record without one (written by another tool) falls back to its
    finish, then its start. ``None`` if *data* is not a valid record.
    """
    try:
        record: ExperimentRun | RankRecord
        if run_id_from_record_key(key) is not None:
            record = parse_run(data, where)
        elif run_id_from_rank_record_key(key) is not None:
            record = parse_rank_record(data, where)
        else:
            return None
    except InvalidRecordError:
        return None
    return record.heartbeat_at or record.finished_at or record.started_at


# Reading one record.


def _read(backend: Backend, key: str) -> bytes | None:
    with store_errors(backend, "read", key):
        try:
            return backend.read_bytes(key)
        except FileNotFoundError:
            return None


def read_run(backend: Backend, run_id: RunId) -> ExperimentRun | None:
    """The run's ``run.json`` as written (no edits), or ``None`` if it has none (yet)."""
    key = run_record_key(run_id)
    data = _read(backend, key)
    return None if data is None else parse_run(data, location(backend, key))


def has_run(backend: Backend, run_id: RunId) -> bool:
    """Whether the store has the run's ``run.json``."""
    key = run_record_key(run_id)
    with store_errors(backend, "read", key):
        return backend.exists(key)


def missing_runs(backend: Backend, run_ids: Sequence[RunId]) -> list[RunId]:
    """Those of *run_ids* without a ``run.json``, asked side by side."""
    present = in_parallel(lambda run_id: has_run(backend, run_id), run_ids)
    return [run_id for run_id, found in zip(run_ids, present) if not found]


def has_rank_records(backend: Backend, run_id: RunId) -> bool:
    """Whether a rank above 0 of the run stored its record (rank 0 may never have written)."""
    keys = list_keys(backend, rank_records_prefix(run_id))
    return any(rank_from_record_key(run_id, key) is not None for key in keys)


def read_rank_record(backend: Backend, run_id: RunId, rank: int) -> RankRecord | None:
    """One rank's stored record, or ``None`` if it has none."""
    key = rank_record_key(run_id, rank)
    data = _read(backend, key)
    return None if data is None else parse_rank_record(data, location(backend, key))


# Listings.


def in_parallel(call: Callable[[_Item], _Result], items: Sequence[_Item]) -> list[_Result]:
    """``[call(item) for item in items]``, up to :data:`READ_THREADS` at a time.

    Each call is a round trip to the store, so they overlap; the first error
    raised is raised here once every call has ended.
    """
    if len(items) <= 1:
        return [call(item) for item in items]
    with ThreadPoolExecutor(min(READ_THREADS, len(items))) as pool:
        return list(pool.map(call, items))


def _parse_each(
    parse: Callable[[bytes, str], _Record],
    backend: Backend,
    listed: Sequence[tuple[_Item, StoredObject]],
    *,
    where: str,
    skip_invalid: bool,
) -> list[tuple[_Item, _Record | InvalidRecordError]]:
    """Each item with its record, read in one batch; items without one are left out.

    A record that cannot be parsed comes back as its :class:`InvalidRecordError`
    if *skip_invalid*, so the caller warns with its own wording; else it is raised.
    """
    contents = read_objects(backend, [item for _, item in listed], where=where)
    parsed: list[tuple[_Item, _Record | InvalidRecordError]] = []
    for (name, item), data in zip(listed, contents):
        if data is None:
            continue
        try:
            parsed.append((name, parse(data, location(backend, item.key))))
        except InvalidRecordError as error:
            if not skip_invalid:
                raise
            parsed.append((name, error))
    return parsed


def _run_records(
    backend: Backend, listed: Sequence[tuple[RunId, StoredObject]], *, skip_invalid: bool
) -> list[ExperimentRun]:
    """The parsed records of *listed* runs; invalid ones skipped with a warning or raised."""
    records: list[ExperimentRun] = []
    found = _parse_each(parse_run, backend, listed, where=RUNS_DIR, skip_invalid=skip_invalid)
    for run_id, record in found:
        if isinstance(record, InvalidRecordError):
            warnings.warn(f"pacha: skipping run {run_id}: {record}", stacklevel=4)
        else:
            records.append(record)
    return records


def _listed_runs(backend: Backend) -> list[tuple[RunId, StoredObject]]:
    """Each run with a ``run.json``, with the record's listing entry (one listing of ``runs/``)."""
    listed = [(run_id_from_record_key(item.key), item) for item in list_objects(backend, RUNS_DIR)]
    return [(run_id, item) for run_id, item in listed if run_id is not None]


def stored_run_ids(backend: Backend) -> list[RunId]:
    """Ids of the runs with a ``run.json``, from one listing of ``runs/``."""
    return [run_id for run_id, _ in _listed_runs(backend)]


def ranked_run_ids(backend: Backend) -> set[RunId]:
    """Ids of the runs with a rank record, whether or not they have a ``run.json``.

    A rank above 0 whose rank 0 never wrote ``run.json`` (it died first, or
    has not started yet) still owns its points: readers and ``gc`` go by this.
    """
    found = map(run_id_from_rank_record_key, list_keys(backend, RUNS_DIR))
    return {run_id for run_id in found if run_id is not None}


def read_runs(
    backend: Backend, run_ids: Sequence[RunId], *, skip_invalid: bool
) -> list[ExperimentRun]:
    """The ``run.json`` of *run_ids* as written, read fresh in one batch; removed ones left out.

    A record that cannot be parsed is skipped with a warning if
    *skip_invalid*, else raises :class:`InvalidRecordError` (for callers
    that must know every record, such as garbage collection).
    """
    listed = [(run_id, StoredObject(run_record_key(run_id))) for run_id in run_ids]
    return _run_records(backend, listed, skip_invalid=skip_invalid)


def list_rank_records(backend: Backend, run_id: RunId) -> list[RankRecord]:
    """The records of the ranks above 0 of a distributed run, by rank.

    A rank record that cannot be parsed, or whose ``rank`` is not the one in
    its key, is skipped with a warning. Raises :class:`RunNotFoundError` if
    the store has neither the run's record nor any rank record.
    """
    prefix = rank_records_prefix(run_id)
    objects = list_objects(backend, prefix)
    if not objects and not has_run(backend, run_id):
        raise RunNotFoundError(str(run_id), backend.uri)
    ranked = [(rank_from_record_key(run_id, item.key), item) for item in objects]
    listed = sorted((rank, item) for rank, item in ranked if rank is not None)

    records: list[RankRecord] = []
    found = _parse_each(parse_rank_record, backend, listed, where=prefix, skip_invalid=True)
    for rank, record in found:
        if isinstance(record, InvalidRecordError):
            warnings.warn(f"pacha: skipping rank {rank}: {record}", stacklevel=3)
        elif record.rank != rank:
            where = location(backend, rank_record_key(run_id, rank))
            warnings.warn(f"pacha: skipping {where}: it says rank {record.rank}", stacklevel=3)
        else:
            records.append(record)
    return records
