"""Distributed training: the processes (ranks) of one job log into one run.

Every rank calls ``pacha.run(...)`` with the same run id: passed as
``run_id=`` or, for the outermost run of a process, read from
``$PACHA_RUN_ID`` (the launcher, or rank 0 before it spawns workers,
generates a UUID and exports it). A rank is ``rank=``, else ``$RANK``
(torchrun, accelerate), else ``$SLURM_PROCID``, else 0.

* Rank 0 owns ``runs/<id>/run.json`` (status, summary, heartbeat) exactly as
  a single process does: the run is ``completed`` when rank 0 completes.
* A rank ``R > 0`` never writes ``run.json``. It writes its own part files
  (``rank`` column ``R``, its own writer id) and keeps its own small record
  at ``runs/<id>/ranks/<R>.json`` (:class:`RankRecord`), written at start,
  at every flush and at the end: a failing rank records its error there
  without touching anyone else's record.

A rank above 0 with no run id to share (neither ``run_id=`` nor
``$PACHA_RUN_ID``) would write points nobody's ``run.json`` names, so it
records a run of its own (owning its ``run.json``) and a warning says how
to share one.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import Field, NonNegativeInt

from pacha_sdk.env import PACHA_RUN_ID
from pacha_sdk.exceptions import InvalidRecordError, InvalidRunIdError
from pacha_sdk.models import (
    DEFAULT_FLUSH_INTERVAL,
    STALE_AFTER_FLUSH_INTERVALS,
    RunId,
    RunStatus,
    UtcDatetime,
    _Model,
    utc_now,
)
from pacha_sdk.storage.layout import RUNS_DIR

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "RANKS_DIR",
    "RANK_VARIABLES",
    "WORLD_SIZE_VARIABLES",
    "RankRecord",
    "parse_rank_record",
    "rank_from_record_key",
    "rank_log_key",
    "rank_record_key",
    "rank_records_prefix",
    "resolve_rank",
    "resolve_run_id",
    "warn_unshared_rank",
    "world_size",
]

logger = logging.getLogger("pacha_sdk")

RANKS_DIR = "ranks"
RANK_VARIABLES = ("RANK", "SLURM_PROCID")
"""Where a process's rank is read from, first match wins (torchrun/accelerate, SLURM)."""
WORLD_SIZE_VARIABLES = ("WORLD_SIZE", "SLURM_NTASKS")
"""Where the job's number of ranks is read from (recorded, never required)."""
MAX_RANK = 2**31 - 1
"""The largest rank the int32 ``rank`` column holds."""

_warned_unshared = False


class RankRecord(_Model):
    """What one rank above 0 of a shared run stores in ``runs/<id>/ranks/<rank>.json``.

    Rank 0's record is the run's ``run.json`` (:func:`pacha_sdk.load_run`).
    """

    run_id: RunId
    """The shared run's id."""
    rank: NonNegativeInt
    """This process's rank."""
    status: RunStatus = RunStatus.RUNNING
    """How this rank is doing or ended (its own, not the run's)."""
    error_message: str | None = None
    """``"TypeName: message"`` of the error this rank failed with."""
    traceback: str | None = None
    """The failing error's traceback."""
    started_at: UtcDatetime = Field(default_factory=utc_now)
    """When this rank started."""
    finished_at: UtcDatetime | None = None
    """When this rank finished; left out while running."""
    heartbeat_at: UtcDatetime | None = None
    """When this rank last wrote its record while running (every flush)."""
    flush_interval: float = DEFAULT_FLUSH_INTERVAL
    """This rank's flush interval: staleness is 3 of them without a heartbeat."""
    summary: dict[str, float | None] = Field(default_factory=dict)
    """Latest value of each metric this rank logged (non-finite ones as ``None``)."""
    hostname: str | None = None
    """The machine this rank ran on."""
    pid: int | None = None
    """This rank's process id on that machine."""
    world_size: int | None = None
    """``$WORLD_SIZE`` (or ``$SLURM_NTASKS``) when set: how many ranks the job has."""
    log_uri: str | None = None
    """Where this rank's captured console output is, with ``capture_output=True``."""
    sdk_version: str | None = None
    """The pacha-sdk version that wrote the record."""

    @property
    def is_finished(self) -> bool:
        """Whether this rank completed, failed or was cancelled."""
        return self.status.is_finished

    def stale_at(self, now: datetime) -> bool:
        """Whether this rank, still ``running``, has missed its heartbeat as of *now*."""
        if self.status is not RunStatus.RUNNING:
            return False
        beat = self.heartbeat_at or self.started_at
        return (now - beat).total_seconds() > STALE_AFTER_FLUSH_INTERVALS * self.flush_interval

    @property
    def is_stale(self) -> bool:
        """Whether this rank is ``running`` but its process stopped beating."""
        return self.stale_at(utc_now())


def parse_rank_record(data: bytes, location: str) -> RankRecord:
    """Parse a rank record; raise :class:`InvalidRecordError` naming *location* if invalid."""
    from pydantic import ValidationError

    try:
        return RankRecord.model_validate_json(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        raise InvalidRecordError(location, f"{where}: {first['msg']}") from None


def rank_records_prefix(run_id: RunId) -> str:
    """Folder of a shared run's rank records."""
    return f"{RUNS_DIR}/{run_id}/{RANKS_DIR}"


def rank_record_key(run_id: RunId, rank: int) -> str:
    """Key of one rank's record."""
    return f"{rank_records_prefix(run_id)}/{rank}.json"


def rank_log_key(run_id: RunId, rank: int) -> str:
    """Key of one rank's captured console output (``capture_output=True``)."""
    return f"{rank_records_prefix(run_id)}/{rank}.log"


def rank_from_record_key(run_id: RunId, key: str) -> int | None:
    """The rank in a ``runs/<id>/ranks/<rank>.json`` key, or ``None`` for any other key."""
    name = key.removeprefix(rank_records_prefix(run_id) + "/")
    if name == key or not name.endswith(".json"):
        return None
    digits = name.removesuffix(".json")
    if not digits.isascii() or not digits.isdigit() or str(int(digits)) != digits:
        return None
    return int(digits)


def _env(environ: Mapping[str, str], name: str) -> str | None:
    """The stripped value of *name*, or ``None`` when unset or empty."""
    value = environ.get(name, "").strip()
    return value or None


def resolve_run_id(
    run_id: str | None, *, nested: bool, environ: Mapping[str, str] | None = None
) -> RunId | None:
    """The run id to attach to: *run_id*, else ``$PACHA_RUN_ID`` for an outermost run.

    A nested run never reads the variable: it is a run of its own inside
    the job's run. Raises :class:`InvalidRunIdError` (naming the variable
    when it came from there) if the id is not a UUID.
    """
    if run_id is not None:
        return RunId(run_id)
    text = None if nested else _env(os.environ if environ is None else environ, PACHA_RUN_ID)
    if text is None:
        return None
    try:
        return RunId(text)
    except InvalidRunIdError as error:
        error.args = (f"${PACHA_RUN_ID}: {error}",)
        raise


def _check_rank(where: str, value: object, given: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RANK:
        raise ValueError(f"{where} must be a non-negative int (the process's rank), got {given!r}")
    return value


def resolve_rank(rank: int | None, *, environ: Mapping[str, str] | None = None) -> int:
    """*rank*, else ``$RANK``, else ``$SLURM_PROCID``, else 0; a bad value names its source."""
    if rank is not None:
        return _check_rank("rank", rank, rank)
    env = os.environ if environ is None else environ
    for name in RANK_VARIABLES:
        text = _env(env, name)
        if text is not None:
            value = int(text) if text.isascii() and text.isdigit() else None
            return _check_rank(f"${name}", value, text)
    return 0


def world_size(environ: Mapping[str, str] | None = None) -> int | None:
    """``$WORLD_SIZE``, else ``$SLURM_NTASKS``, as a positive int; ``None`` if unset or odd."""
    env = os.environ if environ is None else environ
    for name in WORLD_SIZE_VARIABLES:
        text = _env(env, name)
        if text is not None:
            return int(text) if text.isdigit() and int(text) > 0 else None
    return None


def warn_unshared_rank(rank: int) -> None:
    """Say once per process that rank *rank* records a run of its own, and how to share one."""
    global _warned_unshared
    if _warned_unshared:
        return
    _warned_unshared = True
    logger.warning(
        "pacha: rank %d has no run id to share (pass run_id= or export %s on every rank); "
        "it records a run of its own",
        rank,
        PACHA_RUN_ID,
    )
