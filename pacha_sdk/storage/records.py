"""Run and rank records in the store: parse, read, list and write them.

``runs/<id>/run.json`` (:class:`~pacha_sdk.models.ExperimentRun`) and
``runs/<id>/ranks/<rank>.json`` (:class:`~pacha_sdk.models.RankRecord`) are
read and written here and nowhere else: the record keeper of a live run,
the read API, store upkeep and ``sync`` all go through these functions.

This is also where a store's failure becomes :class:`StoreError`, for every
module that talks to a backend (:func:`store_errors`): the error names what
was being done, the key and the store, so ``could not read runs in
s3://bucket/prefix: ...`` says where to look.

Listings read the records in parallel (:data:`READ_THREADS`): an object
store answers each read in tens of milliseconds, and a store with thousands
of runs would take minutes one read at a time.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel, ValidationError

from pacha_sdk.exceptions import InvalidRecordError, RunNotFoundError, StoreError
from pacha_sdk.models import ExperimentRun, RankRecord, RunId
from pacha_sdk.storage.layout import (
    RUNS_DIR,
    rank_from_record_key,
    rank_record_key,
    rank_records_prefix,
    run_id_from_record_key,
    run_record_key,
)

if TYPE_CHECKING:
    from pacha_sdk.backends import Backend

__all__ = [
    "READ_THREADS",
    "has_run",
    "list_keys",
    "list_rank_records",
    "list_run_records",
    "load_run",
    "location",
    "parse_rank_record",
    "parse_run",
    "read_rank_record",
    "read_run",
    "read_runs",
    "record_bytes",
    "store_errors",
    "stored_run_ids",
    "write_record",
    "write_run",
]

READ_THREADS = 16
"""Most records read at once by a listing."""

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


# Parsing and writing.


def _parse(model: type[_Record], data: bytes, where: str) -> _Record:
    try:
        return model.model_validate_json(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "document"
        raise InvalidRecordError(where, f"{field}: {first['msg']}") from None


def parse_run(data: bytes, where: str) -> ExperimentRun:
    """Parse a ``run.json``; raise :class:`InvalidRecordError` naming *where* if invalid."""
    return _parse(ExperimentRun, data, where)


def parse_rank_record(data: bytes, where: str) -> RankRecord:
    """Parse a rank record; raise :class:`InvalidRecordError` naming *where* if invalid."""
    return _parse(RankRecord, data, where)


def record_bytes(record: ExperimentRun | RankRecord) -> bytes:
    """A record as the JSON bytes stored for it."""
    return record.model_dump_json(indent=2).encode("utf-8")


def write_record(backend: Backend, key: str, data: bytes) -> None:
    """Replace the record at *key* whole (atomically, as the backend does)."""
    with store_errors(backend, "write", key):
        backend.replace(key, data)


def write_run(backend: Backend, record: ExperimentRun) -> None:
    """Replace the run's ``run.json`` with *record*."""
    write_record(backend, run_record_key(record.run_id), record_bytes(record))


# Reading one record.


def _read(backend: Backend, key: str) -> bytes | None:
    with store_errors(backend, "read", key):
        try:
            return backend.read_bytes(key)
        except FileNotFoundError:
            return None


def read_run(backend: Backend, run_id: RunId) -> ExperimentRun | None:
    """The run's stored record, or ``None`` if it has none (yet, or any more)."""
    key = run_record_key(run_id)
    data = _read(backend, key)
    return None if data is None else parse_run(data, location(backend, key))


def load_run(backend: Backend, run_id: RunId) -> ExperimentRun:
    """The run's stored record; :class:`RunNotFoundError` if it has none."""
    record = read_run(backend, run_id)
    if record is None:
        raise RunNotFoundError(str(run_id), backend.uri)
    return record


def has_run(backend: Backend, run_id: RunId) -> bool:
    """Whether the store has the run's ``run.json``."""
    key = run_record_key(run_id)
    with store_errors(backend, "read", key):
        return backend.exists(key)


def read_rank_record(backend: Backend, run_id: RunId, rank: int) -> RankRecord | None:
    """One rank's stored record, or ``None`` if it has none."""
    key = rank_record_key(run_id, rank)
    data = _read(backend, key)
    return None if data is None else parse_rank_record(data, location(backend, key))


# Listings.


def _parallel(read: Callable[[_Item], _Result], items: Sequence[_Item]) -> list[_Result]:
    """``[read(item) for item in items]``, up to :data:`READ_THREADS` at a time."""
    if len(items) <= 1:
        return [read(item) for item in items]
    with ThreadPoolExecutor(min(READ_THREADS, len(items))) as pool:
        return list(pool.map(read, items))


def _read_each(
    read: Callable[[_Item], _Record | None], items: Sequence[_Item], *, skip_invalid: bool
) -> list[tuple[_Item, _Record | InvalidRecordError]]:
    """Each item with its record, read in parallel; items without one are left out.

    A record that cannot be parsed comes back as its :class:`InvalidRecordError`
    if *skip_invalid*, so the caller warns in its own thread; else it is raised.
    """

    def attempt(item: _Item) -> _Record | InvalidRecordError | None:
        try:
            return read(item)
        except InvalidRecordError as error:
            if not skip_invalid:
                raise
            return error

    found = zip(items, _parallel(attempt, items))
    return [(item, record) for item, record in found if record is not None]


def stored_run_ids(backend: Backend) -> list[RunId]:
    """Ids of the runs with a ``run.json``, from one listing of ``runs/``."""
    found = map(run_id_from_record_key, list_keys(backend, RUNS_DIR))
    return [run_id for run_id in found if run_id is not None]


def read_runs(
    backend: Backend, run_ids: Sequence[RunId], *, skip_invalid: bool
) -> list[ExperimentRun]:
    """The records of *run_ids*, read in parallel; a record removed meanwhile is left out.

    A record that cannot be parsed is skipped with a warning if
    *skip_invalid*, else raises :class:`InvalidRecordError` (for callers
    that must know every record, such as garbage collection).
    """
    records: list[ExperimentRun] = []
    read = _read_each(lambda rid: read_run(backend, rid), run_ids, skip_invalid=skip_invalid)
    for run_id, found in read:
        if isinstance(found, InvalidRecordError):
            warnings.warn(f"pacha: skipping run {run_id}: {found}", stacklevel=4)
        else:
            records.append(found)
    return records


def list_run_records(backend: Backend, *, skip_invalid: bool = True) -> list[ExperimentRun]:
    """Every run record in the store, in listing order (see :func:`read_runs`)."""
    return read_runs(backend, stored_run_ids(backend), skip_invalid=skip_invalid)


def list_rank_records(backend: Backend, run_id: RunId) -> list[RankRecord]:
    """The records of the ranks above 0 of a distributed run, by rank.

    A rank record that cannot be parsed, or whose ``rank`` is not the one in
    its key, is skipped with a warning. Raises :class:`RunNotFoundError` if
    the store has neither the run's record nor any rank record.
    """
    keys = list_keys(backend, rank_records_prefix(run_id))
    if not keys and not has_run(backend, run_id):
        raise RunNotFoundError(str(run_id), backend.uri)
    ranks = sorted(rank for key in keys if (rank := rank_from_record_key(run_id, key)) is not None)

    records: list[RankRecord] = []
    read = _read_each(
        lambda rank: read_rank_record(backend, run_id, rank), ranks, skip_invalid=True
    )
    for rank, found in read:
        if isinstance(found, InvalidRecordError):
            warnings.warn(f"pacha: skipping rank {rank}: {found}", stacklevel=3)
        elif found.rank != rank:
            where = location(backend, rank_record_key(run_id, rank))
            warnings.warn(f"pacha: skipping {where}: it says rank {found.rank}", stacklevel=3)
        else:
            records.append(found)
    return records
