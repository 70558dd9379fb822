"""pacha-sdk: record machine-learning training runs as open Parquet and JSON.

::

    import pacha_sdk as pacha

    with pacha.run({"learning_rate": 3e-4}, uri="s3://bucket/exp") as run:
        for step in range(1000):
            run.log_metric("loss", 1 / (step + 1), step)

    table = pacha.read_metrics(run.run_id, uri="s3://bucket/exp")

Every public name is imported on first use (PEP 562), so ``import pacha_sdk``
costs well under a millisecond in code that merely might log: pydantic, the
models and the run machinery load with the first ``pacha.run``, pyarrow with
the first flush or read.

How the face is built, and what keeps it honest:

- :data:`_LAZY` is the one table of public names and the module each comes
  from; :func:`__getattr__` imports from it and caches the value here.
- The same names are imported under ``TYPE_CHECKING``, so type checkers and
  IDEs see the real objects; ``__getattr__`` is hidden from them, so a typo
  such as ``pacha.read_metricz`` fails ``mypy --strict`` instead of being
  ``Any``.
- ``__all__`` lists the table's names and ``__version__``, sorted.
- No submodule of the package is named like a public name (``run`` and
  ``track`` live in :mod:`pacha_sdk.tracking`), so importing a submodule
  never replaces a public attribute.

``tests/test_face.py`` checks that the table, the ``TYPE_CHECKING`` imports
and ``__all__`` agree, and that a typo fails mypy.
"""

from __future__ import annotations

import importlib

from pacha_sdk._version import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~2 ms)
if TYPE_CHECKING:
    from pacha_sdk.exceptions import (
        AmbiguousRunIdError,
        ArtifactCorruptedError,
        ArtifactNotFoundError,
        BackendNotInstalledError,
        BucketNotFoundError,
        ExtraNotInstalledError,
        ImportSourceError,
        InvalidAnnotationError,
        InvalidHyperparameterError,
        InvalidMetricError,
        InvalidPartError,
        InvalidRecordError,
        InvalidRunIdError,
        InvalidUriError,
        MetricNotFoundError,
        MetricTypeError,
        NoActiveRunError,
        PachaError,
        RunDeletedError,
        RunInUseError,
        RunNotFoundError,
        RunStateError,
        StoreError,
        StoreNotFoundError,
        StorePermissionError,
        UnknownSchemeError,
        UnsafeNameError,
    )
    from pacha_sdk.importers import (
        ImportReport,
        import_mlflow,
        import_tensorboard,
    )
    from pacha_sdk.models import (
        ArtifactReference,
        DeletedRun,
        DeletionState,
        ExperimentRun,
        HardwareInfo,
        Hyperparameters,
        HyperparamValue,
        MetricRecord,
        RankRecord,
        RecipeReference,
        RecipeVersion,
        RunId,
        RunStatus,
    )
    from pacha_sdk.query.artifacts import (
        download_artifact,
        open_artifact,
    )
    from pacha_sdk.query.compacting import (
        CompactReport,
        compact,
    )
    from pacha_sdk.query.curation import (
        annotate,
        delete_run,
        list_deleted_runs,
        restore_run,
    )
    from pacha_sdk.query.lineage import (
        Lineage,
        lineage,
    )
    from pacha_sdk.query.maintenance import (
        GcReport,
        gc,
        reap,
        resolve_run_id,
    )
    from pacha_sdk.query.read import (
        best_run,
        list_runs,
        load_rank_records,
        load_run,
        metrics_dataset,
        read_metrics,
    )
    from pacha_sdk.storage.sync import (
        SyncReport,
        sync,
    )
    from pacha_sdk.tracking._lenient import (
        lenient_hparams,
    )
    from pacha_sdk.tracking.api import (
        active_run,
        log_hyperparams,
        log_metric,
        log_metrics,
        run,
    )
    from pacha_sdk.tracking.run import (
        Run,
    )
    from pacha_sdk.tracking.track import (
        track,
    )
    from pacha_sdk.views.charts import (
        plot_metric,
    )
    from pacha_sdk.views.report import (
        write_report,
    )

_LAZY: dict[str, str] = {
    "AmbiguousRunIdError": "pacha_sdk.exceptions",
    "ArtifactCorruptedError": "pacha_sdk.exceptions",
    "ArtifactNotFoundError": "pacha_sdk.exceptions",
    "ArtifactReference": "pacha_sdk.models",
    "BackendNotInstalledError": "pacha_sdk.exceptions",
    "BucketNotFoundError": "pacha_sdk.exceptions",
    "CompactReport": "pacha_sdk.query.compacting",
    "DeletedRun": "pacha_sdk.models",
    "DeletionState": "pacha_sdk.models",
    "ExperimentRun": "pacha_sdk.models",
    "ExtraNotInstalledError": "pacha_sdk.exceptions",
    "GcReport": "pacha_sdk.query.maintenance",
    "HardwareInfo": "pacha_sdk.models",
    "HyperparamValue": "pacha_sdk.models",
    "Hyperparameters": "pacha_sdk.models",
    "ImportReport": "pacha_sdk.importers",
    "ImportSourceError": "pacha_sdk.exceptions",
    "InvalidAnnotationError": "pacha_sdk.exceptions",
    "InvalidHyperparameterError": "pacha_sdk.exceptions",
    "InvalidMetricError": "pacha_sdk.exceptions",
    "InvalidPartError": "pacha_sdk.exceptions",
    "InvalidRecordError": "pacha_sdk.exceptions",
    "InvalidRunIdError": "pacha_sdk.exceptions",
    "InvalidUriError": "pacha_sdk.exceptions",
    "Lineage": "pacha_sdk.query.lineage",
    "MetricNotFoundError": "pacha_sdk.exceptions",
    "MetricRecord": "pacha_sdk.models",
    "MetricTypeError": "pacha_sdk.exceptions",
    "NoActiveRunError": "pacha_sdk.exceptions",
    "PachaError": "pacha_sdk.exceptions",
    "RankRecord": "pacha_sdk.models",
    "RecipeReference": "pacha_sdk.models",
    "RecipeVersion": "pacha_sdk.models",
    "Run": "pacha_sdk.tracking.run",
    "RunDeletedError": "pacha_sdk.exceptions",
    "RunId": "pacha_sdk.models",
    "RunInUseError": "pacha_sdk.exceptions",
    "RunNotFoundError": "pacha_sdk.exceptions",
    "RunStateError": "pacha_sdk.exceptions",
    "RunStatus": "pacha_sdk.models",
    "StoreError": "pacha_sdk.exceptions",
    "StoreNotFoundError": "pacha_sdk.exceptions",
    "StorePermissionError": "pacha_sdk.exceptions",
    "SyncReport": "pacha_sdk.storage.sync",
    "UnknownSchemeError": "pacha_sdk.exceptions",
    "UnsafeNameError": "pacha_sdk.exceptions",
    "active_run": "pacha_sdk.tracking.api",
    "annotate": "pacha_sdk.query.curation",
    "best_run": "pacha_sdk.query.read",
    "compact": "pacha_sdk.query.compacting",
    "delete_run": "pacha_sdk.query.curation",
    "download_artifact": "pacha_sdk.query.artifacts",
    "gc": "pacha_sdk.query.maintenance",
    "import_mlflow": "pacha_sdk.importers",
    "import_tensorboard": "pacha_sdk.importers",
    "lenient_hparams": "pacha_sdk.tracking._lenient",
    "lineage": "pacha_sdk.query.lineage",
    "list_deleted_runs": "pacha_sdk.query.curation",
    "list_runs": "pacha_sdk.query.read",
    "load_rank_records": "pacha_sdk.query.read",
    "load_run": "pacha_sdk.query.read",
    "log_hyperparams": "pacha_sdk.tracking.api",
    "log_metric": "pacha_sdk.tracking.api",
    "log_metrics": "pacha_sdk.tracking.api",
    "metrics_dataset": "pacha_sdk.query.read",
    "open_artifact": "pacha_sdk.query.artifacts",
    "plot_metric": "pacha_sdk.views.charts",
    "read_metrics": "pacha_sdk.query.read",
    "reap": "pacha_sdk.query.maintenance",
    "resolve_run_id": "pacha_sdk.query.maintenance",
    "restore_run": "pacha_sdk.query.curation",
    "run": "pacha_sdk.tracking.api",
    "sync": "pacha_sdk.storage.sync",
    "track": "pacha_sdk.tracking.track",
    "write_report": "pacha_sdk.views.report",
}
"""Every public name (but ``__version__``) and the module that defines it."""

if not TYPE_CHECKING:  # hidden from type checkers: an unknown name must be an error

    def __getattr__(name: str) -> object:
        """Import a public name on first use and keep it (PEP 562)."""
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "AmbiguousRunIdError",
    "ArtifactCorruptedError",
    "ArtifactNotFoundError",
    "ArtifactReference",
    "BackendNotInstalledError",
    "BucketNotFoundError",
    "CompactReport",
    "DeletedRun",
    "DeletionState",
    "ExperimentRun",
    "ExtraNotInstalledError",
    "GcReport",
    "HardwareInfo",
    "HyperparamValue",
    "Hyperparameters",
    "ImportReport",
    "ImportSourceError",
    "InvalidAnnotationError",
    "InvalidHyperparameterError",
    "InvalidMetricError",
    "InvalidPartError",
    "InvalidRecordError",
    "InvalidRunIdError",
    "InvalidUriError",
    "Lineage",
    "MetricNotFoundError",
    "MetricRecord",
    "MetricTypeError",
    "NoActiveRunError",
    "PachaError",
    "RankRecord",
    "RecipeReference",
    "RecipeVersion",
    "Run",
    "RunDeletedError",
    "RunId",
    "RunInUseError",
    "RunNotFoundError",
    "RunStateError",
    "RunStatus",
    "StoreError",
    "StoreNotFoundError",
    "StorePermissionError",
    "SyncReport",
    "UnknownSchemeError",
    "UnsafeNameError",
    "__version__",
    "active_run",
    "annotate",
    "best_run",
    "compact",
    "delete_run",
    "download_artifact",
    "gc",
    "import_mlflow",
    "import_tensorboard",
    "lenient_hparams",
    "lineage",
    "list_deleted_runs",
    "list_runs",
    "load_rank_records",
    "load_run",
    "log_hyperparams",
    "log_metric",
    "log_metrics",
    "metrics_dataset",
    "open_artifact",
    "plot_metric",
    "read_metrics",
    "reap",
    "resolve_run_id",
    "restore_run",
    "run",
    "sync",
    "track",
    "write_report",
]
