"""Temporary files that writers killed midway left in a store, for garbage collection.

A local write goes to ``.<name>.tmp-<hex>`` beside its target and is then
linked or renamed into place (:mod:`pacha_sdk.backends.local`), so a
process killed mid-write (SIGKILL, OOM, power) leaves the temporary file
behind. Listings never show them; :func:`pacha_sdk.gc` asks the backend for
them (:meth:`~pacha_sdk.backends.Backend.list_temporary`) and deletes those
unwritten for :data:`TEMP_FILE_AGE` seconds: a live write touches its file
with every piece it copies, so it keeps it. Object stores leave none.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from pacha_sdk.storage.records import store_errors

if TYPE_CHECKING:
    from pacha_sdk.backends import Backend

__all__ = ["TEMP_FILE_AGE", "delete_temporary", "temporaries"]

TEMP_FILE_AGE = 3600.0
"""Seconds a temporary file must go unwritten before :func:`pacha_sdk.gc` deletes it."""


def temporaries(backend: Backend, older_than: float) -> tuple[list[str], list[str]]:
    """The store's temporary files unwritten for *older_than* seconds, and the others."""
    if not older_than >= 0:
        raise ValueError(f"temp_older_than must be >= 0 seconds, got {older_than!r}")
    with store_errors(backend, "read", "temporary files"):
        found = backend.list_temporary()
    now = time.time()
    old = [key for key, mtime in found if now - mtime >= older_than]
    return old, [key for key, mtime in found if now - mtime < older_than]


def delete_temporary(backend: Backend, key: str) -> None:
    """Remove the temporary file *key*; gone already is fine (another collector)."""
    with (
        contextlib.suppress(FileNotFoundError),
        store_errors(backend, "delete", key, passing=(FileNotFoundError,)),
    ):
        backend.delete_temporary(key)
