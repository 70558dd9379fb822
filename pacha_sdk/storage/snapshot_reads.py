"""Reading records snapshots: the newest one, once per process, and what is known of each store.

:mod:`pacha_sdk.storage.snapshots` says what snapshots are and decides when
to use and write them; this module finds and loads them. A process keeps
the last snapshot it read or wrote for each store (snapshots never change,
so it need not fetch one again while it is the newest), the ones it found
unusable (warned once), and whether the store refused a write.
:class:`Prefetch` loads the newest beside a listing.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pacha_sdk.exceptions import InvalidRecordError, StoreError
from pacha_sdk.storage.layout import INDEX_DIR, run_id_from_record_key, written_at_from_snapshot_key
from pacha_sdk.storage.records import list_keys, location, parse_run
from pacha_sdk.storage.snapshot_format import decode

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from pacha_sdk.backends import Backend, StoredObject
    from pacha_sdk.models import ExperimentRun

__all__ = [
    "Known",
    "Prefetch",
    "Snapshot",
    "about",
    "forget",
    "listed_snapshots",
    "load",
    "lock",
    "newest",
    "prefetch",
    "warn_all",
]

logger = logging.getLogger("pacha_sdk")

TRIES = 2
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


@dataclass
class Known:
    """Per store: the snapshot last read or written, those found unusable, whether writes fail."""

    held: Snapshot | None = None
    """The snapshot this process read or wrote last (snapshots never change: no need to
    fetch it again while it is the newest)."""
    unusable: set[str] = field(default_factory=set)
    refused: bool = False
    """The store denied a snapshot (read-only): no more tries in this process."""
    probed: bool = False
    """Whether a listing already fetched the newest snapshot beside it (:func:`prefetch`)."""


lock = threading.Lock()
known_stores: dict[str, Known] = {}


def forget() -> None:
    """Forget every snapshot this process has seen, as a fresh process would (tests, benchmarks)."""
    with lock:
        known_stores.clear()


def about(backend: Backend) -> Known:
    """What this process knows of *backend*'s snapshots (a new, empty entry the first time)."""
    with lock:
        return known_stores.setdefault(backend.uri, Known())


def listed_snapshots(backend: Backend) -> list[tuple[str, datetime]]:
    """Each snapshot in ``index/`` with when its name says it was written, oldest first.

    Other objects under ``index/`` are left out (they are not pacha's, or
    of a later version); a store that cannot be read raises :class:`StoreError`.
    """
    found = [(key, written_at_from_snapshot_key(key)) for key in list_keys(backend, INDEX_DIR)]
    return sorted((key, at) for key, at in found if at is not None)


def load(backend: Backend, key: str, problems: list[str]) -> Snapshot | None:
    """The snapshot at *key*, or ``None`` (gone, or unreadable: said in *problems*, remembered)."""
    known = about(backend)
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
        with lock:
            known.unusable.add(key)
        problems.append(f"pacha: ignoring {error}; reading the records themselves")
    except (OSError, StoreError) as error:
        logger.debug("pacha: could not read records snapshot %s: %s", where, error)
    else:
        with lock:
            known.held = snapshot
        return snapshot
    return None


def newest(
    backend: Backend, listed: Sequence[tuple[str, datetime]], problems: list[str]
) -> Snapshot | None:
    """The newest snapshot of *listed* that can be read (up to :data:`TRIES` tried)."""
    for key, _ in reversed(listed[-TRIES:]):
        snapshot = load(backend, key, problems)
        if snapshot is not None:
            return snapshot
    return None


def warn_all(problems: list[str]) -> None:
    """Warn of each problem found loading snapshots, in the calling thread."""
    for problem in problems:
        warnings.warn(problem, stacklevel=6)


class Prefetch:
    """The newest snapshot, fetched and its run records parsed while ``runs/`` is listed.

    The listing of 10,000 records keeps an object store busy for a second or
    so while this process mostly waits; a reader that starts this first
    (:func:`prefetch`) finds the snapshot decoded and its ``run.json``
    entries parsed by then. Nothing it holds is used unless the listing
    shows the same key at the same version.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.listed: list[tuple[str, datetime]] = []
        self.snapshot: Snapshot | None = None
        self.failed = False
        self.problems: list[str] = []
        self._records: dict[str, tuple[str, ExperimentRun]] = {}
        self._thread = threading.Thread(target=self._fetch, name="pacha-snapshot", daemon=True)
        self._thread.start()

    def _fetch(self) -> None:
        try:
            self.listed = listed_snapshots(self.backend)
            self.snapshot = newest(self.backend, self.listed, self.problems)
            for key, (version, data) in (self.snapshot.entries if self.snapshot else {}).items():
                if run_id_from_record_key(key) is not None:
                    with contextlib.suppress(InvalidRecordError):  # read again, and warned, later
                        self._records[key] = (version, parse_run(data, key))
        except Exception as error:  # best-effort: the reader lists and reads as without it
            self.failed = True
            logger.debug("pacha: could not prefetch records snapshots: %s", error)

    def result(self) -> Prefetch:
        """This, once the fetch has ended; its warnings are given here, in the caller's thread."""
        self._thread.join()
        problems, self.problems = self.problems, []
        warn_all(problems)
        return self

    def record(self, item: StoredObject) -> ExperimentRun | None:
        """The parsed ``run.json`` at *item*, once, if the snapshot holds it at its version."""
        entry = self._records.pop(item.key, None)
        if entry is None or item.version is None or entry[0] != item.version:
            return None
        return entry[1]


def prefetch(backend: Backend) -> Prefetch | None:
    """Start fetching the newest snapshot, the first time this process lists a store by version.

    ``None`` for a store without versions, and after the first time: by
    then the process holds that snapshot or knows there is none worth it, and
    later listings fetch one only when many records are missing.
    """
    if not backend.lists_versions:
        return None
    known = about(backend)
    with lock:
        if known.probed:
            return None
        known.probed = True
    return Prefetch(backend)
