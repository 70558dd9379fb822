"""The store a read function reads: resolved from ``uri``, and there.

Every reader of :mod:`pacha_sdk.query` opens its store here, so that a store
that is not there (a mistyped local path) is
:class:`~pacha_sdk.exceptions.StoreNotFoundError` naming the path for all of
them, never an empty list (DESIGN: a store that cannot be read is an error).
Writing is another matter: a run creates its local store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pacha_sdk.backends import Backend, get_backend
from pacha_sdk.env import resolve_uri

__all__ = ["open_store"]


def open_store(uri: str | None, storage_options: Mapping[str, Any] | None) -> Backend:
    """The backend of the store *uri* (default ``$PACHA_URI``, else ``./pacha-runs``) to read.

    Raises :class:`InvalidUriError` for a URI that names no store, and
    :class:`StoreNotFoundError` if the backend knows its root is absent.
    """
    backend = get_backend(resolve_uri(uri), storage_options=storage_options)
    backend.check_root()
    return backend
