"""Writer: encode cost, end-to-end loop cost, backlog, buffer memory, peak RSS.

    python benchmarks/bench_writer.py [--seconds 30] [--big-points 50000000]

1. Writer time to turn 1M buffered points into a Parquet part (build,
   encode, write to a local store), against plain pyarrow writing the same
   table with default settings.
2. End to end: a loop logging --loop-points flat out while the writer
   flushes at default settings, against the four-list floor; beside it the
   hot path alone (flushing switched off). Each repeat times the floor and
   both loops back to back, and the figure is the median of the repeats'
   ratios, so load from other processes hits both sides of a ratio alike.
   The same two figures on the pure-Python path follow, for reference.
3. Sustained logging at full speed for --seconds: the buffer backlog,
   sampled every second, must not grow.
4. Buffer memory per buffered point (tracemalloc), against the four-list floor.
5. A --big-points run logged in a loop at default settings, in a fresh
   process: peak RSS above the process's baseline, taken once the run has
   started and stored its first point (pyarrow loaded: a fixed cost, shown
   apart), must stay within 64 MiB; then shorter runs with other
   ``flush_rows`` to show how the ceiling scales with it.
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc

import pyarrow as pa
import pyarrow.parquet as pq
from _common import (
    best_of,
    buffer_path,
    list_append_floor,
    machine,
    print_table,
    pure_python_path,
)

import pacha_sdk as pacha
from pacha_sdk.backends import get_backend
from pacha_sdk.storage.parts import build_part, latest_points, part_bytes
from pacha_sdk.tracking._options import DEFAULT_FLUSH_ROWS

NAMES = [f"metric_{i}" for i in range(10)]
RUN_ID = "0ec1bce8-6217-49a2-90c9-00a8a962b2c5"


def flat_rows(points: int) -> list[object]:
    rows: list[object] = []
    start = time.time_ns()
    for index in range(points):
        rows.extend((NAMES[index % 10], 0.5 + index * 1e-6, index // 10, start + index * 300))
    return rows


def writer_seconds(rows: list[object], root: str) -> float:
    backend = get_backend(root)
    start = time.perf_counter()
    part = build_part(RUN_ID, 0, rows)
    latest_points(part)
    backend.write_new(
        f"metrics/run_id={RUN_ID}/part-bench-{time.time_ns()}.parquet", part_bytes(part)
    )
    return time.perf_counter() - start


def plain_pyarrow_seconds(rows: list[object], root: str) -> float:
    start = time.perf_counter()
    table = pa.table(
        {
            "name": pa.array(rows[0::4], pa.string()),
            "value": pa.array(rows[1::4], pa.float64()),
            "step": pa.array(rows[2::4], pa.int64()),
            "timestamp": pa.array(rows[3::4], pa.int64()),
        }
    )
    pq.write_table(table, f"{root}/plain-{time.time_ns()}.parquet")
    return time.perf_counter() - start


def floor_seconds(points: int) -> float:
    """The floor: four list appends in a function per point (benchmarks/_common.py)."""
    return list_append_floor(points, NAMES)


def loop_seconds(points: int, root: str, **options: int) -> float:
    """Seconds a loop logging *points* takes (the run's start and end are not timed)."""
    with pacha.run(uri=root, **options) as run:  # type: ignore[arg-type]
        log = run.log_metric
        start = time.perf_counter()
        for step in range(points // 10):
            for name in NAMES:
                log(name, 0.5, step)
        elapsed = time.perf_counter() - start
    return elapsed


def end_to_end(points: int, repeats: int, root: str) -> tuple[float, float, float]:
    """Median ratios to the floor: (writer flushing at defaults, hot path alone), floor µs."""
    flushing: list[float] = []
    hot: list[float] = []
    floors: list[float] = []
    for repeat in range(repeats):
        gc.collect()
        floor = floor_seconds(points)
        gc.collect()
        hot.append(
            loop_seconds(points, f"{root}/hot-{repeat}", flush_interval=3600, flush_rows=10**9)
            / floor
        )
        gc.collect()
        flushing.append(loop_seconds(points, f"{root}/e2e-{repeat}") / floor)
        floors.append(floor / points * 1e6)
    return statistics.median(flushing), statistics.median(hot), statistics.median(floors)


def sustained(seconds: float, root: str) -> list[int]:
    """Log at full speed for *seconds*; return the backlog sampled every second."""
    backlog: list[int] = []
    with pacha.run(uri=root, flush_interval=1.0) as run:
        stop = time.monotonic() + seconds
        next_sample = time.monotonic() + 1.0
        step = 0
        log = run.log_metric
        while time.monotonic() < stop:
            for _ in range(1000):
                for name in NAMES:
                    log(name, 0.5, step)
                step += 1
            if time.monotonic() >= next_sample:
                backlog.append(len(run._buffer))
                next_sample += 1.0
    return backlog


def bytes_per_point(points: int, root: str) -> tuple[float, float]:
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    floor: tuple[list[object], ...] = ([], [], [], [])
    for index in range(points):
        floor[0].append(NAMES[index % 10])
        floor[1].append(0.5 + index)
        floor[2].append(index // 10)
        floor[3].append(time.time_ns())
    floor_bytes = (tracemalloc.get_traced_memory()[0] - before) / points
    del floor
    with pacha.run(uri=root, flush_interval=3600, flush_rows=10**9) as run:
        before = tracemalloc.get_traced_memory()[0]
        for index in range(points):
            run.log_metric(NAMES[index % 10], 0.5 + index, index // 10)
        pacha_bytes = (tracemalloc.get_traced_memory()[0] - before) / points
    tracemalloc.stop()
    return floor_bytes, pacha_bytes


_BIG_RUN = """
import sys, threading, time, psutil
import pacha_sdk as pacha
points, root, flush_rows = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
names = [f"metric_{i}" for i in range(10)]
process = psutil.Process()
bare = process.memory_info().rss
done = threading.Event()
with pacha.run(uri=root, flush_rows=flush_rows) as run:
    run.log_metric("warm", 1.0)
    run.flush()  # pyarrow loaded, first part stored: the process's baseline from here
    baseline = peak = process.memory_info().rss
    def sample():
        global peak
        while not done.wait(0.02):
            peak = max(peak, process.memory_info().rss)
    threading.Thread(target=sample, daemon=True).start()
    start = time.perf_counter()
    log = run.log_metric
    for step in range(points // 10):
        for name in names:
            log(name, 0.5, step)
    elapsed = time.perf_counter() - start
done.set()
peak = max(peak, process.memory_info().rss)
stored = pacha.read_metrics(run.run_id, uri=root, names=names).num_rows
print((peak - baseline) / 2**20, (baseline - bare) / 2**20, elapsed, stored)
"""


def peak_rss_mb(points: int, root: str, flush_rows: int) -> tuple[float, float, float, int]:
    """A fresh process logging *points* in a loop: peak RSS above its baseline, fixed cost (MiB),
    seconds, points stored."""
    out = subprocess.run(
        [sys.executable, "-c", _BIG_RUN, str(points), root, str(flush_rows)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0]), float(out[1]), float(out[2]), int(out[3])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--big-points", type=int, default=50_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop-points", type=int, default=2_000_000)
    parser.add_argument("--loop-repeats", type=int, default=7)
    parser.add_argument("--variant-points", type=int, default=10_000_000)
    parser.add_argument(
        "--flush-rows", default="10000,1000000", help="other flush_rows for the RSS runs"
    )
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    rows = flat_rows(1_000_000)
    with tempfile.TemporaryDirectory() as root:
        ours = best_of(args.repeats, lambda: writer_seconds(rows, root))
        plain = best_of(args.repeats, lambda: plain_pyarrow_seconds(rows, root))
        rows.clear()  # memory back before the loops
        flushing, hot, floor_us = end_to_end(args.loop_points, args.loop_repeats, f"{root}/loop")
        with pure_python_path():
            pure_flushing, pure_hot, _ = end_to_end(
                args.loop_points, args.loop_repeats, f"{root}/pure-loop"
            )
        backlog = sustained(args.seconds, f"{root}/sustained")
        floor_bytes, pacha_bytes = bytes_per_point(1_000_000, f"{root}/memory")
        big = peak_rss_mb(args.big_points, f"{root}/big", DEFAULT_FLUSH_ROWS)
        rss, fixed, elapsed, stored = big
        variants = [
            (flush_rows, peak_rss_mb(args.variant_points, f"{root}/rows-{flush_rows}", flush_rows))
            for flush_rows in (int(value) for value in args.flush_rows.split(",") if value)
        ]
    print(f"\nmachine: {machine()}")
    print(f"buffer: {buffer_path()}")
    table = [
        [
            "writer time, 1M points -> part",
            f"{ours:.3f} s",
            f"plain pq.write_table {plain:.3f} s; target <= 0.5 s",
        ],
        [
            f"loop logging {args.loop_points:,} points, writer flushing at defaults",
            f"**{flushing:.2f}x** the floor ({floor_us:.3f} µs/point)",
            f"target <= 2.0x; median of {args.loop_repeats}",
        ],
        [
            "the same loop, flushing off (hot path alone)",
            f"**{hot:.2f}x** the floor",
            "at or below 1.4-1.9x",
        ],
        [
            "both loops on the pure-Python path (PACHA_SDK_PURE_PYTHON=1)",
            f"{pure_flushing:.2f}x flushing, {pure_hot:.2f}x hot path alone",
            "for reference: no C extension",
        ],
        [
            f"backlog while logging flat out for {args.seconds:.0f} s (points, per second)",
            " ".join(f"{b // 1000}k" for b in backlog),
            "no growth",
        ],
        [
            "buffer memory per point",
            f"{pacha_bytes:.0f} B",
            f"4-list floor {floor_bytes:.0f} B; target <= 150 B",
        ],
        [
            f"peak RSS above baseline, {args.big_points:,} points, defaults",
            f"**{rss:.0f} MiB** (fixed cost before it: {fixed:.0f} MiB)",
            f"ceiling 64 MiB: {'met' if rss <= 64 else 'NOT met'}; "
            f"{args.big_points / elapsed / 1e6:.2f} M points/s; {stored:,} stored",
        ],
    ]
    for flush_rows, (v_rss, _, v_elapsed, v_stored) in variants:
        table.append(
            [
                f"peak RSS above baseline, {args.variant_points:,} points, "
                f"flush_rows={flush_rows:,}",
                f"{v_rss:.0f} MiB",
                f"{args.variant_points / v_elapsed / 1e6:.2f} M points/s; {v_stored:,} stored",
            ]
        )
    print_table("Writer and buffer", ["what", "measured", "baseline / target"], table)


if __name__ == "__main__":
    main()
