"""Writer: encode cost per million points, backlog under sustained logging, buffer memory.

    python benchmarks/bench_writer.py [--seconds 30] [--big-points 50000000]

1. Writer time to turn 1M buffered points into a Parquet part (build,
   encode, write to a local store), against plain pyarrow writing the same
   table with default settings.
2. Sustained logging at full speed for --seconds: the buffer backlog,
   sampled every second, must not grow.
3. Buffer memory per buffered point (tracemalloc), against the four-list floor.
4. A --big-points run logged in a loop: peak RSS stays under a fixed ceiling.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import time
import tracemalloc

import pyarrow as pa
import pyarrow.parquet as pq
from _common import best_of, machine, print_table

import pacha_sdk as pacha
from pacha_sdk.backends import get_backend
from pacha_sdk.storage.parts import build_part, latest_points, part_bytes

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
points, root = int(sys.argv[1]), sys.argv[2]
names = [f"metric_{i}" for i in range(10)]
process = psutil.Process()
baseline = peak = process.memory_info().rss
done = threading.Event()
def sample():
    global peak
    while not done.wait(0.05):
        peak = max(peak, process.memory_info().rss)
threading.Thread(target=sample, daemon=True).start()
start = time.perf_counter()
with pacha.run(uri=root) as run:
    log = run.log_metric
    for step in range(points // 10):
        for name in names:
            log(name, 0.5, step)
elapsed = time.perf_counter() - start
done.set()
print((peak - baseline) / 2**20, elapsed, pacha.read_metrics(run.run_id, uri=root).num_rows)
"""


def peak_rss_mb(points: int, root: str) -> tuple[float, float, int]:
    """Peak RSS above the baseline of a fresh process logging *points* in a loop."""
    out = subprocess.run(
        [sys.executable, "-c", _BIG_RUN, str(points), root],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0]), float(out[1]), int(out[2])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--big-points", type=int, default=50_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    rows = flat_rows(1_000_000)
    with tempfile.TemporaryDirectory() as root:
        ours = best_of(args.repeats, lambda: writer_seconds(rows, root))
        plain = best_of(args.repeats, lambda: plain_pyarrow_seconds(rows, root))
        backlog = sustained(args.seconds, f"{root}/sustained")
        floor_bytes, pacha_bytes = bytes_per_point(1_000_000, f"{root}/memory")
        rss, elapsed, stored = peak_rss_mb(args.big_points, f"{root}/big")
    print(f"\nmachine: {machine()}")
    print_table(
        "Writer and buffer",
        ["what", "measured", "baseline / target"],
        [
            [
                "writer time, 1M points -> part",
                f"{ours:.3f} s",
                f"plain pq.write_table {plain:.3f} s; target <= 0.5 s",
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
                f"peak RSS above baseline, {args.big_points:,} points",
                f"{rss:.0f} MiB",
                f"ceiling 256 MiB; {args.big_points / elapsed / 1e6:.2f} M points/s; "
                f"{stored:,} stored",
            ],
        ],
    )


if __name__ == "__main__":
    main()
