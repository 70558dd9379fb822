"""Reading runs back: metrics as Arrow tables, run records, listings.

``read_*`` and ``load_*`` are eager; :func:`metrics_dataset` is the lazy
entry point (a :class:`pyarrow.dataset.Dataset` with filter pushdown) for
stores too large to load. Everything here reads the documented layout
only, so what works here works from DuckDB, Polars or Spark too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pacha_sdk.backends import Backend, get_backend
from pacha_sdk.env import resolve_uri
from pacha_sdk.exceptions import RunNotFoundError
from pacha_sdk.models import ExperimentRun, RankRecord, RecipeReference, RunId, RunStatus
from pacha_sdk.storage import records
from pacha_sdk.storage.layout import METRICS_DIR, metrics_prefix
from pacha_sdk.storage.records import store_errors

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds

__all__ = [
    "best_run",
    "list_runs",
    "load_rank_records",
    "load_run",
    "metrics_dataset",
    "read_metrics",
]


def _backend(uri: str | None, storage_options: Mapping[str, Any] | None) -> Backend:
    return get_backend(resolve_uri(uri), storage_options=storage_options)


def load_run(
    run_id: str, *, uri: str | None = None, storage_options: Mapping[str, Any] | None = None
) -> ExperimentRun:
    """The stored record of *run_id*; :class:`RunNotFoundError` if there is none.

    A run whose process died stays ``running``; its ``is_stale`` property
    tells (heartbeat older than 3 flush intervals).
    """
    return records.load_run(_backend(uri, storage_options), RunId(run_id))


def load_rank_records(
    run_id: str, *, uri: str | None = None, storage_options: Mapping[str, Any] | None = None
) -> list[RankRecord]:
    """The records of the ranks above 0 of a distributed run, by rank.

    Rank 0's record is the run's own (:func:`load_run`); each other rank
    keeps its status, error, heartbeat and summary in
    ``runs/<id>/ranks/<rank>.json``. A run logged by one process has none
    (an empty list). A rank record that cannot be parsed is skipped with a
    warning. Raises :class:`RunNotFoundError` if the store has neither the
    run's record nor any rank record.
    """
    return records.list_rank_records(_backend(uri, storage_options), RunId(run_id))


def _status_set(
    status: RunStatus | str | Iterable[RunStatus | str] | None,
) -> set[RunStatus] | None:
    if status is None:
        return None
    values = [status] if isinstance(status, (str, RunStatus)) else list(status)
    return {RunStatus(value) for value in values}


def _matches_recipe(record: ExperimentRun, recipe: RecipeReference | str | None) -> bool:
    if recipe is None:
        return True
    if record.recipe is None:
        return False
    if isinstance(recipe, RecipeReference):
        return record.recipe == recipe
    return record.recipe.name == recipe


def list_runs(
    *,
    uri: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    status: RunStatus | str | Iterable[RunStatus | str] | None = None,
    recipe: RecipeReference | str | None = None,
) -> list[ExperimentRun]:
    """Every stored run, newest first, optionally only those of a *status* or *recipe*.

    *recipe* is a recipe name or an exact :class:`RecipeReference`. A record
    that cannot be parsed is skipped with a warning; a store that cannot be
    read raises :class:`StoreError` (never an empty list). No Parquet file is
    opened.
    """
    wanted = _status_set(status)
    found = [
        record
        for record in records.list_run_records(_backend(uri, storage_options))
        if (wanted is None or record.status in wanted) and _matches_recipe(record, recipe)
    ]
    found.sort(key=lambda record: record.started_at, reverse=True)
    return found


def best_run(
    metric: str,
    *,
    mode: Literal["max", "min"] = "max",
    uri: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> ExperimentRun | None:
    """The completed run whose latest *metric* is highest (``mode="max"``) or lowest.

    Uses each record's ``extra.summary``, so no Parquet file is read. Runs
    whose latest value is NaN or infinite, or missing, are not candidates.
    """
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    candidates = [
        (value, record)
        for record in list_runs(
            uri=uri, storage_options=storage_options, status=RunStatus.COMPLETED
        )
        if (value := record.summary.get(metric)) is not None
    ]
    if not candidates:
        return None
    pick = max if mode == "max" else min
    return pick(candidates, key=lambda pair: pair[0])[1]


def _names_list(names: str | Sequence[str] | None) -> list[str] | None:
    if names is None:
        return None
    if isinstance(names, str):
        return [names]
    result = list(names)
    if not all(isinstance(name, str) for name in result):
        raise TypeError(f"names must be a str or a list of str, got {names!r}")
    return result


def _run_id_list(run_ids: str | Sequence[str]) -> list[RunId]:
    values = [run_ids] if isinstance(run_ids, str) else list(run_ids)
    return list(dict.fromkeys(RunId(value) for value in values))


def _run_part_paths(backend: Backend, run_ids: list[RunId], root: str) -> list[str]:
    paths: list[str] = []
    for run_id in run_ids:
        if not records.has_run(backend, run_id):
            raise RunNotFoundError(str(run_id), backend.uri)
        keys = records.list_keys(backend, metrics_prefix(run_id))
        paths.extend(f"{root}/{key}" for key in keys if key.endswith(".parquet"))
    return paths


def read_metrics(
    run_ids: str | Sequence[str] | None = None,
    *,
    uri: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    names: str | Sequence[str] | None = None,
) -> pa.Table:
    """Metric points as a :class:`pyarrow.Table` with the part-file schema, one row per point.

    Args:
        run_ids: one run id, a list of them, or ``None`` for every run.
        uri: the store (default ``$PACHA_URI`` else ``./pacha-runs``).
        storage_options: settings for the store's client.
        names: only these metric names (pushed down to the Parquet reader).

    A run without points gives an empty table with the schema; an unknown
    run id raises :class:`RunNotFoundError`. Within a part file rows are
    clustered by name and sorted by step; sort the table for another order.
    """
    import pyarrow.dataset as ds

    from pacha_sdk.storage.schema import METRIC_SCHEMA, empty_metrics_table

    backend = _backend(uri, storage_options)
    wanted = _names_list(names)
    if run_ids is None:
        dataset = metrics_dataset(backend.uri, storage_options=storage_options)
    else:
        filesystem, root = backend.arrow_filesystem()
        paths = _run_part_paths(backend, _run_id_list(run_ids), root)
        if not paths:
            return empty_metrics_table()
        dataset = ds.dataset(paths, schema=METRIC_SCHEMA, format="parquet", filesystem=filesystem)
    flt = ds.field("name").isin(wanted) if wanted is not None else None
    with store_errors(backend, "read", METRICS_DIR, passing=(FileNotFoundError,)):
        return dataset.to_table(filter=flt)


def metrics_dataset(
    uri: str | None = None, *, storage_options: Mapping[str, Any] | None = None
) -> ds.Dataset:
    """Every run's metrics as a lazy, Hive-partitioned :class:`pyarrow.dataset.Dataset`.

    Filters on ``run_id`` prune whole folders and filters on ``name`` or
    ``step`` use Parquet statistics, so one metric across thousands of runs
    reads only what it needs.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    from pacha_sdk.storage.schema import METRIC_SCHEMA

    backend = _backend(uri, storage_options)
    filesystem, root = backend.arrow_filesystem()
    partitioning = ds.partitioning(pa.schema([("run_id", pa.string())]), flavor="hive")
    with store_errors(backend, "read", METRICS_DIR):
        try:
            return ds.dataset(
                f"{root}/{METRICS_DIR}",
                schema=METRIC_SCHEMA,
                format="parquet",
                filesystem=filesystem,
                partitioning=partitioning,
            )
        except FileNotFoundError:  # no run has flushed a point yet
            return ds.dataset([], schema=METRIC_SCHEMA, format="parquet")
