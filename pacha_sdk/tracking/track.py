"""``@pacha.track``: each call of the decorated function is one run.

The call's arguments, bound to the signature with defaults applied, become
the run's hyperparameters; arguments that are not hyperparameter values (a
model, a data loader) are left out, never an error, and so are lists and
tuples of more than 64 values (``_hparams.TRACK_MAX_ITEMS``: data passed as
an argument, not a setting). ``hparams=`` overrides that. Works on plain
and ``async def`` functions; the run completes, fails (re-raising) or is
cancelled exactly as with ``with pacha.run(...)``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from typing_extensions import Unpack

from pacha_sdk.tracking._hparams import build_hyperparameters
from pacha_sdk.tracking._options import RunOptions, check_options, run_keywords
from pacha_sdk.tracking.run import Run

if TYPE_CHECKING:
    from pacha_sdk.models import Hyperparameters

__all__ = ["track"]

F = TypeVar("F", bound=Callable[..., Any])


def call_arguments(
    signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The call's arguments by parameter name, defaults applied, ``**kwargs`` merged in."""
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    values: dict[str, Any] = {}
    for parameter in signature.parameters.values():
        value = bound.arguments.get(parameter.name)
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            values.update(value or {})
        elif parameter.kind is not inspect.Parameter.VAR_POSITIONAL:
            values[parameter.name] = value
    return values


@overload
def track(func: F, /) -> F: ...


@overload
def track(
    func: None = None,
    /,
    *,
    hparams: Hyperparameters | Mapping[str, Any] | None = None,
    **options: Unpack[RunOptions],
) -> Callable[[F], F]: ...


@run_keywords
def track(
    func: F | None = None,
    /,
    *,
    hparams: Hyperparameters | Mapping[str, Any] | None = None,
    **options: Unpack[RunOptions],
) -> F | Callable[[F], F]:
    """Record each call of the decorated function as a run.

    Use it bare (``@pacha.track``) or with options (``@pacha.track(uri=...)``).

    Inside the function, :func:`pacha_sdk.log_metric` logs to the call's run
    and :func:`pacha_sdk.active_run` returns it. The run's name defaults to
    the function's qualified name. The keywords are those of :func:`pacha_sdk.run`,
    checked here, when the function is decorated; as there, an outermost call
    attaches to ``$PACHA_RUN_ID`` when it is set and *rank* defaults to
    ``$RANK`` / ``$SLURM_PROCID`` (distributed training). With ``run_id=``
    every call attaches to that one run.
    """
    checked = check_options(options, "track")  # once: tags and env_vars may be iterators

    def decorate(function: F) -> F:
        if inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function):
            raise TypeError(
                f"@pacha.track cannot wrap the generator function {function.__qualname__}"
            )
        signature = inspect.signature(function)
        name = checked["name"] if checked["name"] is not None else function.__qualname__
        run_options: RunOptions = {**checked, "name": name}

        def new_run(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Run:
            if hparams is not None:
                return Run(hparams, **run_options)
            try:
                arguments = call_arguments(signature, args, kwargs)
            except TypeError:
                arguments = {}  # the call itself will raise Python's own TypeError
            # Lenient, unlike pacha.run: arguments that are no hyperparameter values are left out.
            return Run(build_hyperparameters(arguments, lenient=True), **run_options)

        if inspect.iscoroutinefunction(function):
            async_function = cast("Callable[..., Awaitable[Any]]", function)

            @functools.wraps(function)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with new_run(args, kwargs):
                    return await async_function(*args, **kwargs)

            return cast("F", async_wrapper)

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with new_run(args, kwargs):
                return function(*args, **kwargs)

        return cast("F", wrapper)

    if func is not None:
        return decorate(func)
    return decorate
