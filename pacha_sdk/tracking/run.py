"""A training run: lifecycle, metric logging and its stored record.

:class:`Run` is a plain object with guarded transitions (pending, running,
finished) that is also a context manager; ``pacha.run(...)`` and
``@pacha.track`` are thin shells over it. Its hot path, :meth:`Run.log_metric`,
appends one tuple to an in-memory buffer: no I/O, no lock, no pydantic. A
background :class:`~pacha_sdk.storage.writer.MetricWriter` turns the buffer into
Parquet part files and rewrites ``run.json`` (heartbeat and summary) every
flush. In distributed training every rank opens a ``Run`` with the same id;
ranks above 0 keep their own record instead (see :mod:`pacha_sdk.tracking._ranks`).
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Iterable, Mapping
from contextvars import Token
from enum import Enum
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pacha_sdk._names import check_display_name, json_text, tags_dict
from pacha_sdk._version import __version__
from pacha_sdk.backends import Backend, get_backend
from pacha_sdk.env import resolve_uri
from pacha_sdk.exceptions import (
    InvalidMetricError,
    MetricTypeError,
    RunStateError,
)
from pacha_sdk.models import (
    DEFAULT_FLUSH_INTERVAL,
    ArtifactReference,
    ExperimentRun,
    Hyperparameters,
    RecipeReference,
    RunId,
    RunStatus,
)
from pacha_sdk.storage.blobs import store_artifact
from pacha_sdk.storage.buffer import FIELDS, MetricBuffer
from pacha_sdk.storage.inputs import add_input
from pacha_sdk.storage.layout import output_log_key, rank_log_key
from pacha_sdk.storage.writer import MetricWriter, RetryPolicy
from pacha_sdk.tracking import _context, _ranks, _signals
from pacha_sdk.tracking._capture import OutputCapture
from pacha_sdk.tracking._coerce import MAX_STEP, check_seconds, coerce_step, coerce_value
from pacha_sdk.tracking._environment import capture_context, check_env_vars
from pacha_sdk.tracking._hparams import build_hyperparameters
from pacha_sdk.tracking._record import RankKeeper, RecordKeeper
from pacha_sdk.tracking._system_metrics import SystemMetricsSampler, sampling_interval

if TYPE_CHECKING:
    from pacha_sdk.storage.parts import Rows
from pacha_sdk.storage.spool import Spool, default_spool_root

__all__ = ["DEFAULT_FLUSH_INTERVAL", "DEFAULT_FLUSH_ROWS", "Run"]

logger = logging.getLogger("pacha_sdk")

DEFAULT_FLUSH_ROWS = 100_000
"""Buffered points that trigger a flush before the interval is up."""
BACKLOG_FLUSHES = 4
"""Logging waits once this many ``flush_rows`` of points are buffered (backpressure)."""
DEFAULT_CLOSE_TIMEOUT = 30.0
"""Seconds a finishing run waits for its last writes before giving up."""

_time_ns = time.time_ns


class _State(Enum):
    PENDING = "pending"
    RUNNING = "running"
    FINISHED = "finished"


def error_message(error: BaseException) -> str:
    """``"TypeName: message"`` for a failed run's ``error_message``."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class Run:
    """One training run: log metrics into it, and it records itself in the store.

    Use it as a context manager (``with pacha.run(...) as run:``) or drive it
    explicitly with :meth:`start` and :meth:`complete` / :meth:`fail` /
    :meth:`cancel`. Every argument is checked here, before anything is
    written; see :func:`pacha_sdk.tracking.run` for their meaning.
    """

    def __init__(
        self,
        hparams: Hyperparameters | Mapping[str, Any] | None = None,
        *,
        uri: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        name: str | None = None,
        recipe: RecipeReference | None = None,
        tags: Mapping[str, Any] | Iterable[str] | None = None,
        run_id: str | None = None,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        flush_rows: int = DEFAULT_FLUSH_ROWS,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        rank: int | None = None,
        spool_dir: str | None = None,
        lenient_hparams: bool = False,
        system_metrics: bool | float = True,
        capture_output: bool = False,
        env_vars: Iterable[str] | None = None,
    ) -> None:
        check_seconds("flush_interval", flush_interval)
        check_seconds("close_timeout", close_timeout)
        if isinstance(flush_rows, bool) or not isinstance(flush_rows, int) or flush_rows < 1:
            raise ValueError(f"flush_rows must be a positive int, got {flush_rows!r}")
        parent = _context.current_run()
        shared_id = _ranks.resolve_run_id(run_id, nested=parent is not None)
        rank = _ranks.resolve_rank(rank)
        if recipe is not None and not isinstance(recipe, RecipeReference):
            raise TypeError(f"recipe must be a pacha.RecipeReference, got {recipe!r}")
        if not isinstance(capture_output, bool):
            raise TypeError(f"capture_output must be a bool, got {capture_output!r}")
        self._sample_every = sampling_interval(system_metrics)
        self._capture_output = capture_output
        self._env_vars = check_env_vars(env_vars)
        hyperparameters = build_hyperparameters(hparams, lenient=lenient_hparams)
        self._explicit_hparams = hparams is not None
        self._backend: Backend = get_backend(resolve_uri(uri), storage_options=storage_options)
        extra: dict[str, Any] = {
            "flush_interval": float(flush_interval),
            "sdk_version": __version__,
        }
        if name is not None:
            extra["name"] = check_display_name("run name", name)
        if tags is not None:
            extra["tags"] = tags_dict(tags)
        if parent is not None:
            extra["parent_run_id"] = str(parent.run_id)
        world_size = _ranks.world_size() if shared_id is not None else None
        if world_size is not None and rank == 0:
            extra["world_size"] = world_size
        record = ExperimentRun(
            run_id=shared_id if shared_id is not None else RunId.new(),
            recipe=recipe,
            hyperparameters=hyperparameters,
            extra=extra,
        )
        self._attach = shared_id is not None
        self._writes_rank_record = shared_id is not None and rank > 0
        if rank > 0 and shared_id is None and parent is None:
            _ranks.warn_unshared_rank(rank)
        self._flush_interval = float(flush_interval)
        self._flush_rows = flush_rows
        self._close_timeout = float(close_timeout)
        self._rank = rank
        self._spool_dir = spool_dir
        self._state = _State.PENDING
        self._finishing = False
        self._lifecycle = threading.RLock()
        self._buffer = MetricBuffer()
        self._keeper = (
            RankKeeper(record, self._backend, self._buffer, rank=rank, world_size=world_size)
            if self._writes_rank_record
            else RecordKeeper(record, self._backend, self._buffer)
        )
        self._rows = self._buffer.rows
        self._max_slots = FIELDS * max(BACKLOG_FLUSHES * flush_rows, 10_000)
        self._backpressure_noted = False
        self._last_step: dict[str, int] = {}
        self._writer: MetricWriter | None = None
        self._tokens: list[Token[Run | None]] = []
        self._sampler: SystemMetricsSampler | None = None
        self._output: OutputCapture | None = None
        self._last_error: BaseException | None = None

    # Identity and state.

    @property
    def _record(self) -> ExperimentRun:
        return self._keeper.record

    @property
    def last_error(self) -> BaseException | None:
        """The last store error seen while writing, if any (the run never raises it)."""
        return self._last_error or self._keeper.last_error

    @property
    def run_id(self) -> RunId:
        """This run's id."""
        return self._record.run_id

    @property
    def uri(self) -> str:
        """The root URI of the store this run writes to."""
        return self._backend.uri

    @property
    def rank(self) -> int:
        """This process's rank in distributed training (0 otherwise): the ``rank`` column."""
        return self._rank

    @property
    def owns_record(self) -> bool:
        """Whether this process writes ``run.json``: rank 0, or any run not shared by id.

        A rank above 0 of a shared run writes ``runs/<id>/ranks/<rank>.json`` instead.
        """
        return not self._writes_rank_record

    @property
    def name(self) -> str | None:
        """The run's display name, if given."""
        return self._record.name

    @property
    def status(self) -> RunStatus:
        """The run's current status."""
        return self._record.status

    @property
    def is_finished(self) -> bool:
        """Whether the run completed, failed or was cancelled."""
        return self._record.is_finished

    @property
    def duration_secs(self) -> int | None:
        """Whole seconds from start to finish, or ``None`` while unfinished."""
        return self._record.duration_secs

    @property
    def hyperparameters(self) -> Hyperparameters:
        """The run's hyperparameters (a copy)."""
        return self._record.hyperparameters.model_copy(deep=True)

    @property
    def record(self) -> ExperimentRun:
        """A snapshot of the run's record, as it is (or will be) stored."""
        with self._keeper.lock:
            return self._keeper.snapshot()

    def __repr__(self) -> str:
        return f"<Run {self.run_id} {self.status} at {self.uri}>"

    # Hot path.

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Log one point of metric *name*; *step* defaults to its last step + 1.

        NaN and infinities are stored as they are. Steps may repeat or go
        back; every point is kept. Costs a few appends: no I/O happens here.
        """
        last_step = self._last_step
        try:
            last = last_step[name]
        except (KeyError, TypeError):
            last = self._admit_name(name)
        if type(value) is not float:
            value = coerce_value(name, value)
        if step is None:
            step = last + 1
        elif type(step) is not int or step < 0 or step > MAX_STEP:
            step = coerce_step(name, step)
        last_step[name] = step
        rows = self._rows
        rows.extend((name, value, step, _time_ns()))
        if len(rows) > self._max_slots:
            self._wait_for_writer()

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log several metrics at one step (each name's own next step if omitted).

        All or nothing: if any name or value is bad, none is logged.
        """
        if not isinstance(metrics, Mapping):
            raise MetricTypeError("metrics", f"log_metrics takes a mapping, got {metrics!r}")
        if self._state is not _State.RUNNING:
            self._admit_name("metrics")  # raises RunStateError, even for an empty mapping
        last_step = self._last_step
        now = _time_ns()
        batch: Rows = []
        add = batch.extend
        if step is None:
            for name, value in metrics.items():
                try:
                    last = last_step[name]
                except (KeyError, TypeError):
                    last = self._admit_name(name)
                if type(value) is not float:
                    value = coerce_value(name, value)
                add((name, value, last + 1, now))
            last_step.update({name: last_step.get(name, -1) + 1 for name in metrics})
        else:
            if type(step) is not int or step < 0 or step > MAX_STEP:
                step = coerce_step("metrics", step)
            for name, value in metrics.items():
                if name not in last_step:
                    self._admit_name(name)
                if type(value) is not float:
                    value = coerce_value(name, value)
                add((name, value, step, now))
            last_step.update(dict.fromkeys(metrics, step))
        rows = self._rows
        rows.extend(batch)
        if len(rows) > self._max_slots:
            self._wait_for_writer()

    def _admit_name(self, name: object) -> int:
        """Check a metric name seen for the first time; return the step before its first."""
        if self._state is not _State.RUNNING:
            state = "finished" if self._state is _State.FINISHED else "not started"
            raise RunStateError(
                f"run {self.run_id} is {state}: log inside `with pacha.run(...)` "
                "or between start() and complete()"
            )
        if not isinstance(name, str):
            raise MetricTypeError(name, "metric names must be str")
        if not name:
            raise InvalidMetricError(name, "metric names must not be empty")
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidMetricError(name, "metric names must be valid Unicode text") from None
        return -1

    def _wait_for_writer(self) -> None:
        """Backpressure: points arrive faster than the writer encodes them; let it catch up.

        Only a loop that does nothing but log (millions of points a second)
        gets here. Waiting keeps memory bounded however long the run; the
        writer keeps draining into the spool even while the store is down,
        so a slow or failing store never makes the loop wait.
        """
        writer = self._writer
        if writer is None:
            return
        if not self._backpressure_noted:
            self._backpressure_noted = True
            logger.warning(
                "pacha: run %s logs faster than its writer encodes (%d points buffered); "
                "logging waits for it",
                self.run_id,
                len(self._buffer),
            )
        while writer.is_alive() and len(self._rows) > self._max_slots // 2:
            time.sleep(0.002)

    def get_metric(self, name: str) -> float | None:
        """The latest value of *name* by step (on a tie, the last logged), or ``None``."""
        latest = self._buffer.latest(name)
        if latest is not None:
            return latest[1]
        return self._keeper.stored_latest(name)

    # Artifacts and lineage.

    def log_artifact(
        self,
        path_or_bytes: str | os.PathLike[str] | bytes | bytearray | memoryview,
        *,
        artifact_type: str = "model",
        name: str | None = None,
    ) -> ArtifactReference:
        """Store a file (or bytes) content-addressed and record it as this run's output.

        The content is streamed, stored once per store under its BLAKE3 hash
        (a blob already there is not uploaded again), and its
        :class:`ArtifactReference` is appended to the run's ``artifacts``.
        *name* defaults to the file's name (required for bytes). Unlike
        metrics, a store that fails here raises :class:`StoreError`: the
        artifact is not stored. In distributed training only rank 0, which
        owns the run's record, logs artifacts; other ranks get
        :class:`RunStateError`.
        """
        self._require_running("log_artifact")
        if self._writes_rank_record:
            raise RunStateError(
                f"rank {self._rank} of run {self.run_id} cannot log artifacts: "
                "rank 0 owns the run's record; log them from rank 0"
            )
        ref = store_artifact(self._backend, path_or_bytes, artifact_type=artifact_type, name=name)
        with self._keeper.lock:
            if ref not in self._record.artifacts:
                self._record.artifacts.append(ref)
                self._keeper.write_soon()
        return ref

    def use_artifact(self, ref_or_hash: ArtifactReference | str) -> None:
        """Record that this run consumed an artifact, for :func:`pacha_sdk.query.lineage`.

        The entry goes to ``extra.inputs`` (once per content hash); a bare hash
        records no name or type. In distributed training rank 0 records the
        run's inputs; on other ranks (which run the same code) this does nothing.
        """
        self._require_running("use_artifact")
        if self._writes_rank_record:
            return
        with self._keeper.lock:
            if add_input(self._record, ref_or_hash):
                self._keeper.write_soon()

    def _require_running(self, what: str) -> None:
        if self._state is not _State.RUNNING:
            raise RunStateError(f"run {self.run_id} is not running: cannot {what}")

    def _start_observers(self) -> None:
        """Start the system-metrics sampler and the console capture, as asked."""
        if self._sample_every is not None:
            self._sampler = SystemMetricsSampler(self, self._sample_every)
            self._sampler.start()
        if self._capture_output:
            try:
                self._output = OutputCapture(self._backend, self._output_key).start()
            except OSError as error:
                logger.warning("pacha: console capture is off for run %s: %s", self.run_id, error)

    def _stop_observers(self) -> None:
        """Join the sampler (its last points go into the final flush); restore the streams."""
        try:
            if self._sampler is not None:
                self._sampler.stop()
        finally:
            if self._output is not None:
                self._output.stop()

    @property
    def _output_key(self) -> str:
        """Where captured console output goes: beside the run's or this rank's record."""
        if self._writes_rank_record:
            return rank_log_key(self.run_id, self._rank)
        return output_log_key(self.run_id)

    # Lifecycle.

    def start(self) -> Run:
        """Start the run: write ``run.json`` as ``running`` and start the writer.

        With ``run_id`` of a stored run, attaches to it (resume, or another
        rank of the same job); a rank above 0 writes its own rank record
        instead of ``run.json``. Raises :class:`StoreError` if the store
        cannot be written, so a wrong URI or credential fails fast.
        """
        with self._lifecycle:
            if self._state is not _State.PENDING:
                raise RunStateError(f"run {self.run_id} was already started")
            if self._attach:
                self._keeper.attach_stored(keep_stored_hparams=not self._explicit_hparams)
            with self._keeper.lock:
                if not self._writes_rank_record:  # rank 0 records the job's context
                    capture_context(self._record, env_vars=self._env_vars)
                if self._capture_output:
                    self._record.log_uri = f"{self.uri}/{self._output_key}"
                self._record.start()
                self._keeper.write()
            writer_id = secrets.token_hex(8)
            spool = Spool(
                self._spool_dir or default_spool_root(),
                uri=self.uri,
                run_id=str(self.run_id),
                writer_id=writer_id,
            )
            self._writer = MetricWriter(
                buffer=self._buffer,
                backend=self._backend,
                run_id=self.run_id,
                writer_id=writer_id,
                spool=spool,
                rank=self._rank,
                flush_interval=self._flush_interval,
                flush_rows=self._flush_rows,
                heartbeat=self._heartbeat,
                retry=RetryPolicy(cap=max(self._flush_interval, 1.0)),
            )
            self._state = _State.RUNNING
            self._writer.start()
            self._start_observers()
            _signals.register(self)
            _open_runs.add(self)
        return self

    def flush(self, timeout: float | None = None) -> bool:
        """Write every point logged so far; return whether all reached the store."""
        writer = self._writer
        if writer is None or not writer.is_alive():
            return not len(self._buffer)
        return writer.flush(timeout)

    def complete(self) -> None:
        """Finish the run as ``completed`` (after flushing every point)."""
        self._finish(RunStatus.COMPLETED)

    def fail(self, error: BaseException | str) -> None:
        """Finish the run as ``failed`` with *error* (an exception or a message)."""
        if isinstance(error, BaseException):
            trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            self._finish(RunStatus.FAILED, error_message(error), trace)
        else:
            self._finish(RunStatus.FAILED, str(error))

    def cancel(self) -> None:
        """Finish the run as ``cancelled`` (Ctrl-C, SIGTERM, a cancelled task)."""
        self._finish(RunStatus.CANCELLED)

    def finish_for(self, error: BaseException | None) -> None:
        """Finish with the status DESIGN's table gives for how the block ended.

        Normal exit and ``SystemExit(0 / None)`` complete; ``KeyboardInterrupt``
        and ``asyncio.CancelledError`` cancel; anything else fails.
        """
        import asyncio

        if error is None:
            self.complete()
        elif isinstance(error, (KeyboardInterrupt, asyncio.CancelledError)):
            self.cancel()
        elif isinstance(error, SystemExit):
            if error.code in (0, None):
                self.complete()
            else:
                self._finish(RunStatus.FAILED, f"SystemExit: {error.code}")
        else:
            self.fail(error)

    def _finish(
        self, status: RunStatus, message: str | None = None, trace: str | None = None
    ) -> None:
        with self._lifecycle:
            if self._state is _State.PENDING:
                raise RunStateError(f"run {self.run_id} was never started")
            if self._state is _State.FINISHED or self._finishing:
                return  # the first final status wins
            self._finishing = True
        deadline = time.monotonic() + self._close_timeout
        self._stop_observers()
        self._last_step = {}
        self._state = _State.FINISHED
        assert self._writer is not None
        all_written = self._writer.stop(self._close_timeout)
        if self._output is not None:
            self._output.upload(final=True)
        with self._keeper.lock:
            if status is RunStatus.COMPLETED:
                self._record.complete()
            elif status is RunStatus.CANCELLED:
                self._record.cancel()
            else:
                self._record.fail(json_text(message or "failed"))
            if trace is not None:
                self._record.extra["traceback"] = json_text(trace)
            retry = RetryPolicy(cap=max(self._flush_interval, 1.0))
            record_written = self._keeper.write_final(deadline, retry)
        if not (all_written and record_written):
            self._report_spooled(record_written=record_written)
        _signals.unregister(self)
        _open_runs.discard(self)

    def _report_spooled(self, *, record_written: bool) -> None:
        """Say what the store did not get in time, where it is kept, and how to finish."""
        writer = self._writer
        assert writer is not None
        self._last_error = self.last_error or writer.last_error
        if not record_written:
            writer.spool.put(self._keeper.key, self._keeper.to_json(), replace=True)
        logger.error(
            "pacha: %s did not take everything of run %s within %.0f s (%s): "
            "%d points%s kept in %s; upload them with pacha_sdk.sync() "
            "or `python -m pacha_sdk sync`",
            self.uri,
            self.run_id,
            self._close_timeout,
            self.last_error,
            writer.pending_points,
            "" if record_written else " and the final record",
            writer.spool.path,
        )

    def _heartbeat(self) -> None:
        """Writer thread, every flush: rewrite ``run.json`` and upload the console log."""
        self._keeper.heartbeat()
        if self._output is not None:
            self._output.upload(final=False)

    # Context manager.

    def __enter__(self) -> Run:
        if self._state is _State.PENDING:
            self.start()
        elif self._state is _State.FINISHED:
            raise RunStateError(f"run {self.run_id} is finished and cannot be entered again")
        self._tokens.append(_context.push_run(self))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._tokens:
            _context.pop_run(self._tokens.pop())
        self.finish_for(exc)

    async def __aenter__(self) -> Run:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


_open_runs: weakref.WeakSet[Run] = weakref.WeakSet()


@atexit.register
def _finish_open_runs() -> None:
    """At interpreter exit, finish runs that were started but never finished.

    Their points are flushed; the run completes, or fails with the error
    that ended the interpreter if one did (as MLflow and W&B do). Python
    gives exit hooks no exit code, so ``sys.exit(3)`` with a run left open
    records ``completed``: use ``with pacha.run(...)`` or ``@pacha.track``,
    which see the ``SystemExit`` and record ``failed``.
    """
    uncaught = getattr(sys, "last_value", None)
    for run in list(_open_runs):
        if uncaught is not None:
            run.finish_for(uncaught)
        else:
            run.complete()
