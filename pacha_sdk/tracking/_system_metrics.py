"""A background sampler that logs the machine's load as ordinary run metrics.

One daemon thread per run wakes every *interval* seconds (the first sample
comes one interval after the start, so ``cpu_percent`` covers a whole
interval and a run shorter than the interval records none) and logs, at
step = sample number:

* ``system/cpu_percent``: this process's CPU use, in percent of one core
  (psutil's convention: 250 means two and a half cores busy);
* ``system/memory_rss_mb``: this process's resident memory, in MiB;
* ``system/memory_percent``: the machine's RAM in use, in percent;
* with NVML (the ``gpu`` extra), for each GPU *i*: ``system/gpu{i}/utilization``
  (percent), ``system/gpu{i}/memory_used_mb`` and ``system/gpu{i}/memory_percent``.

It is given the run's :meth:`Run.log_metrics` (the hot path, so a sample
costs the training loop one list append), not the run itself. A failing
probe is skipped, never raised; the run stops and joins the thread before
its final flush.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Callable, Mapping
from typing import Any

import psutil

from pacha_sdk.tracking._hardware import nvml

__all__ = ["DEFAULT_INTERVAL", "LogMetrics", "SystemMetricsSampler", "sampling_interval"]

LogMetrics = Callable[[Mapping[str, float], int], None]
"""Logs ``{name: value}`` at a step, as :meth:`Run.log_metrics` does."""

DEFAULT_INTERVAL = 10.0
"""Seconds between samples when ``system_metrics=True`` (the default)."""

_MIB = 1024**2
logger = logging.getLogger("pacha_sdk")


def sampling_interval(system_metrics: bool | float, /) -> float | None:  # noqa: FBT001
    """The sampling interval that a ``system_metrics`` argument asks for, or ``None`` (off).

    ``True`` is :data:`DEFAULT_INTERVAL`, ``False`` turns sampling off and a
    positive number is the interval in seconds.
    """
    if system_metrics is True:
        return DEFAULT_INTERVAL
    if system_metrics is False:
        return None
    if not isinstance(system_metrics, (int, float)):
        raise TypeError(
            f"system_metrics must be a bool or a number of seconds, got {system_metrics!r}"
        )
    if not 0 < system_metrics < math.inf:
        raise ValueError(
            f"system_metrics must be a positive number of seconds, got {system_metrics!r}"
        )
    return float(system_metrics)


class SystemMetricsSampler(threading.Thread):
    """Logs ``system/*`` metrics through *log_metrics* every *interval* seconds until stopped.

    *run_id* names the thread (``pacha-system-metrics-<run_id>``).
    """

    def __init__(self, log_metrics: LogMetrics, interval: float, *, run_id: str) -> None:
        super().__init__(name=f"pacha-system-metrics-{run_id}", daemon=True)
        self._log_metrics = log_metrics
        self._interval = interval
        self._stopped = threading.Event()
        self._process = psutil.Process()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop sampling and wait up to *timeout* seconds for the thread to end."""
        self._stopped.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        with contextlib.suppress(Exception):
            self._process.cpu_percent(None)  # the first call only starts the measurement
        with nvml() as lib:
            gpus = _gpu_handles(lib)
            step = 0
            while not self._stopped.wait(self._interval):
                values = self._cpu_and_memory()
                values.update(_gpu_values(lib, gpus))
                try:
                    self._log_metrics(values, step)
                except Exception as error:  # the run finished under us
                    logger.debug("pacha: system metrics sampler stops: %s", error)
                    return
                step += 1

    def _cpu_and_memory(self) -> dict[str, float]:
        values: dict[str, float] = {}
        with contextlib.suppress(Exception):
            values["system/cpu_percent"] = float(self._process.cpu_percent(None))
        with contextlib.suppress(Exception):
            values["system/memory_rss_mb"] = self._process.memory_info().rss / _MIB
        with contextlib.suppress(Exception):
            values["system/memory_percent"] = float(psutil.virtual_memory().percent)
        return values


def _gpu_handles(lib: Any) -> list[Any]:
    """NVML handles of every GPU, or ``[]`` without NVML."""
    if lib is None:
        return []
    try:
        return [lib.nvmlDeviceGetHandleByIndex(i) for i in range(lib.nvmlDeviceGetCount())]
    except Exception:
        return []


def _gpu_values(lib: Any, handles: list[Any]) -> dict[str, float]:
    """Utilization and memory of each GPU; a probe the device refuses is left out."""
    values: dict[str, float] = {}
    for index, handle in enumerate(handles):
        prefix = f"system/gpu{index}/"
        with contextlib.suppress(Exception):
            rates = lib.nvmlDeviceGetUtilizationRates(handle)
            values[prefix + "utilization"] = float(rates.gpu)
        with contextlib.suppress(Exception):
            memory = lib.nvmlDeviceGetMemoryInfo(handle)
            values[prefix + "memory_used_mb"] = memory.used / _MIB
            values[prefix + "memory_percent"] = 100.0 * memory.used / memory.total
    return values
