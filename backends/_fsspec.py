"""A generic backend over any fsspec filesystem and a root path in it.

fsspec already speaks to memory, S3, GCS and dozens of other stores, so the
memory, S3 and GCS backends are thin subclasses of :class:`FsspecBackend`
that only change how the filesystem is opened and, where the store offers
something better, how a create-only write is made atomic. Registered on its
own for a scheme, it serves any URL ``fsspec.url_to_fs`` understands.

:meth:`FsspecBackend.read_many` hands every key to the filesystem at once
(``cat_ranges``): async filesystems such as s3fs and gcsfs then keep up to
:attr:`FsspecBackend.read_concurrency` requests in flight on their event
loop, so a thousand small objects cost about as long as the slowest few
dozen requests rather than a thousand round trips.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import inspect
import os
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, cast

from pacha_sdk.backends.base import Backend, Readable, StoredObject, check_key

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pyarrow.fs

__all__ = ["FsspecBackend"]

_COPY_CHUNK = 8 * 1024 * 1024


class FsspecBackend(Backend):
    """Bytes under a root path of an fsspec filesystem.

    Args:
        uri: the root URL, e.g. ``memory://exp``; opened with
            :func:`fsspec.core.url_to_fs` unless a subclass overrides
            :meth:`_open_filesystem`.
        storage_options: keyword arguments for the filesystem.
    """

    read_concurrency: ClassVar[int] = 64
    """Most requests :meth:`read_many` keeps in flight at once on an async filesystem."""

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None) -> None:
        super().__init__(uri, storage_options=storage_options)
        self._fs, root = self._open_filesystem()
        root = self._fs._strip_protocol(root).rstrip("/")
        # Every object path is ``prefix + key``; a filesystem-wide root uses the
        # filesystem's own root marker ("/" for memory, "" for buckets).
        self._prefix: str = root + "/" if root else self._fs.root_marker
        self._create_mode = "mode" in inspect.signature(self._fs.pipe_file).parameters

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (an ``AbstractFileSystem``)."""
        return self._fs

    def _open_filesystem(self) -> tuple[Any, str]:
        """Return the fsspec filesystem and the root path on it."""
        import fsspec.core

        fs, root = fsspec.core.url_to_fs(self.uri, **self._storage_options)
        return fs, str(root)

    def _path(self, key: str) -> str:
        """Return the filesystem path of a checked *key*."""
        return self._prefix + check_key(key)

    def read_bytes(self, key: str) -> bytes:
        """Return the whole object at *key*."""
        return bytes(self._fs.cat_file(self._path(key)))

    def write_new(self, key: str, data: bytes) -> None:
        """Create the object at *key*; raise :class:`FileExistsError` if it exists.

        Uses ``pipe_file(mode="create")`` where the filesystem takes a mode:
        a conditional PUT on S3 and GCS, but only exists-then-write on
        filesystems without a native create-only primitive, which subclasses
        must then make safe.
        """
        path = self._path(key)
        if self._create_mode:
            self._fs.pipe_file(path, data, mode="create")
            return
        with self._fs.open(path, "xb") as f:
            f.write(data)

    def replace(self, key: str, data: bytes) -> None:
        """Create or replace the object at *key* with one whole write."""
        self._fs.pipe_file(self._path(key), data)

    def open_read(self, key: str) -> BinaryIO:
        """Return the filesystem's own file for *key*: ranged reads, one block in memory."""
        return cast("BinaryIO", self._fs.open(self._path(key), "rb"))

    def write_new_from(self, key: str, source: Readable) -> None:
        """Create the object at *key* from *source*, streamed in 8 MiB pieces.

        Writes through ``fs.open(path, "xb")`` after checking that *key* is
        free. On S3 (s3fs) that is a multipart upload completed with
        ``If-None-Match: *``: the object appears whole or not at all, and
        exactly one racing writer wins. On GCS (gcsfs) it is a resumable
        upload with ``ifGenerationMatch=0`` (which fake-gcs-server ignores, so
        there only the check beforehand guards). Elsewhere the check is all
        there is, which is not atomic against a racing writer. A failed read
        of *source*, upload or commit discards the upload (aborting a
        multipart upload), so nothing partly written is ever published; a
        commit refused because the key was taken meanwhile raises
        :class:`FileExistsError`.
        """
        path = self._path(key)
        if self.exists(key):
            raise FileExistsError(errno.EEXIST, "object already exists", key)
        target = self._fs.open(path, "xb")
        try:
            while chunk := source.read(_COPY_CHUNK):
                target.write(chunk)
            target.close()
        except BaseException as error:
            _discard(target)
            if isinstance(error, OSError) and self._taken(key, error):
                raise FileExistsError(errno.EEXIST, "object already exists", key) from error
            raise

    def _taken(self, key: str, error: OSError) -> bool:
        """Whether a failed create of *key* failed because another writer created it."""
        if isinstance(error, FileExistsError):
            return False  # already says so
        try:
            return self.exists(key)
        except OSError:
            return False

    def read_many(self, keys: Sequence[str]) -> builtins.list[bytes | None]:
        """Return each object at *keys* (``None`` where missing), all requested at once.

        Async filesystems fetch up to :attr:`read_concurrency` objects
        concurrently; the others read one after another. The first failure
        other than a missing key raises, translated as :meth:`read_bytes` would.
        """
        paths = [self._path(key) for key in keys]
        if not paths:
            return []
        found = self._fs.cat_ranges(
            paths,
            None,
            None,
            on_error="return",
            batch_size=self.read_concurrency,
            **self._read_options(),
        )
        return [self._read_result(key, value) for key, value in zip(keys, found)]

    def _read_options(self) -> dict[str, Any]:
        """Keyword arguments for the filesystem's ``cat_file`` in :meth:`read_many`."""
        return {}

    def _read_result(self, key: str, value: object) -> bytes | None:
        """Turn one answer of ``cat_ranges`` into bytes, ``None`` (missing) or a raised error."""
        if isinstance(value, FileNotFoundError):
            return None
        if isinstance(value, BaseException):
            raise value
        return bytes(cast("bytes", value))

    def list(self, prefix: str = "") -> list[str]:
        """Return the sorted keys of every object under the folder *prefix*."""
        return [item.key for item in self.list_objects(prefix)]

    def list_objects(self, prefix: str = "") -> builtins.list[StoredObject]:
        """Return every object under the folder *prefix*, sorted, with its listed size."""
        base = self._path(prefix.removesuffix("/")) + "/" if prefix else self._prefix
        self._fs.invalidate_cache(base.rstrip("/"))
        found = self._fs.find(base.rstrip("/") or self._fs.root_marker, detail=True)
        start = len(self._prefix)
        return sorted(
            StoredObject(name[start:], _size(info), self._version(info))
            for name, info in found.items()
            if name.startswith(base)
        )

    def _version(self, info: Mapping[str, Any]) -> str | None:
        """The version token of an object from its listing entry (none by default)."""
        del info
        return None

    def exists(self, key: str) -> bool:
        """Return whether an object (not a folder) exists at *key*."""
        path = self._path(key)
        self._fs.invalidate_cache(path)
        return bool(self._fs.isfile(path))

    def delete(self, key: str) -> None:
        """Remove the object at *key*; raise :class:`FileNotFoundError` if absent."""
        if not self.exists(key):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), key)
        self._fs.rm_file(self._path(key))

    def arrow_filesystem(self) -> tuple[pyarrow.fs.FileSystem, str]:
        """Return the filesystem wrapped for pyarrow, and the root path on it."""
        import pyarrow.fs

        handler = pyarrow.fs.FSSpecHandler(self._fs)
        return pyarrow.fs.PyFileSystem(handler), self._prefix.rstrip("/")


def _size(info: Mapping[str, Any]) -> int | None:
    """The size in a listing entry, if it has one."""
    size = info.get("size")
    return int(size) if isinstance(size, int) else None


def _discard(target: Any) -> None:
    """Abandon a file opened for writing so that nothing of it is ever committed.

    fsspec commits a write-mode file when it is closed, also from ``__exit__``
    and ``__del__``; ``discard()`` aborts the upload and marking the file
    closed keeps the garbage collector from committing it afterwards.
    """
    with contextlib.suppress(Exception):
        target.discard()
    with contextlib.suppress(Exception):
        target.closed = True
