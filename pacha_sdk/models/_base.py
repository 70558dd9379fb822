"""What every record model shares: ids, statuses, UTC timestamps, the staleness rule.

Kept apart from the record types so that :class:`~pacha_sdk.models.ExperimentRun`
and :class:`~pacha_sdk.models.RankRecord` judge a missed heartbeat by one rule
(:func:`missed_heartbeat`) and serialise times one way (:func:`format_timestamp`).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from enum import Enum
from typing import Annotated, Any, Protocol

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    GetCoreSchemaHandler,
    NonNegativeInt,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    model_serializer,
)
from pydantic_core import core_schema

from pacha_sdk.exceptions import InvalidRunIdError

__all__ = [
    "DEFAULT_FLUSH_INTERVAL",
    "STALE_AFTER_FLUSH_INTERVALS",
    "Beating",
    "Model",
    "RunId",
    "RunStatus",
    "UtcDatetime",
    "WriterMark",
    "as_utc",
    "format_timestamp",
    "missed_heartbeat",
    "parse_timestamp",
    "seconds_since_beat",
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


def as_utc(moment: datetime) -> datetime:
    """*moment* as an aware UTC datetime (a naive one is taken to be UTC already)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def parse_timestamp(text: str) -> datetime | None:
    """An RFC 3339 timestamp as an aware UTC datetime, or ``None`` if it is not one."""
    try:
        return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

UtcDatetime = Annotated[
    datetime,
    AfterValidator(as_utc),
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
        if _CANONICAL_UUID.fullmatch(value):  # the stored form: no need to parse it (listings)
            return str.__new__(cls, value)
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


class Model(BaseModel):
    """Shared configuration: attribute docstrings, unset optionals left out of JSON."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="ignore", defer_build=True)

    @model_serializer(mode="wrap")
    def _omit_none(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            kept = self.__pydantic_extra__ or {}  # unknown fields stay exactly as they were read
            return {k: v for k, v in data.items() if v is not None or k in kept}
        return data


class WriterMark(Model):
    """Which process writes a record now, and how many of its part files the record counts.

    Stored as ``extra.writer`` of ``run.json`` and ``writer`` of a rank record.
    A resumed run reads only the part files of this writer the record has
    not counted yet (``part-<id>-<seq>`` with ``seq >= parts``); another
    process attaching the run id reads ``pid`` and ``hostname`` to say who
    holds it.
    """

    id: str
    """The writer id in the part files' names (``part-<id>-<seq>.parquet``)."""
    parts: NonNegativeInt = 0
    """The record's summary counts this writer's parts ``0 .. parts-1``."""
    pid: int | None = None
    """The writing process's id on its machine."""
    hostname: str | None = None
    """The machine the writing process runs on."""
    process_started: float | None = None
    """When that process started (seconds since the epoch): tells a reused pid apart."""


class Beating(Protocol):
    """A record its process keeps alive with heartbeats: a run's or a rank's."""

    @property
    def status(self) -> RunStatus:
        """The record's status; only a ``running`` one can go stale."""

    @property
    def started_at(self) -> datetime:
        """When the process started: the first beat."""

    @property
    def heartbeat_at(self) -> datetime | None:
        """When the process last rewrote the record, if it has."""

    @property
    def flush_interval(self) -> float:
        """Seconds between the process's flushes (and so its beats)."""


def seconds_since_beat(record: Beating, now: datetime) -> float:
    """Seconds from *record*'s last heartbeat (its start if none yet) to *now*."""
    return (now - (record.heartbeat_at or record.started_at)).total_seconds()


def missed_heartbeat(record: Beating, now: datetime) -> bool:
    """Whether *record*, still ``running``, has missed its heartbeat as of *now*.

    A process killed with SIGKILL or by the OOM killer cannot write a final
    status; its record stays ``running`` and becomes stale once the last
    heartbeat is older than :data:`STALE_AFTER_FLUSH_INTERVALS` flush intervals.
    """
    if record.status is not RunStatus.RUNNING:
        return False
    return seconds_since_beat(record, now) > STALE_AFTER_FLUSH_INTERVALS * record.flush_interval
