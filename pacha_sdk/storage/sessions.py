"""One writer of a run's ``run.json`` at a time, across processes and machines.

A process that attaches to a run id that may be stored already (resume with
``run_id=``, rank 0 of a job sharing ``$PACHA_RUN_ID``) could clobber another
live process's record: both would rewrite ``run.json`` every flush, each with
its own summary and, at the end, its own status. So before it writes
anything, it *claims* the run: it creates the next session file,
``runs/<id>/sessions/<n>.json``, create-only (``os.link`` locally,
``If-None-Match`` on S3, ``ifGenerationMatch=0`` on GCS). Of the processes
racing for the same number exactly one creates it; the others, and any
process that finds the run held by a live writer, get :class:`RunInUseError`
naming the holder, and write nothing.

Who holds the run: the writer of the latest session, once it has written
``run.json`` (``extra.writer``) and while that record is ``running``; before
its first write, for at most :data:`CLAIM_GRACE` seconds. The holder is live

* if it runs on this machine: while its process does (the pid, and the
  process's start time against a reused pid); in this very process, while
  the run holds the record (:func:`hold`, :func:`release`). A run killed a
  moment ago resumes at once; one whose store is failing is still held;
* on another machine: while its heartbeat is not stale (3 flush intervals).

A run started without a ``run_id`` never claims: its id is new, nobody can
race for it; a later resume sees its ``run.json`` and judges it the same way.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import ValidationError

from pacha_sdk.exceptions import RunInUseError
from pacha_sdk.models import RunStatus, WriterMark, utc_now
from pacha_sdk.models._base import Model, UtcDatetime, seconds_since_beat
from pacha_sdk.storage.layout import session_from_key, session_key, sessions_prefix
from pacha_sdk.storage.records import list_keys, store_errors

if TYPE_CHECKING:
    from pacha_sdk.backends import Backend
    from pacha_sdk.models import ExperimentRun, RunId

__all__ = ["CLAIM_GRACE", "Session", "claim_run", "hold", "process_started", "release", "writer_of"]

CLAIM_GRACE = 30.0
"""Seconds a claim without a ``run.json`` of its own yet still holds the run."""

_held: set[str] = set()
"""Writer ids whose run in this process holds its record now."""

_REMEDY = (
    "give each process of a distributed job its rank (rank= or $RANK), "
    "or resume this run once that process has finished"
)


class Session(Model):
    """A session file: which writer took the run's ``run.json`` over, and when."""

    writer: WriterMark
    """The process that claimed the run."""
    claimed_at: UtcDatetime
    """When it did."""


def writer_of(record: ExperimentRun) -> WriterMark | None:
    """The writer that last wrote *record* (``extra.writer``), if it says."""
    value = record.extra.get("writer")
    try:
        return WriterMark.model_validate(value) if isinstance(value, dict) else None
    except ValidationError:
        return None


def claim_run(
    backend: Backend, run_id: RunId, mine: WriterMark, stored: ExperimentRun | None
) -> int:
    """Claim the run's ``run.json`` for *mine*; return the session's number.

    *stored* is the run's record as just read (``None`` if it has none).
    Raises :class:`RunInUseError` if a live process holds the run or
    claims it at the same moment; nothing is written then.
    """
    prefix = sessions_prefix(run_id)
    numbers = [
        n for key in list_keys(backend, prefix) if (n := session_from_key(run_id, key)) is not None
    ]
    latest = max(numbers, default=None)
    holder = None if latest is None else _read_session(backend, run_id, latest)
    live = _live_holder(stored, holder, utc_now())
    if live is not None:
        raise RunInUseError(str(run_id), live, _REMEDY)
    number = 0 if latest is None else latest + 1
    key = session_key(run_id, number)
    data = Session(writer=mine, claimed_at=utc_now()).model_dump_json().encode("utf-8")
    try:
        with store_errors(backend, "write", key, passing=(FileExistsError,)):
            backend.write_new(key, data)
    except FileExistsError:
        rival = _read_session(backend, run_id, number)
        who = (
            _describe(rival.writer, "claimed it at the same moment") if rival else "another process"
        )
        raise RunInUseError(str(run_id), who, _REMEDY) from None
    return number


def _read_session(backend: Backend, run_id: RunId, number: int) -> Session | None:
    key = session_key(run_id, number)
    with store_errors(backend, "read", key, passing=(FileNotFoundError,)):
        try:
            data = backend.read_bytes(key)
        except FileNotFoundError:
            return None
    try:
        return Session.model_validate_json(data)
    except ValidationError:
        return None  # not one pacha wrote: it holds nothing


def hold(writer_id: str) -> None:
    """Note that a run of this process writes its record under *writer_id*."""
    _held.add(writer_id)


def release(writer_id: str) -> None:
    """Note that the run writing under *writer_id* has written its last record."""
    _held.discard(writer_id)


def process_started() -> float | None:
    """When this process started (seconds since the epoch), for :class:`WriterMark`."""
    import psutil  # at run start, where the hardware capture loads it too

    try:
        return float(psutil.Process().create_time())
    except psutil.Error:
        return None


def _live_holder(stored: ExperimentRun | None, holder: Session | None, now: datetime) -> str | None:
    """Who holds the run now, described for the error; ``None`` if nobody does."""
    wrote = None if stored is None else writer_of(stored)
    if holder is not None and (wrote is None or wrote.id != holder.writer.id):
        alive = _alive(holder.writer)
        young = (now - holder.claimed_at).total_seconds() <= CLAIM_GRACE
        if alive or (alive is None and young):
            return _describe(holder.writer, "claimed it and is starting")
    if stored is None or stored.status is not RunStatus.RUNNING:
        return None
    beat = f"last heartbeat {max(seconds_since_beat(stored, now), 0.0):.1f} s ago"
    alive = None if wrote is None else _alive(wrote)
    if alive is False or (alive is None and stored.stale_at(now)):
        return None
    if wrote is None:
        return f"another process ({beat}; it does not say which)"
    return _describe(wrote, beat)


def _describe(mark: WriterMark, state: str) -> str:
    where = f" on {mark.hostname}" if mark.hostname else ""
    pid = f"pid {mark.pid}{where}" if mark.pid is not None else f"a process{where}"
    return f"{pid} ({state})"


def _alive(mark: WriterMark) -> bool | None:
    """Whether *mark*'s process still writes: known on this machine, ``None`` elsewhere."""
    if mark.pid is None or mark.hostname != socket.gethostname():
        return None
    if mark.pid == os.getpid():
        return mark.id in _held
    import psutil

    try:
        process = psutil.Process(mark.pid)
        started = process.create_time()
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # someone else's process: it exists
        return True
    return mark.process_started is None or abs(started - mark.process_started) < 1.0
