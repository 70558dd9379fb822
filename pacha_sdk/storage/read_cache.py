"""Objects already read, kept by the version their store's listing gave them.

A listing of ``runs/`` on S3 or GCS says, for every key, a version token that
changes whenever the content does (the ETag, the generation). A reader that
lists first and finds a key at a version it has already read needs no request
for it: :func:`pacha_sdk.list_runs` over 10,000 runs then costs the listing
plus the records that changed since the last call, instead of 10,000 GETs
(about 0.8 ms of client CPU each, and as much again on a local server).

Nothing is served without a version from a fresh listing, so the cache can
never hand out stale content: a record rewritten since is listed with a new
version and fetched again. Keys whose store gives no version (local folders,
``memory://``) are never cached. The cache lives in the process only and is
bounded (:data:`MAX_BYTES`), least recently used first out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pacha_sdk.backends import StoredObject

__all__ = ["MAX_BYTES", "ReadCache", "records_cache"]

MAX_BYTES = 64 * 2**20
"""Most bytes of content the records cache holds."""


class ReadCache:
    """Object contents by ``(store URI, key)``, each valid for one listed version.

    Args:
        max_bytes: the most content bytes held; the least recently used go first.
    """

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self._max_bytes = max_bytes
        self._held = 0
        self._entries: OrderedDict[tuple[str, str], tuple[str, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, uri: str, listed: StoredObject) -> bytes | None:
        """The content of *listed* in the store at *uri*, if held at exactly its version."""
        if listed.version is None:
            return None
        with self._lock:
            entry = self._entries.get((uri, listed.key))
            if entry is None or entry[0] != listed.version:
                return None
            self._entries.move_to_end((uri, listed.key))
            return entry[1]

    def put(self, uri: str, listed: StoredObject, data: bytes) -> None:
        """Keep *data* as the content of *listed* at its version (no-op without one)."""
        if listed.version is None or len(data) > self._max_bytes:
            return
        with self._lock:
            old = self._entries.pop((uri, listed.key), None)
            if old is not None:
                self._held -= len(old[1])
            self._entries[(uri, listed.key)] = (listed.version, data)
            self._held += len(data)
            while self._held > self._max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._held -= len(dropped)

    def clear(self) -> None:
        """Forget everything (benchmarks measure cold reads with it)."""
        with self._lock:
            self._entries.clear()
            self._held = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


records_cache = ReadCache()
"""The process's cache of run and rank records (see the module docstring)."""
