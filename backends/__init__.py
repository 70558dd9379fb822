"""Storage backends for pacha-sdk, installed as ``pacha_sdk.backends``.

The folder lives at the top of the repository and is mapped into the
package by ``[tool.setuptools.package-dir]``; importing it as a bare
``backends`` module would create duplicate classes, so it refuses.
"""

from __future__ import annotations

if __name__ != "pacha_sdk.backends":  # pragma: no cover - guard against a stray import
    raise ImportError(
        f"the pacha-sdk backends package was imported as {__name__!r}; "
        "import it as `pacha_sdk.backends` (pip install -e . maps it there)"
    )

from pacha_sdk.backends.base import Backend, StoredObject, check_key
from pacha_sdk.backends.registry import (
    available_schemes,
    get_backend,
    register_backend,
)

__all__ = [
    "Backend",
    "StoredObject",
    "available_schemes",
    "check_key",
    "get_backend",
    "register_backend",
]
