"""Metric values given as 0-d torch tensors.

A CPU tensor is read on the spot. A tensor on an accelerator must not make
the training loop wait: the run keeps a reference and the writer thread
reads all of them per flush. There is no GPU here, so the accelerator
tests use :class:`OnDevice`, a CPU tensor that says it is not on the CPU
and records which thread reads it: exactly what the run sees of a CUDA
tensor, minus the device (``torch.cuda.synchronize`` is not called for a
tensor whose device is the CPU).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest

import pacha_sdk as pacha

pytest.importorskip("torch", reason="torch is not installed (pip install torch==2.13.0)")

import torch

_READS = {torch.Tensor.item, torch.Tensor.cpu, torch.Tensor.tolist, torch.Tensor.__float__}


class OnDevice(torch.Tensor):
    """A tensor the run treats as living on an accelerator; notes the threads that read it."""

    readers: ClassVar[list[str]] = []

    @property
    def is_cpu(self) -> bool:  # type: ignore[override]
        return False

    @classmethod
    def __torch_function__(
        cls,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        if func in _READS or func is torch.stack:
            cls.readers.append(threading.current_thread().name)
        return super().__torch_function__(func, types, args, kwargs or {})  # type: ignore[no-untyped-call]


class Unreadable(OnDevice):
    """A device tensor whose value cannot be copied to the host (a failed device)."""

    @classmethod
    def __torch_function__(
        cls,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        if func in _READS or func is torch.stack:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return super().__torch_function__(func, types, args, kwargs or {})


def on_device(value: float | int | bool, dtype: Any = None) -> Any:
    return torch.tensor(value, dtype=dtype).as_subclass(OnDevice)


@pytest.fixture(autouse=True)
def _fresh_readers() -> Iterator[None]:
    OnDevice.readers.clear()
    yield
    OnDevice.readers.clear()


def _points(run_id: str, uri: str, name: str) -> list[tuple[int, float]]:
    table = pacha.read_metrics(run_id, uri=uri, names=[name])
    return sorted(zip(table.column("step").to_pylist(), table.column("value").to_pylist()))


def test_cpu_tensors_are_stored_as_their_value(store: str) -> None:
    weight = torch.tensor([2.0], requires_grad=True)
    with pacha.run(uri=store, system_metrics=False) as run:
        for step in range(3):
            loss = (weight * (step + 1)).sum() / 4
            run.log_metric("loss", loss, step)
            run.log_metrics(
                {"correct": torch.tensor(step), "done": torch.tensor(step == 2)}, step=step
            )
        run.log_metric("half", torch.tensor(0.1, dtype=torch.float16))
    assert _points(run.run_id, store, "loss") == [(0, 0.5), (1, 1.0), (2, 1.5)]
    assert _points(run.run_id, store, "correct") == [(0, 0.0), (1, 1.0), (2, 2.0)]
    assert _points(run.run_id, store, "done") == [(0, 0.0), (1, 0.0), (2, 1.0)]
    assert _points(run.run_id, store, "half") == [(0, float(torch.tensor(0.1).half()))]


@pytest.mark.parametrize(
    ("value", "error", "problem"),
    [
        (lambda: torch.tensor([0.5, 0.25]), pacha.MetricTypeError, r"tensor of shape \(2,\)"),
        (lambda: torch.tensor([0.5]), pacha.MetricTypeError, r"tensor of shape \(1,\)"),
        (lambda: torch.tensor(1 + 2j), pacha.MetricTypeError, "not real"),
        (lambda: torch.empty((), device="meta"), pacha.MetricTypeError, "meta tensor"),
        (lambda: torch.tensor(2**60 + 1), pacha.InvalidMetricError, "does not fit a float64"),
    ],
)
def test_tensors_that_are_not_one_real_number_are_refused_naming_the_metric(
    store: str, value: Callable[[], Any], error: type[Exception], problem: str
) -> None:
    with pacha.run(uri=store, system_metrics=False) as run:
        run.log_metric("loss", 1.0, 0)
        with pytest.raises(error, match=problem) as raised:
            run.log_metric("acc", value(), 1)
        assert "'acc'" in str(raised.value)
        with pytest.raises(pacha.InvalidMetricError, match=problem):
            run.log_metrics({"ok": 1.0, "acc": value()}, step=1)
    assert _points(run.run_id, store, "loss") == [(0, 1.0)]
    assert pacha.read_metrics(run.run_id, uri=store).num_rows == 1


def test_device_tensors_are_read_in_the_writer_never_on_the_loop(store: str) -> None:
    with pacha.run(uri=store, system_metrics=False) as run:
        for step in range(200):
            run.log_metric("loss", on_device(1.0 / (step + 1)), step)
            run.log_metrics(
                {
                    "lr": on_device(0.5, torch.bfloat16),
                    "tokens": on_device(step * 10, torch.int64),
                    "skipped": on_device(step % 2 == 0),
                },
                step=step,
            )
        assert OnDevice.readers == []  # nothing read while training
        assert run.get_metric("loss") == pytest.approx(1 / 200)  # asking reads it
        OnDevice.readers.clear()
        assert run.flush(timeout=30)
        assert OnDevice.readers
        assert threading.current_thread().name not in OnDevice.readers
    steps = range(200)
    assert _points(run.run_id, store, "loss") == [
        (s, float(torch.tensor(1.0 / (s + 1)))) for s in steps
    ]
    assert _points(run.run_id, store, "lr") == [(s, 0.5) for s in steps]
    assert _points(run.run_id, store, "tokens") == [(s, float(s * 10)) for s in steps]
    assert _points(run.run_id, store, "skipped") == [(s, float(s % 2 == 0)) for s in steps]
    assert pacha.load_run(run.run_id, uri=store).summary["tokens"] == 1990.0
    assert run.last_error is None


def test_device_reads_are_batched_per_device_and_dtype(store: str) -> None:
    with pacha.run(uri=store, system_metrics=False, flush_interval=60) as run:
        for step in range(1000):
            run.log_metric("loss", on_device(float(step)), step)
        run.log_metric("tokens", on_device(5, torch.int64), 0)
    stacks = OnDevice.readers.count(threading.current_thread().name)
    assert stacks == 0
    # One stack and one copy per (device, dtype) group: a handful of reads, not 1001.
    assert len(OnDevice.readers) <= 8
    assert len(_points(run.run_id, store, "loss")) == 1000


def test_an_unreadable_value_is_left_out_loudly_and_the_writer_goes_on(
    store: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="pacha_sdk")
    with pacha.run(uri=store, system_metrics=False) as run:
        run.log_metric("loss", on_device(0.5), 0)
        run.log_metric("grad_norm", torch.tensor(1.0).as_subclass(Unreadable), 0)
        run.log_metric("loss", 0.25, 1)
        assert run.flush(timeout=30)
        error = run.last_error
        assert isinstance(error, pacha.InvalidMetricError)
        assert "grad_norm" in str(error)
        assert "illegal memory access" in str(error)
        run.log_metric("loss", on_device(0.125), 2)  # the writer still writes
    assert run.status is pacha.RunStatus.COMPLETED
    assert _points(run.run_id, store, "loss") == [(0, 0.5), (1, 0.25), (2, 0.125)]
    assert _points(run.run_id, store, "grad_norm") == []
    logged = [r.getMessage() for r in caplog.records if "grad_norm" in r.getMessage()]
    assert len(logged) == 1
    assert "not stored" in logged[0]


def test_numpy_scalars_still_take_the_ordinary_path(store: str) -> None:
    np = pytest.importorskip("numpy")
    with pacha.run(uri=store, system_metrics=False) as run:
        run.log_metric("loss", np.float32(0.5), 0)
        run.log_metric("loss", np.array(0.25), 1)
    assert _points(run.run_id, store, "loss") == [(0, 0.5), (1, 0.25)]
