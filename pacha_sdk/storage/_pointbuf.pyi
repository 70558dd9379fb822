"""Types of the C extension built from ``_pointbuf.c`` (absent on the pure-Python path)."""

from collections.abc import Callable, Sequence
from typing import Any, final

@final
class PointBuffer:
    """Buffered metric points as columns; ``len()`` counts fields (4 per point)."""

    def __init__(self) -> None: ...
    def __len__(self) -> int: ...
    def extend(self, fields: Sequence[object], /) -> None:
        """Append points given flat (name, value, step, time_ns per point), all or none."""
    def take(self, limit: int | None = None, /) -> PointBuffer:
        """A new buffer with a copy of the oldest points, at most *limit* (``None``: all)."""
    def discard(self, count: int, /) -> None:
        """Forget the oldest *count* points and give unused memory back."""
    def latest(self, name: str, /) -> tuple[int, float] | Any | None:
        """*name*'s ``(step, value)`` at its highest step, ``None``, or ``NotImplemented``.

        ``NotImplemented`` while odd points are held: read those with :meth:`to_rows`.
        """
    def to_rows(self) -> list[Any]:
        """The points as the pure-Python flat list."""
    def columns(self) -> tuple[list[str], bytes, bytes, bytes, bytes]:
        """``(names, codes, values, steps, times)``: the name dictionary, the columns as bytes."""
    @property
    def odd(self) -> int:
        """Points kept as objects beside the columns (tensors, steps beyond int64)."""
    @property
    def points(self) -> int:
        """Points held."""
    @property
    def capacity(self) -> int:
        """Points the columns have room for."""

@final
class FastLog:
    """A run's ``log_metric``: the common case in C, everything else to *slow*."""

    def __init__(self, attrs: dict[str, Any], slow: Callable[..., None], /) -> None: ...
    def __call__(self, name: str, value: Any, step: int | None = None) -> None: ...
    @property
    def slow_path(self) -> Callable[..., None]:
        """The Python method every other case goes to."""
    @property
    def __wrapped__(self) -> Callable[..., None]:
        """The same method: ``inspect.signature`` and ``help`` follow it."""
