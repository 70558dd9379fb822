"""What machine a run ran on: CPU model, cores, RAM, and NVIDIA GPUs.

CPU and RAM come from ``/proc/cpuinfo``, :mod:`platform` and psutil. GPUs
come from NVML (``pynvml``, the optional ``gpu`` extra) when it loads, else
from ``nvidia-smi --query-gpu=name`` when it is on ``PATH``, else they are
left unknown. Capture never fails a run and never blocks it for more than
:data:`GPU_TIMEOUT` seconds: GPU detection runs in a daemon thread that is
abandoned if the driver is slow to answer (a GPU machine without
persistence mode can take seconds to initialise).
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from pacha_sdk.models import HardwareInfo

__all__ = ["GPU_TIMEOUT", "GpuInfo", "capture_hardware", "cpu_model", "detect_gpus", "nvml"]

GPU_TIMEOUT = 0.5
"""Seconds run start waits for GPU detection before leaving the GPU fields unknown."""

_T = TypeVar("_T")


@dataclass(frozen=True)
class GpuInfo:
    """The GPUs of this machine: the first one's model name and how many there are."""

    model: str
    count: int


def cpu_model() -> str | None:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux) or :mod:`platform`."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or None


@contextlib.contextmanager
def nvml() -> Iterator[Any]:
    """Yield the initialised ``pynvml`` module, or ``None`` if NVML cannot be used.

    ``None`` when ``nvidia-ml-py`` is not installed or the NVML library does
    not load (no driver); NVML is shut down on exit.
    """
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # ImportError, NVMLError (library or driver missing), OSError
        yield None
        return
    try:
        yield pynvml
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def _gpus_from_nvml() -> GpuInfo | None:
    with nvml() as lib:
        if lib is None:
            return None
        count = int(lib.nvmlDeviceGetCount())
        if count < 1:
            return None
        name = lib.nvmlDeviceGetName(lib.nvmlDeviceGetHandleByIndex(0))
        return GpuInfo(name.decode() if isinstance(name, bytes) else str(name), count)


def _gpus_from_nvidia_smi(timeout: float) -> GpuInfo | None:
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return None
    result = subprocess.run(
        [executable, "--query-gpu=name", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    names = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or not names:
        return None
    return GpuInfo(names[0], len(names))


def detect_gpus(timeout: float = GPU_TIMEOUT) -> GpuInfo | None:
    """This machine's NVIDIA GPUs via NVML, else ``nvidia-smi``; ``None`` if unknown.

    Never raises, and returns within about *timeout* seconds.
    """

    def detect() -> GpuInfo | None:
        return _gpus_from_nvml() or _gpus_from_nvidia_smi(timeout)

    return _within(timeout, detect)


def _within(timeout: float, function: Callable[[], _T | None]) -> _T | None:
    """Run *function* in a daemon thread; its result, or ``None`` on error or timeout."""
    result: list[_T | None] = [None]

    def target() -> None:
        with contextlib.suppress(Exception):
            result[0] = function()

    thread = threading.Thread(target=target, name="pacha-gpu-detect", daemon=True)
    thread.start()
    thread.join(timeout)
    return None if thread.is_alive() else result[0]


def capture_hardware() -> HardwareInfo:
    """Return the :class:`HardwareInfo` of this machine; unknown fields stay ``None``."""
    import psutil  # at run start, not at `import pacha_sdk`

    try:
        ram_gb: int | None = round(psutil.virtual_memory().total / 1024**3)
    except (OSError, RuntimeError):
        ram_gb = None
    gpus = detect_gpus()
    return HardwareInfo(
        cpu_model=cpu_model(),
        cpu_cores=psutil.cpu_count(logical=True) or os.cpu_count(),
        ram_gb=ram_gb,
        gpu_model=gpus.model if gpus else None,
        gpu_count=gpus.count if gpus else None,
    )
