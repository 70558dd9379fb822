"""URI scheme -> backend class, as lazy ``"module:Class"`` strings.

Modelled on fsspec's ``registry.py``: a backend is named by an import string
and imported only when a URI with its scheme is first opened, so
``import pacha_sdk`` never pulls in s3fs or gcsfs. A scheme whose module
cannot be imported raises :class:`~pacha_sdk.exceptions.ExtraNotInstalledError`
(also known as ``BackendNotInstalledError``) naming the extra to install,
such as ``pip install 'pacha-sdk[s3]'``.

Third-party packages add schemes through the entry-point group
``pacha_sdk.backends`` (name = scheme, value = ``"module:Class"``). The group
is read once, on the first lookup rather than at import, and an entry point
never replaces a scheme that is already registered: built-ins and explicit
:func:`register_backend` calls win.
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple, TypeAlias

from pacha_sdk.backends.base import Backend
from pacha_sdk.exceptions import ExtraNotInstalledError, UnknownSchemeError

__all__ = [
    "ENTRY_POINT_GROUP",
    "available_schemes",
    "get_backend",
    "known_backends",
    "register_backend",
    "split_scheme",
]

ENTRY_POINT_GROUP = "pacha_sdk.backends"
"""The entry-point group third-party backends register under."""

Target: TypeAlias = "str | type[Backend]"
"""A backend class, or a ``"module:Class"`` string naming one."""

_logger = logging.getLogger(__name__)
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)
_LOCAL = "pacha_sdk.backends.local:LocalBackend"
_S3 = "pacha_sdk.backends.s3:S3Backend"
_GCS = "pacha_sdk.backends.gcs:GCSBackend"


class _Entry(NamedTuple):
    target: Target
    extra: str | None
    """The pacha-sdk extra that installs the backend's client, for built-ins."""


_BUILTINS: dict[str, _Entry] = {
    "file": _Entry(_LOCAL, None),
    "local": _Entry(_LOCAL, None),
    "memory": _Entry("pacha_sdk.backends.memory:MemoryBackend", None),
    "s3": _Entry(_S3, "s3"),
    "s3a": _Entry(_S3, "s3"),
    "gs": _Entry(_GCS, "gcs"),
    "gcs": _Entry(_GCS, "gcs"),
}

_registry: dict[str, _Entry] = dict(_BUILTINS)
_targets: dict[str, Target] = {scheme: entry.target for scheme, entry in _BUILTINS.items()}
_from_entry_points: set[str] = set()
_entry_points_done = False
_lock = threading.RLock()


def split_scheme(uri: str) -> tuple[str, str]:
    r"""Split *uri* into its lowercased scheme and the rest.

    A string without ``scheme://`` is a local path and gets the scheme
    ``"file"``, so ``./runs``, ``/data/runs`` and ``C:\runs`` all go to the
    local backend.

    Args:
        uri: a URI such as ``s3://bucket/exp`` or a plain path.

    Returns:
        ``(scheme, rest)``, e.g. ``("s3", "bucket/exp")``.

    Raises:
        TypeError: if *uri* is not a string.
    """
    if not isinstance(uri, str):
        raise TypeError(f"a store URI must be a str, not {type(uri).__name__}: {uri!r}")
    match = _SCHEME_RE.match(uri)
    if match is None:
        return "file", uri
    return match.group(1).lower(), match.group(2)


def get_backend(uri: str, *, storage_options: Mapping[str, Any] | None = None) -> Backend:
    """Open the backend that serves *uri*.

    Args:
        uri: the store's root, e.g. ``./pacha-runs``, ``memory://exp``,
            ``s3://bucket/exp``.
        storage_options: settings passed to the backend's client (may hold
            credentials; never shown in errors).

    Returns:
        A new backend rooted at *uri*.

    Raises:
        UnknownSchemeError: no backend is registered for the scheme.
        ExtraNotInstalledError: the backend's optional extra is missing.
    """
    scheme, _ = split_scheme(uri)
    cls = _backend_class(scheme)
    try:
        return cls(uri, storage_options=storage_options)
    except ExtraNotInstalledError:
        raise
    except ImportError as exc:  # a backend that imports its client lazily
        raise _not_installed(scheme, _extra(scheme), str(exc)) from exc


def register_backend(scheme: str, target: Target, *, clobber: bool = False) -> None:
    """Register *target* as the backend for URIs starting with ``scheme://``.

    Args:
        scheme: the URI scheme, case-insensitive.
        target: a :class:`Backend` subclass or a ``"module:Class"`` string
            (imported on first use).
        clobber: replace an existing registration instead of refusing.

    Raises:
        ValueError: *scheme* is already registered and *clobber* is false, or
            *scheme* is not a valid URI scheme.
        TypeError: *target* is neither a string nor a :class:`Backend` subclass.
    """
    key = _check_scheme(scheme)
    _check_target(target)
    with _lock:
        _process_entry_points()
        if key in _registry and not clobber:
            raise ValueError(
                f"URI scheme {key!r} already has a backend ({_describe(_registry[key].target)}); "
                "pass clobber=True to replace it"
            )
        _set(key, _Entry(target, None))
        _from_entry_points.discard(key)


def available_schemes() -> list[str]:
    """Return every registered scheme, sorted (backends may still need an extra)."""
    with _lock:
        _process_entry_points()
        return sorted(_registry)


def known_backends() -> MappingProxyType[str, Target]:
    """Return a live, read-only view of scheme -> backend class or import string."""
    with _lock:
        _process_entry_points()
    return MappingProxyType(_targets)


def _backend_class(scheme: str) -> type[Backend]:
    """Return the backend class for *scheme*, importing it if needed."""
    with _lock:
        _process_entry_points()
        entry = _registry.get(scheme)
    if entry is None:
        raise UnknownSchemeError(scheme, available_schemes())
    if isinstance(entry.target, type):
        return entry.target
    return _import_target(scheme, entry.target, entry.extra)


def _import_target(scheme: str, target: str, extra: str | None) -> type[Backend]:
    """Import ``"module:Class"``; a failed import becomes :class:`ExtraNotInstalledError`."""
    module_name, _, attr_path = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise _not_installed(scheme, extra, f"cannot import {target!r} ({exc})") from exc
    try:
        for attr in attr_path.split("."):
            obj = getattr(obj, attr)
    except AttributeError as exc:
        raise _not_installed(scheme, None, f"{target!r} does not exist ({exc})") from exc
    if not (isinstance(obj, type) and issubclass(obj, Backend)):
        raise TypeError(f"{target!r}, registered for {scheme}://, is not a Backend subclass")
    return obj


def _process_entry_points() -> None:
    """Register the ``pacha_sdk.backends`` entry points, once; call with the lock held."""
    global _entry_points_done
    if _entry_points_done:
        return
    _entry_points_done = True
    import importlib.metadata  # costs ~20 ms: not at import time

    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        scheme = ep.name.lower()
        if scheme in _registry:
            _logger.warning(
                "ignoring entry point %r for the already registered scheme %r", ep.value, scheme
            )
            continue
        _set(scheme, _Entry(ep.value, None))
        _from_entry_points.add(scheme)


def _reset_entry_points() -> None:
    """Forget the entry points read so far, so the next lookup reads them again (tests)."""
    global _entry_points_done
    with _lock:
        for scheme in _from_entry_points:
            del _registry[scheme], _targets[scheme]
        _from_entry_points.clear()
        _entry_points_done = False


def _extra(scheme: str) -> str | None:
    """Return the pacha-sdk extra registered for *scheme*, if any."""
    with _lock:
        entry = _registry.get(scheme)
    return entry.extra if entry else None


def _not_installed(scheme: str, extra: str | None, reason: str) -> ExtraNotInstalledError:
    """The error for a backend that cannot be loaded: its extra, else what failed."""
    return ExtraNotInstalledError(
        f"the {scheme}:// backend", extra=extra, reason=reason, scheme=scheme
    )


def _set(scheme: str, entry: _Entry) -> None:
    """Store *entry* for *scheme* in both the registry and the public view."""
    _registry[scheme] = entry
    _targets[scheme] = entry.target


def _check_scheme(scheme: str) -> str:
    """Return *scheme* lowercased, or raise ValueError if it is not a URI scheme."""
    if not isinstance(scheme, str) or _SCHEME_RE.match(f"{scheme}://") is None:
        raise ValueError(f"{scheme!r} is not a valid URI scheme (e.g. 's3', 'my-store')")
    return scheme.lower()


def _check_target(target: object) -> None:
    """Raise TypeError unless *target* is a ``"module:Class"`` string or a Backend subclass."""
    if isinstance(target, str) and re.fullmatch(r"[\w.]+:[\w.]+", target):
        return
    if isinstance(target, type) and issubclass(target, Backend):
        return
    raise TypeError(
        f"a backend must be a Backend subclass or a 'module:Class' string, not {target!r}"
    )


def _describe(target: Target) -> str:
    """Return a short name for *target* for an error message."""
    if isinstance(target, str):
        return target
    return f"{target.__module__}:{target.__qualname__}"
