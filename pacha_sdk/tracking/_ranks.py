"""Distributed training: the processes (ranks) of one job log into one run.

Every rank calls ``pacha.run(...)`` with the same run id: passed as
``run_id=`` or, for the first outermost run of a process, read from
``$PACHA_RUN_ID`` (the launcher, or rank 0 before it spawns workers,
generates a UUID and exports it). A rank is ``rank=``, else ``$RANK``
(torchrun, accelerate), else ``$SLURM_PROCID``, else 0.

Each value of ``$PACHA_RUN_ID`` is taken by one run per process: the first
outermost one. A sweep of several ``pacha.run()`` calls in one process
(or ``@pacha.track`` called in a loop) therefore records one run per call,
not one merged run; the later runs get ids of their own, and a warning
says so once. A process that sets a new value before its next run shares
that one.

* Rank 0 owns ``runs/<id>/run.json`` (status, summary, heartbeat) exactly as
  a single process does: the run is ``completed`` when rank 0 completes.
* A rank ``R > 0`` never writes ``run.json``. It writes its own part files
  (``rank`` column ``R``, its own writer id) and keeps its own small record
  at ``runs/<id>/ranks/<R>.json`` (:class:`~pacha_sdk.models.RankRecord`), written at start,
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
from typing import TYPE_CHECKING

from pacha_sdk.env import PACHA_RUN_ID
from pacha_sdk.exceptions import InvalidRunIdError
from pacha_sdk.models import RunId

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "RANK_VARIABLES",
    "WORLD_SIZE_VARIABLES",
    "resolve_rank",
    "resolve_run_id",
    "take_env_run_id",
    "warn_unshared_rank",
    "world_size",
]

logger = logging.getLogger("pacha_sdk")

RANK_VARIABLES = ("RANK", "SLURM_PROCID")
"""Where a process's rank is read from, first match wins (torchrun/accelerate, SLURM)."""
WORLD_SIZE_VARIABLES = ("WORLD_SIZE", "SLURM_NTASKS")
"""Where the job's number of ranks is read from (recorded, never required)."""
MAX_RANK = 2**31 - 1
"""The largest rank the int32 ``rank`` column holds."""

_warned_unshared = False
_env_ids_taken: set[RunId] = set()
"""Values of ``$PACHA_RUN_ID`` a run of this process has taken (each is taken once)."""
_warned_taken: set[RunId] = set()


def _env(environ: Mapping[str, str], name: str) -> str | None:
    """The stripped value of *name*, or ``None`` when unset or empty."""
    value = environ.get(name, "").strip()
    return value or None


def resolve_run_id(
    run_id: str | None, *, nested: bool, environ: Mapping[str, str] | None = None
) -> RunId | None:
    """The run id to attach to: *run_id*, else ``$PACHA_RUN_ID`` for an outermost run.

    A nested run never reads the variable: it is a run of its own inside
    the job's run; nor does an outermost run once an earlier run of this
    process took the variable's value (:func:`take_env_run_id`). Raises
    :class:`InvalidRunIdError` (naming the variable when it came from
    there) if the id is not a UUID.
    """
    if run_id is not None:
        return RunId(run_id)
    text = None if nested else _env(os.environ if environ is None else environ, PACHA_RUN_ID)
    if text is None:
        return None
    try:
        shared = RunId(text)
    except InvalidRunIdError as error:
        error.args = (f"${PACHA_RUN_ID}: {error}",)
        raise
    if shared in _env_ids_taken:
        _warn_taken(shared)
        return None
    return shared


def take_env_run_id(run_id: RunId) -> None:
    """Note that a run of this process took *run_id* from ``$PACHA_RUN_ID``."""
    _env_ids_taken.add(run_id)


def _warn_taken(run_id: RunId) -> None:
    if run_id in _warned_taken:
        return
    _warned_taken.add(run_id)
    logger.warning(
        "pacha: $%s=%s was taken by this process's first run; later runs get ids of their "
        "own (pass run_id= to attach to it again)",
        PACHA_RUN_ID,
        run_id,
    )


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
