"""A training run: lifecycle, metric logging and its stored record.

:class:`Run` is a plain object with guarded transitions (pending, running,
finished) that is also a context manager; ``pacha.run(...)`` and
``@pacha.track`` are thin shells over it. Its hot path, :meth:`Run.log_metric`,
appends one tuple to an in-memory buffer: no I/O, no lock, no pydantic (with
the C extension, its common case runs in C: see ``_bind_fast_log_metric``). A
background :class:`~pacha_sdk.storage.writer.MetricWriter` turns the buffer into
Parquet part files and rewrites ``run.json`` (heartbeat and summary) every
flush. In distributed training every rank opens a ``Run`` with the same id;
ranks above 0 keep their own record instead (see :mod:`pacha_sdk.tracking._ranks`).
A forked child carries the run on with a writer of its own (``_fork``).

Beside this module: the keywords and their checks (``_options``), what a run
is built of (``_setup``), its read-only properties (``_view``), artifacts
(``_artifacts``), hyperparameters and tags added later (``_updates``),
tensor values (``_tensors``), the sampler and console capture
(``_observers``) and how it ends (``_ending``, ``_finish``).
"""

from __future__ import annotations

import logging
import threading
import time
import types
from collections.abc import Mapping
from contextvars import Token
from types import TracebackType
from typing import TYPE_CHECKING, Any, SupportsFloat

from typing_extensions import Unpack

from pacha_sdk._clock import SYSTEM_CLOCK, Clock
from pacha_sdk.backends import Backend, get_backend
from pacha_sdk.env import resolve_uri
from pacha_sdk.exceptions import MetricTypeError, RunStateError
from pacha_sdk.storage import buffer as _buffer_module
from pacha_sdk.storage.buffer import FIELDS, MetricBuffer
from pacha_sdk.storage.deadlines import StoreCalls
from pacha_sdk.tracking import _context, _ranks, _signals
from pacha_sdk.tracking._artifacts import RunArtifacts
from pacha_sdk.tracking._coerce import (
    MAX_STEP,
    LastStep,
    check_metric_name,
    coerce_step,
    no_next_step,
)
from pacha_sdk.tracking._ending import CLOSE_MARGIN, RunEnding, RunParts
from pacha_sdk.tracking._environment import capture_context_later
from pacha_sdk.tracking._finish import open_runs
from pacha_sdk.tracking._fork import ForkedRun
from pacha_sdk.tracking._observers import Observers
from pacha_sdk.tracking._options import RunOptions, check_options, run_keywords
from pacha_sdk.tracking._redact import redacted_hyperparameters
from pacha_sdk.tracking._setup import new_keeper, new_writer, output_key, retry_policy
from pacha_sdk.tracking._system_metrics import sampling_interval
from pacha_sdk.tracking._tensors import TensorValues
from pacha_sdk.tracking._updates import RunUpdates
from pacha_sdk.tracking._view import RunState

if TYPE_CHECKING:
    from pacha_sdk.models import Hyperparameters
    from pacha_sdk.storage.writer import MetricWriter

__all__ = ["CLOSE_MARGIN", "Run"]

logger = logging.getLogger("pacha_sdk")

BACKLOG_FLUSHES = 2
"""Logging waits once this many ``flush_rows`` of points are buffered (backpressure)."""

_time_ns = time.time_ns


class Run(RunArtifacts, RunUpdates, ForkedRun, RunEnding):
    """One training run: log metrics into it, and it records itself in the store.

    Use it as a context manager (``with pacha.run(...) as run:``) or drive it
    explicitly with :meth:`start` and :meth:`complete` / :meth:`fail` /
    :meth:`cancel`. Every argument is checked here, before anything is
    written; the keywords are those of :func:`pacha_sdk.run`, which says
    what each one means.
    """

    _clock: Clock = SYSTEM_CLOCK
    """What the run's waits, its writer and its record keeper read time from."""

    @run_keywords
    def __init__(
        self,
        hparams: Hyperparameters | Mapping[str, Any] | None = None,
        **options: Unpack[RunOptions],
    ) -> None:
        self._options = checked = check_options(options, "Run")
        parent = checked["parent"]
        if parent is not None and not isinstance(parent, Run):
            raise TypeError(f"parent must be a pacha.Run, got {parent!r}")
        parent = parent if parent is not None else _context.current_run()
        shared_id = _ranks.resolve_run_id(checked["run_id"], nested=parent is not None)
        self._rank = rank = _ranks.resolve_rank(checked["rank"])
        self._secrets, hyperparameters = redacted_hyperparameters(hparams, checked)
        self._explicit_hparams = hparams is not None
        self._backend: Backend = get_backend(
            resolve_uri(checked["uri"]), storage_options=checked["storage_options"]
        )
        self._attach = shared_id is not None
        self._writes_rank_record = self._attach and rank > 0
        if rank > 0 and not self._attach and parent is None:
            _ranks.warn_unshared_rank(rank)
        self._tensors = TensorValues(self._note_writer_error)
        self._coerce = self._tensors.coerce
        self._buffer = MetricBuffer(prepare=self._tensors.resolve)
        self._calls = StoreCalls(self._backend.uri)
        self._keeper = new_keeper(
            checked,
            hyperparameters,
            backend=self._backend,
            buffer=self._buffer,
            shared_id=shared_id,
            parent_id=parent.run_id if parent is not None else None,
            rank=rank,
            clock=self._clock,
            calls=self._calls,
        )
        self._tensors.run_label = str(self.run_id)
        self._rows = self._buffer.rows
        self._max_slots = FIELDS * max(BACKLOG_FLUSHES * checked["flush_rows"], 10_000)
        self._last_step: dict[str, int] = {}
        self._state = RunState.PENDING
        self._lifecycle = threading.RLock()
        self._tokens: list[Token[Run | None]] = []
        self._writer: MetricWriter | None = None
        self._observers: Observers | None = None
        self._context: threading.Thread | None = None
        self._last_error: BaseException | None = None
        self._backpressure_noted = False
        self._finishing = False
        if shared_id is not None and checked["run_id"] is None:
            _ranks.take_env_run_id(shared_id)  # the next run of this process gets its own id
        self._finisher: int | None = None
        self._ended = threading.Event()
        self._bind_fast_log_metric()

    def _bind_fast_log_metric(self) -> None:
        """With the C accelerator, make ``self.log_metric`` its common case done in C.

        The instance attribute shadows the method below, which stays the
        slow path: the C code reads ``_last_step``, ``_rows`` and
        ``_max_slots`` from this run's ``__dict__`` at every call (so their
        reassignment at fork, resume or finish is seen) and hands every case
        but an exact ``str`` name already logged, an exact ``float`` value and
        a plain step (``None`` or an ``int`` in range) to this class's
        :meth:`log_metric`, which keeps every rule and error. A subclass that
        overrides ``log_metric`` keeps its own.
        """
        native = _buffer_module.native
        if native is None or type(self).log_metric is not Run.log_metric:
            return
        attrs = vars(self)
        attrs["log_metric"] = native.FastLog(attrs, types.MethodType(Run.log_metric, self))

    def __repr__(self) -> str:
        return f"<Run {self.run_id} {self.status} at {self.uri}>"

    # Hot path.

    def log_metric(self, name: str, value: SupportsFloat, step: int | None = None) -> None:
        """Log one point of metric *name*; *step* defaults to its last step + 1.

        NaN and infinities are stored as they are. Steps may repeat or go
        back; every point is kept. Costs a few appends: no I/O happens here.
        *value* may also be an int, a numpy scalar or a 0-d torch tensor; a
        tensor on an accelerator is read by the writer thread at the next
        flush, so logging never waits for the device.
        """
        last_step = self._last_step
        try:
            last = last_step[name]
        except (KeyError, TypeError):
            last = self._admit_name(name)
        if type(value) is not float:
            value = self._coerce(name, value)
        if step is None:
            try:
                step = last + 1
            except OverflowError:  # free unless raised: only a LastStep (MAX_STEP) raises it
                raise no_next_step(name) from None
            if step == MAX_STEP:  # reached by counting: no automatic step after it either
                step = LastStep()
        elif type(step) is not int or step < 0 or step >= MAX_STEP:
            step = coerce_step(name, step)
        last_step[name] = step
        rows = self._rows
        rows.extend((name, value, step, _time_ns()))
        if len(rows) > self._max_slots:
            self._wait_for_writer()

    def log_metrics(self, metrics: Mapping[str, SupportsFloat], step: int | None = None) -> None:
        """Log several metrics at one step (each name's own next step if omitted).

        All or nothing: if any name or value is bad, none is logged.
        """
        if not isinstance(metrics, Mapping):
            raise MetricTypeError("metrics", f"log_metrics takes a mapping, got {metrics!r}")
        if self._state is not RunState.RUNNING:
            self._admit_name("metrics")  # raises RunStateError, even for an empty mapping
        last_step = self._last_step
        now = _time_ns()
        batch: list[Any] = []
        add = batch.extend
        if step is None:
            steps: dict[str, int] = {}
            try:
                for name, value in metrics.items():
                    try:
                        last = last_step[name]
                    except (KeyError, TypeError):
                        last = self._admit_name(name)
                    if type(value) is not float:
                        value = self._coerce(name, value)
                    steps[name] = following = last + 1
                    if following == MAX_STEP:  # as in log_metric
                        steps[name] = following = LastStep()
                    add((name, value, following, now))
            except OverflowError:  # as in log_metric: only a LastStep raises it here
                raise no_next_step(name) from None
            last_step.update(steps)
        else:
            if type(step) is not int or step < 0 or step >= MAX_STEP:
                step = coerce_step("metrics", step)
            for name, value in metrics.items():
                if name not in last_step:
                    self._admit_name(name)
                if type(value) is not float:
                    value = self._coerce(name, value)
                add((name, value, step, now))
            last_step.update(dict.fromkeys(metrics, step))
        rows = self._rows
        rows.extend(batch)
        if len(rows) > self._max_slots:
            self._wait_for_writer()

    def _admit_name(self, name: object) -> int:
        """Check a metric name seen for the first time; return the step before its first."""
        if self._state is not RunState.RUNNING:
            state = "finished" if self._state is RunState.FINISHED else "not started"
            raise RunStateError(
                f"run {self.run_id} is {state}: log inside `with pacha.run(...)` "
                "or between start() and complete()"
            )
        check_metric_name(name)
        return -1

    def _wait_for_writer(self) -> None:
        """Backpressure: points arrive faster than the writer encodes them; let it catch up.

        Only a loop that does nothing but log (millions of points a second)
        gets here: memory stays bounded. The writer drains into the spool
        while the store is down, so a failing store never makes the loop wait.
        """
        writer = self._writer
        if writer is None:
            self._start_child_writer()  # in a forked child, at its first point
            return
        if not self._backpressure_noted:
            self._backpressure_noted = True
            logger.warning(
                "pacha: run %s logs faster than its writer encodes (%d points buffered); "
                "logging waits for it",
                self.run_id,
                len(self._buffer),
            )
        self._buffer.writer_wake.set()  # take the points now, not at its next poll
        while writer.is_alive() and len(self._rows) > self._max_slots // 2:
            self._clock.sleep(0.002)

    def get_metric(self, name: str) -> float | None:
        """The latest value of *name* by step (on a tie, the last logged), or ``None``."""
        latest = self._keeper.or_stored(name, self._buffer.latest(name))  # a resumed run's too
        if latest is None:
            return None
        value = latest[1]
        return value if type(value) is float else float(value)  # a tensor not yet read

    def _note_writer_error(self, error: BaseException) -> None:
        """Writer thread: a logged value could not be stored (the writer logged why)."""
        self._last_error = error

    # Lifecycle.

    def start(self) -> Run:
        """Start the run: write ``run.json`` as ``running`` and start the writer.

        With ``run_id`` of a stored run, attaches to it (resume, or another
        rank of the same job); a rank above 0 writes its own rank record
        instead of ``run.json``. Raises :class:`StoreError` if the store
        cannot be written or does not answer within ``close_timeout``, so a
        wrong URI or credential fails fast. The run's context (hardware,
        git, environment) is gathered meanwhile and written at the first flush.
        """
        options = self._options
        with self._lifecycle:
            if self._state is not RunState.PENDING:
                raise RunStateError(f"run {self.run_id} was already started")
            if self._attach:
                self._keeper.attach_stored(keep_stored_hparams=not self._explicit_hparams)
                self._last_step.update(self._keeper.next_steps())
            log_key = output_key(self._keeper) if options["capture_output"] else None
            with self._keeper.lock:
                if log_key is not None:
                    self._record.log_uri = f"{self.uri}/{log_key}"
                self._keeper.start()
            self._keeper.write_first(timeout=options["close_timeout"])
            if not self._writes_rank_record:  # rank 0 records the job's context
                apply = self._keeper.update
                self._context = capture_context_later(
                    lambda context: apply(context.apply),
                    env_vars=options["env_vars"] or (),
                    secrets=self._secrets,
                )
            self._observers = observers = Observers(
                run_id=str(self.run_id),
                log_metrics=self.log_metrics,
                sample_every=sampling_interval(options["system_metrics"]),
                backend=self._backend,
                output_key=log_key,
                calls=self._calls,
            )
            self._writer = writer = new_writer(
                options,
                backend=self._backend,
                buffer=self._buffer,
                run_id=self.run_id,
                rank=self._rank,
                heartbeat=lambda: self._ending.heartbeat(),
                clock=self._clock,
                writer_id=self._keeper.writer_id,
                calls=self._calls,
            )
            self._ending = RunParts(
                writer=writer,
                keeper=self._keeper,
                observers=observers,
                context=self._context,
                retry=retry_policy(options["flush_interval"]),
                clock=self._clock,
                close_timeout=options["close_timeout"],
                uri=self.uri,
                scrub=self._secrets.scrub,
            )
            self._state = RunState.RUNNING
            writer.start()
            observers.start()
            if options["handle_sigterm"]:
                _signals.register(self)
            open_runs.add(self)
        return self

    def flush(self, timeout: float | None = None) -> bool:
        """Write every point logged so far; return whether all reached the store."""
        writer = self._writer
        if writer is None or not writer.is_alive():
            return not len(self._buffer)
        return writer.flush(timeout)

    # Context manager.

    def __enter__(self) -> Run:
        if self._state is RunState.PENDING:
            self.start()
        elif self._state is RunState.FINISHED:
            raise RunStateError(f"run {self.run_id} is finished and cannot be entered again")
        self._tokens.append(_context.push_run(self))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with _signals.held():  # from the block's last line on: see _finish
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
