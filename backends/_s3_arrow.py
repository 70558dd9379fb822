"""pyarrow's own S3 client (AWS SDK for C++) for Parquet scans, built from s3fs' settings.

Through s3fs, pyarrow reads a Parquet file with Python file objects: every
footer and column chunk is a request made by botocore on the GIL (about
0.8 ms of CPU each), one file at a time. ``pyarrow.fs.S3FileSystem`` makes
the same requests in C++, with the GIL released, on pyarrow's I/O threads
and with its own connection pool, so a dataset scan over S3 reads many
files at once. :func:`arrow_s3_filesystem` opens one from the same
``storage_options`` the user gave s3fs, so both clients reach the same
server with the same identity.

It is used only for reads: through :meth:`S3Backend.arrow_filesystem
<pacha_sdk.backends.s3.S3Backend.arrow_filesystem>` (``metrics_dataset``,
large parts, resuming) and for large batches of whole objects
(:func:`read_objects`: thousands of run records). Never for writes: the
writer stays on s3fs, whose create-only PUT and errors the backend contract
relies on. pyarrow opens every object with a HEAD request for its size
(its Python API takes no size, not even a fragment's), so a whole object
costs two requests instead of s3fs' one GET; they still cost less CPU
(about 0.43 ms of client CPU for both, against 0.77 ms for botocore's GET,
measured on SeaweedFS) and run on many threads off the GIL, so large
batches are faster, and small ones stay on s3fs. Listings stay on s3fs
(pyarrow's report no ETag), so the versions the records cache keys on are
the same whichever client then reads the content.

Settings it maps, and nothing else (any other option, or one it cannot map,
gives ``None`` and the caller stays on s3fs, which then does exactly what it
did before):

* credentials: ``key``/``secret``/``token``, else ``AWS_ACCESS_KEY_ID`` /
  ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``; ``anon=True``. A profile,
  SSO, a credential process or instance metadata stay with botocore, whose
  chain the AWS SDK for C++ does not match exactly;
* the endpoint: ``endpoint_url`` (or ``client_kwargs["endpoint_url"]``, or
  ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``), ``http://`` or
  ``https://`` with a host and port but no path;
* the region: ``client_kwargs["region_name"]``, ``AWS_REGION``,
  ``AWS_DEFAULT_REGION``; with a custom endpoint and none of those,
  ``us-east-1`` (what S3-compatible servers expect). On AWS itself without a
  region, s3fs: botocore follows a bucket's region redirect, pyarrow would fail;
* ``AWS_CA_BUNDLE`` (as ``tls_ca_file_path``); nothing else that changes
  how botocore connects: with a FIPS or dual-stack endpoint, or an HTTP(S)
  proxy in the environment, s3fs;
* ``config_kwargs``: ``connect_timeout`` and ``read_timeout`` (as pyarrow's
  ``connect_timeout`` and ``request_timeout``; 60 s each if absent, botocore's
  defaults, so a store that stops answering fails within the same bound on
  either client; pyarrow's documentation says ``request_timeout`` is ignored
  on Linux, but the AWS SDK's curl client does give up on a connection that
  stays silent that long, as the fault-proxy tests check),
  ``retries["total_max_attempts"]``, or ``["max_attempts"]`` retries after
  the first try (4 tries in all if absent),
  ``s3["addressing_style"]``, ``signature_version`` ``s3v4``, and
  ``max_pool_connections`` (pyarrow sizes its own pool).

Never after ``os.fork``: a child whose parent had already opened one (the
AWS SDK keeps process-wide state) gets ``None``, and reads through s3fs,
which fsspec resets after a fork. pyarrow finalises the AWS SDK at exit
itself (``pyarrow.fs`` registers ``ensure_s3_finalized`` with ``atexit``).
Buckets are never created or deleted through it (``allow_bucket_creation``
and ``allow_bucket_deletion`` stay off).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import pyarrow.fs

__all__ = ["arrow_s3_filesystem", "arrow_s3_options", "is_transport_error", "read_objects"]

DEFAULT_TIMEOUT = 60.0
"""Seconds to connect, and seconds without a byte, before a request fails (botocore's)."""
DEFAULT_ATTEMPTS = 4
"""Tries of a request in all unless ``config_kwargs["retries"]`` says otherwise."""

_MAPPED = frozenset(
    {"key", "secret", "token", "anon", "endpoint_url", "client_kwargs", "config_kwargs"}
)
_HARMLESS = frozenset(
    {"skip_instance_cache", "use_listings_cache", "listings_expiry_time", "default_block_size"}
)
_UNMAPPED_ENVIRONMENT = (
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
)
"""Variables botocore honours for its connections that this mapping does not carry over."""
_CLIENT_KWARGS = frozenset({"endpoint_url", "region_name"})
_CONFIG_KWARGS = frozenset(
    {
        "connect_timeout",
        "read_timeout",
        "retries",
        "s3",
        "signature_version",
        "max_pool_connections",
    }
)

_lock = threading.Lock()
_opened_in: int | None = None
"""The process that opened the first native filesystem (the AWS SDK's state lives there)."""


def arrow_s3_options(
    storage_options: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, Any] | None:
    """``pyarrow.fs.S3FileSystem`` keyword arguments equivalent to *storage_options*.

    ``None`` if any setting cannot be mapped (see the module docstring): the
    caller then keeps s3fs. *environ* defaults to ``os.environ``.
    """
    env = os.environ if environ is None else environ
    if not set(storage_options) <= _MAPPED | _HARMLESS:
        return None
    if any(env.get(name) for name in _UNMAPPED_ENVIRONMENT):
        return None
    client = dict(storage_options.get("client_kwargs") or {})
    config = dict(storage_options.get("config_kwargs") or {})
    if not set(client) <= _CLIENT_KWARGS or not set(config) <= _CONFIG_KWARGS:
        return None
    options = _credentials(storage_options, env)
    if options is None:
        return None
    endpoint = (
        storage_options.get("endpoint_url")
        or client.get("endpoint_url")
        or env.get("AWS_ENDPOINT_URL_S3")
        or env.get("AWS_ENDPOINT_URL")
    )
    region = client.get("region_name") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if endpoint:
        parts = urlsplit(str(endpoint))
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
            return None
        if "@" in parts.netloc or parts.query:
            return None
        options |= {"scheme": parts.scheme, "endpoint_override": parts.netloc}
        region = region or "us-east-1"
    if not region:
        return None
    options["region"] = str(region)
    if bundle := env.get("AWS_CA_BUNDLE"):
        options["tls_ca_file_path"] = bundle
    transport = _transport(config)
    return None if transport is None else options | transport


def arrow_s3_filesystem(
    storage_options: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> pyarrow.fs.S3FileSystem | None:
    """A native S3 filesystem for *storage_options*, or ``None`` where s3fs must serve.

    ``None`` if a setting cannot be mapped (:func:`arrow_s3_options`), if
    this process is a fork of one that already opened a native filesystem,
    or if pyarrow was built without S3.
    """
    global _opened_in
    options = arrow_s3_options(storage_options, environ)
    if options is None:
        return None
    with _lock:
        if _opened_in is not None and _opened_in != os.getpid():
            return None
        try:
            import pyarrow.fs
            from pyarrow.fs import AwsStandardS3RetryStrategy
        except ImportError:  # pyarrow built without S3
            return None
        attempts = options.pop("max_attempts")
        filesystem = pyarrow.fs.S3FileSystem(
            retry_strategy=AwsStandardS3RetryStrategy(max_attempts=attempts),
            allow_bucket_creation=False,
            allow_bucket_deletion=False,
            **options,
        )
        _opened_in = os.getpid()
        return filesystem


def read_objects(
    filesystem: pyarrow.fs.FileSystem, paths: Sequence[str], threads: int
) -> list[bytes | OSError | None]:
    """Each object at *paths* whole, on *threads* threads: bytes, ``None`` if missing, or the error.

    Errors are returned, not raised, so the caller decides per object (the
    S3 backend reads those again through s3fs, whose errors it translates).
    """

    def read(path: str) -> bytes | OSError | None:
        try:
            with filesystem.open_input_stream(path) as stream:
                return bytes(stream.read())
        except FileNotFoundError:
            return None
        except OSError as error:
            return error

    with ThreadPoolExecutor(max(1, min(threads, len(paths)))) as pool:
        return list(pool.map(read, paths))


_TRANSPORT = ("curlCode", "NETWORK_CONNECTION", "Timeout", "timed out", "Connection refused")


def is_transport_error(error: OSError) -> bool:
    """Whether pyarrow's *error* says the store could not be reached or did not answer.

    Those already took pyarrow's timeouts and retries; reading again through
    s3fs would only double the wait, so the caller reports them as they are.
    """
    return any(marker in str(error) for marker in _TRANSPORT)


def _credentials(
    storage_options: Mapping[str, Any], env: Mapping[str, str]
) -> dict[str, Any] | None:
    """The identity: explicit keys, the key variables, or anonymous; else ``None``."""
    if storage_options.get("anon"):
        return {"anonymous": True}
    key, secret = storage_options.get("key"), storage_options.get("secret")
    token = storage_options.get("token")
    if key is None and secret is None:
        key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
        token = token or env.get("AWS_SESSION_TOKEN")
    if not isinstance(key, str) or not isinstance(secret, str) or not key or not secret:
        return None
    options: dict[str, Any] = {"access_key": key, "secret_key": secret}
    if token:
        if not isinstance(token, str):
            return None
        options["session_token"] = token
    return options


def _transport(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """Timeouts, tries and addressing from botocore's ``config_kwargs``; ``None`` if unmappable."""
    options: dict[str, Any] = {}
    for botocore_name, arrow_name in (
        ("connect_timeout", "connect_timeout"),
        ("read_timeout", "request_timeout"),
    ):
        value = config.get(botocore_name, DEFAULT_TIMEOUT)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            return None
        options[arrow_name] = float(value)
    retries = dict(config.get("retries") or {})
    if not set(retries) <= {"max_attempts", "total_max_attempts", "mode"}:
        return None
    attempts = retries.get("total_max_attempts", DEFAULT_ATTEMPTS)
    if "max_attempts" in retries and "total_max_attempts" not in retries:
        attempts = retries["max_attempts"] + 1 if isinstance(retries["max_attempts"], int) else None
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        return None
    options["max_attempts"] = attempts
    if config.get("signature_version", "s3v4") != "s3v4":
        return None
    addressing = dict(config.get("s3") or {})
    if not set(addressing) <= {"addressing_style"}:
        return None
    style = addressing.get("addressing_style", "auto")
    if style not in ("auto", "path", "virtual"):
        return None
    if style == "virtual":
        options["force_virtual_addressing"] = True
    return options
