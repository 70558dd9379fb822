"""Reading many part files into one table, as fast as the store allows.

In a local folder pyarrow reads the files itself: one dataset over the
explicit file list, no discovery. On an object store a dataset makes two or
three requests per file (footer, column chunks), through fsspec's Python
file objects one file at a time (about 7 ms per part on a local SeaweedFS,
so a metric across 1,000 runs took seconds) or, on S3, through pyarrow's own
client (fewer CPU seconds, but still two requests or more per part). Instead:

* parts up to :data:`WHOLE_PART_BYTES` (nearly all: a flush writes seconds of
  points) are fetched whole with one batched read (one GET each, dozens in
  flight) and decoded from memory on a few threads, pyarrow releasing the
  GIL; the next batch downloads while this one decodes;
* larger parts (merged ones) are opened as files, so pyarrow reads only the
  footer and the row groups the name filter keeps.

In both, row groups whose ``name`` statistics exclude every wanted name are
skipped, and rows are filtered by name after decoding. A part that is not
readable is skipped with a warning or raised for, as the read's
*bad_parts* says (:mod:`pacha_sdk.query._bad_parts`).
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs
import pyarrow.parquet as pq

from pacha_sdk.exceptions import InvalidPartError
from pacha_sdk.query._bad_parts import (
    BadParts,
    bad_part,
    read_table,
    readable_dataset,
    schema_problem,
    without_path,
)
from pacha_sdk.storage.layout import METRICS_DIR
from pacha_sdk.storage.records import location, store_errors
from pacha_sdk.storage.schema import METRIC_SCHEMA, empty_metrics_table

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pacha_sdk.backends import Backend
    from pacha_sdk.query.part_files import PartFile

__all__ = ["BATCH_BYTES", "WHOLE_PART_BYTES", "parts_dataset", "read_parts"]

WHOLE_PART_BYTES = 8 * 2**20
"""Parts up to this size are fetched whole; larger ones are read by ranges."""
BATCH_BYTES = 64 * 2**20
"""Most bytes of whole parts fetched in one batch (so memory stays bounded)."""
_BATCH_PARTS = 1024
_DECODE_THREADS = max(2, min(8, os.cpu_count() or 2))


def read_parts(
    backend: Backend,
    parts: Sequence[PartFile],
    names: list[str] | None,
    *,
    bad_parts: BadParts = "raise",
) -> pa.Table:
    """The points in *parts* (only those of *names* if given), in part order.

    Raises :class:`FileNotFoundError` naming a listed part that is gone by
    the time it is read (the caller lists again), :class:`InvalidPartError`
    naming a part that is not a readable Parquet file with the metric
    columns (with *bad_parts* ``"skip"``, a warning and the part left out),
    and :class:`StoreError` if the store cannot be read.
    """
    if not parts:
        return empty_metrics_table()
    filesystem, root = backend.arrow_filesystem()
    if isinstance(filesystem, pyarrow.fs.LocalFileSystem):
        return _read_natively(backend, parts, names, filesystem, root, bad_parts)
    whole = [part for part in parts if part.size is None or part.size <= WHOLE_PART_BYTES]
    by_ranges = [part for part in parts if part.size is not None and part.size > WHOLE_PART_BYTES]
    tables = dict(zip(whole, _read_whole(backend, whole, names)))
    with ThreadPoolExecutor(_DECODE_THREADS) as pool:
        tables |= zip(
            by_ranges, pool.map(lambda part: _read_file(part, names, filesystem, root), by_ranges)
        )
    kept = []
    for part in parts:  # in part order, so a "raise" names the first bad part
        table = tables[part]
        if isinstance(table, InvalidPartError):
            bad_part(table.location, table.problem, bad_parts)
        else:
            kept.append(table)
    return pa.concat_tables(kept) if kept else empty_metrics_table()


def parts_dataset(
    parts: Sequence[PartFile], filesystem: pyarrow.fs.FileSystem, root: str
) -> ds.FileSystemDataset:
    """A lazy dataset over exactly *parts*: one fragment each, knowing its ``run_id`` and size.

    No discovery and no request per file until a scan opens it; a filter on
    ``run_id`` skips whole fragments unopened.
    """
    parquet = ds.ParquetFileFormat()
    fragments = [
        parquet.make_fragment(
            f"{root}/{part.key}",
            filesystem,
            partition_expression=ds.field("run_id") == str(part.run_id),
            file_size=part.size,
        )
        for part in parts
    ]
    return ds.FileSystemDataset(fragments, METRIC_SCHEMA, parquet, filesystem)


def _name_filter(names: list[str] | None) -> ds.Expression | None:
    return None if names is None else ds.field("name").isin(names)


def _read_natively(
    backend: Backend,
    parts: Sequence[PartFile],
    names: list[str] | None,
    filesystem: pyarrow.fs.FileSystem,
    root: str,
    bad_parts: BadParts,
) -> pa.Table:
    """One pyarrow dataset over the explicit files (no discovery), read with its own I/O.

    Each file's footer is checked first (and kept for the read), so a bad
    part is named before pyarrow fails on it or reads its missing columns
    as nulls.
    """

    def locate(path: str) -> str:
        return f"{backend.uri}{path.removeprefix(root)}"

    with store_errors(backend, "read", METRICS_DIR, passing=(FileNotFoundError,)):
        dataset = readable_dataset(
            parts_dataset(parts, filesystem, root), bad_parts=bad_parts, locate=locate
        )
        return read_table(dataset, filter=_name_filter(names), bad_parts=bad_parts, locate=locate)


def _batches(parts: Sequence[PartFile]) -> list[list[PartFile]]:
    """*parts* in consecutive batches of at most :data:`BATCH_BYTES` (and 1,024 parts)."""
    batches: list[list[PartFile]] = []
    total = 0
    for part in parts:
        size = part.size or 0
        if not batches or len(batches[-1]) >= _BATCH_PARTS or total + size > BATCH_BYTES:
            batches.append([])
            total = 0
        batches[-1].append(part)
        total += size
    return batches


def _read_whole(
    backend: Backend, parts: Sequence[PartFile], names: list[str] | None
) -> list[pa.Table | InvalidPartError]:
    """Fetch *parts* whole, batch by batch (the next while this one decodes); decode each."""
    batches = _batches(parts)
    tables: list[pa.Table | InvalidPartError] = []

    def fetch(batch: list[PartFile]) -> list[bytes | None]:
        with store_errors(backend, "read", METRICS_DIR):
            return backend.read_many([part.key for part in batch])

    with ThreadPoolExecutor(1) as fetcher, ThreadPoolExecutor(_DECODE_THREADS) as decoders:
        pending: Future[list[bytes | None]] | None = None
        if batches:
            pending = fetcher.submit(fetch, batches[0])
        for index, batch in enumerate(batches):
            assert pending is not None
            contents = pending.result()
            if index + 1 < len(batches):
                pending = fetcher.submit(fetch, batches[index + 1])
            for part, data in zip(batch, contents):
                if data is None:
                    raise FileNotFoundError(location(backend, part.key))
            where = [location(backend, part.key) for part in batch]
            tables.extend(decoders.map(lambda data, at: _decode(data, names, at), contents, where))
    return tables


def _read_file(
    part: PartFile, names: list[str] | None, filesystem: pyarrow.fs.FileSystem, root: str
) -> pa.Table | InvalidPartError:
    """Read a large part through *filesystem*: footer first, then only the row groups kept."""
    path = f"{root}/{part.key}"
    try:
        source = filesystem.open_input_file(path)
    except FileNotFoundError as error:
        raise FileNotFoundError(path) from error
    with source:
        return _decode(source, names, path)


def _decode(source: Any, names: list[str] | None, where: str) -> pa.Table | InvalidPartError:
    """The points of one Parquet part (those of *names* if given), with the metric schema.

    *source* is the part's bytes or a file open on it. A part that is not
    readable comes back as its :class:`InvalidPartError` (the caller decides
    whether it raises, in part order).
    """
    if isinstance(source, bytes):
        source = pa.BufferReader(source)
    try:
        file = pq.ParquetFile(source, pre_buffer=True)
        problem = schema_problem(file.schema_arrow)
        if problem is not None:
            return InvalidPartError(where, problem)
        groups = _row_groups(file.metadata, names)
        table = file.read_row_groups(groups, use_threads=False)
    except pa.ArrowInvalid as error:
        return InvalidPartError(where, without_path(str(error)))
    table = table.select(METRIC_SCHEMA.names)
    if table.schema != METRIC_SCHEMA:
        table = table.cast(METRIC_SCHEMA)
    if names is None:
        return table
    return table.filter(pc.is_in(table.column("name"), value_set=pa.array(names, pa.string())))


def _row_groups(metadata: pq.FileMetaData, names: list[str] | None) -> list[int]:
    """Row groups that may hold *names* (all if ``None``), judged by ``name`` statistics."""
    every = list(range(metadata.num_row_groups))
    if names is None or "name" not in metadata.schema.names:
        return every
    column = metadata.schema.names.index("name")
    kept = []
    for index in every:
        stats = metadata.row_group(index).column(column).statistics
        unknown = stats is None or not stats.has_min_max
        if unknown or any(stats.min <= name <= stats.max for name in names):
            kept.append(index)
    return kept
