"""Content-addressed blobs: BLAKE3 names, and storing a file once per store.

A blob lives at ``<root>/artifacts/<hash[:2]>/<hash>``, where ``hash`` is the
BLAKE3 hex digest of its content (pacha's ``ContentAddress::hash_hex``), so
the same model logged by ten runs is stored once and a blob names its own
content. :meth:`pacha_sdk.Run.log_artifact` stores one through
:func:`store_artifact`; :mod:`pacha_sdk.query.artifacts` reads one back.

Files are streamed in 4 MiB pieces, so memory stays flat for a multi-GB
checkpoint. A file is read twice when it is stored: once to name it, once
to upload it (the key must be known before the upload); the second pass is
hashed too, and a file that changed in between is refused rather than
stored under the wrong name.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

import blake3

from pacha_sdk._names import check_display_name
from pacha_sdk.exceptions import ArtifactCorruptedError
from pacha_sdk.models import ArtifactReference
from pacha_sdk.storage.layout import artifact_key
from pacha_sdk.storage.records import store_errors

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

    from pacha_sdk.backends import Backend

__all__ = [
    "CHUNK_SIZE",
    "content_hash_of",
    "hash_bytes",
    "hash_file",
    "new_hasher",
    "store_artifact",
]

CHUNK_SIZE = 4 * 1024 * 1024
"""Bytes read, hashed and written at a time."""

_HEX_DIGEST = re.compile(r"^[0-9a-fA-F]{64}$")


def new_hasher() -> Any:
    """A BLAKE3 hasher that uses every core on large inputs."""
    return blake3.blake3(max_threads=blake3.blake3.AUTO)


def hash_bytes(data: ReadableBuffer) -> str:
    """BLAKE3 hex digest of *data*."""
    return str(blake3.blake3(data).hexdigest())


def hash_file(path: str | os.PathLike[str]) -> str:
    """BLAKE3 hex digest of the file at *path*, read in :data:`CHUNK_SIZE` pieces."""
    hasher = new_hasher()
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
        self.hasher = new_hasher()

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
    with store_errors(backend, "store", key):
        try:
            if backend.exists(key):
                return
            upload(key)
        except FileExistsError:
            return  # stored meanwhile by another run: the same content by construction
        except OSError:
            if _exists_quietly(backend, key):
                return  # a racing writer won and the store said so in its own way
            raise


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
