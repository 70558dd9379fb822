"""Local folders: bare paths, ``file://`` and ``local://`` URIs.

Plain ``open(path, "wb")`` lets a concurrent reader see an empty or half
written file, so every write goes to a temporary file in the same folder,
is flushed and fsynced, and is then published in one step:

* :meth:`LocalBackend.replace` renames it over the target (``os.replace``);
* :meth:`LocalBackend.write_new` hard-links it to the target (``os.link``),
  which fails with :class:`FileExistsError` if the target exists, so two
  racing writers can never overwrite each other.

:meth:`LocalBackend.write_new_from` does the same from a stream, copied to
the temporary file in 1 MiB pieces, and :meth:`LocalBackend.open_read` is a
plain file, so multi-GB artifacts never sit in memory.

The folder is fsynced afterwards so the new name survives a crash. Temporary
files are named ``.<name>.tmp-<hex>``: the leading dot makes pyarrow datasets
skip them, and :meth:`LocalBackend.list` skips them too. The root folder is
created on the first write, never on open, so a typo in a read-only lookup
leaves no empty folder behind.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import os
import re
import secrets
import shutil
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar

from pacha_sdk.backends.base import Backend, Readable, StoredObject, check_key
from pacha_sdk.exceptions import StoreNotFoundError, UnsafeNameError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    import pyarrow.fs

__all__ = ["LocalBackend"]

_COPY_CHUNK = 1024 * 1024
_TEMP_NAME = re.compile(r"\..+\.tmp-[0-9a-f]{16}")
# Filesystems without hard links (FAT, some network mounts) answer os.link so.
_NO_LINK = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV})
# Filesystems that cannot open or fsync a folder (some FUSE and network mounts).
_NO_DIR_FSYNC = frozenset(
    {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF, errno.EACCES}
)


class LocalBackend(Backend):
    """Objects as files under a local folder.

    Args:
        uri: a path (``./runs``, ``~/runs``) or a ``file://`` / ``local://``
            URI; made absolute, with ``~`` expanded.
        storage_options: accepted for a uniform signature; unused.
    """

    scheme: ClassVar[str | tuple[str, ...]] = ("file", "local")
    write_ahead: ClassVar[bool] = False

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None) -> None:
        root = os.path.abspath(os.path.expanduser(_strip_scheme(uri)))
        super().__init__(root, storage_options=storage_options)
        self._root = root

    @property
    def root(self) -> str:
        """The absolute path of the root folder (which may not exist yet)."""
        return self._root

    def _path(self, key: str) -> str:
        """Return the file path of a checked *key*."""
        check_key(key)
        if _TEMP_NAME.fullmatch(key.rsplit("/", 1)[-1]):
            raise UnsafeNameError("key", key, "is reserved for temporary files")
        return os.path.join(self._root, *key.split("/"))

    def check_root(self) -> None:
        """Raise :class:`StoreNotFoundError` unless the root folder exists."""
        if os.path.isdir(self._root):
            return
        if os.path.exists(self._root):
            raise StoreNotFoundError(self._root, "it is a file, not a folder")
        raise StoreNotFoundError(self._root, "the folder does not exist")

    def read_bytes(self, key: str) -> bytes:
        """Return the content of the file at *key*."""
        with open(self._path(key), "rb") as f:
            return f.read()

    def write_new(self, key: str, data: bytes) -> None:
        """Create the file at *key* whole; raise :class:`FileExistsError` if it exists."""
        path = self._path(key)
        tmp = _write_temp(path, data)
        try:
            _link_exclusive(tmp, path)
        finally:
            os.unlink(tmp)
        _fsync_dir(os.path.dirname(path))

    def open_read(self, key: str) -> BinaryIO:
        """Return the file at *key* opened for reading (streamed from disk)."""
        return open(self._path(key), "rb")

    def write_new_from(self, key: str, source: Readable) -> None:
        """Create the file at *key* from *source*, streamed; :class:`FileExistsError` if taken."""
        path = self._path(key)
        tmp = _fill_temp(path, lambda f: _copy(source, f))
        try:
            _link_exclusive(tmp, path)
        finally:
            os.unlink(tmp)
        _fsync_dir(os.path.dirname(path))

    def replace(self, key: str, data: bytes) -> None:
        """Create or replace the file at *key*; readers see the old or new content, whole."""
        path = self._path(key)
        tmp = _write_temp(path, data)
        try:
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        _fsync_dir(os.path.dirname(path))

    def list(self, prefix: str = "") -> list[str]:
        """Return the sorted keys of every file under the folder *prefix*."""
        return sorted(key for key, _entry in self._walk(prefix))

    def list_objects(self, prefix: str = "") -> builtins.list[StoredObject]:
        """Return every file under the folder *prefix*, sorted, with its size.

        No version: a file's modification time and size are no proof that its
        content is unchanged, and reading a local file costs about what a cache
        lookup would. A file deleted while the folder is read is left out, as
        an object store's listing would.
        """
        found: builtins.list[StoredObject] = []
        for key, entry in self._walk(prefix):
            try:
                found.append(StoredObject(key, entry.stat(follow_symlinks=True).st_size))
            except FileNotFoundError:  # deleted since the folder was read (a merged part's inputs)
                continue
        return sorted(found)

    def _walk(
        self, prefix: str, *, temporary: bool = False
    ) -> Iterator[tuple[str, os.DirEntry[str]]]:
        """Yield ``(key, entry)`` for every file under *prefix*, temporary files left out.

        With *temporary*, only the temporary files instead.

        Symbolic links to folders are not followed (as :func:`os.walk`); a
        folder removed during the walk is skipped, any other error raises.
        """
        top = self._path(prefix.removesuffix("/")) if prefix else self._root
        pending = [(top, "" if not prefix else prefix.removesuffix("/") + "/")]
        while pending:
            folder, rel = pending.pop()
            try:
                with os.scandir(folder) as entries:
                    listed = list(entries)
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in listed:
                if entry.is_dir():
                    if not entry.is_symlink():
                        pending.append((entry.path, f"{rel}{entry.name}/"))
                elif bool(_TEMP_NAME.fullmatch(entry.name)) == temporary:
                    yield f"{rel}{entry.name}", entry

    def list_temporary(self) -> builtins.list[tuple[str, float]]:
        """Every ``.<name>.tmp-<hex>`` file under the root, with its last modification time."""
        found: builtins.list[tuple[str, float]] = []
        for key, entry in self._walk("", temporary=True):
            try:
                found.append((key, entry.stat(follow_symlinks=False).st_mtime))
            except FileNotFoundError:  # published or cleaned up meanwhile
                continue
        return sorted(found)

    def delete_temporary(self, key: str) -> None:
        """Remove the temporary file *key*; refuse a key that names anything else."""
        folder, _, name = key.rpartition("/")
        if not _TEMP_NAME.fullmatch(name):
            raise UnsafeNameError("key", key, "is not a temporary file")
        if folder:
            check_key(folder)
        os.unlink(os.path.join(self._root, *key.split("/")))

    def exists(self, key: str) -> bool:
        """Return whether a file exists at *key*."""
        return os.path.isfile(self._path(key))

    def delete(self, key: str) -> None:
        """Remove the file at *key*; raise :class:`FileNotFoundError` if absent."""
        os.unlink(self._path(key))

    def remove_empty_folders(self, prefix: str) -> None:
        """Remove the empty folders under (and at) the folder *prefix*, deepest first."""
        top = self._path(prefix.removesuffix("/"))
        for folder, _dirs, _files in os.walk(top, topdown=False):  # errors: nothing to remove
            with contextlib.suppress(OSError):
                os.rmdir(folder)  # fails, as wanted, while a file (even a temp file) is in it

    def arrow_filesystem(self) -> tuple[pyarrow.fs.FileSystem, str]:
        """Return pyarrow's local filesystem and the root folder's path."""
        import pyarrow.fs

        return pyarrow.fs.LocalFileSystem(), self._root


def _strip_scheme(uri: str) -> str:
    """Return the path part of a ``file://`` or ``local://`` URI, or *uri* itself."""
    for scheme in ("file://", "local://"):
        if uri[: len(scheme)].lower() == scheme:
            return uri[len(scheme) :]
    return uri


def _write_temp(path: str, data: bytes) -> str:
    """Write *data* to a new, fsynced temporary file beside *path*; return its path."""
    return _fill_temp(path, lambda f: f.write(data))


def _copy(source: Readable, target: BinaryIO) -> None:
    """Copy *source* to its end into *target*, one piece at a time."""
    while chunk := source.read(_COPY_CHUNK):
        target.write(chunk)


def _fill_temp(path: str, fill: Callable[[BinaryIO], object]) -> str:
    """Create a temporary file beside *path*, *fill* it, fsync it; return its path."""
    folder, name = os.path.split(path)
    try:
        os.makedirs(folder, exist_ok=True)
    except FileExistsError as exc:  # a file where a folder should be: not "key taken"
        raise NotADirectoryError(errno.ENOTDIR, "a file is in the way", folder) from exc
    tmp = os.path.join(folder, f".{name}.tmp-{secrets.token_hex(8)}")
    try:
        with open(tmp, "xb") as f:
            fill(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return tmp


def _link_exclusive(tmp: str, path: str) -> None:
    """Publish *tmp* at *path* unless *path* exists (then :class:`FileExistsError`)."""
    try:
        os.link(tmp, path)
    except OSError as exc:
        if isinstance(exc, FileExistsError) or exc.errno not in _NO_LINK:
            raise
        # No hard links here: O_EXCL still makes exactly one writer win, but a
        # reader may briefly see a partly written file.
        with open(tmp, "rb") as src, open(path, "xb") as f:
            shutil.copyfileobj(src, f, _COPY_CHUNK)
            f.flush()
            os.fsync(f.fileno())


def _fsync_dir(folder: str) -> None:
    """Flush *folder*'s entries to disk so a new or renamed name survives a crash.

    Best effort: the object is already published, so a filesystem that cannot
    fsync a folder must not make the write look failed (a retried
    ``write_new`` would then find its own object and raise FileExistsError).
    """
    try:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        if exc.errno not in _NO_DIR_FSYNC:
            raise


def _unlink_quietly(path: str) -> None:
    """Remove *path* if it exists."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
