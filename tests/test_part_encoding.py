"""How the writer turns buffered points into part files: order, latest points, part size."""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

import pacha_sdk as pacha
from pacha_sdk.storage.parts import build_part, encode_part, latest_points, part_bytes
from pacha_sdk.storage.schema import METRIC_SCHEMA

MAX_STEP = 2**63 - 1
T0 = 1_790_000_000_000_000_000

points = st.lists(
    st.tuples(
        st.sampled_from(["loss", "acc", "lr", "é/名"]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.one_of(st.integers(0, 20), st.just(MAX_STEP)),
    ),
    max_size=200,
)
"""Points in logging order: few names, repeated and decreasing steps, NaN and infinities."""

rising = st.lists(
    st.tuples(st.sampled_from(["loss", "acc", "lr"]), st.integers(0, 3)), max_size=200
)
"""Names and step increments: each name's steps never go back (the common case)."""


def flat(logged: list[tuple[str, float, int]]) -> list[Any]:
    rows: list[Any] = []
    for index, (name, value, step) in enumerate(logged):
        rows.extend((name, value, step, T0 + index * 1_000))
    return rows


def bits(value: float) -> bytes:
    """A float as its bytes, so NaN equals NaN in comparisons."""
    return struct.pack("<d", value)


def expected_rows(logged: list[tuple[str, float, int]]) -> list[tuple[str, int, bytes, int]]:
    """Clustered by name in first-appearance order, then by step, ties in logging order."""
    first_seen: dict[str, int] = {}
    for name, _, _ in logged:
        first_seen.setdefault(name, len(first_seen))
    order = sorted(range(len(logged)), key=lambda i: (first_seen[logged[i][0]], logged[i][2], i))
    return [(logged[i][0], logged[i][2], bits(logged[i][1]), T0 // 1000 + i) for i in order]


def stored_rows(logged: list[tuple[str, float, int]]) -> list[tuple[str, int, bytes, int]]:
    part = build_part("run", 3, flat(logged))
    assert part.schema == METRIC_SCHEMA
    assert set(part.column("run_id").to_pylist()) <= {"run"}
    assert set(part.column("rank").to_pylist()) <= {3}
    stamps = part.column("timestamp").cast("int64").to_pylist()
    return [
        (name, step, bits(value), stamp)
        for name, step, value, stamp in zip(
            part.column("name").to_pylist(),
            part.column("step").to_pylist(),
            part.column("value").to_pylist(),
            stamps,
        )
    ]


@settings(max_examples=200, deadline=None)
@given(points)
def test_a_part_is_clustered_by_name_then_step_with_ties_in_logging_order(
    logged: list[tuple[str, float, int]],
) -> None:
    assert stored_rows(logged) == expected_rows(logged)


@settings(max_examples=100, deadline=None)
@given(rising)
def test_steps_that_never_go_back_keep_the_same_order(increments: list[tuple[str, int]]) -> None:
    last: dict[str, int] = {}
    logged = []
    for name, increment in increments:
        last[name] = last.get(name, 0) + increment
        logged.append((name, float(last[name]), last[name]))
    assert stored_rows(logged) == expected_rows(logged)


@settings(max_examples=100, deadline=None)
@given(points)
def test_latest_points_are_each_names_highest_step_logged_last(
    logged: list[tuple[str, float, int]],
) -> None:
    expected: dict[str, tuple[int, bytes]] = {}
    for name, value, step in logged:
        if name not in expected or step >= expected[name][0]:
            expected[name] = (step, bits(value))
    latest = latest_points(build_part("run", 0, flat(logged)))
    assert {name: (step, bits(value)) for name, (step, value) in latest.items()} == expected


def test_a_part_round_trips_through_parquet_with_the_metric_schema() -> None:
    logged = [("loss", math.nan, 2), ("acc", math.inf, MAX_STEP), ("loss", 0.5, 1)]
    table = pq.read_table(pa.BufferReader(part_bytes(build_part("run", 0, flat(logged)))))
    assert table.schema == METRIC_SCHEMA
    assert table.column("name").to_pylist() == ["loss", "loss", "acc"]
    assert table.column("step").to_pylist() == [1, 2, MAX_STEP]


@settings(max_examples=100, deadline=None)
@given(points)
def test_the_writers_encoding_reads_back_as_the_built_part(
    logged: list[tuple[str, float, int]],
) -> None:
    data, latest = encode_part("run", 1, flat(logged))
    table = pq.read_table(pa.BufferReader(data))
    built = build_part("run", 1, flat(logged))
    assert table.schema == METRIC_SCHEMA
    assert repr(table.to_pylist()) == repr(built.to_pylist())  # repr: NaN equals NaN
    assert repr(latest) == repr(latest_points(built))


def test_a_flush_writes_parts_of_at_most_flush_rows_points(store: str) -> None:
    # compact_parts=False: what the flushes wrote, before the end of the run merges it
    with pacha.run(uri=store, flush_rows=1_000, flush_interval=3600, compact_parts=False) as run:
        for step in range(3_500):
            run.log_metric("loss", float(step), step)
    parts = sorted((Path(store) / "metrics" / f"run_id={run.run_id}").glob("part-*.parquet"))
    sizes = [pq.ParquetFile(part).metadata.num_rows for part in parts]
    assert sum(sizes) == 3_500
    assert max(sizes) <= 1_000
    table = pacha.read_metrics(run.run_id, uri=store)
    assert table.column("step").to_pylist() == list(range(3_500))
    assert table.column("value").to_pylist() == [float(step) for step in range(3_500)]
