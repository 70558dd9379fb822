"""pacha-sdk: record machine-learning training runs as open Parquet and JSON.

::

    import pacha_sdk as pacha

    with pacha.run({"learning_rate": 3e-4}, uri="s3://bucket/exp") as run:
        for step in range(1000):
            run.log_metric("loss", 1 / (step + 1), step)

    table = pacha.read_metrics(run.run_id, uri="s3://bucket/exp")

Only the exceptions load with the package; every other public name is
imported on first use (PEP 562), so ``import pacha_sdk`` costs a few
milliseconds in code that merely might log: pydantic, the models and the
run machinery load with the first ``pacha.run``, pyarrow with the first
flush or read.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from pacha_sdk._version import __version__
from pacha_sdk.exceptions import (
    ArtifactCorruptedError,
    ArtifactNotFoundError,
    BackendNotInstalledError,
    BucketNotFoundError,
    InvalidHyperparameterError,
    InvalidMetricError,
    InvalidRecordError,
    InvalidRunIdError,
    MetricTypeError,
    NoActiveRunError,
    PachaError,
    RunNotFoundError,
    RunStateError,
    StoreError,
    StorePermissionError,
    UnknownSchemeError,
    UnsafeNameError,
)

if TYPE_CHECKING:
    from pacha_sdk.models import (
        ArtifactReference,
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
    from pacha_sdk.query.lineage import (
        Lineage,
        lineage,
    )
    from pacha_sdk.query.maintenance import (
        AmbiguousRunIdError,
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
    from pacha_sdk.tracking.api import (
        active_run,
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
        ExtraNotInstalledError,
        MetricNotFoundError,
        plot_metric,
    )
    from pacha_sdk.views.report import (
        write_report,
    )

_LAZY: dict[str, str] = {
    "AmbiguousRunIdError": "pacha_sdk.query.maintenance",
    "ArtifactReference": "pacha_sdk.models",
    "ExperimentRun": "pacha_sdk.models",
    "ExtraNotInstalledError": "pacha_sdk.views.charts",
    "GcReport": "pacha_sdk.query.maintenance",
    "HardwareInfo": "pacha_sdk.models",
    "HyperparamValue": "pacha_sdk.models",
    "Hyperparameters": "pacha_sdk.models",
    "Lineage": "pacha_sdk.query.lineage",
    "MetricNotFoundError": "pacha_sdk.views.charts",
    "MetricRecord": "pacha_sdk.models",
    "RankRecord": "pacha_sdk.models",
    "RecipeReference": "pacha_sdk.models",
    "RecipeVersion": "pacha_sdk.models",
    "Run": "pacha_sdk.tracking.run",
    "RunId": "pacha_sdk.models",
    "RunStatus": "pacha_sdk.models",
    "SyncReport": "pacha_sdk.storage.sync",
    "active_run": "pacha_sdk.tracking.api",
    "best_run": "pacha_sdk.query.read",
    "download_artifact": "pacha_sdk.query.artifacts",
    "gc": "pacha_sdk.query.maintenance",
    "lineage": "pacha_sdk.query.lineage",
    "list_runs": "pacha_sdk.query.read",
    "load_rank_records": "pacha_sdk.query.read",
    "load_run": "pacha_sdk.query.read",
    "log_metric": "pacha_sdk.tracking.api",
    "log_metrics": "pacha_sdk.tracking.api",
    "metrics_dataset": "pacha_sdk.query.read",
    "open_artifact": "pacha_sdk.query.artifacts",
    "plot_metric": "pacha_sdk.views.charts",
    "read_metrics": "pacha_sdk.query.read",
    "reap": "pacha_sdk.query.maintenance",
    "resolve_run_id": "pacha_sdk.query.maintenance",
    "run": "pacha_sdk.tracking.api",
    "sync": "pacha_sdk.storage.sync",
    "track": "pacha_sdk.tracking.track",
    "write_report": "pacha_sdk.views.report",
}


def __getattr__(name: str) -> Any:
    """Import a public name on first use and keep it (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pacha_sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Keeps ``pacha.run`` the function when the submodule ``pacha_sdk.tracking.run`` loads.

    Importing a submodule sets it as an attribute of its package; four public
    functions share their names with submodules (``run``, ``track``, ``sync``,
    ``lineage``), and that attribute must stay the function, as it would if
    everything were imported eagerly. The submodules stay in ``sys.modules``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if (
            name in _LAZY
            and isinstance(value, types.ModuleType)
            and value.__name__ == f"{__name__}.{name}"
        ):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


__all__ = [
    "AmbiguousRunIdError",
    "ArtifactCorruptedError",
    "ArtifactNotFoundError",
    "ArtifactReference",
    "BackendNotInstalledError",
    "BucketNotFoundError",
    "ExperimentRun",
    "ExtraNotInstalledError",
    "GcReport",
    "HardwareInfo",
    "HyperparamValue",
    "Hyperparameters",
    "InvalidHyperparameterError",
    "InvalidMetricError",
    "InvalidRecordError",
    "InvalidRunIdError",
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
    "RunId",
    "RunNotFoundError",
    "RunStateError",
    "RunStatus",
    "StoreError",
    "StorePermissionError",
    "SyncReport",
    "UnknownSchemeError",
    "UnsafeNameError",
    "__version__",
    "active_run",
    "best_run",
    "download_artifact",
    "gc",
    "lineage",
    "list_runs",
    "load_rank_records",
    "load_run",
    "log_metric",
    "log_metrics",
    "metrics_dataset",
    "open_artifact",
    "plot_metric",
    "read_metrics",
    "reap",
    "resolve_run_id",
    "run",
    "sync",
    "track",
    "write_report",
]
