"""What a :class:`~pacha_sdk.tracking.run.Run` is built of, from its checked options.

A run holds its record in a keeper (:class:`RecordKeeper`, or
:class:`RankKeeper` for a rank above 0 of a shared run) and, once started,
a :class:`~pacha_sdk.storage.writer.MetricWriter` with its own spool folder.
Building them here keeps ``Run`` about the lifecycle and the hot path.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pacha_sdk._version import __version__
from pacha_sdk.models import ExperimentRun, Hyperparameters, RunId
from pacha_sdk.storage.layout import output_log_key, rank_log_key
from pacha_sdk.storage.retry import RetryPolicy
from pacha_sdk.storage.spool import Spool, default_spool_root
from pacha_sdk.storage.writer import DEFAULT_CALL_TIMEOUT, MetricWriter
from pacha_sdk.tracking import _ranks
from pacha_sdk.tracking._record import RankKeeper, RecordKeeper

if TYPE_CHECKING:
    from pacha_sdk._clock import Clock
    from pacha_sdk.backends import Backend
    from pacha_sdk.storage.buffer import MetricBuffer
    from pacha_sdk.storage.deadlines import StoreCalls
    from pacha_sdk.tracking._options import RunOptions

__all__ = [
    "call_timeout",
    "new_keeper",
    "new_writer",
    "new_writer_id",
    "output_key",
    "retry_policy",
]


def call_timeout(options: RunOptions) -> float:
    """Seconds one store call may take while the run goes on, before its part is spooled.

    :data:`DEFAULT_CALL_TIMEOUT` (10 s), or two flush intervals if longer,
    and never more than ``close_timeout``.
    """
    running = max(DEFAULT_CALL_TIMEOUT, 2 * options["flush_interval"])
    return min(running, options["close_timeout"])


def new_keeper(
    options: RunOptions,
    hyperparameters: Hyperparameters,
    *,
    backend: Backend,
    buffer: MetricBuffer,
    shared_id: RunId | None,
    parent_id: RunId | None,
    rank: int,
    clock: Clock,
    calls: StoreCalls,
) -> RecordKeeper:
    """A keeper holding the new run's record: a fresh id, or *shared_id* to attach to.

    A rank above 0 of a shared run gets a :class:`RankKeeper` (it writes its
    own rank record); every other run owns ``run.json``.
    """
    extra: dict[str, Any] = {
        "flush_interval": options["flush_interval"],
        "sdk_version": __version__,
    }
    if options["name"] is not None:
        extra["name"] = options["name"]
    if options["tags"] is not None:
        extra["tags"] = options["tags"]
    if parent_id is not None:
        extra["parent_run_id"] = str(parent_id)
    world_size = _ranks.world_size() if shared_id is not None else None
    if world_size is not None and rank == 0:
        extra["world_size"] = world_size
    record = ExperimentRun(
        run_id=shared_id if shared_id is not None else RunId.new(),
        recipe=options["recipe"],
        hyperparameters=hyperparameters,
        extra=extra,
    )
    writer_id = new_writer_id()
    timeout = call_timeout(options)
    if shared_id is not None and rank > 0:
        return RankKeeper(
            record,
            backend,
            buffer,
            rank=rank,
            world_size=world_size,
            clock=clock,
            writer_id=writer_id,
            calls=calls,
            call_timeout=timeout,
        )
    return RecordKeeper(
        record,
        backend,
        buffer,
        clock=clock,
        writer_id=writer_id,
        rank=rank,
        calls=calls,
        call_timeout=timeout,
    )


def new_writer_id() -> str:
    """A writer id: unique per writing process and run, it names the part files."""
    return secrets.token_hex(8)


def retry_policy(flush_interval: float) -> RetryPolicy:
    """Backoff for a run's writes: retries at least every flush interval (or second)."""
    return RetryPolicy(cap=max(flush_interval, 1.0))


def new_writer(
    options: RunOptions,
    *,
    backend: Backend,
    buffer: MetricBuffer,
    run_id: RunId,
    rank: int,
    heartbeat: Callable[[], None],
    clock: Clock,
    writer_id: str,
    calls: StoreCalls,
) -> MetricWriter:
    """The run's writer (not started), with a spool folder of its own under ``spool_dir``."""
    spool = Spool(
        os.fspath(options["spool_dir"] or default_spool_root()),
        uri=backend.uri,
        run_id=str(run_id),
        writer_id=writer_id,
    )
    return MetricWriter(
        buffer=buffer,
        backend=backend,
        run_id=run_id,
        writer_id=writer_id,
        spool=spool,
        rank=rank,
        flush_interval=options["flush_interval"],
        flush_rows=options["flush_rows"],
        heartbeat=heartbeat,
        retry=retry_policy(options["flush_interval"]),
        clock=clock,
        calls=calls,
        call_timeout=call_timeout(options),
    )


def output_key(keeper: RecordKeeper) -> str:
    """Where captured console output goes: beside the run's or this rank's record."""
    if isinstance(keeper, RankKeeper):
        return rank_log_key(keeper.record.run_id, keeper.rank)
    return output_log_key(keeper.record.run_id)
