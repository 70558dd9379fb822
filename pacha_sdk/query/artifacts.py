"""Reading content-addressed artifacts back, verified against their hash.

:func:`open_artifact` and :func:`download_artifact` read a blob that
:func:`pacha_sdk.storage.blobs.store_artifact` stored and check it against
its BLAKE3 hash as the bytes go by, streamed in 4 MiB pieces.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from pacha_sdk.exceptions import ArtifactCorruptedError, ArtifactNotFoundError
from pacha_sdk.models import ArtifactReference
from pacha_sdk.query._store import open_store
from pacha_sdk.storage.blobs import CHUNK_SIZE, content_hash_of, new_hasher
from pacha_sdk.storage.layout import artifact_key
from pacha_sdk.storage.records import store_errors

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["download_artifact", "open_artifact"]

MAX_FILE_NAME_BYTES = 200
"""Longest name :func:`download_artifact` uses as a file name (its temp file adds 22 bytes)."""


class _VerifyingReader(io.RawIOBase):
    """A stored blob read through, hashed, and checked against its name at the end."""

    def __init__(self, source: BinaryIO, expected: str, location: str) -> None:
        super().__init__()
        self._source = source
        self._expected = expected
        self._location = location
        self._hasher = new_hasher()
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
    backend = open_store(uri, storage_options)
    key = artifact_key(digest)
    try:
        with store_errors(backend, "read", key, passing=(FileNotFoundError,)):
            source = backend.open_read(key)
    except FileNotFoundError:
        raise ArtifactNotFoundError(digest, backend.uri) from None
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
