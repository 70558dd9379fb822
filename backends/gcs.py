"""``gs://`` and ``gcs://`` -- Google Cloud Storage and its emulators, through gcsfs.

What this backend adds to the generic :class:`FsspecBackend`:

* **Atomic writes.** :meth:`GCSBackend.write_new` is one upload with
  ``ifGenerationMatch=0``, so the server refuses a second writer (412 ->
  :class:`FileExistsError`); :meth:`GCSBackend.replace` is one plain upload.
  Both always use a single-request (multipart) upload, whatever the size:
  GCS publishes an object whole when its upload completes, and emulators
  such as fake-gcs-server honour the precondition only on this kind of upload.
* **Emulators with no code.** With ``STORAGE_EMULATOR_HOST`` set (or an
  ``endpoint_url`` in ``storage_options``) the backend talks to the emulator
  anonymously unless a ``token`` is given, and uses gcsfs' plain filesystem.
  Importing this module with ``STORAGE_EMULATOR_HOST`` set and
  ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT`` unset sets the latter to ``false``
  before gcsfs is imported: otherwise every read makes a gRPC storage-layout
  probe that an emulator never answers (~60 s per call). Real GCS uses the
  standard credentials (``GOOGLE_APPLICATION_CREDENTIALS``, gcloud, the
  metadata server) through gcsfs.
* **Bounded retries.** gcsfs retries a failed request 6 times over ~30 s;
  here a transient failure (connection refused or reset, timeouts, 408, 429,
  5xx) is retried 3 times with jittered exponential backoff (~0.2-0.6 s),
  then raised as :class:`OSError` so the writer retries later.
* **Clear permanent errors.** A missing bucket or denied access becomes
  :class:`~pacha_sdk.exceptions.StoreError` naming the bucket, never a
  token. A missing object stays :class:`FileNotFoundError`; the first time
  one is seen the bucket is checked once, as GCS answers 404 for both.
"""

from __future__ import annotations

import asyncio
import builtins
import errno
import functools
import io
import os
import random
from typing import TYPE_CHECKING, Any, ClassVar

from pacha_sdk.backends._bucket import BucketBackend
from pacha_sdk.exceptions import StoreError, StorePermissionError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pacha_sdk.backends.base import StoredObject

__all__ = ["EMULATOR_HOST", "LAYOUT_PROBE", "GCSBackend", "prepare_environment"]

EMULATOR_HOST = "STORAGE_EMULATOR_HOST"
"""The standard variable pointing Google's clients at an emulator."""

LAYOUT_PROBE = "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"
"""gcsfs' switch for its zonal/hierarchical-namespace support (a gRPC probe per call)."""

ATTEMPTS = 3
"""Tries per request, the first included, for a transient failure."""

_BACKOFF_BASE = 0.2
_BACKOFF_CAP = 2.0
_SIMPLE_UPLOAD_MIN = 50 * 2**20  # gcsfs' default switch to resumable uploads
_LARGE_BODY = 2**20  # aiohttp's threshold for its "large raw body" ResourceWarning


def prepare_environment() -> None:
    """Turn off gcsfs' layout probe when an emulator is configured and nobody chose.

    Must run before gcsfs is imported: gcsfs reads the variable at import.
    """
    if _emulator_configured() and LAYOUT_PROBE not in os.environ:
        os.environ[LAYOUT_PROBE] = "false"


def _emulator_configured() -> bool:
    """Return whether ``STORAGE_EMULATOR_HOST`` points at an emulator."""
    return os.environ.get(EMULATOR_HOST, "") not in ("", "default")


prepare_environment()


class GCSBackend(BucketBackend):
    """Objects under ``gs://bucket/prefix`` on Google Cloud Storage or an emulator.

    Args:
        uri: ``gs://bucket`` or ``gs://bucket/prefix`` (``gcs://`` works too).
        storage_options: keyword arguments for :class:`gcsfs.GCSFileSystem`,
            e.g. ``{"token": ..., "project": ...}`` or an ``endpoint_url``.

    Raises:
        ValueError: the URI names no bucket, or carries credentials.
        ImportError: gcsfs is not installed (the registry turns this into
            ``pip install 'pacha-sdk[gcs]'``).
    """

    scheme: ClassVar[str | tuple[str, ...]] = ("gs", "gcs")
    store_name: ClassVar[str] = "GCS"
    endpoint_hint: ClassVar[str] = "STORAGE_EMULATOR_HOST / endpoint_url"

    def _open_filesystem(self) -> tuple[Any, str]:
        """Open gcsfs with caches off and bounded retries; return it and ``bucket/prefix``."""
        prepare_environment()
        options = dict(self._storage_options)
        options["skip_instance_cache"] = True
        options["use_listings_cache"] = False
        emulated = bool(options.get("endpoint_url")) or _emulator_configured()
        if emulated:
            options.setdefault("token", "anon")
        fs = _filesystem_class(emulated=emulated)(**options)
        return fs, self.uri.split("://", 1)[1]

    # Primitives.

    def read_bytes(self, key: str) -> bytes:
        """Return the object at *key* with one GET."""
        path = self._path(key)
        with self._errors(key):
            return bytes(self._fs.cat_file(path))

    def write_new(self, key: str, data: bytes) -> None:
        """Create *key* with ``ifGenerationMatch=0``; :class:`FileExistsError` if it exists."""
        path = self._path(key)
        with self._errors(key):
            self._fs.pipe_file(path, data, mode="create", chunksize=_one_request(data))

    def replace(self, key: str, data: bytes) -> None:
        """Create or replace *key* with one upload, which readers see whole or not at all."""
        path = self._path(key)
        with self._errors(key):
            self._fs.pipe_file(path, data, chunksize=_one_request(data))

    def list_objects(self, prefix: str = "") -> builtins.list[StoredObject]:
        """Return the objects under the folder *prefix* with size and generation.

        A missing bucket raises. The version is the object's generation
        (new on every write) and its MD5, as the listing reports them.
        """
        try:
            with self._errors(None):
                found = super().list_objects(prefix)
        except FileNotFoundError:  # gcsfs' answer for a missing bucket
            self._check_bucket()
            return []
        if not found:
            self._check_bucket()
        return found

    def _version(self, info: Mapping[str, Any]) -> str | None:
        """``<generation>/<md5 or crc32c>`` from a gcsfs listing entry, if it has one."""
        generation = info.get("generation")
        digest = info.get("md5Hash") or info.get("crc32c")
        return f"{generation}/{digest}" if generation and digest else None

    # Internals.

    def _head_object(self, bucket: str, name: str) -> None:
        self._fs.call("GET", "b/{}/o/{}", bucket, name, json_out=True)

    def _head_bucket(self) -> None:
        self._fs.call("GET", "b/{}", self._bucket, json_out=True)

    def _translate(
        self, error: Exception, key: str | None, *, creating: bool
    ) -> BaseException | None:
        """Return the exception to raise instead of *error*, or None to keep it."""
        if isinstance(error, FileExistsError):
            return None
        if isinstance(error, FileNotFoundError):
            if key is not None:
                self._check_bucket()
            return None
        status = getattr(error, "code", None)
        text = str(error)
        if status in (401, 403) or text.startswith("Forbidden") or _is_auth_error(error):
            return StorePermissionError(
                f"access to GCS bucket {self._bucket!r} ({self.uri}) was denied: check the "
                "credentials (storage_options token, GOOGLE_APPLICATION_CREDENTIALS, gcloud) "
                "and the bucket's permissions"
            )
        if isinstance(error, ValueError) and text.startswith("Bad Request"):
            return StoreError(f"GCS refused the request for bucket {self._bucket!r}: {text}")
        if isinstance(status, int) and not isinstance(error, OSError):
            return OSError(errno.EIO, f"GCS answered HTTP {status} for bucket {self._bucket!r}")
        return None


def _one_request(data: bytes) -> int:
    """Return a gcsfs chunk size that makes *data* one single-request upload."""
    return max(len(data) + 1, _SIMPLE_UPLOAD_MIN)


def _is_auth_error(error: BaseException) -> bool:
    """Return whether *error* comes from google-auth (no or bad credentials)."""
    return type(error).__module__.startswith("google.auth")


def _backoff(attempt: int) -> float:
    """Seconds before retry *attempt* (1-based): exponential, capped, with jitter."""
    return min(_BACKOFF_CAP, _BACKOFF_BASE * 2.0 ** (attempt - 1)) * (0.5 + random.random() / 2)


def _filesystem_class(*, emulated: bool) -> type[Any]:
    """Return gcsfs' filesystem class (plain for emulators), subclassed by :func:`_subclass`.

    gcsfs is imported here, on first use, so ``import pacha_sdk`` never
    loads it; a missing gcsfs raises :class:`ImportError` at every call,
    which the registry turns into the install hint.
    """
    import gcsfs  # type: ignore[import-untyped]
    import gcsfs.core  # type: ignore[import-untyped]

    return _subclass(gcsfs.core.GCSFileSystem if emulated else gcsfs.GCSFileSystem)


@functools.cache
def _subclass(base: type[Any]) -> type[Any]:
    """Return *base* with bounded retries and connection failures raised as :class:`OSError`.

    gcsfs decorates ``_request`` with 6 retries of up to 32 s each; a store
    outage would then stall each write for half a minute. The undecorated
    function is kept by the ``decorator`` package as ``__wrapped__``.
    """
    import aiohttp
    from gcsfs.retry import is_retriable  # type: ignore[import-untyped]

    request = base._request.__wrapped__

    def transient(error: BaseException) -> bool:
        connection = (asyncio.TimeoutError, ConnectionError, TimeoutError)
        return bool(is_retriable(error)) or isinstance(error, connection)

    def final(error: BaseException) -> BaseException | None:
        """The OSError to raise instead of *error* once retries are spent, or None."""
        if isinstance(error, asyncio.TimeoutError):
            return TimeoutError("GCS did not answer in time")
        if isinstance(error, aiohttp.ClientConnectionError):
            return ConnectionError(f"GCS did not answer: {error}")
        if isinstance(error, OSError):
            return None
        status = getattr(error, "code", None)
        if isinstance(status, int) and status != 401 and transient(error):
            return OSError(errno.EIO, f"GCS answered HTTP {status}")
        return None

    class PachaGCSFileSystem(base):  # type: ignore[misc]
        """gcsfs with 3 quick retries and transient failures as :class:`OSError`."""

        async def _request(self, *args: Any, **kwargs: Any) -> Any:
            data = kwargs.get("data")
            if isinstance(data, (bytes, bytearray)) and len(data) > _LARGE_BODY:
                # aiohttp warns on large raw bodies; gcsfs rewinds file-like data per try.
                kwargs["data"] = io.BytesIO(data)
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    return await request(self, *args, **kwargs)
                except Exception as error:
                    if attempt == ATTEMPTS or not transient(error):
                        mapped = final(error)
                        if mapped is None:
                            raise
                        raise mapped from error
                    await asyncio.sleep(_backoff(attempt))
            raise AssertionError("unreachable")  # pragma: no cover

    return PachaGCSFileSystem
