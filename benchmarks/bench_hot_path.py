"""Hot path: cost per point of logging, against the list floor and the peers.

    python benchmarks/bench_hot_path.py [--points 1000000] [--peer-points 20000]

The floor appends (name, value, step, time.time_ns()) to four Python lists
in a plain function. Peers (W&B offline, MLflow, DVCLive) run when
installed (`pip install -e '.[bench]'`) on fewer points, since they are
slower by orders of magnitude; per-point figures are comparable. pacha is
measured on the path this process uses (the C accelerator where it is
built) and, for reference, on the pure-Python path.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable

from _common import best_of, buffer_path, list_append_floor, machine, print_table, pure_python_path

import pacha_sdk as pacha

NAMES = [f"metric_{i}" for i in range(10)]


def floor(points: int) -> float:
    """The floor: four list appends in a function per point (benchmarks/_common.py)."""
    return list_append_floor(points, NAMES)


def pacha_log_metric(points: int, root: str) -> float:
    with pacha.run(uri=root, flush_interval=3600, flush_rows=10**9) as run:
        log = run.log_metric
        start = time.perf_counter()
        for step in range(points // 10):
            for name in NAMES:
                log(name, 0.5, step)
        elapsed = time.perf_counter() - start
    return elapsed


def pacha_log_metrics(points: int, root: str) -> float:
    values = {name: 0.5 for name in NAMES}
    with pacha.run(uri=root, flush_interval=3600, flush_rows=10**9) as run:
        log = run.log_metrics
        start = time.perf_counter()
        for step in range(points // 10):
            log(values, step)
        elapsed = time.perf_counter() - start
    return elapsed


def wandb_offline(points: int, root: str) -> float:
    import wandb

    os.environ["WANDB_MODE"] = "offline"
    os.environ["WANDB_SILENT"] = "true"
    values = {name: 0.5 for name in NAMES}
    run = wandb.init(dir=root, project="bench")
    start = time.perf_counter()
    for step in range(points // 10):
        run.log(values, step=step)
    elapsed = time.perf_counter() - start
    run.finish()
    return elapsed


def mlflow_log_metrics(points: int, root: str) -> float:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
    values = {name: 0.5 for name in NAMES}
    with mlflow.start_run():
        start = time.perf_counter()
        for step in range(points // 10):
            mlflow.log_metrics(values, step=step)
        elapsed = time.perf_counter() - start
    return elapsed


def dvclive_log_metric(points: int, root: str) -> float:
    from dvclive import Live

    os.chdir(root)  # DVCLive writes dvc.yaml next to the working directory
    with Live(dir=root, save_dvc_exp=False) as live:
        start = time.perf_counter()
        for _ in range(points // 10):
            for name in NAMES:
                live.log_metric(name, 0.5)
            live.next_step()
        elapsed = time.perf_counter() - start
    return elapsed


def per_point_us(function: Callable[[int, str], float], points: int, repeats: int) -> float:
    def once() -> float:
        here = os.getcwd()
        with tempfile.TemporaryDirectory() as root:
            try:
                return function(points, root)
            finally:
                os.chdir(here)

    return best_of(repeats, once) / points * 1e6


def peer(name: str, function: Callable[[int, str], float], points: int) -> float | None:
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return per_point_us(function, points, repeats=1)
    except ImportError:
        print(f"({name} not installed: skipped)")
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--peer-points", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")

    floor_us = per_point_us(lambda n, _: floor(n), args.points, args.repeats)
    one_us = per_point_us(pacha_log_metric, args.points, args.repeats)
    many_us = per_point_us(pacha_log_metrics, args.points, args.repeats)
    with pure_python_path():
        pure_one_us = per_point_us(pacha_log_metric, args.points, args.repeats)
        pure_many_us = per_point_us(pacha_log_metrics, args.points, args.repeats)
    rows: list[list[object]] = [
        ["floor: 4 list appends in a function", f"{floor_us:.3f}", "1.00x", ""],
        ["pacha run.log_metric", f"{one_us:.3f}", f"{one_us / floor_us:.2f}x", "≤ 2.0x"],
        [
            "pacha run.log_metrics(10 names)",
            f"{many_us:.3f}",
            f"{many_us / floor_us:.2f}x",
            "≤ 1.5x",
        ],
        [
            "  the same, pure Python: log_metric / log_metrics",
            f"{pure_one_us:.3f} / {pure_many_us:.3f}",
            f"{pure_one_us / floor_us:.2f}x / {pure_many_us / floor_us:.2f}x",
            "PACHA_SDK_PURE_PYTHON=1",
        ],
    ]
    peers = {
        "W&B offline wandb.log(dict, step)": wandb_offline,
        "MLflow log_metrics (SQLite)": mlflow_log_metrics,
        "DVCLive log_metric + next_step": dvclive_log_metric,
    }
    for label, function in peers.items():
        cost = peer(label, function, args.peer_points)
        if cost is not None:
            rows.append(
                [
                    label,
                    f"{cost:.2f}",
                    f"{cost / floor_us:.0f}x",
                    f"pacha {cost / one_us:.0f}x faster",
                ]
            )
    print(f"\nmachine: {machine()}")
    print(f"buffer: {buffer_path()}")
    print(f"points: {args.points:,} for pacha and the floor, {args.peer_points:,} for peers")
    print_table("Hot path, µs per point", ["what", "µs/point", "vs floor", "target / note"], rows)


if __name__ == "__main__":
    main()
