"""Turn what users pass as hyperparameters into a :class:`Hyperparameters`.

``pacha.run({...})`` is strict: a value that is not a JSON value pacha can
store is an error naming the key, raised before anything is written.
``@pacha.track`` is lenient: it leaves such arguments (a model, a data
loader) out. Both share the conversion rules here:

* numpy / torch scalars and 0-d arrays become Python numbers (``.item()``);
* tuples become lists, ``pathlib`` paths strings, enums their value;
* nested mappings flatten to dotted keys (``optimizer.beta1``); two keys
  that flatten to the same name (``{"a.b": 1, "a": {"b": 2}}``) are refused
  rather than one silently replacing the other;
* ``None`` is left out of ``custom``;
* numbers that would not survive JSON or pacha's ``i64``/``f64`` are refused
  (NaN, infinities, ints beyond 64 bits, decimals that are not exact floats).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any

from pacha_sdk.exceptions import InvalidHyperparameterError
from pacha_sdk.models import Hyperparameters, HyperparamValue

__all__ = [
    "build_hyperparameters",
    "check_named",
    "flatten",
    "to_hparam_value",
    "update_hyperparameters",
]

_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_FLOAT_FIELDS = frozenset({"learning_rate", "weight_decay", "max_grad_norm"})
_OPTIONAL_FIELDS = frozenset({"max_grad_norm", "warmup_steps"})
_WHAT = "is not a JSON value (float, int, bool, str or a list of those)"
_TWICE = "is given twice: a dotted key and a nested mapping flatten to the same name"


def flatten(mapping: Mapping[Any, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings into one level with dotted keys."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if not isinstance(key, str) or not key:
            raise InvalidHyperparameterError(
                f"{prefix}{key!r}", value, "keys must be non-empty str"
            )
        if not _is_text(key):
            raise InvalidHyperparameterError(
                f"{prefix}{key!r}", value, "keys must be valid Unicode"
            )
        dotted = f"{prefix}{key}"
        inner = flatten(value, dotted + ".") if isinstance(value, Mapping) else {dotted: value}
        for name, item in inner.items():
            if name in flat:
                raise InvalidHyperparameterError(name, item, _TWICE)
            flat[name] = item
    return flat


def _scalar(key: str, value: Any) -> HyperparamValue:
    """Convert one non-list value, or raise naming *key*."""
    if isinstance(value, str):
        if not _is_text(value):
            raise InvalidHyperparameterError(
                key, value, "str is not valid Unicode (lone surrogate)"
            )
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not _I64_MIN <= value <= _I64_MAX:
            raise InvalidHyperparameterError(key, value, "int does not fit in 64 bits")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidHyperparameterError(key, value, "NaN and infinities are not JSON values")
        return float(value)
    if isinstance(value, Enum):
        return _scalar(key, value.value)
    if isinstance(value, PurePath):
        return str(value)
    if getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)):
        item = value.item()  # numpy / torch scalars and 0-d arrays
        if type(item) is not type(value):  # np.longdouble.item() returns itself
            return _scalar(key, item)
    if isinstance(value, (list, tuple)):
        return [_scalar(key, item) for item in value]
    return _exact_float(key, value)


def _is_text(text: str) -> bool:
    """Whether *text* encodes as UTF-8 (no lone surrogates), as JSON needs."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _exact_float(key: str, value: Any) -> float:
    """Accept other real numbers (``Decimal``, ``Fraction``) only if a float holds them exactly."""
    if not isinstance(value, (numbers.Real, Decimal)):  # not complex, bytes, arrays...
        raise InvalidHyperparameterError(key, value, _WHAT)
    try:
        as_float = float(value)
        exact = bool(as_float == value)
    except (TypeError, ValueError, ArithmeticError):
        exact = False
    if not exact:
        raise InvalidHyperparameterError(key, value, _WHAT)
    return _scalar(key, as_float)  # type: ignore[return-value]


def to_hparam_value(key: str, value: Any) -> HyperparamValue | None:
    """Convert *value* to a hyperparameter value; ``None`` stays ``None`` (left out)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and any(item is None for item in value):
        raise InvalidHyperparameterError(key, value, "lists cannot hold None")
    return _scalar(key, value)


def check_named(key: str, value: HyperparamValue | None) -> float | int | None:
    """Check a value for one of pacha's named fields (numbers, ints where pacha has usize)."""
    if value is None:
        if key in _OPTIONAL_FIELDS:
            return None
        raise InvalidHyperparameterError(key, value, "must be a number, not None")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidHyperparameterError(key, value, "must be a number")
    if key in _FLOAT_FIELDS:
        return float(value)
    if isinstance(value, float) or value < 0:
        raise InvalidHyperparameterError(key, value, "must be a non-negative int")
    return value


def build_hyperparameters(
    hparams: Hyperparameters | Mapping[str, Any] | None, *, lenient: bool = False
) -> Hyperparameters:
    """Build :class:`Hyperparameters` from a model, a plain mapping or ``None``.

    Keys that name one of pacha's fields fill it; every other key goes to
    ``custom``. With ``lenient=True`` (the decorator), values that cannot be
    stored are left out instead of raising.
    """
    if hparams is None:
        return Hyperparameters()
    if isinstance(hparams, Hyperparameters):
        return hparams.model_copy(deep=True)
    if not isinstance(hparams, Mapping):
        raise InvalidHyperparameterError(
            "hparams", hparams, "must be a pacha.Hyperparameters or a mapping"
        )
    named: dict[str, Any] = {}
    custom: dict[str, HyperparamValue] = {}
    seen: set[str] = set()
    for top_key, top_value in hparams.items():
        try:
            flat = flatten({top_key: top_value})
            for key, raw in flat.items():
                if key in seen:
                    raise InvalidHyperparameterError(key, raw, _TWICE)
            seen.update(flat)
            for key, raw in flat.items():
                value = to_hparam_value(key, raw)
                if key in Hyperparameters.NAMED:
                    named[key] = check_named(key, value)
                elif value is not None:
                    custom[key] = value
        except InvalidHyperparameterError:
            if not lenient:
                raise
    return Hyperparameters(**named, custom=custom)


def update_hyperparameters(
    current: Hyperparameters, hparams: Hyperparameters | Mapping[str, Any]
) -> Hyperparameters:
    """*current* with the hyperparameters in *hparams* added or replaced (strict rules).

    Only what *hparams* names changes: a named field it gives replaces the
    current one, its custom keys are added or replace theirs, everything
    else stays. Raises :class:`InvalidHyperparameterError` (naming the key)
    before anything changes.
    """
    given = build_hyperparameters(hparams)
    updated = current.model_copy(deep=True)
    for key in sorted(given.model_fields_set & Hyperparameters.NAMED):
        setattr(updated, key, getattr(given, key))
    updated.custom.update(given.custom)
    return updated
