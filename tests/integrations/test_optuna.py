"""Optuna: one run per trial, nested under the study's run."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

import pacha_sdk as pacha
from tests.integrations.children import Child
from tests.integrations.marks import FRAMEWORK_MARKS

pytest.importorskip("optuna", reason="optuna is not installed (pip install '.[frameworks]')")

import optuna

from pacha_sdk.integrations.optuna import PachaStudy

pytestmark = FRAMEWORK_MARKS

optuna.logging.set_verbosity(optuna.logging.WARNING)


def objective(trial: optuna.Trial) -> float:
    """A quadratic in x with an int and a categorical parameter; reports 3 steps."""
    x = trial.suggest_float("x", -4.0, 4.0)
    layers = trial.suggest_int("layers", 1, 3)
    optimizer = trial.suggest_categorical("optimizer", ["adam", "sgd"])
    for step in range(3):
        trial.report((x - 1.0) ** 2 + 1.0 / (step + 1), step)
        pacha.log_metric("inner", float(step * layers))  # into the trial's run
    return (x - 1.0) ** 2 + (0.1 if optimizer == "sgd" else 0.0)


def _points(run_id: str, uri: str, name: str) -> list[tuple[int, float]]:
    table = pacha.read_metrics(run_id, uri=uri, names=[name])
    return sorted(zip(table.column("step").to_pylist(), table.column("value").to_pylist()))


def _trial_runs(uri: str, study_run_id: str) -> dict[int, pacha.ExperimentRun]:
    runs = [run for run in pacha.list_runs(uri=uri) if run.parent_run_id == study_run_id]
    return {int(run.tags["optuna.trial"]): run for run in runs}


def test_each_trial_is_a_nested_run_with_its_params_reports_and_value(store: str) -> None:
    study = optuna.create_study(study_name="quadratic", sampler=optuna.samplers.TPESampler(seed=0))
    with PachaStudy(uri=store, system_metrics=False) as tracker:
        study.optimize(tracker.track(objective), n_trials=4)
    assert tracker.run is not None
    study_record = pacha.load_run(tracker.run.run_id, uri=store)
    assert study_record.status is pacha.RunStatus.COMPLETED
    assert study_record.name == "quadratic"
    assert study_record.hyperparameters.custom["directions"] == ["minimize"]
    assert (
        study_record.hyperparameters.custom["sampler"] == "optuna.samplers._tpe.sampler.TPESampler"
    )

    trials = _trial_runs(store, tracker.run.run_id)
    assert sorted(trials) == [0, 1, 2, 3]
    for frozen in study.trials:
        record = trials[frozen.number]
        assert record.status is pacha.RunStatus.COMPLETED
        assert record.name == f"quadratic-trial-{frozen.number}"
        assert record.tags == {"optuna.study": "quadratic", "optuna.trial": str(frozen.number)}
        assert record.hyperparameters.custom == frozen.params
        assert record.summary["value"] == frozen.value
        assert _points(record.run_id, store, "intermediate_value") == sorted(
            frozen.intermediate_values.items()
        )
        layers = frozen.params["layers"]
        assert _points(record.run_id, store, "inner") == [(s, float(s * layers)) for s in range(3)]
    values = [float(trial.value or 0.0) for trial in study.trials]
    assert _points(tracker.run.run_id, store, "value") == list(enumerate(values))
    best = [min(values[: n + 1]) for n in range(len(values))]
    assert _points(tracker.run.run_id, store, "best_value") == list(enumerate(best))
    assert study_record.summary["best_value"] == study.best_value


def test_a_pruned_trial_is_cancelled_with_a_pruned_tag_and_a_failed_one_fails(store: str) -> None:
    def pruned_or_failing(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if trial.number == 1:
            trial.report(x, 0)
            raise optuna.TrialPruned()
        if trial.number == 2:
            raise ValueError("simulation diverged")
        return x

    study = optuna.create_study(study_name="prune")
    with PachaStudy(uri=store, system_metrics=False) as tracker:
        study.optimize(tracker.track(pruned_or_failing), n_trials=3, catch=(ValueError,))
    assert tracker.run is not None
    trials = _trial_runs(store, tracker.run.run_id)
    assert trials[0].status is pacha.RunStatus.COMPLETED
    assert trials[1].status is pacha.RunStatus.CANCELLED
    assert "pruned" in trials[1].tags
    assert trials[1].hyperparameters.custom == study.trials[1].params
    assert trials[2].status is pacha.RunStatus.FAILED
    assert trials[2].error_message == "ValueError: simulation diverged"
    assert trials[2].hyperparameters.custom == study.trials[2].params
    assert [s for s, _ in _points(tracker.run.run_id, store, "value")] == [0]


def test_n_jobs_threads_still_nest_trials_under_the_study(store: str) -> None:
    study = optuna.create_study(study_name="threads")
    with PachaStudy(uri=store, system_metrics=False) as tracker:
        study.optimize(tracker.track(objective), n_trials=4, n_jobs=2)
    assert tracker.run is not None
    trials = _trial_runs(store, tracker.run.run_id)
    assert sorted(trials) == [0, 1, 2, 3]
    assert all(len(_points(r.run_id, store, "inner")) == 3 for r in trials.values())


def test_as_a_study_callback_it_records_each_trial_afterwards(store: str) -> None:
    def plain(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.report(x / 2, 0)
        if trial.number == 1:
            raise optuna.TrialPruned()
        return x

    tracker = PachaStudy(uri=store, name="sweep", system_metrics=False)
    study = optuna.create_study(study_name="callback")
    study.optimize(plain, n_trials=3, callbacks=[tracker])
    tracker.finish()
    assert tracker.run is not None
    assert pacha.load_run(tracker.run.run_id, uri=store).name == "sweep"
    trials = _trial_runs(store, tracker.run.run_id)
    assert [trials[n].status for n in range(3)] == [
        pacha.RunStatus.COMPLETED,
        pacha.RunStatus.CANCELLED,
        pacha.RunStatus.COMPLETED,
    ]
    assert "pruned" in trials[1].tags
    for frozen in study.trials:
        assert trials[frozen.number].hyperparameters.custom == frozen.params
        assert _points(trials[frozen.number].run_id, store, "intermediate_value") == [
            (0, frozen.params["x"] / 2)
        ]
    assert trials[0].summary["value"] == study.trials[0].value


_CHILD = """
import time
import optuna
from pacha_sdk.integrations.optuna import PachaStudy

def objective(trial):
    x = trial.suggest_float("x", 0.0, 1.0)
    if trial.number == 1:
        if {wait}:
            print("READY", flush=True)
            time.sleep(60)
        raise RuntimeError("cluster lost")
    return x

tracker = PachaStudy(uri={store!r}, name="child-study", system_metrics=False)
optuna.create_study().optimize(tracker.track(objective), n_trials=5)
"""


def _study_and_trials(uri: str) -> tuple[pacha.ExperimentRun, dict[int, pacha.ExperimentRun]]:
    (study,) = [run for run in pacha.list_runs(uri=uri) if run.name == "child-study"]
    return study, _trial_runs(uri, study.run_id)


@pytest.mark.subprocess
def test_an_uncaught_exception_fails_trial_and_study_and_ctrl_c_cancels_both(
    tmp_path: Path,
) -> None:
    failing_store, interrupted_store = str(tmp_path / "failing"), str(tmp_path / "interrupted")
    failing = Child(_CHILD.format(store=failing_store, wait=False), tmp_path, name="optuna_f")
    interrupted = Child(
        _CHILD.format(store=interrupted_store, wait=True), tmp_path, name="optuna_i"
    )
    interrupted.interrupt(signal.SIGINT)

    assert failing.finish().returncode == 1
    study, trials = _study_and_trials(failing_store)
    assert study.status is pacha.RunStatus.FAILED
    assert study.error_message == "RuntimeError: cluster lost"
    assert sorted(trials) == [0, 1]
    assert trials[0].status is pacha.RunStatus.COMPLETED
    assert trials[1].status is pacha.RunStatus.FAILED
    assert trials[1].error_message == "RuntimeError: cluster lost"

    cancelled = interrupted.finish()
    assert cancelled.returncode == -signal.SIGINT  # Python's exit for an uncaught Ctrl-C
    assert "KeyboardInterrupt" in cancelled.stderr
    study, trials = _study_and_trials(interrupted_store)
    assert study.status is pacha.RunStatus.CANCELLED
    assert trials[1].status is pacha.RunStatus.CANCELLED
    assert trials[0].status is pacha.RunStatus.COMPLETED
