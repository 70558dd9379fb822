"""The lenient conversion: any framework config to hyperparameters pacha can store.

Framework configs (``TrainingArguments.to_dict()``, ``model.config``,
Lightning's ``hparams``, an optimizer's ``get_config()``) hold things the
strict rules of ``pacha.run({...})`` refuse: int keys (``id2label``),
classes, enums, callables, ``None`` and the odd NaN. :func:`lenient_hparams`
keeps everything it can and never raises:

* the strict conversions first (numbers, str, bool, lists of those, numpy
  and torch scalars, paths, enums; nested mappings to dotted keys);
* mappings, ``argparse.Namespace`` and dataclass instances flatten to dotted
  keys; keys that are not str become ``str(key)`` (``id2label.0``);
* classes, functions and modules become their qualified name
  (``torch.optim.adamw.AdamW``); other objects their ``repr`` when it is
  short and has no memory address, else their type's qualified name;
  small 1-d arrays become lists; lists holding anything else become their
  ``repr``;
* ``None`` is left out, as in ``pacha.run``;
* what cannot be kept (NaN, infinities, custom ints beyond ±2**53, text that is
  not valid Unicode, empty keys, two keys that end up with the same name,
  a named field such as ``learning_rate`` that is not a number) is left
  out, and one warning lists all of it.

The result always passes the strict rules: ``pacha.run(lenient_hparams(c))``
never raises.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import types
import warnings
from collections.abc import Mapping
from enum import Enum
from typing import Any, NamedTuple

from pacha_sdk._names import is_unicode_text
from pacha_sdk.exceptions import InvalidHyperparameterError
from pacha_sdk.models import Hyperparameters, HyperparamValue
from pacha_sdk.tracking._hparams import check_custom, check_named, to_hparam_value

__all__ = ["convert_leniently", "lenient_hparams"]

MAX_REPR = 200
"""Longest ``repr`` kept for an object; a longer one becomes the type's qualified name."""
MAX_LIST = 1000
"""Longest 1-d array turned into a list."""


def lenient_hparams(config: Any, *, prefix: str = "") -> dict[str, HyperparamValue]:
    """Flat hyperparameters from any framework config; never raises (see the module doc).

    Args:
        config: a mapping, ``argparse.Namespace`` or dataclass instance,
            possibly nested; ``None`` gives ``{}``.
        prefix: put before every key (``"model."`` gives ``model.hidden_size``).

    Returns:
        ``{dotted key: value}``, every value one that ``pacha.run`` and
        :meth:`pacha_sdk.Run.log_hyperparams` accept as it is.
    """
    return convert_leniently(config, prefix=prefix, stacklevel=3)


def convert_leniently(
    config: Any, *, prefix: str = "", stacklevel: int
) -> dict[str, HyperparamValue]:
    """:func:`lenient_hparams`, its warning pointing *stacklevel* frames up."""
    converter = _Converter()
    try:
        if config is not None:
            fields = _fields(config)
            if fields is None:
                converter.skip(prefix.rstrip(".") or "hparams", "is not a mapping")
            else:
                converter.walk(fields, prefix, (id(config),))
    except RecursionError:
        converter.skip(prefix.rstrip(".") or "hparams", "is nested too deeply")
    converter.warn(stacklevel + 1)
    return converter.kept


def _fields(value: Any) -> Mapping[Any, Any] | None:
    """The items of a config container, or ``None`` for a leaf value."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, argparse.Namespace):
        return vars(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    return None


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, Enum):
        return str(key.value)
    try:
        return str(key)
    except Exception:  # a key whose __str__ fails: keep its type's name
        return _qualified(type(key))


def _qualified(thing: Any) -> str:
    """``module.QualName`` of a class, function or module."""
    if isinstance(thing, types.ModuleType):
        return thing.__name__
    module = getattr(thing, "__module__", None)
    name = getattr(thing, "__qualname__", None) or getattr(thing, "__name__", None)
    if not isinstance(name, str):
        return _qualified(type(thing))
    return f"{module}.{name}" if isinstance(module, str) and module != "builtins" else name


class _Converter:
    """Collects the kept values and the reasons for what was left out."""

    def __init__(self) -> None:
        self.kept: dict[str, HyperparamValue] = {}
        self.left_out: list[str] = []

    def skip(self, key: str, reason: str) -> None:
        self.left_out.append(f"{key} ({reason})")

    def warn(self, stacklevel: int) -> None:
        if self.left_out:
            warnings.warn(
                "pacha: hyperparameters left out because they cannot be stored: "
                + "; ".join(self.left_out),
                stacklevel=stacklevel,
            )

    def walk(self, fields: Mapping[Any, Any], prefix: str, path: tuple[int, ...]) -> None:
        for raw_key, value in list(fields.items()):
            key = prefix + _key_text(raw_key)
            if key == prefix or key.endswith("."):
                self.skip(repr(key), "empty key")
                continue
            if not is_unicode_text(key):
                self.skip(repr(key), "key is not valid Unicode")
                continue
            inner = _fields(value)
            if inner is not None:
                if id(value) in path:
                    self.skip(key, "refers to itself")
                else:
                    self.walk(inner, key + ".", (*path, id(value)))
                continue
            self.add(key, value)

    def add(self, key: str, value: Any) -> None:
        if value is None:
            return
        if key in self.kept:
            self.skip(key, "given twice")
            return
        leaf = _leaf(key, value)
        if isinstance(leaf, _Refused):
            converted: HyperparamValue | _Refused | None = leaf
        elif key in Hyperparameters.NAMED:
            converted = _named(key, leaf)
        else:
            converted = _custom(key, leaf)
        if isinstance(converted, _Refused):
            self.skip(key, converted.reason)
        elif converted is not None:
            self.kept[key] = converted


class _Refused(NamedTuple):
    """A value that cannot be kept, and why."""

    reason: str


def _leaf(key: str, value: Any) -> HyperparamValue | _Refused:
    try:
        converted = to_hparam_value(key, value)
    except InvalidHyperparameterError as error:
        return _fallback(value, error)
    except Exception:  # a value whose own conversion methods fail
        return _described(value)
    assert converted is not None
    return converted


def _fallback(value: Any, error: InvalidHyperparameterError) -> HyperparamValue | _Refused:
    """A value the strict rules refuse: describe objects, refuse numbers that do not fit."""
    if isinstance(value, bool | int | float | str) or (
        getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None))
    ):
        return _Refused(_problem(error))
    if isinstance(value, list | tuple | set | frozenset):
        return _sequence(value)
    listed = _small_array(value)
    if listed is not None:
        return listed
    return _described(value)


def _problem(error: InvalidHyperparameterError) -> str:
    """The reason part of a strict refusal (after ``hyperparameter 'k' = v: ``)."""
    return str(error).rsplit(": ", 1)[-1]


def _sequence(value: list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any]) -> HyperparamValue:
    items = list(value)
    if isinstance(value, set | frozenset):
        try:
            items = sorted(items)
        except TypeError:
            return _described(value)
    try:
        converted = to_hparam_value("item", items)
    except Exception:
        return _described(value)
    assert converted is not None
    return converted


def _small_array(value: Any) -> HyperparamValue | None:
    """A short 1-d numpy array or tensor as a list, else ``None``."""
    if getattr(value, "ndim", None) != 1 or not callable(getattr(value, "tolist", None)):
        return None
    try:
        if len(value) > MAX_LIST:
            return None
        return to_hparam_value("item", value.tolist())
    except Exception:
        return None


def _described(value: Any) -> str:
    """Classes, functions, modules: qualified name; other objects: a short repr, else the type."""
    if inspect.isclass(value) or inspect.isroutine(value) or inspect.ismodule(value):
        return _qualified(value)
    try:
        text = repr(value)
    except Exception:
        text = ""
    if not text or len(text) > MAX_REPR or " at 0x" in text or not is_unicode_text(text):
        return _qualified(type(value))
    return text


def _named(key: str, value: HyperparamValue) -> HyperparamValue | _Refused | None:
    """Check a value for one of pacha's named fields; an integral float counts as an int."""
    integral = isinstance(value, float) and math.isfinite(value) and value.is_integer()
    if integral and key in {"batch_size", "epochs", "warmup_steps"}:
        value = int(value)  # type: ignore[arg-type]
    try:
        return check_named(key, value)
    except InvalidHyperparameterError as error:
        return _Refused(_problem(error))


def _custom(key: str, value: HyperparamValue) -> HyperparamValue | _Refused:
    """*value* if pacha reads it back unchanged (ints within ±2**53), else why not."""
    try:
        return check_custom(key, value)
    except InvalidHyperparameterError:
        return _Refused("int beyond ±2**53, which pacha would read as another number")
