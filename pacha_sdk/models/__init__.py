"""The records pacha-sdk stores, mirroring the ``experiment`` and ``recipe`` modules of pacha.

Field names, enum spellings and JSON shapes follow pacha 0.2.5's serde
output, so a ``run.json`` written here loads as pacha's ``ExperimentRun`` and
one written by pacha loads here. Optional fields are left out of JSON when
unset, as pacha's ``skip_serializing_if = "Option::is_none"`` does; times are
RFC 3339 in UTC with a ``Z``.

These models are built when a run starts and ends and when a record is
read, never per metric point: the hot path never touches pydantic.

* :mod:`~pacha_sdk.models.experiment`: :class:`ExperimentRun` (``run.json``) and
  the types it holds (hardware, metric points, artifact references);
* :mod:`~pacha_sdk.models.recipe`: :class:`Hyperparameters` and recipe references;
* :mod:`~pacha_sdk.models.rank`: :class:`RankRecord`, a distributed rank's own record;
* :mod:`~pacha_sdk.models.curation`: :class:`RunAnnotation` (an edit made after the
  fact) and :class:`DeletedRun` (a run in the trash);
* :mod:`~pacha_sdk.models._base`: run ids, statuses, UTC timestamps and the one
  staleness rule both records follow.

The package imports nothing else of pacha_sdk but its exceptions.
"""

from __future__ import annotations

from pacha_sdk.models._base import (
    DEFAULT_FLUSH_INTERVAL,
    STALE_AFTER_FLUSH_INTERVALS,
    RunId,
    RunStatus,
    WriterMark,
    format_timestamp,
    missed_heartbeat,
    seconds_since_beat,
    utc_now,
)
from pacha_sdk.models.curation import DeletedRun, DeletionState, RunAnnotation
from pacha_sdk.models.experiment import (
    ArtifactReference,
    ExperimentRun,
    HardwareInfo,
    MetricRecord,
)
from pacha_sdk.models.rank import RankRecord
from pacha_sdk.models.recipe import (
    Hyperparameters,
    HyperparamValue,
    RecipeReference,
    RecipeVersion,
)

__all__ = [
    "DEFAULT_FLUSH_INTERVAL",
    "STALE_AFTER_FLUSH_INTERVALS",
    "ArtifactReference",
    "DeletedRun",
    "DeletionState",
    "ExperimentRun",
    "HardwareInfo",
    "HyperparamValue",
    "Hyperparameters",
    "MetricRecord",
    "RankRecord",
    "RecipeReference",
    "RecipeVersion",
    "RunAnnotation",
    "RunId",
    "RunStatus",
    "WriterMark",
    "format_timestamp",
    "missed_heartbeat",
    "seconds_since_beat",
    "utc_now",
]
