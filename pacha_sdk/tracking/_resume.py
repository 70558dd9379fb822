"""What a resumed run carries over: the latest value and step of each metric logged before.

A record keeper that attaches to a stored record (``run.json`` or a rank
record) starts from its ``summary`` and ``summary_steps``, topped up with
the part files the record had not counted
(:func:`~pacha_sdk.storage.resume.parts_to_read`). From there:

* automatic steps go on after the last stored step of each name
  (:meth:`Carried.next_steps`), so a resumed loop never logs step 0 again;
* the summary merges by step (:meth:`Carried.merge`): a name logged before
  the resume keeps its value unless a point at the same or a higher step
  arrives, whatever order the points come in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pacha_sdk.exceptions import InvalidMetricError
from pacha_sdk.storage.resume import latest_in_parts, parts_to_read
from pacha_sdk.tracking._coerce import MAX_STEP, LastStep, check_metric_name

if TYPE_CHECKING:
    from pacha_sdk.backends import Backend
    from pacha_sdk.models import RunId, WriterMark
    from pacha_sdk.storage.parts import Latest

__all__ = ["Carried"]


def _json_value(value: float) -> float | None:
    return value if math.isfinite(value) else None  # strict JSON: NaN and inf as null


def _steps(value: object) -> dict[str, int] | None:
    """``summary_steps`` as stored, keeping only real steps; ``None`` if it is not a mapping."""
    if not isinstance(value, Mapping):
        return None
    return {
        str(name): step
        for name, step in value.items()
        if isinstance(step, int) and not isinstance(step, bool) and 0 <= step <= MAX_STEP
    }


@dataclass
class Carried:
    """The latest value of each metric before this process, and its step where known."""

    summary: dict[str, float | None] = field(default_factory=dict)
    steps: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_store(
        cls,
        backend: Backend,
        run_id: RunId,
        *,
        summary: Mapping[str, float | None],
        steps: object,
        mark: WriterMark | None,
        rank: int,
    ) -> Carried:
        """What a stored record says, and what its uncounted part files (of *rank*) add.

        *steps* is the record's ``summary_steps`` as stored (absent or odd
        in records of an older SDK: then every part of *rank* is read).
        """
        known = _steps(steps)
        carried = cls(dict(summary), known or {})
        keys = parts_to_read(backend, run_id, mark, has_steps=known is not None)
        carried.add(latest_in_parts(backend, keys, rank))
        return carried

    def add(self, latest: Latest) -> None:
        """Take each point of *latest* at the same or a higher step than the carried one."""
        for name, (step, value) in latest.items():
            if step >= self.steps.get(name, -1):
                self.summary[name] = _json_value(value)
                self.steps[name] = step

    def merge(self, flushed: Latest) -> tuple[dict[str, float | None], dict[str, int]]:
        """The summary and its steps, with this process's *flushed* points merged by step.

        A carried name without a known step (an older SDK's summary) takes
        the flushed value, as before steps were recorded.
        """
        summary = dict(self.summary)
        steps = dict(self.steps)
        for name, (step, value) in flushed.items():
            if step >= steps.get(name, -1):
                summary[name] = _json_value(value)
                steps[name] = step
        return summary, steps

    def point(self, name: str) -> tuple[int, float] | None:
        """The carried ``(step, value)`` of *name* (step -1 if unknown; NaN for a null value)."""
        if name not in self.summary:
            return None
        value = self.summary[name]
        return self.steps.get(name, -1), math.nan if value is None else float(value)

    def next_steps(self) -> dict[str, int]:
        """The last step of each carried name that logging can go on from."""
        usable: dict[str, int] = {}
        for name, step in self.steps.items():
            try:
                check_metric_name(name)
            except InvalidMetricError:
                continue  # not a name this SDK would log: let logging check it afresh
            usable[name] = LastStep() if step == MAX_STEP else step  # no automatic step after it
        return usable
