"""Checks for user-given names and text: run names, artifact names, tags.

Nothing in the store's layout uses a run name as a path today, but exports
and artifact folders do, so a name that could climb out of a folder
(``../x``, ``/etc``) or carries control characters is refused up front.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pacha_sdk.exceptions import UnsafeNameError

__all__ = ["check_display_name", "json_text", "tags_dict"]

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


def json_text(text: str) -> str:
    """*text* with lone surrogates backslash-escaped: run.json is UTF-8."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def tags_dict(tags: Mapping[str, Any] | Iterable[str]) -> dict[str, str]:
    """Tags as a ``{name: value}`` dict; a plain list of names maps each to ``""``."""
    if isinstance(tags, str):
        raise TypeError(f"tags must be a mapping or a list of str, got the string {tags!r}")
    items = tags.items() if isinstance(tags, Mapping) else ((tag, "") for tag in tags)
    result: dict[str, str] = {}
    for key, value in items:
        if not isinstance(key, str) or not key:
            raise TypeError(f"tag names must be non-empty str, got {key!r}")
        text = value if isinstance(value, str) else str(value)
        if json_text(key) != key or json_text(text) != text:
            raise ValueError(f"tag {key!r} = {text!r} is not valid Unicode text")
        result[key] = text
    return result
