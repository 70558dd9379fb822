"""Metric rows to Parquet part files.

The hot path extends a flat list with ``name, value, step, time_ns`` for
each point; this module turns a batch of them into one Arrow table with
:data:`METRIC_SCHEMA`, clustered by name and sorted by step (stable, so ties
keep logging order) to make row-group statistics prune by name, and finds
each metric's latest point.
Everything is vectorised: the writer spends well under a second per
million points.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pacha_sdk.storage.schema import METRIC_SCHEMA

__all__ = ["Latest", "Rows", "build_part", "latest_points", "part_bytes"]

Rows = list[Any]
"""Buffered points, flat: ``name, value, step, time_ns`` for each point in turn."""

Latest = dict[str, tuple[int, float]]
"""Per metric name, the ``(step, value)`` of its latest point."""

ROW_GROUP_SIZE = 128 * 1024


def build_part(run_id: str, rank: int, rows: Rows) -> pa.Table:
    """Return flat *rows* as a table with :data:`METRIC_SCHEMA`, clustered by name, then step.

    Names are ordered by first appearance in the batch (sorting dictionary
    codes is cheaper than sorting strings and prunes row groups as well).
    Only the four conversions from Python objects hold the GIL; the rest
    runs in Arrow with the GIL released, so the training loop goes on.
    """
    count = len(rows) // 4
    names = pa.array(rows[0::4], pa.string()).dictionary_encode()
    steps = pa.array(rows[2::4], pa.int64())
    values = pa.array(rows[1::4], pa.float64())
    stamps = pa.array(rows[3::4], pa.int64())
    order = _cluster_order(names.indices, steps)
    micros = pc.divide(stamps.take(order), 1000)
    return pa.table(
        [
            pa.repeat(pa.scalar(run_id, pa.string()), count),
            names.dictionary.take(names.indices.take(order)),
            steps.take(order),
            values.take(order),
            micros.cast(pa.timestamp("us", tz="UTC")),
            pa.repeat(pa.scalar(rank, pa.int32()), count),
        ],
        schema=METRIC_SCHEMA,
    )


def _cluster_order(codes: pa.Array, steps: pa.Array) -> pa.Array:
    """Row order by name code, then step; ties (and equal steps) keep logging order.

    Loops nearly always log each name's steps in increasing order, so a
    stable sort by code alone (a counting sort over a few distinct codes)
    usually gives the order already; only when some name's steps go back
    does the batch get the full two-key sort.
    """
    by_code = pc.array_sort_indices(codes)
    if len(by_code) < 2:
        return by_code
    sorted_codes = codes.take(by_code)
    sorted_steps = steps.take(by_code)
    same_name = pc.equal(sorted_codes.slice(1), sorted_codes.slice(0, len(by_code) - 1))
    back = pc.less(sorted_steps.slice(1), sorted_steps.slice(0, len(by_code) - 1))
    if not pc.any(pc.and_(same_name, back)).as_py():
        return by_code
    return pc.sort_indices(
        pa.table({"code": codes, "step": steps}),
        sort_keys=[("code", "ascending"), ("step", "ascending")],
    )


def latest_points(part: pa.Table) -> Latest:
    """The latest point of each name in a part built by :func:`build_part`.

    The part is clustered by name and sorted by step with ties in logging
    order, so the last row of each name's run is its highest step, logged last.
    """
    if part.num_rows == 0:
        return {}
    names = part.column("name").combine_chunks()
    count = len(names)
    changes = pc.not_equal(names.slice(1), names.slice(0, count - 1))
    last_rows = pa.concat_arrays([pc.indices_nonzero(changes), pa.array([count - 1], pa.uint64())])
    picked = part.select(["name", "step", "value"]).take(last_rows).to_pydict()
    return {
        name: (step, value)
        for name, step, value in zip(picked["name"], picked["step"], picked["value"])
    }


def part_bytes(part: pa.Table) -> bytes:
    """Serialise a part as Parquet in memory.

    zstd throughout; names and the run id dictionary-encoded; steps and
    timestamps (nearly monotonic within a name) delta-encoded; values byte-
    stream-split, which lets zstd find the shared exponent bytes of floats.
    Together about 4x smaller than plain zstd and faster to write.
    """
    sink = pa.BufferOutputStream()
    pq.write_table(
        part,
        sink,
        compression="zstd",
        row_group_size=ROW_GROUP_SIZE,
        use_dictionary=["run_id", "name"],
        column_encoding={
            "step": "DELTA_BINARY_PACKED",
            "timestamp": "DELTA_BINARY_PACKED",
            "value": "BYTE_STREAM_SPLIT",
        },
    )
    data: bytes = sink.getvalue().to_pybytes()
    return data
