"""Environment variables pacha-sdk reads, in one place.

``PACHA_URI`` picks the store when code passes no ``uri``; without it runs
go to ``./pacha-runs`` (a local folder, no server needed). Store clients
read their own standard variables (``AWS_ENDPOINT_URL``,
``STORAGE_EMULATOR_HOST``...) through their backends.
"""

from __future__ import annotations

import os

__all__ = ["DEFAULT_URI", "PACHA_RUN_ID", "PACHA_URI", "resolve_uri"]

PACHA_URI = "PACHA_URI"
"""Name of the variable holding the default store URI."""

PACHA_RUN_ID = "PACHA_RUN_ID"
"""Name of the variable holding a run id to attach to (distributed ranks)."""

DEFAULT_URI = "./pacha-runs"
"""The store used when neither ``uri`` nor ``PACHA_URI`` is given."""


def resolve_uri(uri: str | os.PathLike[str] | None) -> str:
    """Return *uri*, else ``$PACHA_URI``, else :data:`DEFAULT_URI`."""
    if uri is not None:
        text = os.fspath(uri)
        if not text:
            raise ValueError("uri must not be empty")
        return text
    return os.environ.get(PACHA_URI) or DEFAULT_URI
