"""Read-back: read_metrics against a raw pyarrow.dataset read of the same files.

    python benchmarks/bench_read.py [--points 10000000]

One run with --points points (10 names); then, best of --repeats:
read_metrics(run_id) vs pyarrow.dataset over the run's part files, and
read_metrics(names=["metric_0"]) vs the full read (row-group pruning: each
part is clustered by name, so one name in ten reads about a tenth).
"""

from __future__ import annotations

import argparse
import glob
import logging
import tempfile

import pyarrow.dataset as ds
from _common import best_of, machine, print_table, timed

import pacha_sdk as pacha

NAMES = [f"metric_{i}" for i in range(10)]


def fill(root: str, points: int) -> str:
    with pacha.run(uri=root, flush_rows=1_000_000) as run:
        values = dict.fromkeys(NAMES, 0.5)
        for step in range(points // 10):
            run.log_metrics(values, step=step)
    return str(run.run_id)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as root:
        run_id = fill(root, args.points)
        files = sorted(glob.glob(f"{root}/metrics/run_id={run_id}/*.parquet"))
        raw = best_of(args.repeats, lambda: timed(lambda: ds.dataset(files).to_table()))
        ours = best_of(args.repeats, lambda: timed(lambda: pacha.read_metrics(run_id, uri=root)))
        one = best_of(
            args.repeats,
            lambda: timed(lambda: pacha.read_metrics(run_id, uri=root, names=["metric_0"])),
        )
        raw_one = best_of(
            args.repeats,
            lambda: timed(
                lambda: ds.dataset(files).to_table(filter=ds.field("name") == "metric_0")
            ),
        )
        rows = pacha.read_metrics(run_id, uri=root, names=["metric_0"]).num_rows
    print(f"\nmachine: {machine()}")
    print(f"{args.points:,} points in {len(files)} part files; metric_0 has {rows:,}")
    print_table(
        "Read-back, seconds (best of repeats)",
        ["what", "seconds", "ratio", "target"],
        [
            ["raw pyarrow.dataset(files).to_table()", f"{raw:.3f}", "1.00x", ""],
            ["pacha.read_metrics(run_id)", f"{ours:.3f}", f"{ours / raw:.2f}x raw", "<= 1.5x"],
            [
                "raw dataset, filter name == metric_0",
                f"{raw_one:.3f}",
                f"{raw_one / raw:.2f}x raw",
                "",
            ],
            [
                "pacha.read_metrics(names=[metric_0])",
                f"{one:.3f}",
                f"{one / ours:.2f}x full read",
                "about 0.1x",
            ],
        ],
    )


if __name__ == "__main__":
    main()
