"""Checks for user-given names that may end up in paths (run names, artifact names).

Nothing in the store's layout uses a run name as a path today, but exports
and artifact folders do, so a name that could climb out of a folder
(``../x``, ``/etc``) or carries control characters is refused up front.
"""

from __future__ import annotations

import re

from pacha_sdk.exceptions import UnsafeNameError

__all__ = ["check_display_name"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_display_name(what: str, value: object) -> str:
    """Return *value* if it is a usable name, else raise :class:`UnsafeNameError`."""
    if not isinstance(value, str):
        raise UnsafeNameError(what, value, "must be a str")
    if not value.strip():
        raise UnsafeNameError(what, value, "must not be empty")
    if _CONTROL.search(value):
        raise UnsafeNameError(what, value, "must not contain control characters")
    if value.startswith(("/", "\\")) or ".." in re.split(r"[/\\]", value):
        raise UnsafeNameError(what, value, "must not be an absolute path or contain '..'")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeNameError(what, value, "must be valid Unicode text") from None
    return value
