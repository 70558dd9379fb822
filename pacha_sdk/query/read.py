"""Reading runs back: metrics as Arrow tables, run records, listings.

``read_*`` and ``load_*`` are eager; :func:`metrics_dataset` is the lazy
entry point (a :class:`pyarrow.dataset.Dataset` with filter pushdown) for
stores too large to load. Everything here reads the documented layout
only, so what works here works from DuckDB, Polars or Spark too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pacha_sdk.exceptions import RunNotFoundError, StoreError
from pacha_sdk.models import ExperimentRun, RankRecord, RecipeReference, RunId, RunStatus
from pacha_sdk.query._bad_parts import BadParts, check_bad_parts
from pacha_sdk.query._store import open_store
from pacha_sdk.query.part_files import list_part_files
from pacha_sdk.storage import annotated, records
from pacha_sdk.storage.layout import METRICS_DIR
from pacha_sdk.storage.trash import missing_run_error

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds

    from pacha_sdk.backends import Backend


__all__ = [
    "best_run",
    "list_runs",
    "load_rank_records",
    "load_run",
    "metrics_dataset",
    "read_metrics",
]


def load_run(
    run_id: str, *, uri: str | None = None, storage_options: Mapping[str, Any] | None = None
) -> ExperimentRun:
    """The stored record of *run_id*; :class:`RunNotFoundError` if there is none.

    Edits made with :func:`pacha_sdk.annotate` (tags, note, name, archived)
    are folded in; an archived run loads like any other, a deleted one
    (in the trash) does not: it raises :class:`RunDeletedError`, a
    :class:`RunNotFoundError` that says to restore it. A run whose process
    died stays ``running``; its ``is_stale`` property tells (heartbeat older
    than 3 flush intervals).
    """
    wanted = RunId(run_id)  # a bad id is the argument's fault, whatever the store
    backend = open_store(uri, storage_options)
    try:
        return annotated.load_run(backend, wanted)
    except RunNotFoundError:
        raise missing_run_error(backend, wanted) from None


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
    wanted = RunId(run_id)
    return records.list_rank_records(open_store(uri, storage_options), wanted)


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
    archived: bool | None = False,
) -> list[ExperimentRun]:
    """The stored runs, newest first, optionally only those of a *status* or *recipe*.

    *recipe* is a recipe name or an exact :class:`RecipeReference`.
    *archived* filters like the others: ``False`` (the default) leaves
    archived runs out, ``True`` lists only them, ``None`` lists every run.
    Edits (:func:`pacha_sdk.annotate`) are folded in; deleted runs are not
    listed (see :func:`pacha_sdk.list_deleted_runs`). A record that cannot
    be parsed is skipped with a warning; a store that cannot be read raises
    :class:`StoreError` (never an empty list). No Parquet file is opened.
    """
    if archived is not None and not isinstance(archived, bool):
        raise TypeError(f"archived must be True, False or None, got {archived!r}")
    wanted = _status_set(status)
    found = [
        record
        for record in annotated.list_run_records(open_store(uri, storage_options))
        if (wanted is None or record.status in wanted)
        and _matches_recipe(record, recipe)
        and (archived is None or record.archived is archived)
    ]
    found.sort(key=lambda record: record.started_at, reverse=True)
    return found


def best_run(
    metric: str,
    *,
    mode: Literal["max", "min"] = "max",
    uri: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    archived: bool | None = False,
) -> ExperimentRun | None:
    """The completed run whose latest *metric* is highest (``mode="max"``) or lowest.

    Uses each record's ``extra.summary``, so no Parquet file is read. Runs
    whose latest value is NaN or infinite, or missing, are not candidates;
    nor are archived runs, unless *archived* says otherwise (as in
    :func:`list_runs`).
    """
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    candidates = [
        (value, record)
        for record in list_runs(
            uri=uri, storage_options=storage_options, status=RunStatus.COMPLETED, archived=archived
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


_LISTING_ATTEMPTS = 3


def read_metrics(
    run_ids: str | Sequence[str] | None = None,
    *,
    uri: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    names: str | Sequence[str] | None = None,
    bad_parts: BadParts | None = None,
) -> pa.Table:
    """Metric points as a :class:`pyarrow.Table` with the part-file schema, one row per point.

    Args:
        run_ids: one run id, a list of them, or ``None`` for every run.
        uri: the store (default ``$PACHA_URI`` else ``./pacha-runs``).
        storage_options: settings for the store's client.
        names: only these metric names (row groups pruned by their statistics).
        bad_parts: what to do with a part file that is not readable (cut
            short, empty, not Parquet, another schema): ``"raise"``
            :class:`InvalidPartError` naming it, or ``"skip"`` it with a
            warning naming it. Default: raise when *run_ids* names the runs
            (you asked for exactly their points), skip when reading every run.

    A run without points gives an empty table with the schema; an unknown
    run id raises :class:`RunNotFoundError`. A distributed run is known by
    its ``run.json`` or by any rank's record, so the points of ranks whose
    rank 0 never wrote ``run.json`` stay readable. Within a part file rows are
    clustered by name and sorted by step; sort the table for another order.
    The part files are found with one listing (per run, for a few runs) and
    fetched side by side: on an object store, many small requests at once.
    """
    from pacha_sdk.query.scan import read_parts

    wanted = _names_list(names)
    ids = None if run_ids is None else _run_id_list(run_ids)
    policy = check_bad_parts(bad_parts or ("skip" if ids is None else "raise"))
    backend = open_store(uri, storage_options)
    if ids is not None:
        missing = [
            run_id
            for run_id in records.missing_runs(backend, ids)
            if not records.has_rank_records(backend, run_id)  # rank 0 may never have written
        ]
        if missing:
            raise RunNotFoundError(str(missing[0]), backend.uri)
    for attempt in range(1, _LISTING_ATTEMPTS + 1):
        try:
            return read_parts(backend, list_part_files(backend, ids), wanted, bad_parts=policy)
        except FileNotFoundError as gone:  # a part replaced meanwhile (merged?): list again
            if attempt == _LISTING_ATTEMPTS:
                raise StoreError(
                    f"could not read {METRICS_DIR} in {backend.uri}: part files kept "
                    f"disappearing while being read ({gone}); try again"
                ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def metrics_dataset(
    uri: str | None = None,
    *,
    storage_options: Mapping[str, Any] | None = None,
    bad_parts: BadParts = "skip",
    check_parts: bool = True,
) -> ds.Dataset:
    """Every run's metrics as a lazy :class:`pyarrow.dataset.Dataset` over the part files.

    Built from one listing of ``metrics/``: each file is a fragment that
    knows its ``run_id`` (so filters on ``run_id`` skip whole runs without
    opening a file) and its size; filters on ``name`` or ``step`` use Parquet
    statistics. On S3 the dataset reads through pyarrow's own S3 client
    where the store's settings map to it (see ``pacha_sdk.backends._s3_arrow``),
    many files at once; elsewhere on an object store through fsspec, a file
    at a time. For one query across many runs on an object store,
    :func:`read_metrics` with ``names=`` is still the fastest: one request
    per part file, fetched side by side.

    Each file's footer is read once here (side by side), so that a part
    file that is not readable is left out with a warning naming it
    (*bad_parts* ``"skip"``) or raises :class:`InvalidPartError`
    (``"raise"``) before any scan can trip on it. Locally that costs about
    0.1 ms a file (the scans reuse the footers); on an object store a
    request per file (a 1,000-part scan on a local SeaweedFS took 1.5x as
    long). ``check_parts=False`` reads no footer here: a bad file then fails
    the scan with pyarrow's error, as a plain ``pyarrow.dataset`` would.
    """
    from pacha_sdk.query._bad_parts import readable_dataset
    from pacha_sdk.query.scan import parts_dataset

    policy = check_bad_parts(bad_parts)
    backend = open_store(uri, storage_options)
    filesystem, root = backend.arrow_filesystem()
    dataset = parts_dataset(list_part_files(backend), filesystem, root)
    if not check_parts:
        return dataset
    with records.store_errors(backend, "read", METRICS_DIR):
        return readable_dataset(dataset, bad_parts=policy, locate=_locator(backend, root))


def _locator(backend: Backend, root: str) -> Callable[[str], str]:
    """Where a file of a dataset is, as messages name it (``<uri>/metrics/...``)."""
    return lambda path: f"{backend.uri}{path.removeprefix(root)}"
