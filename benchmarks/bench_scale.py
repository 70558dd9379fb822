"""Scale: many runs under one root; listing, best run, one metric across all runs.

    python benchmarks/bench_scale.py [--runs 1000] [--points 10000] [--uri URI]

Fills the root with --runs runs of --points points each (10 names), then
times list_runs (reads run.json files only), best_run (summaries only) and
one metric across every run through metrics_dataset (pushdown on name).
--uri picks the store (default: a temporary local folder); pass
--storage-option key=value for object stores.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from typing import Any

import pyarrow.dataset as ds
from _common import best_of, machine, print_table, timed

import pacha_sdk as pacha

NAMES = [f"metric_{i}" for i in range(10)]


def fill(uri: str, options: dict[str, Any], runs: int, points: int) -> float:
    start = time.perf_counter()
    for index in range(runs):
        with pacha.run(
            {"seed": index}, uri=uri, storage_options=options, name=f"run-{index}"
        ) as run:
            for step in range(points // 10):
                run.log_metrics({name: (index + step) % 97 / 97 for name in NAMES}, step=step)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--uri")
    parser.add_argument("--storage-option", action="append", default=[])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    options: dict[str, Any] = dict(item.split("=", 1) for item in args.storage_option)
    with tempfile.TemporaryDirectory() as tmp:
        uri = args.uri or tmp
        fill_seconds = fill(uri, options, args.runs, args.points)
        listed = best_of(
            args.repeats, lambda: timed(lambda: pacha.list_runs(uri=uri, storage_options=options))
        )
        best = best_of(
            args.repeats,
            lambda: timed(lambda: pacha.best_run("metric_0", uri=uri, storage_options=options)),
        )

        def one_metric() -> None:
            dataset = pacha.metrics_dataset(uri, storage_options=options)
            table = dataset.to_table(filter=ds.field("name") == "metric_0")
            assert table.num_rows == args.runs * args.points // 10

        across = best_of(args.repeats, lambda: timed(one_metric))
        count = len(pacha.list_runs(uri=uri, storage_options=options))
    print(f"\nmachine: {machine()}")
    print(f"store: {args.uri or 'local temporary folder'}; {count} runs x {args.points:,} points")
    print(f"filled in {fill_seconds:.1f} s")
    print_table(
        "Scale, seconds (best of repeats)",
        ["what", "seconds", "target (local)"],
        [
            ["list_runs()", f"{listed:.3f}", "<= 1 s"],
            ["best_run('metric_0')", f"{best:.3f}", "<= 1 s"],
            ["metrics_dataset: metric_0 across all runs", f"{across:.3f}", "<= 3 s"],
        ],
    )


if __name__ == "__main__":
    main()
