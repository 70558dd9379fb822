"""Optuna: one run per trial, nested under one run for the study.

::

    from pacha_sdk.integrations.optuna import PachaStudy

    with PachaStudy(name="lr-sweep") as tracker:
        study.optimize(tracker.track(objective), n_trials=50)

``tracker.track(objective)`` runs each trial inside its own run, nested
under the study's run (``extra.parent_run_id``, also from Optuna's
``n_jobs`` worker threads), so ``pacha.log_metric(...)`` inside the
objective logs into the trial's run. Used as a study callback instead
(``study.optimize(objective, callbacks=[tracker])``), the trial's run is
recorded after the trial, from what Optuna kept.

Logged, per trial: the trial's params as hyperparameters (leniently
converted), tags ``optuna.study`` and ``optuna.trial``, each
``trial.report(value, step)`` as ``intermediate_value`` at its step, and
the objective's value as ``value`` (``value_0``, ``value_1``... for several
objectives; ``metric_name`` renames it), so it is in the run's summary.
Per study: its name, directions, sampler and pruner as hyperparameters,
and each finished trial's ``value`` and the ``best_value`` so far at step =
trial number.

Status, per trial: a returned value completes the run; ``optuna.TrialPruned``
cancels it with the tag ``pruned`` (not ``failed``); an exception fails it
with its message (Optuna's ``catch=`` decides only whether the study goes
on); Ctrl-C cancels it; a value Optuna refuses (``None``, NaN) fails it.
The study's run ends with the ``with`` block as DESIGN's table says, or,
without one, at ``tracker.finish()`` or interpreter exit (``failed`` with
the error that stopped the study, ``cancelled`` for Ctrl-C). Inside an
outer ``with pacha.run()``, that run is the study's run.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import pacha_sdk as pacha
from pacha_sdk.integrations._framework_run import FrameworkRun, check_run_options, missing_framework

try:
    import optuna
except ImportError as error:
    raise missing_framework("Optuna", "optuna") from error

__all__ = ["PachaStudy"]

R = TypeVar("R")


class PachaStudy:
    """The runs of one Optuna study: one for the study, one per trial (see the module doc)."""

    def __init__(
        self,
        *,
        uri: str | None = None,
        name: str | None = None,
        tags: Mapping[str, Any] | Iterable[str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        metric_name: str | Sequence[str] = "value",
        **run_options: Any,
    ) -> None:
        """Keep the runs' options; the study's run opens with the first trial.

        Args:
            uri: the store (default ``$PACHA_URI``, else ``./pacha-runs``).
            name: the study run's display name (default: the study's name).
            tags: tags of the study's run (trial runs get the Optuna tags).
            storage_options: the store's client settings.
            metric_name: the name of the objective's value, or one name per
                objective.
            **run_options: other keywords of :func:`pacha_sdk.run`, for every run.
        """
        self._names = [metric_name] if isinstance(metric_name, str) else list(metric_name)
        self._trial_options = check_run_options(
            {"uri": uri, "storage_options": storage_options, **run_options}
        )
        self._pacha = FrameworkRun(
            "Optuna",
            unfinished="the Optuna study did not finish",
            uri=uri,
            name=name,
            tags=tags,
            storage_options=storage_options,
            **run_options,
        )
        self._lock = threading.Lock()
        self._recorded: set[tuple[str, int]] = set()
        self._best: float | None = None

    @property
    def run(self) -> pacha.Run | None:
        """The study's run, or ``None`` before the first trial."""
        return self._pacha.run

    # The study's run.

    def __enter__(self) -> PachaStudy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish(exc)

    def finish(self, error: BaseException | None = None) -> None:
        """End the study's run: completed, or as DESIGN's table says for *error*."""
        self._pacha.finish(error)

    def _study_run(self, study: optuna.Study) -> pacha.Run:
        with self._lock:
            if self._pacha.run is not None and not self._pacha.run.is_finished:
                return self._pacha.run
            run = self._pacha.open(
                **({} if "name" in self._pacha.options else {"name": study.study_name})
            )
            self._pacha.log_hparams(
                {
                    "study_name": study.study_name,
                    "directions": [direction.name.lower() for direction in study.directions],
                    "sampler": type(study.sampler),
                    "pruner": type(getattr(study, "pruner", None)),
                }
            )
            return run

    # Trials tracked live.

    def track(self, objective: Callable[[optuna.Trial], R]) -> Callable[[optuna.Trial], R]:
        """*objective*, each call of it recorded as a trial run nested under the study's run."""

        @functools.wraps(objective)
        def tracked(trial: optuna.Trial) -> R:
            return self._run_trial(objective, trial)

        return tracked

    def _run_trial(self, objective: Callable[[optuna.Trial], R], trial: optuna.Trial) -> R:
        study = trial.study
        parent = self._study_run(study)
        with pacha.run(**self._options_for(study, trial.number), parent=parent) as run:
            self._recorded.add((study.study_name, trial.number))
            _log_reports(trial, run)
            try:
                value = objective(trial)
            except BaseException as error:
                run.log_hyperparams(trial.params, lenient=True)
                if isinstance(error, optuna.TrialPruned):
                    run.add_tags(["pruned"])
                    run.cancel()
                raise
            run.log_hyperparams(trial.params, lenient=True)
            values = self._log_values(run, value)
            if values is None:
                run.fail(f"the objective returned {value!r}, which Optuna does not accept")
        if values is not None:
            self._log_study_point(study, trial.number, values)
        return value

    def _options_for(self, study: optuna.Study, number: int) -> dict[str, Any]:
        return {
            **self._trial_options,
            "name": f"{study.study_name}-trial-{number}",
            "tags": {"optuna.study": study.study_name, "optuna.trial": str(number)},
        }

    def _log_values(self, run: pacha.Run, value: Any) -> list[float] | None:
        """Log the objective's value(s); ``None`` if Optuna would refuse them."""
        raw = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]
        try:
            values = [float(item) for item in raw]
        except (TypeError, ValueError):
            return None
        if not values or any(math.isnan(item) for item in values):
            return None
        run.log_metrics(dict(zip(self._value_names(len(values)), values)), step=0)
        return values

    def _value_names(self, count: int) -> list[str]:
        if len(self._names) == count:
            return self._names
        return (
            [f"{self._names[0]}_{index}" for index in range(count)]
            if count > 1
            else self._names[:1]
        )

    def _log_study_point(self, study: optuna.Study, number: int, values: list[float]) -> None:
        run = self._study_run(study)
        run.log_metrics(dict(zip(self._value_names(len(values)), values)), step=number)
        if len(values) != 1:
            return
        maximize = study.direction is optuna.study.StudyDirection.MAXIMIZE
        with self._lock:
            best = self._best
            if best is None or (values[0] > best if maximize else values[0] < best):
                self._best = best = values[0]
        run.log_metric("best_value", best, number)

    # Trials recorded afterwards (the tracker as a study callback).

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Study callback: record a finished trial that :meth:`track` did not run."""
        if (study.study_name, trial.number) in self._recorded:
            return
        self._recorded.add((study.study_name, trial.number))
        parent = self._study_run(study)
        with pacha.run(**self._options_for(study, trial.number), parent=parent) as run:
            run.log_hyperparams(trial.params, lenient=True)
            for step, reported in sorted(trial.intermediate_values.items()):
                run.log_metric("intermediate_value", reported, step)
            state = trial.state
            if state is optuna.trial.TrialState.COMPLETE and trial.values is not None:
                values = self._log_values(run, trial.values)
            elif state is optuna.trial.TrialState.PRUNED:
                run.add_tags(["pruned"])
                run.cancel()
                return
            else:
                run.fail(f"Optuna trial {trial.number} ended {state.name.lower()}")
                return
        if values is not None:
            self._log_study_point(study, trial.number, values)


def _log_reports(trial: optuna.Trial, run: pacha.Run) -> None:
    """Make ``trial.report(value, step)`` also log ``intermediate_value`` to *run*."""
    report = trial.report

    def report_and_log(value: float, step: int) -> None:
        report(value, step)  # Optuna checks and stores it first
        run.log_metric("intermediate_value", value, step)

    trial.report = report_and_log  # type: ignore[method-assign]
