"""How the SDK backs off between tries of a store write: exponential, capped, jittered.

The writer retries parts with it, and the record keeper the final record;
the jitter source is injectable so a test can make every delay exact.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff from ``base`` up to ``cap`` seconds, with jitter.

    Each delay is drawn between half and all of ``min(cap, base * 2**attempt)``;
    *jitter* is the source of that draw (a number in ``[0, 1)``), so a test can
    make every delay exact.
    """

    base: float = 0.2
    cap: float = 10.0
    jitter: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number *attempt* (0-based)."""
        return min(self.cap, self.base * 2.0**attempt) * (0.5 + self.jitter() / 2)
