"""What the S3 and GCS backends share: a bucket, a prefix, and error translation.

Both stores address objects as ``scheme://bucket/prefix/key``, both answer a
missing bucket and a missing object with the same 404 (so the bucket is
checked once, on the first miss), and both turn client exceptions into the
backend contract (:class:`FileNotFoundError`, :class:`FileExistsError`,
:class:`~pacha_sdk.exceptions.StoreError` for permanent failures, plain
:class:`OSError` for transient ones). A subclass says how to look at one
object and at the bucket, and how to translate its client's errors.
"""

from __future__ import annotations

import abc
import contextlib
import errno
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar

from pacha_sdk.backends._fsspec import FsspecBackend
from pacha_sdk.backends.registry import split_scheme
from pacha_sdk.exceptions import BucketNotFoundError, InvalidUriError

if TYPE_CHECKING:
    from pacha_sdk.backends.base import Readable

__all__ = ["BucketBackend"]


class BucketBackend(FsspecBackend):
    """Objects under ``scheme://bucket/prefix`` of an object store.

    Raises:
        InvalidUriError: the URI names no bucket, or carries credentials (a
            ``ValueError`` too).
    """

    store_name: ClassVar[str]
    """How messages name the store: ``"S3"``, ``"GCS"``."""
    endpoint_hint: ClassVar[str]
    """Where a user sets the endpoint, for the missing-bucket message."""
    lists_versions: ClassVar[bool] = True

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None) -> None:
        scheme, rest = split_scheme(uri)
        bucket, _, prefix = rest.strip("/").partition("/")
        if "@" in bucket or ":" in bucket:  # never echo it: it may hold a secret
            raise InvalidUriError(
                f"{self.store_name} URIs cannot carry credentials or a port "
                "(user:secret@bucket, bucket:port); pass credentials in storage_options or "
                "the environment, and a server as endpoint_url"
            )
        if not bucket:
            raise InvalidUriError(
                f"a {self.store_name} URI names a bucket, e.g. {scheme}://bucket/prefix; "
                f"got {uri!r}"
            )
        self._bucket = bucket
        self._bucket_seen = False
        root = f"{scheme}://{bucket}/{prefix.strip('/')}".rstrip("/")
        super().__init__(root, storage_options=storage_options)

    @property
    def bucket(self) -> str:
        """The bucket name."""
        return self._bucket

    # What a store says for itself.

    @abc.abstractmethod
    def _head_object(self, bucket: str, name: str) -> None:
        """Ask the store for one object's metadata; FileNotFoundError if absent."""

    @abc.abstractmethod
    def _head_bucket(self) -> None:
        """Ask the store for the bucket; FileNotFoundError if absent."""

    @abc.abstractmethod
    def _translate(
        self, error: Exception, key: str | None, *, creating: bool
    ) -> BaseException | None:
        """Return the exception to raise instead of *error*, or None to keep it."""

    # Primitives built on those.

    def open_read(self, key: str) -> BinaryIO:
        """Return a file reading *key* in ranged requests (for large artifacts)."""
        with self._errors(key):
            return super().open_read(key)

    def write_new_from(self, key: str, source: Readable) -> None:
        """Create *key* from *source*, streamed; :class:`FileExistsError` if it exists."""
        with self._errors(key, creating=True):
            super().write_new_from(key, source)

    def _read_result(self, key: str, value: object) -> bytes | None:
        """One answer of a batched read, with the store's errors translated as for one read."""
        if isinstance(value, Exception):
            try:
                with self._errors(key):
                    raise value
            except FileNotFoundError:
                return None
        return super()._read_result(key, value)

    def exists(self, key: str) -> bool:
        """Return whether an object exists at *key* (one metadata request; errors not hidden)."""
        bucket, _, name = self._path(key).partition("/")
        try:
            with self._errors(key):
                self._head_object(bucket, name)
        except FileNotFoundError:
            return False
        return True

    def delete(self, key: str) -> None:
        """Remove *key*; :class:`FileNotFoundError` if it is absent."""
        if not self.exists(key):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), key)
        with self._errors(key):
            self._fs.rm_file(self._path(key))

    # Internals.

    def _check_bucket(self) -> None:
        """Once per backend, raise :class:`BucketNotFoundError` if the bucket does not exist."""
        if self._bucket_seen:
            return
        try:
            with self._errors(None):
                self._head_bucket()
        except FileNotFoundError:
            raise self._missing_bucket() from None
        self._bucket_seen = True

    def _missing_bucket(self) -> BucketNotFoundError:
        return BucketNotFoundError(
            self._bucket,
            f"{self.store_name} bucket {self._bucket!r} does not exist ({self.uri}); create it "
            f"first, or check the name and the endpoint ({self.endpoint_hint})",
        )

    @contextlib.contextmanager
    def _errors(self, key: str | None, *, creating: bool = False) -> Iterator[None]:
        """Turn client errors into the backend contract's exceptions (see the module doc)."""
        try:
            yield
        except Exception as error:
            mapped = self._translate(error, key, creating=creating)
            if mapped is None:
                raise
            raise mapped from error
