"""Import MLflow runs: ``pacha.import_mlflow("./mlruns")`` or ``pacha import mlflow SOURCE``.

The source is read with MLflow's own client (``pip install 'pacha-sdk[import]'``):
an ``mlruns`` folder, an SQLite database or a tracking server (see
:mod:`pacha_sdk.importers._mlflow_source`). Each active MLflow run becomes
one pacha run whose id is ``uuid5`` of the MLflow run id, so importing again
finds the runs already imported and adds only what is new.

How a run maps (the README's "Importing from MLflow and TensorBoard" has the table):

* params → hyperparameters, every one kept (:mod:`pacha_sdk.importers._params`);
* tags → ``extra.tags``; ``mlflow.runName`` → the name, ``mlflow.parentRunId``
  → ``extra.parent_run_id`` (the parent's pacha id), ``mlflow.source.git.commit``
  → ``git_commit``; every other ``mlflow.*`` tag → ``extra.source.tags``;
* status FINISHED / FAILED / KILLED / RUNNING / SCHEDULED → completed / failed
  / cancelled / running / pending; start and end times as MLflow has them;
* each metric's full history: steps, values (NaN and infinities too) and
  millisecond timestamps, exactly; a point with a negative step (MLflow
  allows them, pacha's steps are not negative) is left out and counted;
* artifacts, and the models MLflow 3 logs beside a run, copied
  content-addressed (``artifacts=False`` skips them);
* ``extra.source``: ``system``, ``run_id``, ``experiment_id``,
  ``experiment_name``, ``user_id``.

Deleted runs and experiments are not imported (unless an experiment is
named); a run deleted in MLflow after its import stays in pacha.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pacha_sdk._names import check_display_name
from pacha_sdk.backends import get_backend
from pacha_sdk.env import resolve_uri
from pacha_sdk.exceptions import ExtraNotInstalledError, ImportSourceError, UnsafeNameError
from pacha_sdk.importers._ingest import Ingest, SourceArtifact, SourceRun, imported_run_id
from pacha_sdk.importers._mlflow_artifacts import (
    ArtifactReader,
    error_text,
    logged_models,
)
from pacha_sdk.importers._mlflow_source import MlflowSource, mlflow_environment, open_source
from pacha_sdk.importers._params import build_hyperparameters, param_value
from pacha_sdk.importers._report import ImportReport
from pacha_sdk.importers._store import ImportStore, Point
from pacha_sdk.models import ExperimentRun, RunStatus

if TYPE_CHECKING:
    from pacha_sdk.importers._report import ImportProgress

__all__ = ["import_mlflow"]

_STATUS = {
    "FINISHED": RunStatus.COMPLETED,
    "FAILED": RunStatus.FAILED,
    "KILLED": RunStatus.CANCELLED,
    "RUNNING": RunStatus.RUNNING,
    "SCHEDULED": RunStatus.PENDING,
}
_RUN_NAME = "mlflow.runName"
_PARENT = "mlflow.parentRunId"
_GIT_COMMIT = "mlflow.source.git.commit"
_MAPPED_TAGS = frozenset({_RUN_NAME, _PARENT})
_PAGE = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
NEGATIVE_STEP = "points with a negative step"


def _require_mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise ExtraNotInstalledError(
            "MLflow imports", package="mlflow-skinny", extra="import"
        ) from None
    return mlflow


def _from_ms(millis: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=millis)


# experiments and runs


def _experiments(client: Any, source: MlflowSource, wanted: Sequence[str] | None) -> list[Any]:
    """The experiments to import: those named (by name or id), else every active one."""
    from mlflow.entities import ViewType

    if not wanted:
        found: list[Any] = []
        token = None
        while True:
            page = client.search_experiments(
                view_type=ViewType.ACTIVE_ONLY, max_results=_PAGE, page_token=token
            )
            found.extend(page)
            token = page.token
            if not token:
                return sorted(found, key=lambda e: str(e.experiment_id))
    chosen = []
    for name_or_id in dict.fromkeys(wanted):
        experiment = client.get_experiment_by_name(name_or_id)
        if experiment is None:
            try:
                experiment = client.get_experiment(name_or_id)
            except Exception:  # MLflow raises its own error, or a ValueError for a bad id
                experiment = None
        if experiment is None:
            raise ImportSourceError(
                source.display, f"has no experiment named or numbered {name_or_id!r}"
            )
        chosen.append(experiment)
    return chosen


def _search_runs(client: Any, experiment_id: str) -> list[Any]:
    from mlflow.entities import ViewType

    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], run_view_type=ViewType.ACTIVE_ONLY, max_results=_PAGE, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _runs_one_by_one(client: Any, root: Path, experiment_id: str) -> list[Any]:
    """A file store's runs, each read alone: one broken run does not hide the others.

    MLflow's search reads every run of an experiment at once and fails
    whole on one corrupt file; its run folders are listed here instead.
    """
    entries: list[Any] = []
    for meta in sorted((root / experiment_id).glob("*/meta.yaml")):
        run_id = meta.parent.name
        try:
            run = client.get_run(run_id)
        except Exception as error:  # anything MLflow raises skips the run only
            entries.append((run_id, error_text(error)))
            continue
        if run.info.lifecycle_stage == "active":
            entries.append(run)
    return entries


def _runs(client: Any, source: MlflowSource, experiment: Any) -> list[Any]:
    """The experiment's active runs; a run that cannot be read is ``(run_id, reason)``."""
    try:
        return _search_runs(client, experiment.experiment_id)
    except Exception as error:
        if source.root is None:
            return [(f"experiment {experiment.name}", error_text(error))]
        return _runs_one_by_one(client, source.root, str(experiment.experiment_id))


# one run


def _history(client: Any, run_id: str, keys: Sequence[str]) -> tuple[list[Point], int]:
    """Every point of every metric of the run; and how many had a negative step."""
    points: list[Point] = []
    negative = 0
    for key in keys:
        for metric in client.get_metric_history(run_id, key):
            if metric.step < 0:
                negative += 1
                continue
            points.append(
                Point(key, int(metric.step), float(metric.value), int(metric.timestamp) * 1000)
            )
    return points, negative


def _name(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return check_display_name("run name", name)
    except UnsafeNameError:
        return None


def _record(run: Any, experiment: Any, points: Sequence[Point]) -> ExperimentRun:
    info, data = run.info, run.data
    tags: Mapping[str, str] = data.tags
    extra: dict[str, Any] = {}
    name = _name(info.run_name or tags.get(_RUN_NAME))
    if name is not None:
        extra["name"] = name
    user_tags = {k: tags[k] for k in sorted(tags) if not k.startswith("mlflow.")}
    if user_tags:
        extra["tags"] = user_tags
    if tags.get(_PARENT):
        extra["parent_run_id"] = str(imported_run_id("mlflow", tags[_PARENT]))
    extra["source"] = {
        "system": "mlflow",
        "run_id": info.run_id,
        "experiment_id": str(info.experiment_id),
        "experiment_name": experiment.name,
        "user_id": info.user_id or None,
        "tags": {
            k: tags[k] for k in sorted(tags) if k.startswith("mlflow.") and k not in _MAPPED_TAGS
        },
    }
    if info.start_time is not None:
        started = _from_ms(info.start_time)
    else:
        started = _EPOCH + timedelta(microseconds=min((p.micros for p in points), default=0))
    status = _STATUS.get(str(info.status), RunStatus.RUNNING)
    finished = _from_ms(info.end_time) if info.end_time is not None and status.is_finished else None
    return ExperimentRun(
        run_id=imported_run_id("mlflow", info.run_id),
        hyperparameters=build_hyperparameters(
            {key: param_value(data.params[key]) for key in sorted(data.params)}
        ),
        started_at=started,
        finished_at=finished,
        status=status,
        git_commit=tags.get(_GIT_COMMIT) or None,
        extra=extra,
    )


def _source_run(
    client: Any,
    run: Any,
    experiment: Any,
    artifacts: ArtifactReader | None,
    models: Sequence[Any],
) -> SourceRun:
    info = run.info
    points, negative = _history(client, info.run_id, sorted(run.data.metrics))
    files: list[SourceArtifact] | None = None
    if artifacts is not None:
        experiment_id = str(info.experiment_id)
        files = artifacts.files(info.artifact_uri, experiment_id, "")
        named: set[str] = set()
        for model in sorted(models, key=lambda m: str(m.model_id)):
            label = model.name if model.name and model.name not in named else model.model_id
            named.add(label)
            files += artifacts.files(model.artifact_location, experiment_id, f"models/{label}/")
    ignored = Counter({NEGATIVE_STEP: negative}) if negative else Counter[str]()
    return SourceRun(
        source_id=info.run_id,
        run_id=imported_run_id("mlflow", info.run_id),
        record=_record(run, experiment, points),
        points=points,
        artifacts=files,
        ignored=ignored,
    )


def import_mlflow(
    source: str | os.PathLike[str],
    *,
    experiments: Sequence[str] | None = None,
    uri: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    artifacts: bool = True,
    progress: ImportProgress | None = None,
) -> ImportReport:
    """Import the runs of an MLflow store into a pacha store; return what was done.

    Args:
        source: an ``mlruns`` folder (or ``file://`` URI), ``sqlite:///path/mlflow.db``
            (or the database file's path), or a tracking server URL.
        experiments: only these experiments, each by name or id (default: every active one).
        uri: the pacha store (default ``$PACHA_URI``, else ``./pacha-runs``).
        storage_options: settings for the pacha store's client.
        artifacts: copy the runs' artifacts (content-addressed) too.
        progress: called as ``progress(runs_done, runs_total, points_written)``.

    A source that does not exist or is not an MLflow store raises
    :class:`ImportSourceError` before anything is written. A run that
    cannot be read (a corrupt metric file) is skipped and listed in
    :attr:`ImportReport.skipped`; the others are imported. A store that
    cannot be written raises :class:`~pacha_sdk.exceptions.StoreError`;
    importing again completes what was left.
    """
    checked = open_source(source)
    _require_mlflow()
    store = ImportStore(get_backend(resolve_uri(uri), storage_options=storage_options))
    report = ImportReport(source=checked.display, system="mlflow")
    ingest = Ingest(store, report, progress)
    with mlflow_environment(checked) as tracking_uri:
        from mlflow import MlflowClient

        try:
            client = MlflowClient(tracking_uri=tracking_uri)
            chosen = _experiments(client, checked, experiments)
            listed = [(e, r) for e in chosen for r in _runs(client, checked, e)]
        except ImportSourceError:
            raise
        except Exception as error:  # MLflow's errors for a store it cannot read
            raise ImportSourceError(checked.display, error_text(error)) from error
        ingest.total = len(listed)
        reader = ArtifactReader(tracking_uri, checked) if artifacts else None
        model_cache: dict[str, dict[str, list[Any]]] = {}
        for experiment, run in listed:
            if isinstance(run, tuple):
                ingest.skip(*run)
                continue
            experiment_id = str(experiment.experiment_id)
            if artifacts and experiment_id not in model_cache:
                model_cache[experiment_id] = logged_models(client, experiment_id, report.ignored)
            models = model_cache.get(experiment_id, {}).get(run.info.run_id, [])
            try:
                source_run = _source_run(client, run, experiment, reader, models)
            except Exception as error:  # a run MLflow cannot read is skipped
                ingest.skip(run.info.run_id, error_text(error))
                continue
            ingest.add(source_run)
    return report
