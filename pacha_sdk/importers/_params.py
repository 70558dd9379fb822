"""Source parameters to :class:`~pacha_sdk.models.Hyperparameters`, keeping every one.

MLflow stores every param as a string. :func:`param_value` turns a string
into a number or a bool only where the number is exactly what the text says:

* ``"64"`` → ``64``, ``"-3"`` → ``-3`` (ints within 64 bits); ``"064"``, ``"+3"``
  and ``"1_000"`` stay strings (leading zeros and signs mark codes and seeds);
* ``"0.01"``, ``"1e-4"``, ``"2.50"`` → floats, where the float is the decimal
  number the text writes (``"0.1000000000000000055"`` stays a string: a float
  would round it), finite, with a point or an exponent and no leading zero;
* ``"True"``/``"true"`` → ``True``, ``"False"``/``"false"`` → ``False``;
* anything else stays the string it is: ``"adam"``, ``"None"``, ``"nan"``, ``"[1, 2]"``, ``""``.

:func:`build_hyperparameters` then follows DESIGN section 2: a key naming
one of pacha's fields (``learning_rate``, ``batch_size``, ``epochs``,
``weight_decay``, ``max_grad_norm``, ``warmup_steps``) fills it when the
value fits the field (a finite number; a non-negative int for the int
fields, which also take a whole float such as TensorBoard's ``32.0``);
every other key, and a named key whose value does not fit, goes to
``custom`` under its own name, so no param is dropped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic import ValidationError

from pacha_sdk.models import Hyperparameters

if TYPE_CHECKING:
    from pacha_sdk.models import HyperparamValue

__all__ = ["build_hyperparameters", "param_value"]

_INT = re.compile(r"0|-?[1-9][0-9]*")
_DECIMAL = re.compile(r"-?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_BOOLS = {"True": True, "true": True, "False": False, "false": False}
_INT_FIELDS = frozenset({"batch_size", "epochs", "warmup_steps"})


def param_value(text: str) -> HyperparamValue:
    """The value an MLflow param string stands for, where nothing is lost (see above)."""
    if text in _BOOLS:
        return _BOOLS[text]
    if _INT.fullmatch(text):
        number = int(text)
        return number if _I64_MIN <= number <= _I64_MAX else text
    if not _DECIMAL.fullmatch(text) or not ("." in text or "e" in text.lower()):
        return text
    as_float = float(text)
    if math.isfinite(as_float) and Decimal(repr(as_float)) == Decimal(text):
        return as_float
    return text


def _named_value(key: str, value: HyperparamValue) -> float | int | None:
    """*value* as pacha's named field *key* holds it, or ``None`` if it does not fit."""
    if key in _INT_FIELDS and isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        checked = Hyperparameters.model_validate({key: value}, strict=True)
    except ValidationError:
        return None
    result: float | int = getattr(checked, key)
    return result


def build_hyperparameters(values: Mapping[str, HyperparamValue]) -> Hyperparameters:
    """Named fields from the keys that name them and fit; everything else in ``custom``."""
    named: dict[str, float | int] = {}
    custom: dict[str, HyperparamValue] = {}
    for key, value in values.items():
        fitted = _named_value(key, value) if key in Hyperparameters.NAMED else None
        if fitted is None:
            custom[key] = value
        else:
            named[key] = fitted
    return Hyperparameters.model_validate({**named, "custom": custom})
