"""Metric values given as torch tensors, without stalling a GPU training loop.

``run.log_metric("loss", loss)`` with a 0-d tensor:

* on the CPU, the value is read at once (``.item()`` costs well under a
  microsecond there and never waits for anything);
* on an accelerator (CUDA, MPS, XPU...), reading it would make the training
  loop wait for every kernel queued before it. Instead the buffer keeps a
  detached reference, and the writer thread reads all of them at its next
  flush: it waits for the device (:func:`torch.cuda.synchronize`, so values
  made on any stream are final), stacks the tensors of each device and
  dtype into one and copies that to the host: one copy per device and dtype
  per flush, however many points. The loop never waits for logging.

What is checked on the loop costs no device access: the tensor must be
0-d and of a real dtype (bool, int, float). A value the writer then
cannot read (the device failed, an int beyond what float64 holds) is left
out of the part, never silently: ``run.last_error`` says which metric, and
an error is logged. The writer thread itself never stops over a bad value.

numpy scalars and 0-d arrays live on the host and take the ordinary path
(:func:`pacha_sdk.tracking._coerce.coerce_value`). A reference kept until
the next flush keeps its tensor's memory alive that long; log scalars
(a loss, a reduction), not views into large tensors.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pacha_sdk.exceptions import InvalidMetricError, MetricTypeError
from pacha_sdk.storage.buffer import FIELDS
from pacha_sdk.tracking._coerce import coerce_value

if TYPE_CHECKING:
    from pacha_sdk.storage.parts import Rows

__all__ = ["TensorValues"]

logger = logging.getLogger("pacha_sdk")


class TensorValues:
    """One run's metric values beyond plain floats: convert now, or defer to the writer."""

    def __init__(self, on_error: Callable[[BaseException], None]) -> None:
        self.deferred = False
        """Whether a value was ever deferred (only then does the writer look for any)."""
        self.run_label = "?"
        """The run's id, for messages (set once the run has one)."""
        self._on_error = on_error

    def coerce(self, name: str, value: Any) -> Any:
        """A float for the buffer, or a detached accelerator tensor to read in the writer."""
        if type(value) is int:
            return coerce_value(name, value)
        tensor_type = _tensor_type()
        if tensor_type is not None and isinstance(value, tensor_type):
            if value.is_cpu and value.ndim == 0:  # the common case, read at once
                item = value.item()
                if type(item) is float:
                    return item
            return self._tensor(name, value)
        return coerce_value(name, value)

    def _tensor(self, name: str, value: Any) -> Any:
        if value.ndim != 0:
            raise MetricTypeError(
                name,
                f"value is a tensor of shape {tuple(value.shape)}; "
                "log a 0-d tensor (a scalar), e.g. loss or loss.mean()",
            )
        if value.dtype.is_complex:
            raise MetricTypeError(name, f"value has dtype {value.dtype}, which is not real")
        if value.is_cpu:
            return coerce_value(name, value.item())
        if value.is_meta:
            raise MetricTypeError(name, "value is a meta tensor, which holds no data")
        self.deferred = True
        return value.detach()

    def resolve(self, rows: Rows) -> Rows:
        """Writer thread: *rows* with every deferred value read as a float (a new list).

        *rows* is the flat list, or a C ``PointBuffer`` batch (returned as it
        is when it holds no tensor, else read as the flat list).

        Points whose value cannot be read are left out and reported. Never raises.
        """
        if not self.deferred:
            return rows
        if not isinstance(rows, list):  # a C PointBuffer: only its odd points can be tensors
            if not rows.odd:
                return rows
            rows = rows.to_rows()
        try:
            return self._resolve(rows)
        except Exception as error:  # a bug here must not stop the writer: read one by one
            logger.exception("pacha: reading tensor values of run %s failed", self.run_label)
            self._on_error(error)
            return self._resolve_each(rows)

    def _resolve(self, rows: list[Any]) -> Rows:
        values = rows[1::FIELDS]
        deferred = [index for index, value in enumerate(values) if type(value) is not float]
        if not deferred:
            return rows
        groups: dict[tuple[Any, Any], list[int]] = {}
        for index in deferred:
            value = values[index]
            groups.setdefault((value.device, value.dtype), []).append(index)
        read: dict[int, float] = {}
        failed: dict[int, BaseException] = {}
        for (device, _), indices in groups.items():
            host = _copy_to_host(device, [values[index] for index in indices])
            for position, index in enumerate(indices):
                name = rows[index * FIELDS]
                try:
                    item = host[position] if host is not None else _one_to_host(values[index])
                    read[index] = coerce_value(name, item)
                except Exception as error:
                    failed[index] = error
        return self._rebuilt(rows, read, failed)

    def _resolve_each(self, rows: list[Any]) -> Rows:
        read: dict[int, float] = {}
        failed: dict[int, BaseException] = {}
        for index, value in enumerate(rows[1::FIELDS]):
            if type(value) is float:
                continue
            try:
                read[index] = coerce_value(rows[index * FIELDS], _one_to_host(value))
            except Exception as error:
                failed[index] = error
        return self._rebuilt(rows, read, failed)

    def _rebuilt(
        self, rows: list[Any], read: dict[int, float], failed: dict[int, BaseException]
    ) -> Rows:
        out = list(rows)
        for index, value in read.items():
            out[index * FIELDS + 1] = value
        if not failed:
            return out
        self._report(rows, failed)
        kept: list[Any] = []
        for index in range(len(out) // FIELDS):
            if index not in failed:
                kept.extend(out[index * FIELDS : (index + 1) * FIELDS])
        return kept

    def _report(self, rows: list[Any], failed: dict[int, BaseException]) -> None:
        reasons: dict[str, BaseException] = {}
        for index, reason in failed.items():
            reasons.setdefault(rows[index * FIELDS], reason)
        names = sorted(reasons)
        why = "; ".join(f"{name}: {_why(reasons[name])}" for name in names)
        error = InvalidMetricError(
            names[0] if len(names) == 1 else names,
            f"{len(failed)} tensor value(s) could not be read in the writer and are not "
            f"stored ({why})",
        )
        logger.error("pacha: run %s: %s", self.run_label, error)
        self._on_error(error)


def _tensor_type() -> Any:
    """``torch.Tensor`` if torch is imported (pacha never imports it), else ``None``."""
    torch = sys.modules.get("torch")
    return getattr(torch, "Tensor", None) if torch is not None else None


def _why(error: BaseException) -> str:
    if isinstance(error, InvalidMetricError):
        return str(error).split(": ", 1)[-1]  # drop the "metric 'name'" prefix
    return f"{type(error).__name__}: {error}"


def _copy_to_host(device: Any, tensors: list[Any]) -> list[Any] | None:
    """The values of same-device, same-dtype 0-d tensors as Python numbers, or ``None``."""
    import torch

    try:
        _synchronize(torch, device)
        with torch.no_grad():
            host: list[Any] = torch.stack(tensors).cpu().tolist()
    except Exception:
        return None  # the caller reads them one by one to find the bad ones
    return host


def _one_to_host(tensor: Any) -> Any:
    return tensor.detach().cpu().tolist()


def _synchronize(torch: Any, device: Any) -> None:
    """Wait until work queued on *device*, on any stream, is done (so its values are final)."""
    kind = device.type
    if kind == "cpu":
        return
    if kind == "cuda":
        torch.cuda.synchronize(device)
        return
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is None:
        return
    current = accelerator.current_accelerator()
    if current is not None and current.type == kind:
        accelerator.synchronize(device)
