"""``s3://`` and ``s3a://`` -- Amazon S3 and S3-compatible servers, through s3fs.

What this backend adds to the generic :class:`FsspecBackend`:

* **Atomic writes.** :meth:`S3Backend.write_new` is one ``PUT`` with
  ``If-None-Match: *``, so the server itself refuses a second writer, and
  :meth:`S3Backend.replace` is one plain ``PUT``: S3 never shows a reader a
  partly written object. Objects up to 5 GiB (S3's single-PUT limit) never use
  a multipart upload, so no incomplete upload is ever left behind; above that
  s3fs aborts its multipart upload when the write fails.
* **Settings with no code.** ``storage_options`` go to
  :class:`s3fs.S3FileSystem`; without them botocore reads the standard
  variables (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_S3``,
  ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``...). The
  instance and listing caches are always off: other processes write to the
  same bucket, and a cached listing would hide their objects.
* **Many objects at once.** :meth:`S3Backend.read_many` keeps up to 64
  GETs in flight, and the client's connection pool is sized to match
  (``config_kwargs["max_pool_connections"]``, botocore's default is 10);
  listings report each object's size and ETag, so readers learn both
  without a request per object; the shared botocore session parses their
  timestamps without dateutil (:mod:`~pacha_sdk.backends._s3_session`).
* **pyarrow's own client for large reads.** :meth:`S3Backend.arrow_filesystem`
  (``metrics_dataset`` scans) and :meth:`S3Backend.read_many` of 64 keys or
  more use pyarrow's C++ S3 client, opened from the same settings
  (:mod:`~pacha_sdk.backends._s3_arrow`, which says what it maps): less CPU
  per request, many requests at once off the GIL. Where a setting cannot be
  mapped, or in a forked child, s3fs serves as before.
* **Bounded retries.** Transient failures (connection refused or reset,
  timeouts, 5xx, throttling) are retried by botocore, 3 attempts with jittered
  exponential backoff unless ``config_kwargs["retries"]`` says otherwise, and
  then surface as a plain :class:`OSError` (connection failures as
  :class:`ConnectionError` or :class:`TimeoutError`) so the writer retries
  later.
* **Clear permanent errors.** A missing bucket, denied access, bad or missing
  credentials become :class:`~pacha_sdk.exceptions.StoreError` naming the
  bucket and what to check, never a secret. A missing key stays
  :class:`FileNotFoundError`; the first time one is seen the bucket is checked
  once, so a missing bucket is never mistaken for a missing run.
"""

from __future__ import annotations

import builtins
import errno
import functools
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pacha_sdk.backends._bucket import BucketBackend
from pacha_sdk.backends._s3_arrow import arrow_s3_filesystem, is_transport_error, read_objects
from pacha_sdk.backends._s3_listing import list_rest
from pacha_sdk.backends._s3_session import aws_environment, shared_session
from pacha_sdk.backends.base import StoredObject
from pacha_sdk.exceptions import StoreError, StorePermissionError

if TYPE_CHECKING:
    import pyarrow.fs

__all__ = ["S3Backend"]

SINGLE_PUT_LIMIT = 5 * 2**30
"""Largest object S3 accepts in one PUT; larger ones need a multipart upload."""

DEFAULT_RETRIES: Mapping[str, Any] = {"max_attempts": 3, "mode": "standard"}
"""botocore's retry settings unless ``config_kwargs["retries"]`` is given."""

S3FS_ATTEMPTS = 2
"""Tries of s3fs' own retry loop (5 by default), around botocore's."""

_DENIED = frozenset(
    {
        "AccessDenied",
        "AccountProblem",
        "AllAccessDisabled",
        "ExpiredToken",
        "InvalidAccessKeyId",
        "InvalidPayer",
        "InvalidSecurity",
        "InvalidToken",
        "NotSignedUp",
        "RequestTimeTooSkewed",
        "SignatureDoesNotMatch",
        "TokenRefreshRequired",
        "401",
        "403",
    }
)
_REFUSED = frozenset(
    {"AuthorizationHeaderMalformed", "InvalidBucketName", "PermanentRedirect", "InvalidRegion"}
)
_CREATE_CONFLICT = "ConditionalRequestConflict"
_CREATE_ATTEMPTS = 3


class S3Backend(BucketBackend):
    """Objects under ``s3://bucket/prefix`` on S3 or any S3-compatible server.

    Args:
        uri: ``s3://bucket`` or ``s3://bucket/prefix`` (``s3a://`` works too).
        storage_options: keyword arguments for :class:`s3fs.S3FileSystem`,
            e.g. ``{"key": ..., "secret": ..., "endpoint_url": ...}``.

    Raises:
        ValueError: the URI names no bucket, or carries credentials.
        ImportError: s3fs is not installed (the registry turns this into
            ``pip install 'pacha-sdk[s3]'``).
    """

    scheme: ClassVar[str | tuple[str, ...]] = ("s3", "s3a")
    store_name: ClassVar[str] = "S3"
    endpoint_hint: ClassVar[str] = "endpoint_url / AWS_ENDPOINT_URL"
    page_size: int | None = None
    """Keys per listing page (``MaxKeys``); ``None`` is the server's default, 1,000 on S3."""
    native_batch: int = 64
    """Fewest keys :meth:`read_many` reads through pyarrow's own client: below that a
    batch is over within a few round trips either way, and s3fs needs one request
    per object where pyarrow needs two."""
    _native: tuple[int, pyarrow.fs.FileSystem | None] | None = None
    """The process that opened :meth:`arrow_filesystem`'s native client, and the client."""

    def _open_filesystem(self) -> tuple[Any, str]:
        """Open s3fs with caches off and bounded retries; return it and ``bucket/prefix``."""
        options = dict(self._storage_options)
        if "session" not in options and "profile" not in options:
            options["session"] = shared_session(aws_environment())
        options["skip_instance_cache"] = True
        options["use_listings_cache"] = False
        config = dict(options.get("config_kwargs") or {})
        config.setdefault("retries", dict(DEFAULT_RETRIES))
        config.setdefault("max_pool_connections", self.read_concurrency)
        options["config_kwargs"] = config
        fs = _filesystem_class()(**options)
        fs.retries = S3FS_ATTEMPTS  # s3fs' own loop (timeouts, dropped replies) over botocore's
        return fs, self.uri.split("://", 1)[1]

    # Primitives.

    def read_bytes(self, key: str) -> bytes:
        """Return the object at *key* with one GET (never ranged reads that could tear)."""
        path = self._path(key)
        with self._errors(key):
            return bytes(self._fs.cat_file(path, max_concurrency=1))

    def write_new(self, key: str, data: bytes) -> None:
        """Create *key* with a conditional PUT; :class:`FileExistsError` if it exists."""
        path = self._path(key)
        for attempt in range(_CREATE_ATTEMPTS):
            try:
                with self._errors(key, creating=True):
                    self._put(path, data, mode="create")
                return
            except OSError as error:
                # AWS answers 409 when two conditional writes race: retry, then one 412s.
                if _error_code(error) != _CREATE_CONFLICT or attempt + 1 == _CREATE_ATTEMPTS:
                    raise

    def replace(self, key: str, data: bytes) -> None:
        """Create or replace *key* with one PUT, which readers see whole or not at all."""
        path = self._path(key)
        with self._errors(key):
            self._put(path, data, mode="overwrite")

    def _read_options(self) -> dict[str, Any]:
        """One GET per object in :meth:`read_many`, as in :meth:`read_bytes`."""
        return {"max_concurrency": 1}

    def list_objects(self, prefix: str = "") -> builtins.list[StoredObject]:
        """Return the objects under the folder *prefix* with size and ETag; a missing bucket raises.

        One ``ListObjectsV2`` request per 1,000 keys, nothing else; past the
        first page the rest is listed as key ranges side by side
        (:mod:`~pacha_sdk.backends._s3_listing`). The ETag of an object S3
        wrote is derived from its content, so it changes whenever the
        content does.
        """
        from fsspec.asyn import sync

        base = self._path(prefix.removesuffix("/")) + "/" if prefix else self._prefix
        bucket, _, key_prefix = base.partition("/")
        start = len(self._prefix) - len(bucket) - 1
        request: dict[str, Any] = {"Bucket": bucket, "Prefix": key_prefix}
        if self.page_size is not None:
            request["MaxKeys"] = self.page_size
        with self._errors(None):
            page = self._fs.call_s3("list_objects_v2", **request)
            entries = list(page.get("Contents", ()))
            if page.get("IsTruncated") and entries:
                first, last = entries[0]["Key"], entries[-1]["Key"]
                entries += sync(self._fs.loop, list_rest, self._fs._call_s3, request, first, last)
        found = [_listed(entry, start) for entry in entries]
        if not found:
            self._check_bucket()
        return sorted(item for item in found if item.key and not item.key.endswith("/"))

    def read_many(self, keys: Sequence[str]) -> builtins.list[bytes | None]:
        """Each object at *keys* whole (``None`` where missing), many at once.

        A batch of :attr:`native_batch` keys or more goes through pyarrow's
        own client (:func:`~pacha_sdk.backends._s3_arrow.read_objects`, a
        HEAD and a GET per object on :attr:`read_concurrency` threads), fewer
        through s3fs (one GET each, as :meth:`read_bytes`). An object pyarrow
        fails to read is read again through s3fs, so a failure raises exactly
        what it raises there (denied, missing bucket...), except that a store
        pyarrow could not reach or that did not answer in time raises
        :class:`ConnectionError` at once rather than waiting out s3fs' own
        timeouts too.
        """
        native = self._native_filesystem() if len(keys) >= self.native_batch else None
        if native is None:
            return super().read_many(keys)
        paths = [self._path(key) for key in keys]
        found = read_objects(native, paths, self.read_concurrency)
        failed = [index for index, value in enumerate(found) if isinstance(value, OSError)]
        for index in failed:
            error = found[index]
            if isinstance(error, OSError) and is_transport_error(error):
                message = self._redact(str(error))
                raise ConnectionError(
                    f"S3 did not answer (GET on bucket {self._bucket!r}): {message}"
                ) from error
        if None in found:
            self._check_bucket()  # a missing bucket is not a missing object
        again = iter(super().read_many([keys[index] for index in failed]))
        return [next(again) if isinstance(value, OSError) else value for value in found]

    def arrow_filesystem(self) -> tuple[pyarrow.fs.FileSystem, str]:
        """The store for pyarrow: its own S3 client where the settings map, else s3fs wrapped.

        See :mod:`~pacha_sdk.backends._s3_arrow` for when s3fs serves instead.
        """
        native = self._native_filesystem()
        if native is None:
            return super().arrow_filesystem()
        return native, self._prefix.rstrip("/")

    def _native_filesystem(self) -> pyarrow.fs.FileSystem | None:
        """The native client for this store, opened once per backend and process; or None."""
        if self._native is None or self._native[0] != os.getpid():
            config = dict(self._storage_options.get("config_kwargs") or {})
            config.setdefault("retries", dict(DEFAULT_RETRIES))
            options = {**self._storage_options, "config_kwargs": config}
            self._native = (os.getpid(), arrow_s3_filesystem(options))
        return self._native[1]

    # Internals.

    def _put(self, path: str, data: bytes, *, mode: str) -> None:
        """One PUT for anything S3 takes in one request (multipart only above 5 GiB)."""
        self._fs.pipe_file(path, data, mode=mode, chunksize=SINGLE_PUT_LIMIT // 2 + 1)

    def _head_object(self, bucket: str, name: str) -> None:
        self._fs.call_s3("head_object", Bucket=bucket, Key=name)

    def _head_bucket(self) -> None:
        self._fs.call_s3("head_bucket", Bucket=self._bucket)

    def _translate(
        self, error: Exception, key: str | None, *, creating: bool
    ) -> BaseException | None:
        """Return the exception to raise instead of *error*, or None to keep it."""
        code, status = _client_error(error)
        if creating and (code == "PreconditionFailed" or status == 412):
            return FileExistsError(errno.EEXIST, "object already exists", key)
        if code == "NoSuchBucket":
            return self._missing_bucket()
        if code in _DENIED or status in (401, 403) or isinstance(error, PermissionError):
            return StorePermissionError(
                f"access to S3 bucket {self._bucket!r} ({self.uri}) was denied ({code or status}): "
                "check the credentials (storage_options key/secret, AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE) and the bucket's permissions"
            )
        if code in _REFUSED:
            return StoreError(
                f"S3 refused the request for bucket {self._bucket!r} ({self.uri}): "
                f"{code}: {self._redact(_message(error))}"
            )
        if isinstance(error, FileNotFoundError) and key is not None:
            self._check_bucket()
            return None
        return self._translate_botocore(error)

    def _translate_botocore(self, error: Exception) -> BaseException | None:
        """Map botocore's own (non-HTTP) errors: no credentials, no region, bad settings."""
        boto = _botocore_exceptions()
        if isinstance(error, (boto.NoCredentialsError, boto.PartialCredentialsError)):
            return StorePermissionError(
                f"no usable AWS credentials for S3 bucket {self._bucket!r}: pass storage_options "
                "key/secret, or set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
            )
        if isinstance(error, boto.ProfileNotFound):
            return StoreError(f"AWS profile not found: {self._redact(str(error))}")
        if isinstance(error, (boto.NoRegionError, boto.ParamValidationError)):
            return StoreError(f"S3 settings for {self.uri} are invalid: {self._redact(str(error))}")
        return None

    def _redact(self, text: str) -> str:
        """Remove any credential value from *text*."""
        for name in ("secret", "token", "password", "key"):
            value = self._storage_options.get(name)
            if isinstance(value, str) and len(value) >= 4:
                text = text.replace(value, "***")
        return text


def _listed(item: Mapping[str, Any], start: int) -> StoredObject:
    """A ``ListObjectsV2`` entry as a :class:`StoredObject` (its key made relative)."""
    etag = item.get("ETag")
    size = item.get("Size")
    return StoredObject(
        str(item["Key"])[start:],
        int(size) if isinstance(size, int) else None,
        str(etag).strip('"') if etag else None,
    )


def _client_error(error: BaseException) -> tuple[str | None, int | None]:
    """Return the S3 error code and HTTP status behind *error* (s3fs keeps it as the cause)."""
    seen: BaseException | None = error
    for _ in range(4):
        if seen is None:
            break
        response = getattr(seen, "response", None)
        if isinstance(response, Mapping):
            code = response.get("Error", {}).get("Code")
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return (str(code) if code else None), (int(status) if status else None)
        seen = seen.__cause__ or seen.__context__
    return None, None


def _error_code(error: BaseException) -> str | None:
    """Return only the S3 error code behind *error*."""
    return _client_error(error)[0]


def _message(error: BaseException) -> str:
    """Return the server's message for *error*, or its text."""
    cause = error.__cause__
    response = getattr(cause, "response", None)
    if isinstance(response, Mapping):
        return str(response.get("Error", {}).get("Message", "")) or str(error)
    return str(error)


def _botocore_exceptions() -> Any:
    """Return ``botocore.exceptions`` (botocore comes with s3fs; it has no type hints)."""
    from botocore import exceptions  # type: ignore[import-untyped]

    return exceptions


def _filesystem_class() -> type[Any]:
    """Return s3fs' filesystem class, subclassed by :func:`_subclass`.

    s3fs is imported here, on first use, so ``import pacha_sdk`` never loads
    it; a missing s3fs raises :class:`ImportError` at every call (not cached),
    which the registry turns into the install hint.
    """
    import s3fs  # type: ignore[import-untyped]

    return _subclass(s3fs.S3FileSystem)


@functools.cache
def _subclass(base: type[Any]) -> type[Any]:
    """Return *base* with connection failures raised as :class:`OSError`.

    botocore reports a refused or dropped connection as its own exception
    types, which are not :class:`OSError`; callers (the writer, pyarrow
    reading through this filesystem) then could not tell a store outage from
    a bug.
    """
    from fsspec.asyn import sync_wrapper

    boto = _botocore_exceptions()
    connection_errors = (boto.ConnectionError, boto.HTTPClientError)

    class PachaS3FileSystem(base):  # type: ignore[misc]
        """s3fs whose connection failures are :class:`ConnectionError` or :class:`TimeoutError`."""

        async def _call_s3(self, method: str, *akwarglist: Any, **kwargs: Any) -> Any:
            try:
                return await super()._call_s3(method, *akwarglist, **kwargs)
            except connection_errors as error:
                kind = TimeoutError if "Timeout" in type(error).__name__ else ConnectionError
                bucket = kwargs.get("Bucket", "")
                raise kind(f"S3 did not answer ({method} on bucket {bucket!r}): {error}") from error

        call_s3 = sync_wrapper(_call_s3)  # s3fs' sync twin is bound to the parent's method

    return PachaS3FileSystem
