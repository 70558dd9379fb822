"""Turn what users pass as hyperparameters into a :class:`Hyperparameters`.

``pacha.run({...})`` is strict: a value that is not a JSON value pacha can
store is an error naming the key, raised before anything is written.
``@pacha.track`` is lenient: it leaves such arguments (a model, a data
loader) out, and lists of more than :data:`TRACK_MAX_ITEMS` values too (a
data argument, not a setting). Both share the conversion rules here:

* numpy / torch scalars and 0-d arrays become Python numbers (``.item()``);
* tuples become lists, ``pathlib`` paths strings, enums their value;
* nested mappings flatten to dotted keys (``optimizer.beta1``); two keys
  that flatten to the same name (``{"a.b": 1, "a": {"b": 2}}``) are refused
  rather than one silently replacing the other;
* ``None`` is left out of ``custom``;
* mappings and lists nested deeper than :data:`MAX_NESTING` levels, or that
  contain themselves, are refused (a run.json must stay within serde_json's
  nesting limit, and a cycle has no JSON form at all);
* numbers that every reader of run.json would not read back as the same
  number are refused: NaN and infinities (JSON has none), decimals that are
  not exact floats, ints in ``custom`` beyond ±2**53 (pacha's serde reads
  every custom number as an f64; pass such a value as a ``str``), named ints
  beyond pacha's ``usize``.

A :class:`Hyperparameters` given whole is checked by the same rules, since a
model changed after it was built (``hp.custom["x"] = nan``) skips pydantic.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any

from pacha_sdk._names import is_unicode_text
from pacha_sdk.exceptions import InvalidHyperparameterError
from pacha_sdk.models import Hyperparameters, HyperparamValue
from pacha_sdk.models.recipe import USIZE_MAX

__all__ = [
    "EXACT_INT",
    "MAX_NESTING",
    "TRACK_MAX_ITEMS",
    "build_hyperparameters",
    "check_custom",
    "check_named",
    "flatten",
    "to_hparam_value",
    "update_hyperparameters",
]

MAX_NESTING = 32
"""Most levels of nested mappings, or of nested lists, in one hyperparameter."""
EXACT_INT = 2**53
"""Largest custom int (in magnitude) that pacha, which reads custom numbers as f64, keeps exact."""
TRACK_MAX_ITEMS = 64
"""``@pacha.track`` leaves out a list or tuple argument holding more values than this."""

_FLOAT_FIELDS = frozenset({"learning_rate", "weight_decay", "max_grad_norm"})
_OPTIONAL_FIELDS = frozenset({"max_grad_norm", "warmup_steps"})
_WHAT = "is not a JSON value (float, int, bool, str or a list of those)"
_TWICE = "is given twice: a dotted key and a nested mapping flatten to the same name"
_INEXACT = (
    "int beyond ±2**53: pacha reads custom numbers as float64, where it would become "
    "another number; pass it as a str (str(value)) to keep it exact"
)

_Path = tuple[int, ...]
"""The ids of the mappings and lists a value sits in, outermost first."""


def _enter(key: str, container: object, path: _Path) -> _Path:
    """*path* with *container* added; refuse a cycle or nesting beyond :data:`MAX_NESTING`."""
    if id(container) in path:
        raise InvalidHyperparameterError(key, container, "refers to itself (a cycle)")
    if len(path) >= MAX_NESTING:
        raise InvalidHyperparameterError(
            key, container, f"nests deeper than {MAX_NESTING} levels of mappings and lists"
        )
    return (*path, id(container))


def _check_key(name: str, key: object, value: object) -> str:
    """*key* if it is a non-empty, valid Unicode str; else refuse, naming *name*."""
    if not isinstance(key, str) or not key:
        raise InvalidHyperparameterError(name, value, "keys must be non-empty str")
    if not is_unicode_text(key):
        raise InvalidHyperparameterError(name, value, "keys must be valid Unicode")
    return key


def flatten(mapping: Mapping[Any, Any], prefix: str = "", path: _Path = ()) -> dict[str, Any]:
    """Flatten nested mappings into one level with dotted keys."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        dotted = f"{prefix}{_check_key(f'{prefix}{key!r}', key, value)}"
        if isinstance(value, Mapping):
            inner = flatten(value, dotted + ".", _enter(dotted, value, path))
        else:
            inner = {dotted: value}
        for name, item in inner.items():
            if name in flat:
                raise InvalidHyperparameterError(name, item, _TWICE)
            flat[name] = item
    return flat


def _scalar(key: str, value: Any, path: _Path = ()) -> HyperparamValue:
    """Convert one value (a list item by item), or raise naming *key*; ints of any size."""
    if isinstance(value, str):
        if not is_unicode_text(value):
            raise InvalidHyperparameterError(
                key, value, "str is not valid Unicode (lone surrogate)"
            )
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidHyperparameterError(key, value, "NaN and infinities are not JSON values")
        return float(value)
    if isinstance(value, Enum):
        return _scalar(key, value.value, path)
    if isinstance(value, PurePath):
        return str(value)
    if getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)):
        item = value.item()  # numpy / torch scalars and 0-d arrays
        if type(item) is not type(value):  # np.longdouble.item() returns itself
            return _scalar(key, item, path)
    if isinstance(value, (list, tuple)):
        inner = _enter(key, value, path)
        return [_scalar(key, item, inner) for item in value]
    return _exact_float(key, value)


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


def check_custom(key: str, value: HyperparamValue) -> HyperparamValue:
    """*value* if pacha reads it back as the same value (ints within ±2**53), else refuse."""
    if isinstance(value, list):
        for item in value:
            check_custom(key, item)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > EXACT_INT:
        raise InvalidHyperparameterError(key, value, _INEXACT)
    return value


def check_named(key: str, value: HyperparamValue | None) -> float | int | None:
    """Check a value for one of pacha's named fields (f64, or ``usize`` where pacha has one)."""
    if value is None:
        if key in _OPTIONAL_FIELDS:
            return None
        raise InvalidHyperparameterError(key, value, "must be a number, not None")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidHyperparameterError(key, value, "must be a number")
    if key in _FLOAT_FIELDS:
        return _exact_float(key, value)
    if isinstance(value, float) or value < 0:
        raise InvalidHyperparameterError(key, value, "must be a non-negative int")
    if value > USIZE_MAX:
        raise InvalidHyperparameterError(key, value, "must be at most 2**64 - 1 (pacha's usize)")
    return value


def _leaves(value: HyperparamValue) -> int:
    """How many values a (nested) list holds; 1 for a single value."""
    if isinstance(value, list):
        return sum(_leaves(item) for item in value)
    return 1


def _checked_model(hparams: Hyperparameters) -> Hyperparameters:
    """A copy of *hparams* after the rules of a plain mapping (a model may have been changed).

    Every named field is checked; those the model was given are given to the
    copy, so that its ``model_fields_set`` says the same.
    """
    named = {
        key: check_named(key, to_hparam_value(key, getattr(hparams, key)))
        for key in sorted(hparams.NAMED)
    }
    named = {key: value for key, value in named.items() if key in hparams.model_fields_set}
    custom: dict[str, HyperparamValue] = {}
    for key, raw in hparams.custom.items():
        value = to_hparam_value(_check_key(repr(key), key, raw), raw)
        if value is not None:
            custom[key] = check_custom(key, value)
    return Hyperparameters(**named, custom=custom)


def build_hyperparameters(
    hparams: Hyperparameters | Mapping[str, Any] | None, *, lenient: bool = False
) -> Hyperparameters:
    """Build :class:`Hyperparameters` from a model, a plain mapping or ``None``.

    Keys that name one of pacha's fields fill it; every other key goes to
    ``custom``. With ``lenient=True`` (the decorator), values that cannot be
    stored are left out instead of raising, and so are lists of more than
    :data:`TRACK_MAX_ITEMS` values.
    """
    if hparams is None:
        return Hyperparameters()
    if isinstance(hparams, Hyperparameters):
        return _checked_model(hparams)
    if not isinstance(hparams, Mapping):
        raise InvalidHyperparameterError(
            "hparams", hparams, "must be a pacha.Hyperparameters or a mapping"
        )
    named: dict[str, Any] = {}
    custom: dict[str, HyperparamValue] = {}
    seen: set[str] = set()
    for top_key, top_value in hparams.items():
        if lenient and isinstance(top_value, (list, tuple)) and len(top_value) > TRACK_MAX_ITEMS:
            continue  # data, not a setting: and converting a long list costs time
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
                elif value is not None and not (lenient and _leaves(value) > TRACK_MAX_ITEMS):
                    custom[key] = check_custom(key, value)
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
