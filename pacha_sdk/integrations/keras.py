"""Keras 3 (any backend): ``model.fit(..., callbacks=[PachaCallback(...)])``.

::

    from pacha_sdk.integrations.keras import PachaCallback

    model.fit(x, y, epochs=10, validation_split=0.2,
              callbacks=[PachaCallback(name="mnist", log_every_n_batches=50)])

Logged:

* hyperparameters: ``self.params`` (``epochs`` fills pacha's named field,
  ``steps``...) and the optimizer's ``get_config()`` under ``optimizer.``
  (its ``learning_rate`` and ``weight_decay``, when numbers, also fill
  pacha's named fields), converted leniently;
* the epoch logs at step = epoch (``loss``, ``accuracy``, ``val_*`` as Keras
  names them);
* with ``log_every_n_batches=n``, the batch logs every *n* optimizer steps
  as ``batch/<name>`` at step = ``optimizer.iterations`` (distinct names:
  epoch and batch points have different steps).

Status: each ``fit`` is one run; ``on_train_end`` completes it. Keras has
no error hook: an exception in ``fit`` that nobody catches ends the run
``failed`` with its message (``cancelled`` for Ctrl-C) as the interpreter
exits; one that is caught leaves ``fit`` without ``on_train_end``, and the
run is ``failed`` ("fit() did not finish") at exit or when the next ``fit``
begins. Inside ``with pacha.run()`` the callback logs into that run and
the block decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pacha_sdk.integrations._framework_run import FrameworkRun, missing_framework

if TYPE_CHECKING:
    import pacha_sdk as pacha

try:
    import keras
except ImportError as error:
    raise missing_framework("Keras", "keras") from error

__all__ = ["PachaCallback"]


class PachaCallback(keras.callbacks.Callback):  # type: ignore[misc]
    """Records each Keras ``fit`` as a pacha run (see the module doc)."""

    def __init__(
        self,
        *,
        uri: str | None = None,
        name: str | None = None,
        tags: Mapping[str, Any] | Iterable[str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        log_every_n_batches: int | None = None,
        **run_options: Any,
    ) -> None:
        """Keep the run's options; the run opens when ``fit`` begins.

        Args:
            uri: the store (default ``$PACHA_URI``, else ``./pacha-runs``).
            name: the run's display name (default: the model's name).
            tags: the run's tags.
            storage_options: the store's client settings.
            log_every_n_batches: also log the batch logs every *n* optimizer
                steps (``None``: epoch logs only).
            **run_options: other keywords of :func:`pacha_sdk.run`.
        """
        super().__init__()
        if log_every_n_batches is not None and (
            isinstance(log_every_n_batches, bool)
            or not isinstance(log_every_n_batches, int)
            or log_every_n_batches < 1
        ):
            raise ValueError(
                f"log_every_n_batches must be a positive int or None, got {log_every_n_batches!r}"
            )
        self._name = name
        self._every = log_every_n_batches
        self._pacha = FrameworkRun(
            "Keras",
            unfinished="fit() did not finish: an error stopped it",
            uri=uri,
            tags=tags,
            storage_options=storage_options,
            **run_options,
        )

    @property
    def run(self) -> pacha.Run | None:
        """The pacha run of the current (or last) ``fit``, or ``None`` before one."""
        return self._pacha.run

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        """Start the run and record ``self.params`` and the optimizer's config."""
        name = self._name or getattr(self.model, "name", None)
        self._pacha.begin(**({"name": name} if name else {}))
        params = dict(self.params or {})
        optimizer = getattr(self.model, "optimizer", None)
        optimizer_config: dict[str, Any] = {}
        if optimizer is not None:
            try:
                optimizer_config = dict(optimizer.get_config())
            except Exception:  # a custom optimizer without a config
                optimizer_config = {"name": type(optimizer).__name__}
        self._pacha.log_hparams(
            {**params, "optimizer": optimizer_config},
            named={
                "learning_rate": _number(optimizer_config.get("learning_rate")),
                "weight_decay": _number(optimizer_config.get("weight_decay")),
            },
        )

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """The epoch's logs at step = epoch."""
        if logs:
            self._pacha.log(logs, epoch)

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Every ``log_every_n_batches`` optimizer steps, the batch logs as ``batch/<name>``."""
        if self._every is None or not logs:
            return
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            return
        iterations = int(keras.ops.convert_to_numpy(optimizer.iterations))
        if iterations % self._every == 0:
            self._pacha.log(logs, iterations, prefix="batch/")

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        """``fit`` reached its end: the run completes."""
        self._pacha.finish()


def _number(value: Any) -> float | None:
    """*value* if it is a plain number (not a schedule's config), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
