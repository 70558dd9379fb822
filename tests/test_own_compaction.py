"""A live run's writer merges its own parts: tiered as it goes, into one at its end.

Readers beside it see each point once and miss none (a reader thread
checks every read: the steps it sees are exactly ``0..n-1``); a run killed
in the middle of one of its own merges loses nothing, its duplicates are
ignored by readers and removed by ``pacha compact``, and it resumes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from typing import TYPE_CHECKING

import pytest

import pacha_sdk as pacha
from pacha_sdk.backends import get_backend
from pacha_sdk.models import RunId
from pacha_sdk.storage.compaction import FAN_IN
from pacha_sdk.storage.layout import part_key, part_range
from pacha_sdk.storage.own_compaction import OwnCompaction
from pacha_sdk.storage.parts import build_part, part_bytes
from tests.conftest import wait_until
from tests.curation_stores import Where, engine_counts, where
from tests.test_compaction import part_keys

if TYPE_CHECKING:
    from pacha_sdk.backends import Backend

pytest_plugins = ["tests.servers"]
__all__ = ["where"]  # the fixture, imported for pytest

WAIT = 60.0


def steps_seen(place: Where, run_id: str) -> list[int]:
    return sorted(pacha.read_metrics(run_id, **place.options).column("step").to_pylist())


def test_a_long_run_keeps_few_parts_and_ends_with_one(where: Where) -> None:
    flushes = 300 if where.kind == "local" else 80
    most = 0
    with pacha.run(**where.options, system_metrics=False) as run:
        run_id = str(run.run_id)
        for step in range(flushes):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
            run.flush()
            if step % 8 == 0:
                most = max(most, len(part_keys(where, run_id)))
    # 300 flushes make 3 levels (8**3 > 300): at most 7 per level, and a merge under way.
    assert most <= 3 * (FAN_IN - 1) + FAN_IN + 1
    [merged] = part_keys(where, run_id)
    found = part_range(merged)
    assert found is not None
    assert (found.first, found.last) == (0, flushes - 1)
    assert steps_seen(where, run_id) == list(range(flushes))
    assert set(engine_counts(where, run_id).values()) == {flushes}
    assert pacha.load_run(run_id, **where.options).summary["loss"] == 1.0 / flushes


def test_a_reader_beside_the_merging_writer_sees_each_point_once(store: str) -> None:
    place = Where("local", store)
    problems: list[str] = []
    reads = 0
    stop = threading.Event()
    with pacha.run(uri=store, system_metrics=False) as run:
        run_id = str(run.run_id)

        def read_in_a_loop() -> None:
            nonlocal reads
            while not stop.is_set():
                try:
                    seen = steps_seen(place, run_id)
                except Exception as error:  # the test fails on it, below
                    problems.append(repr(error))
                    return
                reads += 1
                if seen != list(range(len(seen))):  # a point twice, or one missing
                    problems.append(f"read {reads}: {len(seen)} points, not 0..n-1")

        for step in range(40):
            run.log_metric("loss", float(step), step=step)
            run.flush()
        reader = threading.Thread(target=read_in_a_loop)
        reader.start()
        try:
            for step in range(40, 400):
                run.log_metric("loss", float(step), step=step)
                run.flush()
        finally:
            stop.set()
            reader.join()
    assert problems == []
    assert reads > 1
    assert steps_seen(place, run_id) == list(range(400))


def stored_parts(backend: Backend, run_id: RunId, seqs: range) -> list[str]:
    keys = []
    for seq in seqs:
        key = part_key(run_id, "0123456789abcdef", seq)
        backend.write_new(key, part_bytes(build_part(run_id, 0, ["loss", float(seq), seq, 0])))
        keys.append(key)
    return keys


def test_tiers_then_one_part_and_a_final_merge_without_time_is_skipped(store: str) -> None:
    backend = get_backend(store)
    run_id = RunId.new()
    compaction = OwnCompaction(backend, run_id, fan_in=4)
    for key in stored_parts(backend, run_id, range(16)):
        compaction.stored(key, 600)
    wait_until(lambda: compaction.parts == 1, message="16 parts -> 4 -> 1")
    for key in stored_parts(backend, run_id, range(16, 19)):
        compaction.stored(key, 600)
    wait_until(lambda: len(backend.list(f"metrics/run_id={run_id}")) == 4)

    assert compaction.finish(0.0) is False  # no time left: the final merge is skipped
    keys = backend.list(f"metrics/run_id={run_id}")
    spans = [(p.first, p.last) for p in map(part_range, keys) if p]
    assert spans == [(0, 15), (16, 16), (17, 17), (18, 18)]
    import pyarrow.dataset as ds

    files = [f"{store}/{key}" for key in keys]
    assert sorted(ds.dataset(files).to_table().column("step").to_pylist()) == list(range(19))


CHILD = textwrap.dedent(
    """
    import json, sys, time
    import pacha_sdk as pacha
    from pacha_sdk.storage import compaction

    uri, options = sys.argv[1], json.loads(sys.argv[2])
    original = compaction.delete_parts

    def delete_then_stop(backend, keys, **keywords):
        if len(keys) > 1:  # a merge of 16: written, its inputs not deleted yet
            print("merged part written", flush=True)
            time.sleep(600)
        return original(backend, keys, **keywords)

    compaction.delete_parts = delete_then_stop
    with pacha.run(uri=uri, storage_options=options, flush_interval=0.2,
                   system_metrics=False) as run:
        print(run.run_id, flush=True)
        for step in range(100_000):
            run.log_metric("loss", float(step), step=step)
            run.flush()
    """
)


@pytest.mark.subprocess
def test_a_run_killed_during_its_own_merge_loses_nothing_and_resumes(where: Where) -> None:
    options = json.dumps(where.storage_options)
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, where.uri, options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            run_id = child.stdout.readline().strip()
            line = child.stdout.readline().strip()
            child.kill()  # SIGKILL, the merged part stored and its inputs still there
            _, err = child.communicate(timeout=WAIT)
        finally:
            if child.poll() is None:
                child.kill()
    assert line == "merged part written", err

    seen = steps_seen(where, run_id)
    assert seen == list(range(len(seen)))
    assert len(seen) >= FAN_IN
    assert max(engine_counts(where, run_id).values()) > len(seen)  # the glob: duplicates
    wait_until(lambda: pacha.load_run(run_id, **where.options).is_stale, timeout=WAIT)

    report = pacha.compact([run_id], **where.options)

    assert report.runs[0].removed
    assert report.parts_after == 1
    assert set(engine_counts(where, run_id).values()) == {len(seen)}
    with pacha.run(**where.options, run_id=run_id, system_metrics=False) as resumed:
        resumed.log_metric("loss", -1.0)  # the automatic step goes on after the last stored
    assert steps_seen(where, run_id) == list(range(len(seen) + 1))
