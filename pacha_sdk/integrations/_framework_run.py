"""What every framework integration shares: the pacha run behind a logger or a callback.

A :class:`FrameworkRun` opens the run when the framework starts (or
attaches to the active ``with pacha.run()`` block, whose status it then
leaves alone), logs the framework's numbers at the framework's step, and
ends the run with the status of what really happened:

* the framework's own end hook: ``completed``;
* an exception the framework reports (Lightning does): ``failed`` with its
  message, ``cancelled`` for Ctrl-C and SIGTERM;
* frameworks without an exception hook (Keras, Hugging Face, XGBoost...):
  an uncaught exception reaches the interpreter, and at exit the run ends
  as DESIGN's table says for it (``failed`` with the message, ``cancelled``
  for Ctrl-C); if the training call never reached its end hook and nothing
  was uncaught (the caller caught the error), the run is ``failed`` with a
  message saying so; a run still open at exit otherwise ``completed``.

Only the public face of the SDK is used here, as for every integration.
"""

from __future__ import annotations

import atexit
import inspect
import sys
import threading
import warnings
from collections.abc import Mapping
from typing import Any

import pacha_sdk as pacha

__all__ = ["FrameworkRun", "missing_framework"]

_RUN_KEYWORDS = frozenset(inspect.signature(pacha.run).parameters) - {"hparams"}


def missing_framework(integration: str, package: str) -> ImportError:
    """The error an integration module raises when its framework is not installed."""
    return pacha.ExtraNotInstalledError(
        f"runs from {integration}", extra="frameworks", package=package
    )


def check_run_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """*options* for :func:`pacha_sdk.run`; an unknown keyword is a ``TypeError`` now, not later."""
    unknown = sorted(set(options) - _RUN_KEYWORDS)
    if unknown:
        raise TypeError(
            f"unknown run option(s) {', '.join(unknown)}; pacha.run takes "
            + ", ".join(sorted(_RUN_KEYWORDS))
        )
    return {key: value for key, value in options.items() if value is not None}


class FrameworkRun:
    """The pacha run of one integration object (a Lightning logger, a Keras callback...)."""

    def __init__(self, framework: str, *, unfinished: str, **run_options: Any) -> None:
        """Keep the options; no run is opened before the framework starts.

        Args:
            framework: the framework's name, for messages.
            unfinished: the error message of a run whose training call never
                reached its end hook (``"Keras fit() did not finish"``).
            **run_options: keywords of :func:`pacha_sdk.run`.
        """
        self.framework = framework
        self.options = check_run_options(run_options)
        self.run: pacha.Run | None = None
        """The run logged into (owned or attached), once the framework started."""
        self.owned = False
        """Whether this object opened the run (and so ends it)."""
        self.training = False
        """Whether a training call began and has not reached its end hook."""
        self._unfinished = unfinished
        self._not_numbers: set[str] = set()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (``ddp_spawn``, multiprocessing): options only; a child opens its own run."""
        state = self.__dict__.copy()
        state.update(run=None, owned=False, training=False, _lock=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def open(self, **overrides: Any) -> pacha.Run:
        """The run to log into: the open one, the active ``with`` block's, or a new one."""
        with self._lock:
            run = self.run
            if run is not None and not run.is_finished:
                return run
            active = pacha.active_run()
            if active is not None:
                self.run, self.owned = active, False
                return active
            run = pacha.run(**{**self.options, **overrides})
            self.run, self.owned = run, True
            atexit.register(self._at_exit)
            return run

    def begin(self, **overrides: Any) -> pacha.Run:
        """A training call begins: end a run left open by an earlier one, then :meth:`open`."""
        if self.owned and self.run is not None and not self.run.is_finished:
            self._end_left_open()
        run = self.open(**overrides)
        self.training = True
        return run

    def log(self, metrics: Mapping[Any, Any], step: int | None, *, prefix: str = "") -> None:
        """Log the framework's numbers at its *step*; other values: one warning per name."""
        run = self.open()
        for name, value in metrics.items():
            key = f"{prefix}{name}"
            try:
                run.log_metric(key, value, step)
            except pacha.InvalidMetricError as error:
                if key not in self._not_numbers:
                    self._not_numbers.add(key)
                    warnings.warn(
                        f"pacha: {self.framework} logged {key}={value!r}, which is not stored "
                        f"({error})",
                        stacklevel=3,
                    )

    def log_hparams(self, config: Any, named: Mapping[str, Any] | None = None) -> None:
        """Add a framework config (leniently) and pacha's named fields the framework knows."""
        run = self.open()
        run.log_hyperparams(config, lenient=True)
        if named:
            run.log_hyperparams(
                {key: value for key, value in named.items() if value is not None}, lenient=True
            )

    def finish(self, error: BaseException | None = None) -> None:
        """End an owned run: completed without *error*, else as DESIGN's table says for it."""
        self.training = False
        run = self.run
        if run is None or not self.owned or run.is_finished:
            return
        run.finish_for(error)
        atexit.unregister(self._at_exit)

    def cancel(self) -> None:
        """End the run ``cancelled`` (Ctrl-C, SIGTERM), even one attached to a ``with`` block.

        Frameworks that catch Ctrl-C and exit with ``sys.exit(1)`` would
        otherwise leave the block to record ``failed``; the first final
        status wins.
        """
        self.training = False
        run = self.run
        if run is not None and not run.is_finished:
            run.cancel()
            if self.owned:
                atexit.unregister(self._at_exit)

    def _end_left_open(self) -> None:
        run = self.run
        assert run is not None
        if self.training:
            uncaught = getattr(sys, "last_value", None)  # set by IPython for a failed cell
            if uncaught is not None:
                run.finish_for(uncaught)
            else:
                run.fail(self._unfinished)
        else:
            run.complete()
        atexit.unregister(self._at_exit)

    def _at_exit(self) -> None:
        """Interpreter exit: end an owned run still open (runs before pacha's own exit hook)."""
        run = self.run
        if run is None or run.is_finished:
            return
        uncaught = getattr(sys, "last_value", None)
        if uncaught is not None:
            run.finish_for(uncaught)
        elif self.training:
            run.fail(self._unfinished)
        else:
            run.complete()
