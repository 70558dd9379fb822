"""The records snapshot format: a Parquet file of ``key``, ``version`` and ``data``.

See :mod:`pacha_sdk.storage.snapshots` for what snapshots are for and the
rules that keep them a cache. The format, for any other tool: a Parquet
file (zstd) with columns ``key`` (string, the object's key under the root),
``version`` (string, as the store's listing reports it) and ``data``
(binary, the object's bytes as stored), and the schema metadata
``pacha.format = pacha.records-snapshot/1``; one row per object, each key once.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from pacha_sdk.exceptions import InvalidRecordError

if TYPE_CHECKING:
    from collections.abc import Iterable

    import pyarrow as pa

    from pacha_sdk.backends import StoredObject

__all__ = ["FORMAT", "decode", "encode"]

FORMAT = "pacha.records-snapshot/1"
"""The ``pacha.format`` a snapshot's Parquet schema metadata says; any other is not one."""
_FORMAT_KEY = b"pacha.format"


def encode(entries: Iterable[tuple[StoredObject, bytes]]) -> bytes:
    """A snapshot of *entries* (each listed object, with a version, and its content)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    keys, versions, contents = [], [], []
    for item, data in entries:
        if item.version is not None:
            keys.append(item.key)
            versions.append(item.version)
            contents.append(data)
    table = pa.table(
        {"key": keys, "version": versions, "data": pa.array(contents, pa.binary())},
        schema=_schema(),
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", use_dictionary=False)
    return sink.getvalue()


def decode(data: bytes, where: str) -> dict[str, tuple[str, bytes]]:
    """The entries of the snapshot *data*; :class:`InvalidRecordError` naming *where* if not one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError, ValueError) as error:
        raise InvalidRecordError(where, f"not Parquet: {error}", kind="records snapshot") from None
    said = (table.schema.metadata or {}).get(_FORMAT_KEY)
    if said != FORMAT.encode():
        found = "none" if said is None else repr(said.decode("utf-8", "replace"))
        raise InvalidRecordError(where, f"format {found}, not {FORMAT!r}", kind="records snapshot")
    if not table.schema.remove_metadata().equals(_schema().remove_metadata()):
        raise InvalidRecordError(where, f"columns {table.schema}", kind="records snapshot")
    if any(table.column(name).null_count for name in table.column_names):
        raise InvalidRecordError(where, "a null value", kind="records snapshot")
    keys = table.column("key").to_pylist()
    held = zip(table.column("version").to_pylist(), table.column("data").to_pylist())
    entries = dict(zip(keys, held))
    if len(entries) != len(keys):
        raise InvalidRecordError(where, "a key twice", kind="records snapshot")
    return entries


def _schema() -> pa.Schema:
    import pyarrow as pa

    fields = [("key", pa.string()), ("version", pa.string()), ("data", pa.binary())]
    return pa.schema(fields, metadata={_FORMAT_KEY: FORMAT.encode()})
