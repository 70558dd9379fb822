"""Shared helpers for the benchmark scripts: timing, tables, machine facts.

Every figure is a ratio against a baseline measured in the same process,
best of several repeats, because this machine is shared and noisy.
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version


def best_of(repeats: int, function: Callable[[], float]) -> float:
    """Run *function* (which returns seconds) *repeats* times; return the fastest."""
    results = []
    for _ in range(repeats):
        gc.collect()
        results.append(function())
    return min(results)


def timed(function: Callable[[], object]) -> float:
    """Seconds one call of *function* takes."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def package_version(name: str) -> str:
    """Installed version of *name*, or ``-``."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "-"


def machine() -> str:
    """One line describing the machine and the key package versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"pacha-sdk {package_version('pacha-sdk')}, pyarrow {package_version('pyarrow')}"
    )


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print a Markdown table."""
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join("---" for _ in header) + " |")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")


def list_append_floor(points: int, names: Sequence[str]) -> float:
    """Seconds to log *points* into four plain lists, one function call per point.

    The floor that ``log_metric`` is measured against: the least any
    in-memory logger must do (keep the name, value, step and a timestamp).
    Points go round *names* for ``points // len(names)`` steps.
    """
    kept_names: list[str] = []
    values: list[float] = []
    steps: list[int] = []
    stamps: list[int] = []
    time_ns = time.time_ns

    def append(name: str, value: float, step: int) -> None:
        kept_names.append(name)
        values.append(value)
        steps.append(step)
        stamps.append(time_ns())

    start = time.perf_counter()
    for step in range(points // len(names)):
        for name in names:
            append(name, 0.5, step)
    return time.perf_counter() - start


def buffer_path() -> str:
    """Which buffer and hot path runs of this process use (README, "How logging stays cheap")."""
    from pacha_sdk.storage import buffer

    if buffer.ACCELERATED:
        return "C accelerator (pacha_sdk.storage._pointbuf)"
    return "pure Python (PACHA_SDK_PURE_PYTHON=1 or no compiled extension)"


@contextlib.contextmanager
def pure_python_path() -> Iterator[None]:
    """Runs created inside use the pure-Python buffer and hot path (a reference figure)."""
    from pacha_sdk.storage import buffer

    saved = buffer.native
    buffer.native = None
    try:
        yield
    finally:
        buffer.native = saved
