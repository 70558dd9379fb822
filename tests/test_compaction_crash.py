"""A compaction killed with SIGKILL loses nothing, and SDK readers never count a point twice.

A child process runs ``pacha.compact`` and is killed at the worst moments:

* ``between``: the merged part is stored, none of the parts it holds is
  deleted yet (the child stops itself right there, the parent kills it);
* ``mid-write``: the merged part is half sent (local: half copied into its
  temporary file; object stores: the request not complete).

Then ``read_metrics`` still sees every point exactly once, the next
``pacha compact`` (or ``pacha gc``) removes what the killed one left, and
engines reading the bucket without pacha see every point once again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import pacha_sdk as pacha
from tests.curation_stores import Where, engine_counts, where
from tests.test_compaction import log_run, part_keys, rows

pytest_plugins = ["tests.servers"]
__all__ = ["where"]  # the fixture, imported for pytest

WAIT = 60.0
FLUSHES = 24

CHILD = textwrap.dedent(
    """
    import json, sys, time
    import pacha_sdk as pacha
    from pacha_sdk.backends import get_backend
    import pacha_sdk.query.compacting  # binds its own names before the patch below
    from pacha_sdk.storage import compaction

    mode, uri, options, run_id = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]

    def stop_here(message):
        print(message, flush=True)
        time.sleep(600)  # the parent kills us meanwhile

    if mode == "between":
        compaction.delete_parts = lambda *args, **keywords: stop_here("merged part written")
    else:
        backend_class = type(get_backend(uri, storage_options=options))
        original = backend_class.write_new_from

        class HalfThenStop:
            def __init__(self, source):
                self.source, self.reads = source, 0

            def read(self, size=-1):
                self.reads += 1
                if self.reads > 1:
                    stop_here("half written")
                return self.source.read(512)

        def write_half(self, key, source):
            return original(self, key, HalfThenStop(source))

        backend_class.write_new_from = write_half
    pacha.compact([run_id], uri=uri, storage_options=options)
    print("not killed", flush=True)
    """
)


def kill_compaction_at(place: Where, run_id: str, mode: str) -> str:
    """Run ``pacha.compact`` in a child, SIGKILL it at *mode*; return the line it printed."""
    options = json.dumps(place.storage_options)
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, place.uri, options, run_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            line = child.stdout.readline().strip()
            child.kill()  # SIGKILL
            _, err = child.communicate(timeout=WAIT)
        finally:
            if child.poll() is None:
                child.kill()
    assert line, err
    return line


@pytest.mark.subprocess
def test_killed_between_the_merged_write_and_the_deletes(where: Where) -> None:
    run_id = log_run(where, flushes=FLUSHES)
    before = rows(pacha.read_metrics(run_id, **where.options))

    assert kill_compaction_at(where, run_id, "between") == "merged part written"

    assert len(part_keys(where, run_id)) == FLUSHES + 1  # both the merged part and its inputs
    assert rows(pacha.read_metrics(run_id, **where.options)) == before  # never twice
    assert pacha.load_run(run_id, **where.options).summary["loss"] == 1.0 / FLUSHES
    # An engine reading the glob sees both until the next compaction (README: the window).
    assert set(engine_counts(where, run_id).values()) == {2 * len(before)}

    report = pacha.compact([run_id], **where.options)

    assert (report.parts_before, report.parts_after) == (1, 1)
    assert len(report.runs[0].removed) == FLUSHES  # the inputs the killed one left
    assert len(part_keys(where, run_id)) == 1
    assert set(engine_counts(where, run_id).values()) == {len(before)}
    assert rows(pacha.read_metrics(run_id, **where.options)) == before


@pytest.mark.subprocess
def test_gc_removes_what_a_killed_compaction_left(store: str) -> None:
    place = Where("local", store)
    run_id = log_run(place, flushes=FLUSHES)
    kill_compaction_at(place, run_id, "between")

    dry = pacha.gc(uri=store)
    assert len(dry.covered_parts) == FLUSHES
    assert not dry.parts
    done = pacha.gc(uri=store, delete=True)

    assert done.deleted
    assert len(part_keys(place, run_id)) == 1
    assert set(engine_counts(place, run_id).values()) == {2 * FLUSHES}


@pytest.mark.subprocess
def test_killed_halfway_through_the_merged_write(where: Where) -> None:
    run_id = log_run(where, flushes=FLUSHES)
    before = rows(pacha.read_metrics(run_id, **where.options))

    assert kill_compaction_at(where, run_id, "mid-write") == "half written"

    assert len(part_keys(where, run_id)) == FLUSHES  # no merged part: nothing changed
    assert rows(pacha.read_metrics(run_id, **where.options)) == before
    assert set(engine_counts(where, run_id).values()) == {len(before)}
    assert pacha.compact([run_id], **where.options).parts_after == 1
    assert rows(pacha.read_metrics(run_id, **where.options)) == before
