"""``pacha.compact()``: runs that died or predate compaction end with one part per writer.

Runs here are written with ``compact_parts=False`` (one file per flush, as
SDKs before compaction wrote them) and then compacted, on a local folder,
SeaweedFS (S3) and fake-gcs-server. What readers see is compared before
and after: every point once, through ``read_metrics`` and through the
engines that read the bucket without pacha.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

import pytest

import pacha_sdk as pacha
from pacha_sdk.models import RunId
from pacha_sdk.storage.layout import metrics_prefix, part_range
from pacha_sdk.storage.spool import Spool
from tests.conftest import wait_until
from tests.curation_stores import Where, engine_counts, where

if TYPE_CHECKING:
    from pathlib import Path

    import pyarrow as pa

pytest_plugins = ["tests.servers"]
__all__ = ["where"]  # the fixture, imported for pytest

FLUSHES = 40


def log_run(place: Where, flushes: int = FLUSHES, **keywords: Any) -> str:
    """A finished run of *flushes* parts, two metrics per flush, not compacted."""
    keywords.setdefault("compact_parts", False)
    with pacha.run(**place.options, system_metrics=False, **keywords) as run:
        for step in range(flushes):
            run.log_metrics({"loss": 1.0 / (step + 1), "acc": step / flushes}, step=step)
            run.flush()
    return str(run.run_id)


def part_keys(place: Where, run_id: str) -> list[str]:
    """The run's part files as the store lists them (covered ones included)."""
    return sorted(
        key for key in place.backend().list(metrics_prefix(RunId(run_id))) if "part-" in key
    )


def rows(table: pa.Table) -> list[tuple[Any, ...]]:
    """The table's points, sorted, for comparisons that ignore row order."""
    columns = ["run_id", "name", "step", "value", "timestamp", "rank"]
    return sorted(zip(*(table.column(c).to_pylist() for c in columns)))


def test_compact_leaves_one_part_with_every_point(where: Where) -> None:
    run_id = log_run(where)
    before = rows(pacha.read_metrics(run_id, **where.options))
    assert len(part_keys(where, run_id)) == FLUSHES

    report = pacha.compact(**where.options)

    assert isinstance(report, pacha.CompactReport)
    [done] = report.runs
    assert (done.run_id, done.parts_before, done.parts_after) == (run_id, FLUSHES, 1)
    assert len(done.removed) == FLUSHES
    assert not done.left
    assert not done.unreadable
    [merged] = part_keys(where, run_id)
    assert merged == done.merged[0]
    found = part_range(merged)
    assert found is not None
    assert (found.first, found.last) == (0, FLUSHES - 1)
    assert rows(pacha.read_metrics(run_id, **where.options)) == before
    assert set(engine_counts(where, run_id).values()) == {2 * FLUSHES}
    assert pacha.load_run(run_id, **where.options).summary["loss"] == 1.0 / FLUSHES

    again = pacha.compact([run_id], **where.options)  # nothing left to do
    assert (again.parts_before, again.parts_after, again.runs[0].merged) == (1, 1, [])


def test_a_part_still_in_a_spool_is_a_gap_never_merged_across(store: str, tmp_path: Path) -> None:
    place = Where("local", store)
    run_id = log_run(place, flushes=12)
    keys = part_keys(place, run_id)
    writer = part_range(keys[0])
    assert writer is not None
    # Parts 5 and 6 have not reached the store yet: they wait in the writer's spool.
    spool = Spool(str(tmp_path / "spool"), uri=place.backend().uri, run_id=run_id,
                  writer_id=writer.writer)  # fmt: skip
    for key in keys[5:7]:
        spool.put(key, (tmp_path / "store" / key).read_bytes())
        os.remove(tmp_path / "store" / key)

    done = pacha.compact(**place.options).runs[0]

    spans = [(r.first, r.last) for r in map(part_range, part_keys(place, run_id)) if r]
    assert spans == [(0, 4), (7, 11)]
    assert done.parts_after == 2
    pacha.sync(spool.path)  # the store answers again: the spooled parts arrive
    assert pacha.read_metrics(run_id, uri=store).num_rows == 2 * 12
    assert pacha.compact(uri=store).runs[0].parts_after == 1
    assert pacha.read_metrics(run_id, uri=store).num_rows == 2 * 12


def test_an_unreadable_part_is_left_in_place_and_named(store: str, tmp_path: Path) -> None:
    place = Where("local", store)
    run_id = log_run(place, flushes=10)
    bad = part_keys(place, run_id)[4]
    (tmp_path / "store" / bad).write_bytes(b"not parquet at all")

    report = pacha.compact(uri=store)

    [problem] = report.unreadable
    assert bad in problem
    spans = [(r.first, r.last) for r in map(part_range, part_keys(place, run_id)) if r]
    assert spans == [(0, 3), (4, 4), (5, 9)]
    assert (tmp_path / "store" / bad).read_bytes() == b"not parquet at all"
    with pytest.warns(UserWarning, match="skipping"):
        table = pacha.read_metrics(uri=store)  # every run: the bad part is skipped
    assert table.num_rows == 2 * 9


def test_runs_in_the_trash_and_running_runs_are_skipped(store: str) -> None:
    place = Where("local", store)
    deleted = log_run(place, flushes=5)
    pacha.delete_run(deleted, uri=store)
    with pacha.run(uri=store, compact_parts=False, system_metrics=False) as live:
        for step in range(5):
            live.log_metric("loss", float(step), step=step)
            live.flush()
        report = pacha.compact([deleted, str(live.run_id)], uri=store)
        assert report.skipped[deleted] == "in the trash"
        assert report.skipped[str(live.run_id)].startswith("running")
        assert len(part_keys(place, str(live.run_id))) == 5
    pacha.restore_run(deleted, uri=store)
    assert len(part_keys(place, deleted)) == 5
    assert pacha.read_metrics(deleted, uri=store).num_rows == 5 * 2


def test_an_unknown_run_is_refused_and_nothing_changes(store: str) -> None:
    place = Where("local", store)
    run_id = log_run(place, flushes=3)
    with pytest.raises(pacha.RunNotFoundError):
        pacha.compact([run_id, "00000000-0000-4000-8000-000000000000"], uri=store)
    assert len(part_keys(place, run_id)) == 3


def test_a_resumed_run_goes_on_from_its_compacted_parts(store: str) -> None:
    place = Where("local", store)
    run_id = log_run(place, flushes=20)
    pacha.compact(uri=store)
    with pacha.run(uri=store, run_id=run_id, system_metrics=False, compact_parts=False) as again:
        again.log_metric("loss", 0.01)  # automatic step: after the last stored one
    table = pacha.read_metrics(run_id, uri=store, names="loss")
    assert sorted(table.column("step").to_pylist()) == [*range(20), 20]
    assert pacha.load_run(run_id, uri=store).summary["loss"] == 0.01


def test_readers_count_every_point_once_while_a_compaction_runs(store: str) -> None:
    place = Where("local", store)
    run_ids = [log_run(place, flushes=150) for _ in range(3)]
    counts: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def read_in_a_loop() -> None:
        while not stop.is_set():
            try:
                counts.append(pacha.read_metrics(run_ids, uri=store).num_rows)
            except Exception as error:  # the test fails on it, below
                errors.append(error.__cause__ or error)
                return

    reader = threading.Thread(target=read_in_a_loop)
    reader.start()
    try:
        wait_until(lambda: counts or errors, message="the reader never read")
        for run_id in run_ids:  # one after the other, the reader reading throughout
            assert pacha.compact([run_id], uri=store).parts_after == 1
        read_so_far = len(counts)
        wait_until(lambda: len(counts) > read_so_far or errors, message="no read after compacting")
    finally:
        stop.set()
        reader.join()
    assert errors == []
    assert len(counts) > 1
    assert set(counts) == {3 * 2 * 150}
