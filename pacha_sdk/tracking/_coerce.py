"""Metric names, values and steps: what the hot path accepts beyond plain floats and ints.

``Run.log_metric`` checks ``type(value) is float`` and a plain non-negative
``int`` step inline; everything else comes here, off the fast path. The
rules, documented in the README: ints exactly representable as float64,
bools (1.0 / 0.0), numpy and torch scalars and 0-d arrays, ``Decimal`` and
``Fraction`` become float64; NaN and infinities stay as they are; steps are
non-negative ints that fit in int64.

The automatic step (last + 1) is checked at no cost to the hot path: a
step of exactly :data:`MAX_STEP` takes the slow path, which keeps it as a
:class:`LastStep`, an ``int`` equal to it whose ``+ 1`` raises
:class:`OverflowError`; ``log_metric`` turns that into an error naming the
metric. Every other step adds one as a plain ``int`` does.
"""

from __future__ import annotations

import math
import operator

from pacha_sdk._names import is_unicode_text
from pacha_sdk.exceptions import InvalidMetricError, MetricTypeError

__all__ = [
    "MAX_STEP",
    "LastStep",
    "check_metric_name",
    "check_seconds",
    "coerce_step",
    "coerce_value",
    "no_next_step",
]

MAX_STEP = 2**63 - 1
"""The largest step the int64 ``step`` column holds."""


class LastStep(int):
    """:data:`MAX_STEP` as a metric's last step: ``+ 1`` raises :class:`OverflowError`.

    The hot path catches that around its ``last + 1`` (nothing else there
    raises it) and raises :func:`no_next_step` naming the metric.
    """

    def __new__(cls) -> LastStep:
        return super().__new__(cls, MAX_STEP)

    def __add__(self, other: object) -> int:
        raise OverflowError(f"no int64 step after {MAX_STEP}")


def no_next_step(name: str) -> InvalidMetricError:
    """The error for an automatic step of *name* past :data:`MAX_STEP`."""
    return InvalidMetricError(
        name,
        f"its last step is {MAX_STEP}, the largest int64: the automatic next step does not "
        "fit; pass step= explicitly",
    )


def check_metric_name(name: object) -> None:
    """Raise unless *name* is a non-empty ``str`` of valid Unicode (checked once per name)."""
    if not isinstance(name, str):
        raise MetricTypeError(name, "metric names must be str")
    if not name:
        raise InvalidMetricError(name, "metric names must not be empty")
    if not is_unicode_text(name):
        raise InvalidMetricError(name, "metric names must be valid Unicode text")


def coerce_value(name: str, value: object) -> float:
    """Convert a metric value that is not a ``float`` to one, or raise naming it.

    ints (exactly representable), bools (1.0 / 0.0), numpy and torch scalars
    and 0-d arrays, ``Decimal`` and ``Fraction`` are accepted; anything else
    (strings, None, lists, arrays with elements) is a :class:`MetricTypeError`.
    """
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int):
        try:
            as_float = float(value)
        except OverflowError:
            as_float = math.inf
        if as_float != value:
            raise InvalidMetricError(name, f"int value {value} does not fit a float64 exactly")
        return as_float
    if getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)):
        item = value.item()  # type: ignore[attr-defined]
        if type(item) is not type(value):  # np.longdouble.item() returns itself
            return coerce_value(name, item)
    if _is_real(value):
        try:
            as_float = float(value)  # type: ignore[arg-type]
        except (ValueError, OverflowError, ArithmeticError) as error:
            raise InvalidMetricError(name, f"value {value!r} is not a float64: {error}") from None
        if math.isinf(as_float) and as_float != value:
            raise InvalidMetricError(name, f"value {value!r} overflows a float64")
        return as_float
    raise MetricTypeError(name, f"value {value!r} ({type(value).__name__}) is not a number")


def _is_real(value: object) -> bool:
    import numbers
    from decimal import Decimal

    return isinstance(value, (numbers.Real, Decimal)) and not isinstance(value, complex)


def coerce_step(name: str, step: object) -> int:
    """Check a step that is not a plain non-negative ``int``; return it as one."""
    if isinstance(step, (bool, float)):
        raise MetricTypeError(name, f"step {step!r} must be an int")
    try:
        as_int = operator.index(step)  # type: ignore[arg-type]
    except TypeError:
        raise MetricTypeError(name, f"step {step!r} must be an int") from None
    if as_int < 0:
        raise InvalidMetricError(name, f"step {as_int} is negative")
    if as_int > MAX_STEP:
        raise InvalidMetricError(name, f"step {as_int} does not fit in int64")
    if as_int == MAX_STEP:
        return LastStep()
    return as_int


def check_seconds(what: str, value: float) -> None:
    """Raise :class:`ValueError` naming *what* unless *value* is a positive finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ValueError(f"{what} must be a positive number of seconds, got {value!r}")
