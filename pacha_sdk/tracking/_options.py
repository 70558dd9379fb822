"""The run keywords: one list, their defaults and their checks.

``pacha.run(...)``, ``Run(...)`` and ``@pacha.track(...)`` take the same
keywords, declared once as the :class:`RunOptions` ``TypedDict`` and used
as ``**options: Unpack[RunOptions]``, so type checkers and IDEs show each
name and type, and a misspelt keyword fails ``mypy``. Their meaning is
documented once, on :func:`pacha_sdk.run`. At run time :func:`check_options`
applies the defaults and checks every value before anything is written, and
:func:`run_keywords` gives each entry point a signature that lists the
keywords by name (``help()``, Jupyter and ``inspect.signature`` see them).

``@pacha.track`` also leaves out arguments that are not hyperparameter
values (a model, a data loader) instead of refusing them; that leniency is
the decorator's own and no keyword of the others.
"""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, ForwardRef, TypeVar, cast

from typing_extensions import TypedDict

from pacha_sdk._names import check_display_name, tags_dict
from pacha_sdk.models import DEFAULT_FLUSH_INTERVAL, RecipeReference
from pacha_sdk.tracking._coerce import check_seconds
from pacha_sdk.tracking._environment import check_env_vars
from pacha_sdk.tracking._system_metrics import sampling_interval

if TYPE_CHECKING:
    from pacha_sdk.tracking.run import Run

__all__ = [
    "DEFAULTS",
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_FLUSH_ROWS",
    "RunOptions",
    "check_options",
    "run_keywords",
]

DEFAULT_FLUSH_ROWS = 100_000
"""Buffered points that trigger a flush before the interval is up."""
DEFAULT_CLOSE_TIMEOUT = 30.0
"""Seconds a finishing run waits for its last writes before giving up."""


class RunOptions(TypedDict, total=False):
    """The keywords of ``pacha.run``, ``Run`` and ``@pacha.track``; see :func:`pacha_sdk.run`."""

    uri: str | None
    storage_options: Mapping[str, Any] | None
    name: str | None
    recipe: RecipeReference | None
    tags: Mapping[str, Any] | Iterable[str] | None
    run_id: str | None
    flush_interval: float
    flush_rows: int
    close_timeout: float
    rank: int | None
    spool_dir: str | os.PathLike[str] | None
    system_metrics: bool | float
    capture_output: bool
    env_vars: Iterable[str] | None
    handle_sigterm: bool
    compact_parts: bool
    parent: Run | None


DEFAULTS: Final[RunOptions] = {
    "flush_interval": DEFAULT_FLUSH_INTERVAL,
    "flush_rows": DEFAULT_FLUSH_ROWS,
    "close_timeout": DEFAULT_CLOSE_TIMEOUT,
    "system_metrics": True,
    "capture_output": False,
    "handle_sigterm": True,
    "compact_parts": True,
}
"""Every keyword not named here defaults to ``None``."""

_KEYWORDS: Final = tuple(RunOptions.__annotations__)


def check_options(options: RunOptions, caller: str) -> RunOptions:
    """*options* checked, normalized and with every keyword present (defaults filled in).

    Checks what the keywords alone decide; what also depends on the
    environment (``uri``, ``run_id``, ``rank``) is resolved by the run.
    Checking the result again changes nothing, so an entry point may check
    and hand the result to another. Raises :class:`TypeError` for a keyword
    that is not a run keyword (as Python would, naming *caller*), and the
    error of the first bad value.
    """
    for key in options:
        if key not in _KEYWORDS:
            raise TypeError(f"{caller}() got an unexpected keyword argument {key!r}{_hint(key)}")
    given: dict[str, Any] = {key: None for key in _KEYWORDS}
    given.update(DEFAULTS)
    given.update(options)
    _check_writing(given)
    _check_recording(given)
    return cast("RunOptions", given)


def _check_writing(given: dict[str, Any]) -> None:
    """Check and normalize how the run writes: intervals, batch size, spool folder."""
    check_seconds("flush_interval", given["flush_interval"])
    check_seconds("close_timeout", given["close_timeout"])
    flush_rows = given["flush_rows"]
    if isinstance(flush_rows, bool) or not isinstance(flush_rows, int) or flush_rows < 1:
        raise ValueError(f"flush_rows must be a positive int, got {flush_rows!r}")
    given["flush_interval"] = float(given["flush_interval"])
    given["close_timeout"] = float(given["close_timeout"])
    given["spool_dir"] = _spool_dir(given["spool_dir"])


def _check_recording(given: dict[str, Any]) -> None:
    """Check and normalize what the run records: recipe, observers, environment, name, tags."""
    recipe = given["recipe"]
    if recipe is not None and not isinstance(recipe, RecipeReference):
        raise TypeError(f"recipe must be a pacha.RecipeReference, got {recipe!r}")
    for flag in ("capture_output", "handle_sigterm", "compact_parts"):
        if not isinstance(given[flag], bool):
            raise TypeError(f"{flag} must be a bool, got {given[flag]!r}")
    sampling_interval(given["system_metrics"])
    given["env_vars"] = check_env_vars(given["env_vars"])  # read once: it may be an iterator
    if given["name"] is not None:
        check_display_name("run name", given["name"])
    if given["tags"] is not None:
        given["tags"] = tags_dict(given["tags"])  # read once too


def _spool_dir(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        path = os.fspath(value)
        if isinstance(path, str):
            return path
    raise TypeError(f"spool_dir must be a folder path (str or os.PathLike), got {value!r}")


def _hint(key: str) -> str:
    close = difflib.get_close_matches(key, _KEYWORDS, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


F = TypeVar("F", bound=Callable[..., Any])


def run_keywords(function: F) -> F:
    """Give *function* a signature with the run keywords by name in place of ``**options``.

    Static tools read ``**options: Unpack[RunOptions]`` from the source;
    this is for the ones that look at the live object (``help()``,
    Jupyter, ``inspect.signature``).
    """
    signature = inspect.signature(function)
    parameters = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    for key, annotation in RunOptions.__annotations__.items():
        if isinstance(annotation, ForwardRef):
            annotation = annotation.__forward_arg__
        default = DEFAULTS.get(key)
        parameters.append(
            inspect.Parameter(
                key, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
            )
        )
    function.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return function
