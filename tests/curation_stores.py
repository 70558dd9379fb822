"""Stores and engines for the curation tests: local, SeaweedFS (S3) and fake-gcs-server (GCS).

:func:`where` is the fixture: a fresh store per test. :func:`engine_counts`
counts a store's metric points the way a user of DuckDB, Polars or pyarrow
would, straight from the bucket and without pacha, so a test can show that
a deleted run's points are gone for them and back after a restore.
:func:`files_of` snapshots every file a run has, so a test can check that a
restore puts back exactly what a deletion moved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs
import pytest

from pacha_sdk.backends import Backend, get_backend
from pacha_sdk.models import RunId
from pacha_sdk.storage.layout import metrics_prefix, original_key, run_prefix, trash_prefix

if TYPE_CHECKING:
    from pathlib import Path

    from tests.servers import ObjectStore

__all__ = ["Where", "engine_counts", "files_of", "trashed_files_of", "where"]

_SERVERS = {"seaweedfs": "seaweedfs_store", "fake-gcs": "gcs_store"}


@dataclass(frozen=True)
class Where:
    """A store as a user names it, and the server behind it (if any)."""

    kind: str
    uri: str
    storage_options: dict[str, Any] | None = None
    server: ObjectStore | None = field(default=None, compare=False)

    @property
    def options(self) -> dict[str, Any]:
        """``uri`` and ``storage_options``: keywords every pacha call takes."""
        return {"uri": self.uri, "storage_options": self.storage_options}

    def backend(self) -> Backend:
        """The store's backend (for snapshots of what it holds)."""
        return get_backend(self.uri, storage_options=self.storage_options)


@pytest.fixture(
    params=["local", *(pytest.param(kind, marks=pytest.mark.servers) for kind in _SERVERS)]
)
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Where:
    """A fresh, empty store: a local folder, a SeaweedFS prefix or a fake-gcs-server prefix."""
    kind: str = request.param
    if kind == "local":
        return Where(kind, str(tmp_path / "store"))
    server: ObjectStore = request.getfixturevalue(_SERVERS[kind])
    return Where(kind, server.uri, dict(server.storage_options), server)


def files_of(place: Where, run_id: str) -> dict[str, bytes]:
    """Every file the run has outside the trash, key to content."""
    backend = place.backend()
    rid = RunId(run_id)
    keys = backend.list(run_prefix(rid)) + backend.list(metrics_prefix(rid))
    return {key: backend.read_bytes(key) for key in keys}


def trashed_files_of(place: Where, run_id: str) -> dict[str, bytes]:
    """Every file of the run in the trash, by original key (its deletion record left out)."""
    backend = place.backend()
    found: dict[str, bytes] = {}
    for key in backend.list(trash_prefix(RunId(run_id))):
        if (moved := original_key(key)) is not None:
            found[moved[1]] = backend.read_bytes(key)
    return found


# Engines reading metrics/ without pacha.


def _native(place: Where) -> tuple[pyarrow.fs.FileSystem, str]:
    if place.server is None:
        return pyarrow.fs.LocalFileSystem(), place.uri
    server = place.server
    host = server.endpoint_url.removeprefix("http://")
    path = f"{server.bucket}/{server.prefix}"
    if server.scheme == "s3":
        options = server.storage_options
        s3 = pyarrow.fs.S3FileSystem(
            access_key=options["key"],
            secret_key=options["secret"],
            endpoint_override=host,
            scheme="http",
            region="us-east-1",
        )
        return s3, path
    return pyarrow.fs.GcsFileSystem(anonymous=True, endpoint_override=host, scheme="http"), path


def _pyarrow_count(place: Where, run_id: str) -> int:
    filesystem, root = _native(place)
    dataset = pads.dataset(
        f"{root}/metrics", filesystem=filesystem, format="parquet", partitioning="hive"
    )
    return int(dataset.count_rows(filter=pc.field("run_id") == run_id))


def _duckdb_count(place: Where, run_id: str) -> int:
    import duckdb
    import fsspec

    connection = duckdb.connect()
    try:
        if place.server is not None:
            options = dict(place.server.storage_options)
            if place.server.scheme == "s3":
                filesystem = fsspec.filesystem("s3", skip_instance_cache=True, **options)
            else:  # gcsfs' plain class: its default one probes the bucket layout over gRPC
                import gcsfs.core  # type: ignore[import-untyped]

                filesystem = gcsfs.core.GCSFileSystem(skip_instance_cache=True, **options)
            connection.register_filesystem(filesystem)
        source = f"{place.uri}/metrics/*/*.parquet"
        row = connection.execute(
            f"select count(*) from read_parquet('{source}', hive_partitioning=true) "
            "where run_id = ?",
            [run_id],
        ).fetchone()
    finally:
        connection.close()
    assert row is not None
    return int(row[0])


def _polars_count(place: Where, run_id: str) -> int | None:
    import polars as pl

    options: dict[str, str] | None = None
    if place.server is not None:
        if place.server.scheme != "s3":
            return None  # Polars' object store has no setting for a GCS emulator's address
        stored = place.server.storage_options
        options = {
            "aws_endpoint_url": place.server.endpoint_url,
            "aws_allow_http": "true",
            "aws_access_key_id": stored["key"],
            "aws_secret_access_key": stored["secret"],
            "aws_region": "us-east-1",
        }
    frame = pl.scan_parquet(
        f"{place.uri}/metrics/*/*.parquet", hive_partitioning=True, storage_options=options
    )
    return int(frame.filter(pl.col("run_id") == run_id).select(pl.len()).collect().item())


def engine_counts(place: Where, run_id: str) -> dict[str, int]:
    """The points of *run_id* that each engine counts under ``metrics/`` (no pacha involved)."""
    counts = {"pyarrow": _pyarrow_count(place, run_id), "duckdb": _duckdb_count(place, run_id)}
    if (polars := _polars_count(place, run_id)) is not None:
        counts["polars"] = polars
    return counts
