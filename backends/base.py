"""The backend contract: a place to put and read bytes under one root URI.

A backend owns everything that differs between stores: how a whole object is
replaced atomically, how an object is created only if absent, retries and
credentials. The rest of pacha-sdk speaks only in *keys*: relative,
``/``-separated paths under the root such as ``runs/<id>/run.json``.

Subclasses set :attr:`Backend.scheme` and implement the abstract methods.
:meth:`Backend.open_read` and :meth:`Backend.write_new_from` stream large
objects (artifacts); their defaults hold the whole object in memory, so
backends that can stream override them. :meth:`Backend.list_objects` and
:meth:`Backend.read_many` serve readers of many objects at once (thousands
of run records, the part files of many runs): their defaults build on
:meth:`Backend.list` and :meth:`Backend.read_bytes`, and object stores
override them to report sizes and versions from the listing itself and to
fetch many objects concurrently. Every method raises
:class:`FileNotFoundError` for a missing key, :class:`FileExistsError` when a
create-only write finds the key taken, and another :class:`OSError` when the
store fails.
"""

from __future__ import annotations

import abc
import builtins
import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, NamedTuple, Protocol

from pacha_sdk.exceptions import UnsafeNameError

if TYPE_CHECKING:
    import pyarrow.fs

__all__ = ["Backend", "Readable", "StoredObject", "check_key"]


class Readable(Protocol):
    """A source of bytes read in pieces: a binary file, or anything with ``read(size)``."""

    def read(self, size: int = ..., /) -> bytes:
        """Return up to *size* bytes (all that is left if negative); ``b""`` at the end."""
        ...


class StoredObject(NamedTuple):
    """One object of a listing, with what the store said about it there."""

    key: str
    """The object's key under the root."""
    size: int | None = None
    """Its size in bytes, or ``None`` if the listing does not say."""
    version: str | None = None
    """A token that changes whenever the content changes (S3 ETag, GCS generation),
    or ``None`` if the store gives none that is safe to rely on."""


def check_key(key: str) -> str:
    """Return *key* if it is a safe relative key, else raise :class:`UnsafeNameError`.

    A safe key is non-empty, relative, ``/``-separated, and has no empty,
    ``.`` or ``..`` segment, so it can never address anything outside the root.
    """
    if not isinstance(key, str) or not key:
        raise UnsafeNameError("key", key, "must be a non-empty string")
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise UnsafeNameError("key", key, "must be a relative '/'-separated path")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise UnsafeNameError("key", key, "must not contain empty, '.' or '..' segments")
    return key


class Backend(abc.ABC):
    """Bytes in and out of one store, addressed by keys relative to a root URI.

    Args:
        uri: the root, e.g. ``./pacha-runs``, ``memory://exp`` or ``s3://bucket/exp``.
        storage_options: store settings passed through to the client (fsspec
            keyword arguments). They may hold credentials, so a backend never
            puts them in a ``repr``, a log line or an error message.
    """

    scheme: ClassVar[str | tuple[str, ...]]
    """The URI scheme(s) this backend serves."""

    lists_versions: ClassVar[bool] = False
    """Whether :meth:`list_objects` reports a version for every object (S3, GCS), so
    readers may keep content by version (the records cache, records snapshots)."""

    write_ahead: ClassVar[bool] = True
    """Whether the writer first keeps each part on local disk (the spool) before
    sending it. A remote store can hang for seconds before it fails; the part
    must already be on disk by then, or a process killed meanwhile loses it.
    Local and in-memory stores, where the write itself is the local copy, say no.
    """

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None) -> None:
        self._uri = uri
        self._storage_options = dict(storage_options or {})

    @property
    def uri(self) -> str:
        """The root URI, normalised, safe to show (it never holds a secret)."""
        return self._uri

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"

    @abc.abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """Return the whole object at *key*."""

    @abc.abstractmethod
    def write_new(self, key: str, data: bytes) -> None:
        """Create the object at *key*; raise :class:`FileExistsError` if it exists.

        Readers never see a partly written object, and two writers racing for
        the same key never overwrite each other: exactly one wins.
        """

    @abc.abstractmethod
    def replace(self, key: str, data: bytes) -> None:
        """Create or replace the object at *key* whole, atomically for readers."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Return the sorted keys of every object under *prefix* (recursive).

        A prefix names a folder (``runs/`` or ``runs``); an absent folder gives
        an empty list, a store that cannot be read raises.
        """

    def list_objects(self, prefix: str = "") -> builtins.list[StoredObject]:
        """Return every object under *prefix* as :meth:`list` does, with size and version.

        One listing, no request per object: stores whose listing reports sizes
        and versions (S3, GCS) fill them in. This default knows neither.
        """
        return [StoredObject(key) for key in self.list(prefix)]

    def read_many(self, keys: Sequence[str]) -> builtins.list[bytes | None]:
        """Return the whole object at each of *keys*, in order; ``None`` where there is none.

        Object stores override this to fetch many objects concurrently (one
        request in flight per object, up to the backend's limit); this default
        reads them one after another. A failure other than a missing key
        raises, as :meth:`read_bytes` does, so a store that cannot be read is
        never mistaken for missing objects.
        """
        found: builtins.list[bytes | None] = []
        for key in keys:
            try:
                found.append(self.read_bytes(key))
            except FileNotFoundError:
                found.append(None)
        return found

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Return whether an object exists at *key*."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object at *key*; raise :class:`FileNotFoundError` if absent."""

    @abc.abstractmethod
    def arrow_filesystem(self) -> tuple[pyarrow.fs.FileSystem, str]:
        """Return a pyarrow filesystem and the root's path on it, for datasets."""

    def check_root(self) -> None:  # noqa: B027 - optional hook, most stores cannot tell cheaply
        """Raise :class:`~pacha_sdk.exceptions.StoreNotFoundError` if the root is known absent.

        Readers call it before they read, so that a store that is not there is
        an error rather than an empty listing; writers never do (the first
        write creates a local root). This default checks nothing: an object
        store says so itself on the first request (a missing bucket).
        """

    def list_temporary(self) -> builtins.list[tuple[str, float]]:
        """Temporary files that writes left under the root, with when each was last written.

        Each entry is ``(key, mtime)``, *mtime* in seconds since the epoch. A
        write that publishes through a temporary file (the local backend)
        leaves one behind when its process is killed midway; listings never
        show them, so garbage collection asks here. This default has none:
        an object store's write is one request.
        """
        return []

    def delete_temporary(self, key: str) -> None:
        """Remove the temporary file *key* (from :meth:`list_temporary`).

        Raises :class:`FileNotFoundError` if it is gone; the default, with no
        temporary files, always does.
        """
        raise FileNotFoundError(key)

    def open_read(self, key: str) -> BinaryIO:
        """Return a binary file object reading the object at *key* from its start.

        The caller closes it. This default reads the whole object into memory;
        backends that can stream override it.
        """
        return io.BytesIO(self.read_bytes(key))

    def write_new_from(self, key: str, source: Readable) -> None:
        """Create the object at *key* from *source*, read to its end.

        The guarantees of :meth:`write_new` hold: :class:`FileExistsError` if
        *key* exists, and no reader ever sees a partial object. This default
        reads *source* whole into memory; backends that can stream override it.
        """
        self.write_new(key, source.read())

    def remove_empty_folders(self, prefix: str) -> None:  # noqa: B027 - optional hook
        """Remove the folders left empty under (and at) the folder *prefix*, if the store has any.

        Object stores have no folders, so this default does nothing; a local
        folder removes them, so that a deleted run leaves no empty folder
        behind. A folder that is not empty, or is gone, is left as it is.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release connections held by the backend."""
