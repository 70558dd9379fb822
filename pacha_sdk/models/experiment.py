"""The run record, as pacha's ``experiment`` module: ``runs/<run_id>/run.json``."""

from __future__ import annotations

import math
from datetime import datetime

from pydantic import ConfigDict, Field, JsonValue, NonNegativeInt

from pacha_sdk.models._base import (
    DEFAULT_FLUSH_INTERVAL,
    Model,
    RunId,
    RunStatus,
    UtcDatetime,
    missed_heartbeat,
    parse_timestamp,
    utc_now,
)
from pacha_sdk.models.recipe import Hyperparameters, RecipeReference

__all__ = ["ArtifactReference", "ExperimentRun", "HardwareInfo", "MetricRecord"]


class HardwareInfo(Model):
    """Hardware a run used; every field is left out of JSON when unknown."""

    cpu_model: str | None = None
    """CPU model."""
    cpu_cores: NonNegativeInt | None = None
    """Number of CPU cores."""
    ram_gb: NonNegativeInt | None = None
    """RAM in GB."""
    gpu_model: str | None = None
    """GPU model."""
    gpu_count: NonNegativeInt | None = None
    """Number of GPUs."""


class MetricRecord(Model):
    """One metric point, as pacha's ``MetricRecord`` (points are stored in Parquet)."""

    name: str
    """Metric name."""
    value: float
    """Metric value; NaN and infinities are legal."""
    step: NonNegativeInt
    """Training step."""
    timestamp: UtcDatetime = Field(default_factory=utc_now)
    """When the point was logged."""


class ArtifactReference(Model, frozen=True):
    """A content-addressed artifact a run produced."""

    artifact_type: str
    """Artifact type, e.g. ``"model"`` or ``"checkpoint"``."""
    name: str
    """Artifact name."""
    content_hash: str
    """BLAKE3 hex digest of the content."""


class ExperimentRun(Model):
    """A training run's record: the content of ``runs/<run_id>/run.json``.

    The lifecycle methods mirror pacha's; :class:`pacha_sdk.Run` drives them
    and writes the record, and readers get one back from
    :func:`pacha_sdk.load_run` and :func:`pacha_sdk.list_runs`.

    Top-level fields this version does not know (a newer SDK or pacha wrote
    them) are kept as they are, in :attr:`model_extra`, and written back
    whenever the record is rewritten (a resumed run, ``reap``): rewriting a
    record never drops what someone else stored in it.
    """

    model_config = ConfigDict(extra="allow")

    run_id: RunId = Field(default_factory=RunId.new)
    """Unique run identifier."""
    recipe: RecipeReference | None = None
    """Recipe used for this run; left out when none."""
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    """Hyperparameters used."""
    started_at: UtcDatetime = Field(default_factory=utc_now)
    """When the run started."""
    finished_at: UtcDatetime | None = None
    """When the run finished; left out while running."""
    status: RunStatus = RunStatus.PENDING
    """Current status."""
    hardware: HardwareInfo = Field(default_factory=HardwareInfo)
    """Hardware used."""
    metrics: list[MetricRecord] = Field(default_factory=list)
    """Metric points kept in the record itself; empty in stored runs (points live in Parquet)."""
    artifacts: list[ArtifactReference] = Field(default_factory=list)
    """Artifacts produced."""
    log_uri: str | None = None
    """Where the run's log is stored."""
    git_commit: str | None = None
    """Git commit of the code that ran."""
    git_dirty: bool = False
    """Whether the working tree had uncommitted changes."""
    error_message: str | None = None
    """``"TypeName: message"`` of the error a failed run raised."""
    extra: dict[str, JsonValue] = Field(default_factory=dict)
    """What pacha-sdk adds: name, tags, heartbeat_at, flush_interval, summary, parent_run_id,
    and, folded in from later edits when read, note, archived, edited_at, edited_by."""

    # Lifecycle, as pacha's ExperimentRun.

    def start(self) -> None:
        """Mark the run running, starting now."""
        self.status = RunStatus.RUNNING
        self.started_at = utc_now()

    def complete(self) -> None:
        """Mark the run completed, finishing now."""
        self.status = RunStatus.COMPLETED
        self.finished_at = utc_now()

    def fail(self, error: str) -> None:
        """Mark the run failed with *error*, finishing now."""
        self.status = RunStatus.FAILED
        self.finished_at = utc_now()
        self.error_message = error

    def cancel(self) -> None:
        """Mark the run cancelled, finishing now."""
        self.status = RunStatus.CANCELLED
        self.finished_at = utc_now()

    def log_metric(self, name: str, value: float, step: int) -> None:
        """Append a point to :attr:`metrics` (pacha's in-record API; Run buffers instead)."""
        self.metrics.append(MetricRecord(name=name, value=value, step=step))

    def get_metric(self, name: str) -> float | None:
        """Latest value of *name* by step: from :attr:`metrics`, else the stored summary."""
        points = [m for m in self.metrics if m.name == name]
        if points:
            return max(reversed(points), key=lambda m: m.step).value
        if name not in self.summary:
            return None
        latest = self.summary[name]
        return math.nan if latest is None else latest

    @property
    def duration_secs(self) -> int | None:
        """Whole seconds from start to finish, or ``None`` while unfinished."""
        if self.finished_at is None:
            return None
        return int((self.finished_at - self.started_at).total_seconds())

    @property
    def is_finished(self) -> bool:
        """Whether the run completed, failed or was cancelled."""
        return self.status.is_finished

    # What pacha-sdk keeps in ``extra``.

    @property
    def name(self) -> str | None:
        """The run's display name (``extra.name``)."""
        value = self.extra.get("name")
        return value if isinstance(value, str) else None

    @property
    def tags(self) -> dict[str, str]:
        """The run's tags (``extra.tags``)."""
        value = self.extra.get("tags")
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

    @property
    def note(self) -> str | None:
        """The note written about the run afterwards (``extra.note``, see ``pacha.annotate``)."""
        value = self.extra.get("note")
        return value if isinstance(value, str) else None

    @property
    def archived(self) -> bool:
        """Whether the run is archived: hidden from listings unless asked (``extra.archived``)."""
        return self.extra.get("archived") is True

    @property
    def parent_run_id(self) -> str | None:
        """Id of the run this one is nested in (``extra.parent_run_id``)."""
        value = self.extra.get("parent_run_id")
        return value if isinstance(value, str) else None

    @property
    def summary(self) -> dict[str, float | None]:
        """Latest value of each metric by step (``extra.summary``).

        ``run.json`` is strict JSON, so a NaN or infinite latest value is stored
        as ``None``; the Parquet points keep the real value.
        """
        value = self.extra.get("summary")
        if not isinstance(value, dict):
            return {}
        return {
            k: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
            for k, v in value.items()
        }

    @property
    def heartbeat_at(self) -> datetime | None:
        """When the writer last wrote this record while running (``extra.heartbeat_at``)."""
        value = self.extra.get("heartbeat_at")
        return parse_timestamp(value) if isinstance(value, str) else None

    @property
    def flush_interval(self) -> float:
        """Seconds between the run's flushes (``extra.flush_interval``, else the default)."""
        value = self.extra.get("flush_interval")
        return float(value) if isinstance(value, (int, float)) else DEFAULT_FLUSH_INTERVAL

    def stale_at(self, now: datetime) -> bool:
        """Whether the run, still ``running``, has missed its heartbeat as of *now*.

        A process killed with SIGKILL or by the OOM killer cannot write a final
        status; its record stays ``running`` and becomes stale once the
        heartbeat is older than 3 flush intervals (:attr:`flush_interval`).
        """
        return missed_heartbeat(self, now)

    @property
    def is_stale(self) -> bool:
        """Whether the run is ``running`` but its process stopped beating (see :meth:`stale_at`)."""
        return self.stale_at(utc_now())
