"""pacha-sdk: record machine-learning training runs as open Parquet and JSON.

::

    import pacha_sdk as pacha

    with pacha.run({"learning_rate": 3e-4}, uri="s3://bucket/exp") as run:
        for step in range(1000):
            run.log_metric("loss", 1 / (step + 1), step)

    table = pacha.read_metrics(run.run_id, uri="s3://bucket/exp")
"""

from pacha_sdk._ranks import RankRecord
from pacha_sdk._version import __version__
from pacha_sdk.api import active_run, log_metric, log_metrics, run
from pacha_sdk.artifacts import download_artifact, open_artifact
from pacha_sdk.charts import ExtraNotInstalledError, MetricNotFoundError, plot_metric
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
from pacha_sdk.lineage import Lineage, lineage
from pacha_sdk.maintenance import AmbiguousRunIdError, GcReport, gc, reap, resolve_run_id
from pacha_sdk.models import (
    ArtifactReference,
    ExperimentRun,
    HardwareInfo,
    Hyperparameters,
    HyperparamValue,
    MetricRecord,
    RecipeReference,
    RecipeVersion,
    RunId,
    RunStatus,
)
from pacha_sdk.read import (
    best_run,
    list_runs,
    load_rank_records,
    load_run,
    metrics_dataset,
    read_metrics,
)
from pacha_sdk.report import write_report
from pacha_sdk.run import Run
from pacha_sdk.sync import SyncReport, sync
from pacha_sdk.track import track

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
