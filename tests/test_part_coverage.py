"""Merged part names and the coverage rule: after any merges and crashes, each point once.

A property test plays random compactions over random parts (some seqs
missing: still in a spool), each merge either completed or killed between
the merged write and the deletes, and checks that the parts readers keep
(:func:`drop_covered`) hold every stored seq exactly once.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pacha_sdk.models import RunId
from pacha_sdk.storage.compaction import Part, plan_writers
from pacha_sdk.storage.coverage import covered_keys, drop_covered, overlapping
from pacha_sdk.storage.layout import (
    PartRange,
    merged_part_key,
    part_key,
    part_range,
    part_writer_and_seq,
)

RUN = RunId("5f0c2a1e-7d1b-4c55-9a0e-3b8e2a6f4c11")
WRITER = "0123456789abcdef"


def test_names_say_what_they_cover() -> None:
    single = part_key(RUN, WRITER, 7)
    merged = merged_part_key(RUN, WRITER, 16, 31)
    assert merged.endswith(f"/part-{WRITER}-000016-000031.parquet")
    assert part_range(single) == PartRange(WRITER, 7, 7)
    assert part_range(merged) == PartRange(WRITER, 16, 31)
    assert part_writer_and_seq(single) == (WRITER, 7)
    assert part_writer_and_seq(merged) is None  # not a single part
    assert part_range(f"metrics/run_id={RUN}/part-1234567-000001.parquet") == PartRange(
        "1234567", 1, 1
    )
    assert part_range(f"metrics/run_id={RUN}/part-old-style-id-000003.parquet") == PartRange(
        "old-style-id", 3, 3
    )  # a dashed writer id of an older name still reads as a single part
    assert part_range(f"metrics/run_id={RUN}/notes.txt") is None
    with pytest.raises(ValueError, match="no '-'"):
        merged_part_key(RUN, "old-style", 0, 1)
    with pytest.raises(ValueError, match="at least two"):
        merged_part_key(RUN, WRITER, 3, 3)


def test_a_covered_part_is_dropped_and_overlaps_are_found() -> None:
    keys = [
        part_key(RUN, WRITER, 0),
        merged_part_key(RUN, WRITER, 0, 15),
        part_key(RUN, WRITER, 16),
        part_key(RUN, "fedcba9876543210", 3),  # another writer: never covered by this one
    ]
    assert covered_keys(keys) == {keys[0]}
    assert drop_covered(keys, str) == keys[1:]
    crossing = [merged_part_key(RUN, WRITER, 0, 15), merged_part_key(RUN, WRITER, 8, 23)]
    assert overlapping(crossing) == [tuple(crossing)]
    assert plan_writers([Part(key, part_range(key)) for key in crossing])[0].groups == []  # type: ignore[arg-type]


@st.composite
def histories(draw: st.DrawFn) -> tuple[set[int], list[str]]:
    """Stored seqs, and the keys the store lists after random merges, some killed midway."""
    count = draw(st.integers(1, 60))
    present = {seq for seq in range(count) if draw(st.booleans()) or seq % 3}
    listed = {part_key(RUN, WRITER, seq) for seq in present}
    for _ in range(draw(st.integers(0, 8))):
        parts = [Part(key, part_range(key)) for key in listed]  # type: ignore[arg-type]
        plans = plan_writers(parts, max_bytes=10**9)
        groups = plans[0].groups if plans else []
        if not groups:
            break
        group = draw(st.sampled_from(groups))
        start = draw(st.integers(0, len(group) - 2))
        end = draw(st.integers(start + 2, len(group)))
        chosen = group[start:end]
        listed.add(merged_part_key(RUN, WRITER, chosen[0].range.first, chosen[-1].range.last))
        if not draw(st.booleans()):  # killed before deleting: the inputs stay listed
            listed -= {part.key for part in chosen}
    return present, sorted(listed)


@given(histories())
def test_readers_keep_each_stored_seq_exactly_once(history: tuple[set[int], list[str]]) -> None:
    present, listed = history
    kept = drop_covered(listed, str)
    seqs: list[int] = []
    for key in kept:
        found = part_range(key)
        assert found is not None
        seqs.extend(range(found.first, found.last + 1))
    assert sorted(seqs) == sorted(present)
    assert overlapping(listed) == []
