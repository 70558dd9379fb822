"""What machine a run ran on: CPU model, cores, RAM (psutil and the OS).

Capture never fails a run and takes a few milliseconds: anything that
cannot be read is left unknown (``None``), as pacha's ``HardwareInfo``
allows.
"""

from __future__ import annotations

import os
import platform

import psutil

from pacha_sdk.models import HardwareInfo

__all__ = ["capture_hardware", "cpu_model"]


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


def capture_hardware() -> HardwareInfo:
    """Return the :class:`HardwareInfo` of this machine; unknown fields stay ``None``."""
    try:
        ram_gb: int | None = round(psutil.virtual_memory().total / 1024**3)
    except (OSError, RuntimeError):
        ram_gb = None
    return HardwareInfo(
        cpu_model=cpu_model(),
        cpu_cores=psutil.cpu_count(logical=True) or os.cpu_count(),
        ram_gb=ram_gb,
    )
