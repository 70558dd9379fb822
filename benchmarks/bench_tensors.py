"""Logging a loss tensor every step: steps/s of a small torch loop, against not logging.

    python benchmarks/bench_tensors.py [--steps 1500] [--repeats 5] [--device cpu|cuda|all]

The loop trains a small MLP (64 -> 256 -> 256 -> 1, batches of 256) and,
each step, either

* does not log (the baseline),
* calls ``loss.item()`` (what a loop that logs a float pays: on a GPU,
  a device sync every step),
* logs ``run.log_metric("loss", loss.item(), step)``,
* logs ``run.log_metric("loss", loss, step)``, the tensor itself: on the
  CPU pacha reads it at once; on a GPU it keeps the reference and the
  writer thread reads all of them once per flush, so the loop never syncs.

The four loops alternate in short chunks, each timed to the end of its
device work, the fastest chunk counting (see :func:`measure`); figures
are steps/s and the ratio to the baseline of the same device in the same
process. ``--device all`` (the default) measures
the CPU and, when ``torch.cuda.is_available()``, CUDA.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import torch  # noqa: E402
from _common import machine, package_version, print_table  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pacha_sdk as pacha  # noqa: E402

VARIANTS = ("no logging", "loss.item()", "pacha, loss.item()", "pacha, loss tensor")


def make_loop(device: torch.device) -> Callable[[int, str, pacha.Run | None], float]:
    """A training loop on *device*: ``loop(steps, variant, run, first)`` returns its seconds."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 1),
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(256, 64, device=device)
    y = torch.randn(256, 1, device=device)

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def loop(steps: int, variant: str, run: pacha.Run | None, first: int = 0) -> float:
        synchronize()
        start = time.perf_counter()
        for step in range(first, first + steps):
            loss = torch.nn.functional.mse_loss(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if variant == "loss.item()":
                loss.item()
            elif variant == "pacha, loss.item()":
                assert run is not None
                run.log_metric("loss", loss.item(), step)
            elif variant == "pacha, loss tensor":
                assert run is not None
                run.log_metric("loss", loss, step)
        synchronize()
        return time.perf_counter() - start

    return loop


def measure(device: torch.device, steps: int, repeats: int, root: str) -> dict[str, float]:
    """Best steps/s of each variant on *device*, over short chunks taken in turn.

    Each variant runs ``repeats`` rounds of 10 chunks of ``steps // 10`` steps,
    the variants alternating chunk by chunk, so a busy moment of the machine
    hits all of them alike; the fastest chunk of each counts.
    """
    loop = make_loop(device)
    loop(min(steps, 200), "no logging", None)  # warm-up: allocator, kernels
    chunk = max(steps // 10, 1)
    runs = {
        variant: pacha.run(uri=root, system_metrics=False, name=f"{device} {variant}")
        for variant in VARIANTS
        if variant.startswith("pacha")
    }
    best = dict.fromkeys(VARIANTS, 0.0)
    done = 0
    for _ in range(repeats * 10):
        for variant in VARIANTS:
            seconds = loop(chunk, variant, runs.get(variant), done)
            best[variant] = max(best[variant], chunk / seconds)
        done += chunk
    for variant, run in runs.items():
        run.complete()
        stored = pacha.read_metrics(run.run_id, uri=root).num_rows
        assert stored == done, f"{variant}: {stored} of {done} points stored"
    return best


def call_costs(calls: int, repeats: int, root: str) -> list[tuple[str, str, str]]:
    """Microseconds per ``run.log_metric`` call by value type, and per bare ``.item()``."""
    values: dict[str, object] = {
        "float": 0.5,
        "CPU tensor, 0-d float32": torch.tensor(0.5),
        "CPU tensor, requires grad": torch.tensor(0.5, requires_grad=True) * 1.0,
    }
    tensor = torch.tensor(0.5)
    rows = []
    start = time.perf_counter()
    for _ in range(calls):
        tensor.item()
    rows.append(("bare tensor.item()", f"{(time.perf_counter() - start) / calls * 1e6:.3f}", "-"))
    floor = 0.0
    for label, value in values.items():
        best = float("inf")
        for _ in range(repeats):
            with pacha.run(uri=root, system_metrics=False, flush_rows=10 * calls) as run:
                log = run.log_metric
                start = time.perf_counter()
                for step in range(calls):
                    log("loss", value, step)  # type: ignore[arg-type]
                best = min(best, time.perf_counter() - start)
        micros = best / calls * 1e6
        floor = floor or micros
        rows.append((f"run.log_metric, {label}", f"{micros:.3f}", f"{micros / floor:.2f}x"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    options = parser.parse_args()
    torch.set_num_threads(1)
    devices = []
    if options.device in ("cpu", "all"):
        devices.append(torch.device("cpu"))
    if options.device == "cuda" or (options.device == "all" and torch.cuda.is_available()):
        devices.append(torch.device("cuda"))
    print(machine())
    print(f"torch {package_version('torch')}, {options.steps} steps, best of {options.repeats}")
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for device in devices:
            name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
            best = measure(device, options.steps, options.repeats, root)
            baseline = best["no logging"]
            rows += [
                (name, variant, f"{best[variant]:,.0f}", f"{best[variant] / baseline:.3f}x")
                for variant in VARIANTS
            ]
        costs = call_costs(100_000, options.repeats, root)
    print_table(
        "steps/s of a small MLP loop", ["device", "each step", "steps/s", "vs no logging"], rows
    )
    print_table("cost of one call on the CPU", ["call", "µs", "vs a float"], costs)
    if not torch.cuda.is_available():
        print("\nno CUDA device here: the GPU rows were not measured")


if __name__ == "__main__":
    main()
