"""The one Arrow schema of metric part files (DESIGN section 3).

``run_id`` is written into every file as well as into the Hive folder name,
so a part file read on its own still says which run it belongs to.

``name`` is dictionary-encoded inside the Parquet file (a handful of
distinct names over millions of rows compress to almost nothing) but its
Arrow type is a plain ``string``: readers get a column they can sort,
compare and group without decoding first.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = ["METRIC_SCHEMA", "empty_metrics_table", "schema_problem"]

METRIC_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("step", pa.int64(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("rank", pa.int32(), nullable=False),
    ]
)
"""Columns of every metric part file, in this order."""


def empty_metrics_table() -> pa.Table:
    """Return a table with :data:`METRIC_SCHEMA` and no rows."""
    return METRIC_SCHEMA.empty_table()


def schema_problem(schema: pa.Schema) -> str | None:
    """Why a part file of *schema* is not one of pacha's, or None.

    A dictionary-encoded column counts as its values; extra columns are allowed.
    """
    wrong = []
    for field in METRIC_SCHEMA:
        index = schema.get_field_index(field.name)
        found = schema.field(index).type if index >= 0 else None
        if isinstance(found, pa.DictionaryType):
            found = found.value_type
        if found != field.type:
            wrong.append(f"{field.name} ({found or 'missing'}, not {field.type})")
    if wrong:
        return "its columns are not pacha's metric schema: " + ", ".join(wrong)
    return None
