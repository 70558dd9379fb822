"""M4 thinning (pacha_sdk.ui._thin.m4_rows): what a chart must never lose."""

from __future__ import annotations

import math

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from pacha_sdk.ui._thin import m4_rows

values = st.floats(allow_nan=True, allow_infinity=True, width=64)


def table(steps: list[int], points: list[float]) -> pa.Table:
    return pa.table(
        {
            "step": pa.array(steps, pa.int64()),
            "value": pa.array(points, pa.float64()),
            "timestamp": pa.array([s * 1_000_000 for s in steps], pa.timestamp("us", tz="UTC")),
        }
    )


@settings(max_examples=200, deadline=None)
@given(
    points=st.lists(values, min_size=1, max_size=400),
    buckets=st.integers(min_value=1, max_value=50),
    gap=st.integers(min_value=1, max_value=1000),
)
def test_m4_keeps_ends_and_every_buckets_extremes(
    points: list[float], buckets: int, gap: int
) -> None:
    steps = [i * gap for i in range(len(points))]
    low, high = steps[0], steps[-1]
    kept = m4_rows(table(steps, points), low, high, buckets).to_pydict()
    assert kept["step"] == sorted(set(kept["step"]))  # in order, each once
    assert len(kept["step"]) <= max(4, 4 * buckets)
    assert kept["step"][0] == low
    assert kept["step"][-1] == high
    scale = buckets / (high - low + 1)
    for bucket in range(buckets):
        inside = [
            (s, v)
            for s, v in zip(steps, points)
            if int((s - low) * scale) == bucket and math.isfinite(v)
        ]
        if not inside:
            continue
        shown = {
            s: v for s, v in zip(kept["step"], kept["value"]) if int((s - low) * scale) == bucket
        }
        assert min(v for _, v in inside) in shown.values()
        assert max(v for _, v in inside) in shown.values()
