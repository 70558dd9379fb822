"""Start-up: how soon ``pacha.run()`` returns, and how soon the first points are stored.

    python benchmarks/bench_startup.py [--repeats 7] [--flush-interval 0.05]

Each repeat is two fresh Python processes (the one-time imports count, as
they do for a user), which measure, with ``flush_interval=0.05``:

* ``pacha.run()`` in a fresh process: the first call, which also loads
  pydantic and the models (``import pacha_sdk`` itself loads nothing);
* ``pacha.run()`` once the models are loaded (a second run, or any
  process that built a ``pacha.Hyperparameters`` first);
* first point to first part file, the point logged the moment ``pacha.run()``
  returns (the writer is still loading pyarrow);
* first point to first part file, the point logged 1 s after ``pacha.run()``
  returns (building a model, loading data: what a training script does),
  in the second process.

The figures are medians over the repeats, against the targets of issue 11:
``pacha.run()`` within 150 ms, the first part within about one flush interval
of the first point. Run it with ``PYTHONPATH=<other checkout>`` to measure
another version of the SDK the same way.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap

from _common import machine, print_table

CHILD = textwrap.dedent(
    """
    import json, os, sys, tempfile, time

    interval, delay = float(sys.argv[1]), float(sys.argv[2])
    root = tempfile.mkdtemp()
    import pacha_sdk as pacha

    started = time.perf_counter()
    run = pacha.run(uri=root, flush_interval=interval, system_metrics=False)
    cold = time.perf_counter() - started
    time.sleep(delay)
    folder = os.path.join(root, "metrics", f"run_id={run.run_id}")
    logged = time.perf_counter()
    run.log_metric("loss", 1.0, 0)
    while not (os.path.isdir(folder) and any(n.endswith(".parquet") for n in os.listdir(folder))):
        time.sleep(0.001)
    first_part = time.perf_counter() - logged
    run.complete()

    started = time.perf_counter()
    run = pacha.run(uri=root, flush_interval=interval, system_metrics=False)
    warm = time.perf_counter() - started
    run.complete()
    print(json.dumps({"cold": cold, "warm": warm, "first_part": first_part}))
    """
)


def one_process(flush_interval: float, delay: float) -> dict[str, float]:
    """Run the child once, logging its first point *delay* s in; return its timings (s)."""
    with tempfile.TemporaryDirectory() as cwd:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(flush_interval), str(delay)],
            capture_output=True,
            text=True,
            check=True,
            cwd=cwd,
        )
    timings: dict[str, float] = json.loads(done.stdout)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--flush-interval", type=float, default=0.05)
    args = parser.parse_args()
    samples = []
    for _ in range(args.repeats):
        at_once = one_process(args.flush_interval, 0.0)
        later = one_process(args.flush_interval, 1.0)
        samples.append(
            {**at_once, "immediate": at_once["first_part"], **{"after_setup": later["first_part"]}}
        )
        samples.append({"cold": later["cold"], "warm": later["warm"]})

    def median_ms(key: str) -> float:
        return statistics.median(sample[key] for sample in samples if key in sample) * 1000

    def spread(key: str) -> str:
        values = sorted(sample[key] * 1000 for sample in samples if key in sample)
        return f"{values[0]:.0f}-{values[-1]:.0f}"

    interval_ms = args.flush_interval * 1000
    rows = [
        ["`pacha.run()`, fresh process (loads the models)", "cold", "≤ 150 ms"],
        ["`pacha.run()`, models loaded", "warm", "≤ 150 ms"],
        ["first point → first part, logged at once", "immediate", "(pyarrow loads)"],
        ["first point → first part, logged 1 s in", "after_setup", f"≈ {interval_ms:.0f} ms"],
    ]
    print(
        f"\n{machine()}; {2 * args.repeats} fresh processes, flush_interval={args.flush_interval}"
    )
    print_table(
        "Start-up (median ms, range)",
        ["what", "median", "range", "target"],
        [[what, f"{median_ms(key):.0f} ms", spread(key), target] for what, key, target in rows],
    )


if __name__ == "__main__":
    main()
