"""Content-addressed artifacts: store a file once, read it back verified.

A blob lives at ``<root>/artifacts/<hash[:2]>/<hash>``, where ``hash`` is the
BLAKE3 hex digest of its content (pacha's ``ContentAddress::hash_hex``), so
the same model logged by ten runs is stored once and a blob names its own
content. :meth:`pacha_sdk.Run.log_artifact` stores and records one;
:func:`open_artifact` and :func:`download_artifact` read one back and check
it against its hash as the bytes go by.

Files are streamed in 4 MiB pieces (hashing, upload and download alike), so
memory stays flat for a multi-GB checkpoint. A file is read twice when it
is stored: once to name it, once to upload it (the key must be known before
the upload); the second pass is hashed too, and a file that changed in
between is refused rather than stored under the wrong name.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import blake3

from pacha_sdk._names import check_display_name
from pacha_sdk.backends import Backend, get_backend
from pacha_sdk.env import resolve_uri
from pacha_sdk.exceptions import ArtifactCorruptedError, ArtifactNotFoundError, StoreError
from pacha_sdk.models import ArtifactReference
from pacha_sdk.storage.layout import artifact_key

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

__all__ = [
    "CHUNK_SIZE",
    "content_hash_of",
    "download_artifact",
    "hash_bytes",
    "hash_file",
    "open_artifact",
    "store_artifact",
]

CHUNK_SIZE = 4 * 1024 * 1024
"""Bytes read, hashed and written at a time."""
MAX_FILE_NAME_BYTES = 200
"""Longest name :func:`download_artifact` uses as a file name (its temp file adds 22 bytes)."""

_HEX_DIGEST = re.compile(r"^[0-9a-fA-F]{64}$")


def _hasher() -> Any:
    return blake3.blake3(max_threads=blake3.blake3.AUTO)


def hash_bytes(data: ReadableBuffer) -> str:
    """BLAKE3 hex digest of *data*."""
    return str(blake3.blake3(data).hexdigest())


def hash_file(path: str | os.PathLike[str]) -> str:
    """BLAKE3 hex digest of the file at *path*, read in :data:`CHUNK_SIZE` pieces."""
    hasher = _hasher()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            hasher.update(chunk)
    return str(hasher.hexdigest())


def content_hash_of(ref_or_hash: ArtifactReference | str) -> str:
    """The content hash an :class:`ArtifactReference` or a hex digest names (lowercased)."""
    if isinstance(ref_or_hash, ArtifactReference):
        value = ref_or_hash.content_hash
    elif isinstance(ref_or_hash, str):
        value = ref_or_hash
    else:
        raise TypeError(
            f"expected an ArtifactReference or a BLAKE3 hex digest, got {ref_or_hash!r}"
        )
    if not _HEX_DIGEST.match(value):
        raise ValueError(f"{value!r} is not a BLAKE3 hex digest (64 hex characters)")
    return value.lower()


class _HashingReader:
    """Reads a binary file and hashes what it hands out."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self.hasher = _hasher()

    def read(self, size: int = -1, /) -> bytes:
        chunk = self._source.read(size)
        self.hasher.update(chunk)
        return chunk


def store_artifact(
    backend: Backend,
    source: str | os.PathLike[str] | bytes | bytearray | memoryview,
    *,
    artifact_type: str = "model",
    name: str | None = None,
) -> ArtifactReference:
    """Store *source* (a file path or bytes) under its hash unless it is there already.

    *name* defaults to the file's name and is required for bytes; it must not
    be absolute or contain ``..``. Returns the :class:`ArtifactReference`.
    """
    check_display_name("artifact type", artifact_type)
    if isinstance(source, (bytes, bytearray, memoryview)):
        if name is None:
            raise ValueError("log_artifact needs name=... when given bytes rather than a path")
        check_display_name("artifact name", name)
        digest = hash_bytes(source)
        _publish(backend, digest, lambda key: backend.write_new(key, bytes(source)))
    elif isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        name = check_display_name("artifact name", os.path.basename(path) if name is None else name)
        digest = hash_file(path)
        _publish(backend, digest, lambda key: _upload_file(backend, key, path, digest))
    else:
        raise TypeError(f"log_artifact takes a file path or bytes, got {source!r}")
    return ArtifactReference(artifact_type=artifact_type, name=name, content_hash=digest)


def _publish(backend: Backend, digest: str, upload: Callable[[str], None]) -> None:
    """Run *upload(key)* unless the blob is stored; an existing blob is success (dedup)."""
    key = artifact_key(digest)
    try:
        if backend.exists(key):
            return
        upload(key)
    except FileExistsError:
        return  # stored meanwhile by another run: the same content by construction
    except OSError as error:
        if _exists_quietly(backend, key):
            return  # a racing writer won and the store said so in its own way
        raise StoreError(f"could not store artifact {digest} in {backend.uri}: {error}") from error


def _exists_quietly(backend: Backend, key: str) -> bool:
    try:
        return backend.exists(key)
    except OSError:
        return False


def _upload_file(backend: Backend, key: str, path: str, digest: str) -> None:
    """Stream the file to *key*; undo and refuse if it no longer hashes to *digest*."""
    with open(path, "rb") as f:
        reader = _HashingReader(f)
        backend.write_new_from(key, reader)
    uploaded = str(reader.hasher.hexdigest())
    if uploaded != digest:
        with contextlib.suppress(OSError):
            backend.delete(key)
        raise ArtifactCorruptedError(
            f"{path} (changed while it was being stored)", digest, uploaded
        )


class _VerifyingReader(io.RawIOBase):
    """A stored blob read through, hashed, and checked against its name at the end."""

    def __init__(self, source: BinaryIO, expected: str, location: str) -> None:
        super().__init__()
        self._source = source
        self._expected = expected
        self._location = location
        self._hasher = _hasher()
        self._verified = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        chunk = self._source.read(len(view))
        if not chunk:
            self._verify()
            return 0
        self._hasher.update(chunk)
        view[: len(chunk)] = chunk
        return len(chunk)

    def _verify(self) -> None:
        if self._verified:
            return
        actual = str(self._hasher.hexdigest())
        if actual != self._expected:
            raise ArtifactCorruptedError(self._location, self._expected, actual)
        self._verified = True

    def close(self) -> None:
        if not self.closed:
            self._source.close()
        super().close()


def _open_blob(
    ref_or_hash: ArtifactReference | str,
    uri: str | None,
    storage_options: Mapping[str, Any] | None,
) -> _VerifyingReader:
    digest = content_hash_of(ref_or_hash)
    backend = get_backend(resolve_uri(uri), storage_options=storage_options)
    key = artifact_key(digest)
    try:
        source = backend.open_read(key)
    except FileNotFoundError:
        raise ArtifactNotFoundError(digest, backend.uri) from None
    except OSError as error:
        raise StoreError(f"could not read {backend.uri}/{key}: {error}") from error
    return _VerifyingReader(source, digest, f"{backend.uri}/{key}")


def open_artifact(
    ref_or_hash: ArtifactReference | str,
    *,
    uri: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> io.BufferedReader:
    """Open a stored artifact for reading, as a binary file usable in ``with``.

    The content is hashed as it is read; if it does not match the artifact's
    hash, the read that reaches the end raises :class:`ArtifactCorruptedError`
    (earlier bytes have been handed out by then). A file closed before its
    end is not checked. Raises :class:`ArtifactNotFoundError` if the store
    has no such blob.
    """
    return io.BufferedReader(_open_blob(ref_or_hash, uri, storage_options), CHUNK_SIZE)


def download_artifact(
    ref_or_hash: ArtifactReference | str,
    dest: str | os.PathLike[str],
    *,
    uri: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Path:
    """Copy a stored artifact to the local file *dest*, verified; return its path.

    If *dest* is an existing folder, the file is written inside it under the
    artifact's name (its hash when given a bare hash). The file appears only
    once it is complete and verified: it is written to a temporary file
    beside it, removed if the content is corrupted
    (:class:`ArtifactCorruptedError`), and renamed into place otherwise.
    """
    target = Path(dest)
    if target.is_dir():
        target = target / _file_name(ref_or_hash)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{secrets.token_hex(8)}")
    try:
        with _open_blob(ref_or_hash, uri, storage_options) as source, open(tmp, "xb") as out:
            while chunk := source.read(CHUNK_SIZE):
                out.write(chunk)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


def _file_name(ref_or_hash: ArtifactReference | str) -> str:
    """The last segment of an artifact's name if it is a usable file name, else its hash.

    Names longer than :data:`MAX_FILE_NAME_BYTES` fall back to the hash too:
    most filesystems refuse names over 255 bytes.
    """
    if isinstance(ref_or_hash, ArtifactReference):
        last = ref_or_hash.name.replace("\\", "/").rsplit("/", 1)[-1]
        usable = last not in ("", ".", "..") and "\x00" not in last
        if usable and len(last.encode("utf-8")) <= MAX_FILE_NAME_BYTES:
            return last
    return content_hash_of(ref_or_hash)
