"""What a run says about itself: its id, store, rank and status, read from its record.

:class:`RunView` is the read-only half of :class:`~pacha_sdk.tracking.run.Run`:
every property answers from the record keeper (or the backend) and none
changes anything, so the lifecycle and the hot path stay in ``run.py``.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from pacha_sdk.exceptions import RunStateError

if TYPE_CHECKING:
    from pacha_sdk.backends import Backend
    from pacha_sdk.models import ExperimentRun, Hyperparameters, RunId, RunStatus
    from pacha_sdk.storage.writer import MetricWriter
    from pacha_sdk.tracking._fork import ChildWriter
    from pacha_sdk.tracking._record import RecordKeeper
    from pacha_sdk.tracking._redact import Secrets

__all__ = ["RunState", "RunView"]


class RunState(Enum):
    """Where a run is in its lifecycle (its record's status says how it ended)."""

    PENDING = "pending"
    RUNNING = "running"
    FINISHED = "finished"


class RunView:
    """Identity and state of a run (the base of :class:`~pacha_sdk.tracking.run.Run`)."""

    _keeper: RecordKeeper
    _secrets: Secrets
    _backend: Backend
    _rank: int
    _writes_rank_record: bool
    _state: RunState
    _last_error: BaseException | None
    _child: ChildWriter | None
    _writer: MetricWriter | None

    @property
    def _record(self) -> ExperimentRun:
        return self._keeper.record

    @property
    def last_error(self) -> BaseException | None:
        """The last error met while writing, if any: set as soon as it happens, never raised.

        A store that fails or does not answer, a spool that cannot be
        written, points the writer could not encode.
        """
        writer = self._writer
        writing = writer.last_error if writer is not None else None
        return self._last_error or writing or self._keeper.last_error

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

    def _require_running(self, what: str) -> None:
        if self._state is not RunState.RUNNING:
            raise RunStateError(f"run {self.run_id} is not running: cannot {what}")

    def _require_record_owner(self, what: str) -> None:
        """Refuse in a forked child: the run's record is its parent's to write."""
        if self._child is not None:
            raise RunStateError(
                f"cannot {what} in run {self.run_id} from a forked child process: the "
                f"process that started the run (pid {self._child.parent_pid}) records it"
            )
