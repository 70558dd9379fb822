"""The run record, mirroring the ``experiment`` and ``recipe`` modules of pacha.

Field names, enum spellings and JSON shapes follow pacha 0.2.5's serde
output, so a ``run.json`` written here loads as pacha's ``ExperimentRun`` and
one written by pacha loads here. Optional fields are left out of JSON when
unset, as pacha's ``skip_serializing_if = "Option::is_none"`` does; times are
RFC 3339 in UTC with a ``Z``.

These models are built when a run starts and ends and when a record is
read, never per metric point: the hot path never touches pydantic.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    JsonValue,
    NonNegativeInt,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)
from pydantic_core import core_schema
from typing_extensions import TypeAliasType

from pacha_sdk.exceptions import InvalidRunIdError

__all__ = [
    "DEFAULT_FLUSH_INTERVAL",
    "STALE_AFTER_FLUSH_INTERVALS",
    "ArtifactReference",
    "ExperimentRun",
    "HardwareInfo",
    "HyperparamValue",
    "Hyperparameters",
    "MetricRecord",
    "RecipeReference",
    "RecipeVersion",
    "RunId",
    "RunStatus",
    "format_timestamp",
    "utc_now",
]

DEFAULT_FLUSH_INTERVAL = 5.0
"""Seconds between flushes unless a run says otherwise: the most a killed process can lose."""
STALE_AFTER_FLUSH_INTERVALS = 3
"""A running run is stale once its heartbeat is older than this many flush intervals."""


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(timezone.utc)


def format_timestamp(moment: datetime) -> str:
    """Format *moment* as RFC 3339 in UTC with a ``Z`` suffix, as chrono does."""
    # isoformat pads the year to 4 digits; strftime("%Y") gives "999" for year 999.
    utc = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


UtcDatetime = Annotated[
    datetime,
    AfterValidator(_as_utc),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
]
"""An aware UTC datetime that serialises as ``2026-01-02T03:04:05.123456Z``."""


class RunId(str):
    """A run's identifier: a UUID in its canonical lowercase hyphenated form.

    It is a ``str``, so it works anywhere a string does (paths, f-strings,
    dict keys); constructing one validates and normalises the UUID.
    """

    __slots__ = ()

    def __new__(cls, value: str | uuid.UUID) -> RunId:
        """Validate *value* as a UUID; raise :class:`InvalidRunIdError` if it is not one."""
        if isinstance(value, uuid.UUID):
            return str.__new__(cls, str(value))
        if not isinstance(value, str):
            raise InvalidRunIdError(value)
        try:
            parsed = uuid.UUID(value)
        except ValueError:
            raise InvalidRunIdError(value) from None
        return str.__new__(cls, str(parsed))

    @classmethod
    def new(cls) -> RunId:
        """Return a new random (version 4) run id."""
        return cls(uuid.uuid4())

    def as_uuid(self) -> uuid.UUID:
        """Return the id as a :class:`uuid.UUID`."""
        return uuid.UUID(self)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Validate with the constructor; serialise as the plain string."""
        return core_schema.no_info_plain_validator_function(
            cls, serialization=core_schema.to_string_ser_schema()
        )


class RunStatus(str, Enum):
    """Status of a run; serialised lowercase as pacha's ``RunStatus``."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value

    @property
    def is_finished(self) -> bool:
        """Whether the status is final (completed, failed or cancelled)."""
        return self in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)


class _Model(BaseModel):
    """Shared configuration: attribute docstrings, unset optionals left out of JSON."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="ignore", defer_build=True)

    @model_serializer(mode="wrap")
    def _omit_none(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


if TYPE_CHECKING:
    HyperparamValue = Union[bool, int, float, str, list["HyperparamValue"]]  # noqa: UP007
else:  # pydantic needs a named alias to validate the recursion
    HyperparamValue = TypeAliasType(
        "HyperparamValue",
        Union[bool, int, float, str, list["HyperparamValue"]],  # noqa: UP007
    )
"""A hyperparameter value: float, int, bool, string or a list of those (pacha's untagged enum)."""

_FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class Hyperparameters(_Model):
    """Training hyperparameters, as pacha's ``recipe::Hyperparameters``.

    The named fields are pacha's; everything else lives in :attr:`custom`.
    Build one from a plain mapping with :func:`pacha_sdk.run` (it sorts keys
    into named fields and ``custom`` and converts values).
    """

    learning_rate: _FiniteFloat = 1e-3
    """Learning rate."""
    batch_size: NonNegativeInt = 32
    """Batch size."""
    epochs: NonNegativeInt = 10
    """Number of epochs."""
    weight_decay: _FiniteFloat = 0.0
    """Weight decay (L2 regularisation)."""
    max_grad_norm: _FiniteFloat | None = None
    """Gradient clipping norm; left out of JSON when unset."""
    warmup_steps: NonNegativeInt | None = None
    """Warmup steps; left out of JSON when unset."""
    custom: dict[str, HyperparamValue] = Field(default_factory=dict)
    """Every other hyperparameter, by name (nested mappings as dotted keys)."""

    NAMED: ClassVar[frozenset[str]] = frozenset(
        {"learning_rate", "batch_size", "epochs", "weight_decay", "max_grad_norm", "warmup_steps"}
    )

    def as_flat_dict(self) -> dict[str, HyperparamValue]:
        """Return the named fields that are set and every custom value in one dict."""
        named = self.model_dump(exclude={"custom"})
        return {**named, **self.custom}


class RecipeVersion(_Model, frozen=True):
    """A recipe's semantic version; JSON ``{major, minor, patch}``, also accepts ``"1.2.0"``."""

    major: NonNegativeInt
    """Major version."""
    minor: NonNegativeInt = 0
    """Minor version."""
    patch: NonNegativeInt = 0
    """Patch version."""

    @model_validator(mode="before")
    @classmethod
    def _parse_text(cls, data: Any) -> Any:
        if isinstance(data, str):
            parts = data.strip().removeprefix("v").split(".")
            if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
                raise ValueError(f"version {data!r} is not of the form MAJOR.MINOR.PATCH")
            return dict(zip(("major", "minor", "patch"), map(int, parts)))
        return data

    @classmethod
    def parse(cls, text: str) -> RecipeVersion:
        """Parse ``"MAJOR.MINOR.PATCH"``."""
        return cls.model_validate(text)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


class RecipeReference(_Model, frozen=True):
    """A reference to the recipe a run followed: ``RecipeReference("bert-ft", "1.2.0")``."""

    name: str
    """Recipe name."""
    version: RecipeVersion
    """Recipe version."""

    def __init__(self, name: str, version: RecipeVersion | str | dict[str, int]) -> None:
        super().__init__(name=name, version=version)

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


class HardwareInfo(_Model):
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


class MetricRecord(_Model):
    """One metric point, as pacha's ``MetricRecord`` (points are stored in Parquet)."""

    name: str
    """Metric name."""
    value: float
    """Metric value; NaN and infinities are legal."""
    step: NonNegativeInt
    """Training step."""
    timestamp: UtcDatetime = Field(default_factory=utc_now)
    """When the point was logged."""


class ArtifactReference(_Model, frozen=True):
    """A content-addressed artifact a run produced."""

    artifact_type: str
    """Artifact type, e.g. ``"model"`` or ``"checkpoint"``."""
    name: str
    """Artifact name."""
    content_hash: str
    """BLAKE3 hex digest of the content."""


class ExperimentRun(_Model):
    """A training run's record: the content of ``runs/<run_id>/run.json``.

    The lifecycle methods mirror pacha's; :class:`pacha_sdk.Run` drives them
    and writes the record, and readers get one back from
    :func:`pacha_sdk.load_run` and :func:`pacha_sdk.list_runs`.
    """

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
    """What pacha-sdk adds: name, tags, heartbeat_at, flush_interval, summary, parent_run_id..."""

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
        if not isinstance(value, str):
            return None
        try:
            return _as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None

    def stale_at(self, now: datetime) -> bool:
        """Whether the run, still ``running``, has missed its heartbeat as of *now*.

        A process killed with SIGKILL or by the OOM killer cannot write a final
        status; its record stays ``running`` and becomes stale once the
        heartbeat is older than 3 flush intervals (``extra.flush_interval``).
        """
        if self.status is not RunStatus.RUNNING:
            return False
        beat = self.heartbeat_at or self.started_at
        interval = self.extra.get("flush_interval")
        seconds = float(interval) if isinstance(interval, (int, float)) else DEFAULT_FLUSH_INTERVAL
        return (now - beat).total_seconds() > STALE_AFTER_FLUSH_INTERVALS * seconds

    @property
    def is_stale(self) -> bool:
        """Whether the run is ``running`` but its process stopped beating (see :meth:`stale_at`)."""
        return self.stale_at(utc_now())
