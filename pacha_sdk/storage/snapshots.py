"""Records snapshots: many small records in one object, so a cold reader makes few requests.

``list_runs`` reads every ``runs/<id>/run.json`` and every annotation beside
it. On an object store each is a GET of its own (about 1 ms of client and
server CPU each, so 10,000 runs cost seconds whatever the client), while
the listing of ``runs/`` that finds them reports each object's version
(S3's ETag, GCS's generation) for nothing. A records snapshot,
``index/records-<UTC time>-<uuid>.parquet``, holds the content of many
such objects with the version the listing gave each when it was taken. A
cold reader then does the listing it always did (the truth: new runs,
deleted runs and changed records are seen there), one GET of the newest
snapshot, and GETs only of the objects whose listed version is not the
one in the snapshot (:func:`read_listed`).

Rules that keep it a cache, never the truth:

* an entry is used only if its key and version equal the listing's; a
  store whose listing gives no version (local folders, ``memory://``) never
  uses or writes snapshots (its reads cost microseconds anyway);
* snapshots are create-only and never rewritten (``write_new``: a local
  link, S3 ``If-None-Match``, GCS ``ifGenerationMatch``), each under a new
  key that sorts after every snapshot its writer saw, so the newest is the
  last key listed even between writers whose clocks differ;
* one that cannot be read or is not one (cut short, another format) is
  ignored with one warning per process, and the records are read as they
  would be without it (the next older snapshot is tried once);
* writing one is best-effort: a store that refuses it (read-only
  credentials) gets one log line per process, at INFO, and no error.

Who writes them: ``pacha compact`` / :func:`pacha_sdk.compact` after
compacting every run (:func:`refresh`, only if the records changed since
the newest snapshot), and any reader that had to GET many records the
snapshot lacked (:data:`WRITE_AFTER`, and a :data:`STALE_SHARE` of all of
them), unless the newest snapshot is younger than :data:`MIN_INTERVAL`, so
a store with many live runs does not get one per listing. ``pacha gc``
deletes snapshots superseded for :data:`SUPERSEDED_AGE` or longer
(:func:`superseded`), so a reader that picked one just before never finds
it gone.

The format, for any other tool: a Parquet file (zstd) with columns
``key`` (string, the object's key under the root), ``version`` (string, as
the store's listing reports it) and ``data`` (binary, the object's bytes as
stored), and the schema metadata ``pacha.format = pacha.records-snapshot/1``.
"""

from __future__ import annotations

import io
import itertools
import logging
import threading
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from pacha_sdk.exceptions import InvalidRecordError, StoreError, StorePermissionError
from pacha_sdk.storage.layout import INDEX_DIR, records_snapshot_key, written_at_from_snapshot_key
from pacha_sdk.storage.records import list_keys, location, read_objects

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    import pyarrow as pa

    from pacha_sdk.backends import Backend, StoredObject

__all__ = [
    "FORMAT",
    "LOAD_AFTER",
    "MIN_INTERVAL",
    "STALE_SHARE",
    "SUPERSEDED_AGE",
    "WRITE_AFTER",
    "Snapshot",
    "decode",
    "encode",
    "forget",
    "listed_snapshots",
    "read_listed",
    "refresh",
    "superseded",
]

logger = logging.getLogger("pacha_sdk")

FORMAT = "pacha.records-snapshot/1"
"""The ``pacha.format`` a snapshot's Parquet schema metadata says; any other is not one."""
_FORMAT_KEY = b"pacha.format"
LOAD_AFTER = 64
"""Fewest records a read needs (beyond the process's records cache) before it fetches the
snapshot: below that, the records themselves are a few round trips."""
WRITE_AFTER = 256
"""Fewest records a read must GET beyond the snapshot before it writes a new one."""
STALE_SHARE = 0.1
"""...and the least share of all the records those must be (a few live runs of many
change at every flush: not worth a snapshot each time)."""
MIN_INTERVAL = 60.0
"""Seconds after a snapshot during which readers write no other."""
SUPERSEDED_AGE = 3600.0
"""Seconds a snapshot stays after a newer one is written, for readers that picked it before."""
_TRIES = 2
"""Snapshots a reader tries, newest first, when one cannot be read."""


@dataclass(frozen=True)
class Snapshot:
    """One snapshot's content: each key's version and bytes when it was taken."""

    key: str
    """Where the snapshot is."""
    entries: Mapping[str, tuple[str, bytes]]
    """Object key to ``(version, content)``."""

    def held(self, item: StoredObject) -> bytes | None:
        """The content of *item* if the snapshot holds it at exactly its listed version."""
        entry = self.entries.get(item.key)
        if entry is None or item.version is None or entry[0] != item.version:
            return None
        return entry[1]


# The format.


def encode(entries: Iterable[tuple[StoredObject, bytes]]) -> bytes:
    """A snapshot of *entries* (each listed object, with a version, and its content)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    keys, versions, contents = [], [], []
    for item, data in entries:
        if item.version is not None:
            keys.append(item.key)
            versions.append(item.version)
            contents.append(data)
    table = pa.table(
        {"key": keys, "version": versions, "data": pa.array(contents, pa.binary())},
        schema=_schema(),
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", use_dictionary=False)
    return sink.getvalue()


def decode(data: bytes, where: str) -> dict[str, tuple[str, bytes]]:
    """The entries of the snapshot *data*; :class:`InvalidRecordError` naming *where* if not one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError, ValueError) as error:
        raise InvalidRecordError(where, f"not Parquet: {error}", kind="records snapshot") from None
    said = (table.schema.metadata or {}).get(_FORMAT_KEY)
    if said != FORMAT.encode():
        found = "none" if said is None else repr(said.decode("utf-8", "replace"))
        raise InvalidRecordError(where, f"format {found}, not {FORMAT!r}", kind="records snapshot")
    if not table.schema.remove_metadata().equals(_schema().remove_metadata()):
        raise InvalidRecordError(where, f"columns {table.schema}", kind="records snapshot")
    if any(table.column(name).null_count for name in table.column_names):
        raise InvalidRecordError(where, "a null value", kind="records snapshot")
    keys = table.column("key").to_pylist()
    held = zip(table.column("version").to_pylist(), table.column("data").to_pylist())
    entries = dict(zip(keys, held))
    if len(entries) != len(keys):
        raise InvalidRecordError(where, "a key twice", kind="records snapshot")
    return entries


def _schema() -> pa.Schema:
    import pyarrow as pa

    fields = [("key", pa.string()), ("version", pa.string()), ("data", pa.binary())]
    return pa.schema(fields, metadata={_FORMAT_KEY: FORMAT.encode()})


# What this process learnt about each store's snapshots.


@dataclass
class _Known:
    """Per store: the snapshot last read or written, those found unusable, whether writes fail."""

    held: Snapshot | None = None
    """The snapshot this process read or wrote last (snapshots never change: no need to
    fetch it again while it is the newest)."""
    unusable: set[str] = field(default_factory=set)
    refused: bool = False
    """The store denied a snapshot (read-only): no more tries in this process."""


_lock = threading.Lock()
_known: dict[str, _Known] = {}


def forget() -> None:
    """Forget every snapshot this process has seen, as a fresh process would (tests, benchmarks)."""
    with _lock:
        _known.clear()


def _about(backend: Backend) -> _Known:
    with _lock:
        return _known.setdefault(backend.uri, _Known())


def listed_snapshots(backend: Backend) -> list[tuple[str, datetime]]:
    """Each snapshot in ``index/`` with when its name says it was written, oldest first.

    Other objects under ``index/`` are left out (they are not pacha's, or
    of a later version); a store that cannot be read raises :class:`StoreError`.
    """
    found = [(key, written_at_from_snapshot_key(key)) for key in list_keys(backend, INDEX_DIR)]
    return sorted((key, at) for key, at in found if at is not None)


def _load(backend: Backend, key: str) -> Snapshot | None:
    """The snapshot at *key*, or ``None`` (gone, unreadable: warned once, and remembered)."""
    known = _about(backend)
    if known.held is not None and known.held.key == key:
        return known.held
    if key in known.unusable:
        return None
    where = location(backend, key)
    try:
        snapshot = Snapshot(key, decode(backend.read_bytes(key), where))
    except FileNotFoundError:
        return None  # removed by gc since the listing
    except InvalidRecordError as error:
        known.unusable.add(key)
        warnings.warn(f"pacha: ignoring {error}; reading the records themselves", stacklevel=5)
    except (OSError, StoreError) as error:
        logger.debug("pacha: could not read records snapshot %s: %s", where, error)
    else:
        with _lock:
            known.held = snapshot
        return snapshot
    return None


def _newest(backend: Backend, listed: Sequence[tuple[str, datetime]]) -> Snapshot | None:
    """The newest snapshot of *listed* that can be read (up to :data:`_TRIES` tried)."""
    for key, _ in reversed(listed[-_TRIES:]):
        snapshot = _load(backend, key)
        if snapshot is not None:
            return snapshot
    return None


def _write(
    backend: Backend, entries: Sequence[tuple[StoredObject, bytes]], after: datetime | None
) -> str | None:
    """Store a snapshot of *entries* under a key after *after*; its key, or ``None`` if refused.

    Never raises: a refusal is logged once per process and store (INFO if
    the store denied it, DEBUG otherwise).
    """
    known = _about(backend)
    now = datetime.now(timezone.utc)
    at = now if after is None else max(now, after + timedelta(microseconds=1))
    key = records_snapshot_key(at, uuid.uuid4().hex)
    try:
        backend.write_new(key, encode(entries))
    except Exception as error:  # best-effort: a cache that cannot be written is no error
        level = logging.INFO if isinstance(error, PermissionError) else logging.DEBUG
        if not known.refused:
            logger.log(
                level,
                "pacha: could not write records snapshot %s (list_runs reads each record "
                "instead): %s: %s",
                location(backend, key),
                type(error).__name__,
                error,
            )
        known.refused = known.refused or isinstance(error, (PermissionError, StorePermissionError))
        return None
    with _lock:
        known.held = Snapshot(key, {item.key: (item.version or "", data) for item, data in entries})
    return key


# Reading through the newest snapshot.


class _Lookup:
    """What :func:`read_objects` asks after its records cache: the snapshot's entries.

    It fetches the newest snapshot only when enough records are missing (or
    always, when refreshing), and remembers what it saw for the write decision.
    """

    def __init__(self, backend: Backend, *, refreshing: bool) -> None:
        self.backend = backend
        self.refreshing = refreshing
        self.missing = 0
        self.held = 0
        self.listed: list[tuple[str, datetime]] = []
        self.snapshot: Snapshot | None = None
        self.newest_read: datetime | None = None
        """When the newest snapshot this process could use was written."""

    def __call__(self, missing: Sequence[StoredObject]) -> Mapping[str, bytes]:
        versioned = [item for item in missing if item.version is not None]
        self.missing = len(versioned)
        if not versioned and not self.refreshing:
            return {}
        if len(versioned) < LOAD_AFTER and not self.refreshing:
            return {}
        try:
            self.listed = listed_snapshots(self.backend)
        except (OSError, StoreError) as error:
            logger.debug("pacha: could not list records snapshots: %s", error)
            return {}
        if not self.listed:
            return {}
        self.snapshot = _newest(self.backend, self.listed)
        if self.snapshot is None:
            return {}
        self.newest_read = written_at_from_snapshot_key(self.snapshot.key)
        found = {
            item.key: data for item in versioned if (data := self.snapshot.held(item)) is not None
        }
        self.held = len(found)
        return found

    def worth_writing(self, entries: Sequence[tuple[StoredObject, bytes]]) -> bool:
        """Whether a new snapshot of *entries* saves later readers enough to write it."""
        if not entries or _about(self.backend).refused:
            return False
        if self.refreshing:
            held = {(item.key, item.version) for item, _ in entries}
            return self.snapshot is None or held != {
                (key, version) for key, (version, _) in self.snapshot.entries.items()
            }
        fetched = self.missing - self.held
        if fetched < WRITE_AFTER or fetched < STALE_SHARE * len(entries):
            return False
        if self.newest_read is None:
            return True
        age = (datetime.now(timezone.utc) - self.newest_read).total_seconds()
        return not 0 <= age < MIN_INTERVAL


def _read(
    backend: Backend, listed: Sequence[StoredObject], *, where: str, refreshing: bool
) -> tuple[list[bytes | None], str | None]:
    lookup = _Lookup(backend, refreshing=refreshing)
    contents = read_objects(backend, listed, where=where, fallback=lookup)
    entries = [
        (item, data)
        for item, data in zip(listed, contents)
        if data is not None and item.version is not None
    ]
    written = None
    if lookup.worth_writing(entries):
        after = lookup.listed[-1][1] if lookup.listed else None
        written = _write(backend, entries, after)
    return contents, written


def read_listed(
    backend: Backend, listed: Sequence[StoredObject], *, where: str
) -> list[bytes | None]:
    """The content of each listed object, as :func:`read_objects` gives it, through the snapshot.

    After the records cache, the newest snapshot serves every object it
    holds at its listed version; the rest are read from the store. A read
    that had to fetch many (see the module docstring) leaves a new snapshot
    behind, best-effort. Raises only what :func:`read_objects` raises.
    """
    return _read(backend, listed, where=where, refreshing=False)[0]


def refresh(backend: Backend, listed: Sequence[StoredObject], *, where: str) -> str | None:
    """Write a snapshot of the *listed* records unless the newest already holds them all.

    The key written, or ``None`` (nothing changed, no versions, or the store
    refused it). Raises only what :func:`read_objects` raises.
    """
    return _read(backend, listed, where=where, refreshing=True)[1]


def superseded(backend: Backend, now: datetime | None = None) -> list[str]:
    """The snapshots ``pacha gc`` deletes: older than one written :data:`SUPERSEDED_AGE` ago.

    The newest is always kept; an older one goes once the one after it is
    old enough that no reader can still be fetching it.
    """
    now = now or datetime.now(timezone.utc)
    listed = listed_snapshots(backend)
    return [
        key
        for (key, _), (_, successor) in itertools.pairwise(listed)
        if (now - successor).total_seconds() >= SUPERSEDED_AGE
    ]
