"""accelerate: ``Accelerator(log_with="pacha")`` or ``log_with=[PachaTracker(...)]``.

::

    import pacha_sdk.integrations.accelerate  # registers the "pacha" tracker

    accelerator = Accelerator(log_with="pacha")
    accelerator.init_trackers("bert-ft", config={"learning_rate": 3e-4},
                              init_kwargs={"pacha": {"uri": "s3://bucket/exp"}})
    ...
    accelerator.log({"loss": loss.item()}, step=step)
    accelerator.end_training()

Importing the module registers :class:`PachaTracker` under the name
``"pacha"`` (``accelerate.tracking.register_tracker_class``); the
project name becomes the run's name and ``init_kwargs["pacha"]`` its
options. As accelerate's own trackers, it works on the main process only:
one run per job.

Logged: ``init_trackers(config=...)`` (``store_init_configuration``) as
hyperparameters, converted leniently; every number of ``accelerator.log``
at its ``step``. Status: ``end_training()`` completes the run. accelerate
has no error hook: an uncaught exception ends the run ``failed`` with its
message (``cancelled`` for Ctrl-C) as the interpreter exits, and a run
still open at exit otherwise completes. Inside ``with pacha.run()`` the
tracker logs into that run and the block decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pacha_sdk.integrations._framework_run import FrameworkRun, missing_framework

if TYPE_CHECKING:
    import pacha_sdk as pacha

try:
    from accelerate.tracking import GeneralTracker, on_main_process, register_tracker_class
except ImportError as error:
    raise missing_framework("accelerate", "accelerate") from error

__all__ = ["PachaTracker"]


class PachaTracker(GeneralTracker):  # type: ignore[misc]
    """An accelerate tracker recording the job as a pacha run (see the module doc)."""

    name = "pacha"
    requires_logging_directory = False
    main_process_only = True

    def __init__(
        self,
        run_name: str | None = None,
        *,
        uri: str | None = None,
        tags: Mapping[str, Any] | Iterable[str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        **run_options: Any,
    ) -> None:
        """Keep the run's options; the run opens when accelerate starts its trackers.

        Args:
            run_name: the run's display name (accelerate passes the project name).
            uri: the store (default ``$PACHA_URI``, else ``./pacha-runs``).
            tags: the run's tags.
            storage_options: the store's client settings.
            **run_options: other keywords of :func:`pacha_sdk.run`.
        """
        super().__init__()
        self._pacha = FrameworkRun(
            "accelerate",
            unfinished="accelerate training did not finish",
            uri=uri,
            name=run_name,
            tags=tags,
            storage_options=storage_options,
            **run_options,
        )

    @property
    def tracker(self) -> pacha.Run | None:
        """The pacha run (``accelerator.get_tracker("pacha", unwrap=True)``)."""
        return self._pacha.run

    @on_main_process  # type: ignore[untyped-decorator]
    def start(self) -> None:
        """Open the run (``init_trackers``)."""
        self._pacha.open()

    @on_main_process  # type: ignore[untyped-decorator]
    def store_init_configuration(self, values: Mapping[str, Any]) -> None:
        """The ``config`` given to ``init_trackers``, as hyperparameters."""
        self._pacha.log_hparams(values)

    @on_main_process  # type: ignore[untyped-decorator]
    def log(self, values: Mapping[str, Any], step: int | None = None, **kwargs: Any) -> None:
        """Every number of *values* at *step* (other values are skipped with a warning)."""
        self._pacha.log(values, step)

    @on_main_process  # type: ignore[untyped-decorator]
    def finish(self) -> None:
        """Complete the run (``end_training``)."""
        self._pacha.finish()


register_tracker_class(PachaTracker)
