"""What one rank above 0 of a distributed run records: ``runs/<id>/ranks/<rank>.json``."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, NonNegativeInt

from pacha_sdk.models._base import (
    DEFAULT_FLUSH_INTERVAL,
    Model,
    RunId,
    RunStatus,
    UtcDatetime,
    WriterMark,
    missed_heartbeat,
    utc_now,
)

__all__ = ["RankRecord"]


class RankRecord(Model):
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
    summary_steps: dict[str, NonNegativeInt] = Field(default_factory=dict)
    """The step of each :attr:`summary` value: a resumed rank's automatic steps go on from it."""
    writer: WriterMark | None = None
    """This rank's current writer and how many of its part files the summary counts."""
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
        return missed_heartbeat(self, now)

    @property
    def is_stale(self) -> bool:
        """Whether this rank is ``running`` but its process stopped beating."""
        return self.stale_at(utc_now())
