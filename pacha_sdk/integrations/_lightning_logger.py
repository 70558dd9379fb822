"""The Lightning logger's behaviour, shared by both namespaces.

``lightning.pytorch`` and ``pytorch_lightning`` are two copies of one
framework with distinct ``Logger`` classes; :class:`LightningLoggerBody`
holds everything, and each namespace's module combines it with its
``Logger`` and gives it two hooks (the rank, the SIGTERM exception).

How the run follows what Lightning does:

* **Phases**: Lightning calls ``finalize("success")`` after every
  ``fit``/``validate``/``test``. A success keeps the run open, so
  ``trainer.fit(...)`` then ``trainer.test(...)`` is one run with both
  phases' points; it completes at interpreter exit (or ``logger.experiment
  .complete()``). ``finalize("failed")`` comes with the exception in
  flight: ``KeyboardInterrupt`` (Lightning then calls ``sys.exit(1)``) and
  Lightning's ``SIGTERMException`` cancel the run; any other error fails it
  with its message.
* **SIGTERM**: Lightning owns it (it finishes the batch, then raises
  ``SIGTERMException``), so the run is opened with ``handle_sigterm=False``
  and pacha never ends the process first.
* **DDP**: Lightning's launcher re-runs the script for ranks above 0 with
  ``LOCAL_RANK``/``WORLD_SIZE`` set but no ``RANK``. The launcher process
  picks the run id when the logger is made and exports it as
  ``$PACHA_RUN_ID`` for the children it is about to start (and withdraws
  it once its run is open); each process logs with the trainer's global
  rank (which Lightning's strategy sets in ``rank_zero_only.rank`` before
  any logger call). One run: rank 0 owns ``run.json``, every other rank
  keeps its rank record.
* **Inside ``with pacha.run()``**: the logger logs into that run.
"""

from __future__ import annotations

import os
import sys
import uuid
from argparse import Namespace
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import pacha_sdk as pacha
from pacha_sdk.integrations._framework_run import FrameworkRun

__all__ = ["LightningLoggerBody"]

PACHA_RUN_ID = "PACHA_RUN_ID"
_LAUNCHED = ("LOCAL_RANK", "RANK", "SLURM_PROCID")
"""Set in a process someone else launched as one rank of a job."""


class LightningLoggerBody:
    """Everything of ``PachaLogger`` but its ``Logger`` base (see the module doc)."""

    _sigterm_exception: ClassVar[type[BaseException]]
    """Lightning's ``SIGTERMException`` of the namespace."""

    def __init__(
        self,
        *,
        uri: str | None = None,
        name: str | None = None,
        tags: Mapping[str, Any] | Iterable[str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        prefix: str = "",
        save_dir: str | None = None,
        log_checkpoints: bool = False,
        **run_options: Any,
    ) -> None:
        """A Lightning logger that records the trainer's job as one pacha run.

        Args:
            uri: the store (default ``$PACHA_URI``, else ``./pacha-runs``).
            name: the run's display name; also Lightning's logger name
                (checkpoints go to ``<save_dir>/<name>/<run id>/checkpoints``).
            tags: the run's tags.
            storage_options: the store's client settings (credentials...).
            run_id: log into this run id (resume); default: a new one,
                shared with DDP's ranks.
            prefix: put before every metric name.
            save_dir: where Lightning puts checkpoints (default: the
                trainer's ``default_root_dir``).
            log_checkpoints: store every checkpoint file Lightning saves as
                an artifact of the run (type ``checkpoint``), from rank 0.
            **run_options: other keywords of :func:`pacha_sdk.run`
                (``flush_interval``, ``system_metrics``, ``capture_output``...).
        """
        super().__init__()
        self._name = name
        self._prefix = prefix
        self._save_dir = save_dir
        self._log_checkpoints = log_checkpoints
        self._logged_checkpoints: set[tuple[str, int, int]] = set()
        self._exported: str | None = None
        self._planned_id = run_id if run_id is not None else self._shared_run_id()
        self._pacha = FrameworkRun(
            "Lightning",
            unfinished="Lightning stopped without finalizing the logger",
            uri=uri,
            name=name,
            tags=tags,
            storage_options=storage_options,
            **run_options,
        )

    def _shared_run_id(self) -> str | None:
        """The id every rank will log into, exported for the ranks this process launches."""
        active = pacha.active_run()
        if active is not None:
            return str(active.run_id)
        given = os.environ.get(PACHA_RUN_ID, "").strip()
        if given:
            return given
        if any(os.environ.get(name, "").strip() for name in _LAUNCHED):
            return None  # launched by torchrun/SLURM without a shared id: pacha warns on rank > 0
        planned = str(uuid.uuid4())
        os.environ[PACHA_RUN_ID] = planned  # Lightning's DDP children inherit it
        self._exported = planned
        return planned

    def _global_rank(self) -> int:
        """The trainer's global rank (the namespace's module provides it)."""
        raise NotImplementedError

    # Lightning's Logger interface.

    @property
    def experiment(self) -> pacha.Run:
        """The pacha run (opened on first use: Lightning does so at the start of each phase)."""
        self._ensure_open()
        assert self._pacha.run is not None
        return self._pacha.run

    @property
    def run(self) -> pacha.Run | None:
        """The pacha run, or ``None`` before the trainer started."""
        return self._pacha.run

    def _open(self) -> None:
        rank = self._global_rank()
        run_id = self._planned_id if self._pacha.run is None else None
        overrides: dict[str, Any] = {"rank": rank, "handle_sigterm": False}
        if run_id is not None and pacha.active_run() is None:
            overrides["run_id"] = run_id
        self._pacha.open(**overrides)
        if self._exported is not None and os.environ.get(PACHA_RUN_ID) == self._exported:
            del os.environ[PACHA_RUN_ID]  # the children have it; later runs of ours must not
        self._exported = None

    @property
    def name(self) -> str:
        """The logger's name: the run's name, else ``"pacha"``."""
        return self._name or "pacha"

    @property
    def version(self) -> str:
        """The run id."""
        if self._pacha.run is not None:
            return str(self._pacha.run.run_id)
        if self._planned_id is not None:
            return self._planned_id
        return str(self.experiment.run_id)

    @property
    def save_dir(self) -> str | None:
        """Where Lightning puts checkpoints (``None``: the trainer's ``default_root_dir``)."""
        return self._save_dir

    @property
    def log_dir(self) -> str | None:
        """``<save_dir>/<name>/<run id>``, or ``None`` without a ``save_dir``."""
        if self._save_dir is None:
            return None
        return os.path.join(self._save_dir, self.name, self.version)

    def log_hyperparams(
        self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any
    ) -> None:
        """The module's (and datamodule's) ``hparams``, converted leniently."""
        self._ensure_open()
        self._pacha.log_hparams(params)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Every metric Lightning hands over, at its step (``trainer.global_step``)."""
        self._ensure_open()
        self._pacha.log(metrics, step, prefix=self._prefix)

    def _ensure_open(self) -> None:
        if self._pacha.run is None or self._pacha.run.is_finished:
            self._open()

    def save(self) -> None:
        """Nothing to do: the run's writer flushes in the background."""

    def finalize(self, status: str) -> None:
        """End of a phase: keep the run open on success, else end it as the error says."""
        run = self._pacha.run
        if run is None or run.is_finished:
            return
        if status == "success":
            return
        if status != "failed":
            run.flush(timeout=30.0)  # "finished": SLURM requeue; the job goes on elsewhere
            return
        error = sys.exc_info()[1]
        if isinstance(error, KeyboardInterrupt | self._sigterm_exception):
            self._pacha.cancel()
        elif self._pacha.owned:
            self._pacha.finish(error or RuntimeError("Lightning reported the run as failed"))

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """With ``log_checkpoints=True``, store the checkpoint files saved so far (rank 0)."""
        if not self._log_checkpoints:
            return
        run = self.experiment
        if not run.owns_record:
            return
        paths = [
            getattr(checkpoint_callback, "last_model_path", ""),
            getattr(checkpoint_callback, "best_model_path", ""),
            *getattr(checkpoint_callback, "best_k_models", {}),
        ]
        for path in dict.fromkeys(str(path) for path in paths if path):
            self._log_checkpoint(run, path)

    def _log_checkpoint(self, run: pacha.Run, path: str) -> None:
        try:
            stat = os.stat(path)
        except OSError:
            return  # deleted meanwhile (save_top_k)
        key = (path, stat.st_mtime_ns, stat.st_size)
        if key in self._logged_checkpoints:
            return
        try:
            run.log_artifact(path, artifact_type="checkpoint")
        except OSError as error:  # pacha.StoreError included: the store refused
            import warnings

            warnings.warn(f"pacha: checkpoint {path} was not stored: {error}", stacklevel=2)
            return
        self._logged_checkpoints.add(key)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_exported"] = None
        return state
