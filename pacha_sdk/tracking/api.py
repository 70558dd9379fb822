"""The fluent layer: ``pacha.run()``, ``pacha.active_run()``, ``pacha.log_metric()``.

Thin shells over :class:`~pacha_sdk.tracking.run.Run`: they resolve the active run
from a :class:`contextvars.ContextVar` (per thread and per asyncio task)
and delegate. Keeping them apart keeps ``Run`` testable as a plain object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, SupportsFloat

from typing_extensions import Unpack

from pacha_sdk.exceptions import NoActiveRunError
from pacha_sdk.tracking import _context
from pacha_sdk.tracking._options import RunOptions, check_options, run_keywords
from pacha_sdk.tracking.run import Run

if TYPE_CHECKING:
    from pacha_sdk.models import Hyperparameters

__all__ = ["active_run", "log_hyperparams", "log_metric", "log_metrics", "run"]


@run_keywords
def run(
    hparams: Hyperparameters | Mapping[str, Any] | None = None,
    **options: Unpack[RunOptions],
) -> Run:
    """Start a run and return it; use it as a context manager to finish it for you.

    ``with pacha.run(...) as run:`` completes the run when the block ends,
    fails it (and re-raises) on an exception, cancels it on Ctrl-C, and makes
    it the active run for :func:`log_metric` inside the block. Without
    ``with``, call ``run.complete()`` yourself (a run left open is finished
    at interpreter exit).

    The keywords (:class:`~pacha_sdk.tracking._options.RunOptions`) are the
    same for ``Run(...)`` and ``@pacha.track(...)``; this is where they are
    documented. Each is checked before anything is written.

    Args:
        hparams: a :class:`Hyperparameters` or a plain mapping; keys naming
            pacha's fields fill them, the rest go to ``custom``. A value that is
            not a JSON value raises :class:`InvalidHyperparameterError` before
            anything is written.
        uri: the store: a local folder (default ``$PACHA_URI`` else
            ``./pacha-runs``), ``file://``, ``memory://``, ``s3://`` or ``gs://``.
        storage_options: settings for the store's fsspec client (credentials,
            endpoint); never stored or logged.
        name: a display name.
        tags: a ``{name: value}`` mapping, or a list of names.
        recipe: the :class:`RecipeReference` the run follows.
        run_id: attach to this run id (resume, or another rank of one job);
            default ``$PACHA_RUN_ID`` for the first run of a process not
            nested in another, so every rank of a torchrun or SLURM job logs
            into one run (and a sweep's later runs get ids of their own). A
            resumed run keeps its ``started_at`` and summary, and its automatic
            steps go on after the stored ones. :class:`RunInUseError` if
            another live process writes that run's ``run.json``.
        flush_interval: seconds between flushes (default 5): the most points
            a killed process can lose, and the heartbeat period.
        flush_rows: buffered points that trigger an early flush (default 100,000).
        close_timeout: seconds the end of the run waits for its last writes
            (default 30); what the store has not taken by then stays in the spool.
        rank: this process's rank in distributed training (the ``rank``
            column); default ``$RANK``, else ``$SLURM_PROCID``, else 0. Rank 0
            owns ``run.json``; a rank above 0 of a shared run keeps its own
            record in ``runs/<id>/ranks/<rank>.json``
            (:func:`pacha_sdk.load_rank_records`).
        spool_dir: the local folder where points wait (fsynced) until a
            remote store has them, and what a run ending in an outage leaves
            for ``pacha sync``; default ``$PACHA_SPOOL_DIR``, else
            ``~/.cache/pacha-sdk/spool``.
        system_metrics: log ``system/*`` metrics (CPU, memory, GPUs) every 10 s,
            the first one interval in; a number of seconds sets the interval,
            ``False`` turns it off.
        capture_output: tee stdout and stderr into ``runs/<id>/output.log``
            (the run's ``log_uri``).
        env_vars: names of environment variables to record in
            ``extra.environment.env``; names that look like secrets (KEY,
            SECRET, TOKEN, PASSWORD) are skipped with a warning.
        handle_sigterm: on SIGTERM, cancel the run and then let the previous
            handler act (the default); ``False`` leaves SIGTERM to code that
            handles it itself (Lightning's graceful shutdown): the run then
            ends as that code ends it.
        compact_parts: merge the run's part files as it goes (every 8 of
            one level into one of the next) and into one at its end, within
            ``close_timeout`` (the default). ``False`` keeps one file per
            flush, as SDKs before compaction did; ``pacha compact`` merges
            them later.
        parent: the run this one is nested in (``extra.parent_run_id``);
            default: the active run. Give it where the parent is not active,
            e.g. in a worker thread (Optuna's ``n_jobs``).
    """
    return Run(hparams, **check_options(options, "run")).start()


def active_run() -> Run | None:
    """The innermost run active in this thread or asyncio task, or ``None``."""
    return _context.current_run()


def _require_active(function: str) -> Run:
    current = _context.current_run()
    if current is None:
        raise NoActiveRunError(function)
    return current


def log_metric(name: str, value: SupportsFloat, step: int | None = None) -> None:
    """Log one point to the active run (see :meth:`Run.log_metric`)."""
    _require_active("log_metric").log_metric(name, value, step)


def log_metrics(metrics: Mapping[str, SupportsFloat], step: int | None = None) -> None:
    """Log several metrics at one step to the active run (see :meth:`Run.log_metrics`)."""
    _require_active("log_metrics").log_metrics(metrics, step)


def log_hyperparams(hparams: Hyperparameters | Mapping[str, Any], *, lenient: bool = False) -> None:
    """Add or update hyperparameters of the active run (see :meth:`Run.log_hyperparams`)."""
    _require_active("log_hyperparams").log_hyperparams(hparams, lenient=lenient)
