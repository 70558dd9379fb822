"""Hardware in the run record: CPU and RAM as psutil sees them, GPUs via NVML or nvidia-smi."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import psutil
import pytest

import pacha_sdk as pacha

HAS_NVIDIA_GPU = shutil.which("nvidia-smi") is not None or os.path.exists("/dev/nvidia0")
no_gpu_only = pytest.mark.skipif(HAS_NVIDIA_GPU, reason="an NVIDIA GPU answers here")


def recorded_hardware(store: str) -> tuple[pacha.HardwareInfo, dict[str, object]]:
    """Start and finish one run; return its hardware and the raw JSON of it."""
    with pacha.run(uri=store, system_metrics=False) as run:
        pass
    raw = (Path(store) / "runs" / str(run.run_id) / "run.json").read_text()
    return pacha.load_run(run.run_id, uri=store).hardware, json.loads(raw)["hardware"]


def fake_nvidia_smi(folder: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    """Put an executable ``nvidia-smi`` shell script first on PATH."""
    folder.mkdir()
    script = folder / "nvidia-smi"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


def test_cpu_and_ram_match_psutil(store: str) -> None:
    hardware, _ = recorded_hardware(store)
    assert hardware.cpu_cores == psutil.cpu_count(logical=True)
    assert hardware.ram_gb == round(psutil.virtual_memory().total / 1024**3)
    assert isinstance(hardware.cpu_model, str)
    assert hardware.cpu_model.strip()


@no_gpu_only
def test_without_a_gpu_the_gpu_fields_are_left_out(store: str) -> None:
    hardware, raw = recorded_hardware(store)
    assert hardware.gpu_model is None
    assert hardware.gpu_count is None
    assert "gpu_model" not in raw
    assert "gpu_count" not in raw


@no_gpu_only
def test_an_nvml_library_that_cannot_load_leaves_gpu_fields_out(store: str) -> None:
    pynvml = pytest.importorskip("pynvml")
    with pytest.raises(pynvml.NVMLError):
        pynvml.nvmlInit()  # the package is installed, the driver library is not
    hardware, raw = recorded_hardware(store)
    assert (hardware.gpu_model, hardware.gpu_count) == (None, None)
    assert set(raw) == {"cpu_model", "cpu_cores", "ram_gb"}


@no_gpu_only
def test_gpu_model_and_count_from_nvidia_smi(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvidia_smi(
        tmp_path / "bin",
        monkeypatch,
        '[ "$1" = --query-gpu=name ] && [ "$2" = --format=csv,noheader ] || exit 2\n'
        "printf 'NVIDIA H100 80GB HBM3\\nNVIDIA H100 80GB HBM3\\n'",
    )
    hardware, raw = recorded_hardware(store)
    assert hardware.gpu_model == "NVIDIA H100 80GB HBM3"
    assert hardware.gpu_count == 2
    assert raw["gpu_count"] == 2


@no_gpu_only
def test_a_failing_nvidia_smi_leaves_gpu_fields_out(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvidia_smi(
        tmp_path / "bin",
        monkeypatch,
        'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver."\n'
        "exit 9",
    )
    hardware, _ = recorded_hardware(store)
    assert (hardware.gpu_model, hardware.gpu_count) == (None, None)


@no_gpu_only
def test_a_hanging_nvidia_smi_does_not_hold_up_the_run(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvidia_smi(tmp_path / "bin", monkeypatch, "exec sleep 5")
    started = time.monotonic()
    hardware, _ = recorded_hardware(store)
    assert time.monotonic() - started < 2.5  # detection gives up after 0.5 s, not 5 s
    assert hardware.gpu_count is None
    assert hardware.cpu_cores == psutil.cpu_count(logical=True)


@pytest.mark.skipif(not HAS_NVIDIA_GPU, reason="needs an NVIDIA GPU")
def test_a_real_gpu_fills_model_and_count(store: str) -> None:
    hardware, _ = recorded_hardware(store)
    assert hardware.gpu_count is not None
    assert hardware.gpu_count >= 1
    assert hardware.gpu_model
