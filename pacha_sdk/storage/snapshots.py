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

The format is plain Parquet, for any other tool to read or ignore
(:mod:`pacha_sdk.storage.snapshot_format`); finding and loading snapshots,
and what a process remembers of them, is :mod:`pacha_sdk.storage.snapshot_reads`.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from pacha_sdk.exceptions import StoreError
from pacha_sdk.storage.layout import (
    records_snapshot_key,
    written_at_from_snapshot_key,
)
from pacha_sdk.storage.records import location, read_objects
from pacha_sdk.storage.snapshot_format import FORMAT, decode, encode
from pacha_sdk.storage.snapshot_reads import (
    Prefetch,
    Snapshot,
    about,
    forget,
    listed_snapshots,
    lock,
    newest,
    prefetch,
    warn_all,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from pacha_sdk.backends import Backend, StoredObject

__all__ = [
    "FORMAT",
    "LOAD_AFTER",
    "MIN_INTERVAL",
    "STALE_SHARE",
    "SUPERSEDED_AGE",
    "WRITE_AFTER",
    "Prefetch",
    "Snapshot",
    "decode",
    "encode",
    "forget",
    "listed_snapshots",
    "prefetch",
    "read_listed",
    "refresh",
    "superseded",
]

logger = logging.getLogger("pacha_sdk")

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


def _write(
    backend: Backend, entries: Sequence[tuple[StoredObject, bytes]], after: datetime | None
) -> str | None:
    """Store a snapshot of *entries* under a key after *after*; its key, or ``None`` if refused.

    Never raises: a refusal is logged once per process and store (INFO if
    the store denied it, DEBUG otherwise).
    """
    known = about(backend)
    now = datetime.now(timezone.utc)
    at = now if after is None else max(now, after + timedelta(microseconds=1))
    key = records_snapshot_key(at, uuid.uuid4().hex)
    try:
        backend.write_new(key, encode(entries))
    except Exception as error:  # best-effort: a cache that cannot be written is no error
        level = logging.INFO if isinstance(error, PermissionError) else logging.DEBUG  # denied
        if not known.refused:
            logger.log(
                level,
                "pacha: could not write records snapshot %s (list_runs reads each record "
                "instead): %s: %s",
                location(backend, key),
                type(error).__name__,
                error,
            )
        known.refused = known.refused or isinstance(error, PermissionError)
        return None
    with lock:
        known.held = Snapshot(key, {item.key: (item.version or "", data) for item, data in entries})
    return key


# Reading through the newest snapshot.


class _Lookup:
    """What :func:`read_objects` asks after its records cache: the snapshot's entries.

    It fetches the newest snapshot only when enough records are missing (or
    always, when refreshing), and remembers what it saw for the write decision.
    """

    def __init__(
        self, backend: Backend, *, refreshing: bool, prefetched: Prefetch | None = None
    ) -> None:
        self.backend = backend
        self.refreshing = refreshing
        self.prefetched = prefetched
        self.missing = 0
        self.held = 0
        self.listed: list[tuple[str, datetime]] = []
        self.snapshot: Snapshot | None = None
        self.newest_read: datetime | None = None
        """When the newest snapshot this process could use was written."""

    def __call__(self, missing: Sequence[StoredObject]) -> Mapping[str, bytes]:
        versioned = [item for item in missing if item.version is not None]
        self.missing = len(versioned)
        ready = self.prefetched.result() if self.prefetched is not None else None
        if ready is not None and not ready.failed:
            self.listed, self.snapshot = ready.listed, ready.snapshot  # fetched beside the listing
        elif not self.refreshing and len(versioned) < LOAD_AFTER:
            return {}
        else:
            try:
                self.listed = listed_snapshots(self.backend)
            except (OSError, StoreError) as error:
                logger.debug("pacha: could not list records snapshots: %s", error)
                return {}
            problems: list[str] = []
            self.snapshot = newest(self.backend, self.listed, problems) if self.listed else None
            warn_all(problems)
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
        if not entries or about(self.backend).refused:
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
    backend: Backend,
    listed: Sequence[StoredObject],
    *,
    where: str,
    refreshing: bool,
    prefetched: Prefetch | None = None,
) -> tuple[list[bytes | None], str | None]:
    lookup = _Lookup(backend, refreshing=refreshing, prefetched=prefetched)
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
    backend: Backend,
    listed: Sequence[StoredObject],
    *,
    where: str,
    prefetched: Prefetch | None = None,
) -> list[bytes | None]:
    """The content of each listed object, as :func:`read_objects` gives it, through the snapshot.

    After the records cache, the newest snapshot serves every object it
    holds at its listed version; the rest are read from the store. A read
    that had to fetch many (see the module docstring) leaves a new snapshot
    behind, best-effort. *prefetched* (:func:`prefetch`, started before
    the listing) serves in place of listing and fetching snapshots here.
    Raises only what :func:`read_objects` raises.
    """
    return _read(backend, listed, where=where, refreshing=False, prefetched=prefetched)[0]


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
