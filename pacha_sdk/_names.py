"""Checks for user-given names and text: run names, artifact names, tags, notes.

Nothing in the store's layout uses a run name as a path today, but exports
and artifact folders do, so a name that could climb out of a folder
(``../x``, ``/etc``) or carries control characters is refused up front.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pacha_sdk.exceptions import InvalidAnnotationError, UnsafeNameError

__all__ = [
    "MAX_NOTE_LENGTH",
    "MAX_RUN_NAME_LENGTH",
    "MAX_TAG_NAME_LENGTH",
    "MAX_TAG_VALUE_LENGTH",
    "check_display_name",
    "check_note",
    "check_tag_names",
    "check_tags",
    "is_unicode_text",
    "json_text",
    "tags_dict",
]

MAX_TAG_NAME_LENGTH = 128
"""Longest tag name an edit may set, in characters."""
MAX_TAG_VALUE_LENGTH = 1024
"""Longest tag value an edit may set, in characters."""
MAX_NOTE_LENGTH = 65_536
"""Longest note, in characters: a few pages of text; attach longer text as an artifact."""
MAX_RUN_NAME_LENGTH = 256
"""Longest name an edit may give a run, in characters."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NOTE_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # newlines and tabs are fine


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
    if not is_unicode_text(value):
        raise UnsafeNameError(what, value, "must be valid Unicode text")
    return value


def is_unicode_text(text: str) -> bool:
    """Whether *text* encodes as UTF-8 (no lone surrogates), as JSON and file names need."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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


def _check_length(what: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise InvalidAnnotationError(
            what, value, f"is {len(value):,} characters long; the limit is {limit:,}"
        )


def _check_tag_name(name: object) -> str:
    if not isinstance(name, str):
        raise InvalidAnnotationError("tag name", name, "must be a str")
    if not name.strip():
        raise InvalidAnnotationError("tag name", name, "must not be empty")
    if _CONTROL.search(name) or json_text(name) != name:
        raise InvalidAnnotationError("tag name", name, "must be text without control characters")
    _check_length("tag name", name, MAX_TAG_NAME_LENGTH)
    return name


def check_tags(tags: Mapping[str, Any] | Iterable[str]) -> dict[str, str]:
    """Tags an edit sets, as ``{name: value}``: a mapping, or names (each valued ``""``).

    The same shapes ``pacha.run(tags=...)`` takes, with limits: a name is
    non-empty text of at most :data:`MAX_TAG_NAME_LENGTH` characters, a value
    at most :data:`MAX_TAG_VALUE_LENGTH`; neither holds control characters.
    """
    if isinstance(tags, str):
        raise TypeError(f"tags must be a mapping or a list of str, got the string {tags!r}")
    items = tags.items() if isinstance(tags, Mapping) else ((tag, "") for tag in tags)
    result: dict[str, str] = {}
    for name, value in items:
        text = value if isinstance(value, str) else str(value)
        _check_tag_name(name)
        if _CONTROL.search(text) or json_text(text) != text:
            raise InvalidAnnotationError(
                f"tag {name!r} value", text, "must be text without control characters"
            )
        _check_length(f"tag {name!r} value", text, MAX_TAG_VALUE_LENGTH)
        result[name] = text
    return result


def check_tag_names(names: Iterable[str]) -> list[str]:
    """Tag names an edit removes, checked as :func:`check_tags` checks names; each once."""
    if isinstance(names, str):
        raise TypeError(f"tag names must be a list of str, got the string {names!r}")
    return list(dict.fromkeys(_check_tag_name(name) for name in names))


def check_note(note: object) -> str:
    """A note: text of at most :data:`MAX_NOTE_LENGTH` characters (``""`` clears it).

    Newlines and tabs are kept; other control characters (terminal escapes)
    are refused.
    """
    if not isinstance(note, str):
        raise InvalidAnnotationError("note", note, "must be a str")
    if _NOTE_CONTROL.search(note) or json_text(note) != note:
        raise InvalidAnnotationError(
            "note", note, "must be text (newlines and tabs allowed, no other control characters)"
        )
    _check_length("note", note, MAX_NOTE_LENGTH)
    return note
