"""Hugging Face Trainer: ``Trainer(..., callbacks=[PachaCallback(...)])``.

::

    from pacha_sdk.integrations.transformers import PachaCallback

    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=val,
                      callbacks=[PachaCallback(name="bert-ft")])
    trainer.train()
    trainer.evaluate()                   # the same run

transformers' ``report_to`` takes only the names of the integrations it
ships, so pass the callback (and ``report_to="none"`` to keep the others
out). Everything happens on the main process only
(``state.is_world_process_zero``): one run per job, as for the built-ins.

Logged:

* hyperparameters: ``TrainingArguments.to_dict()`` (``learning_rate``,
  ``weight_decay``, ``max_grad_norm``, ``warmup_steps`` fill pacha's named
  fields; ``per_device_train_batch_size`` and a whole ``num_train_epochs``
  fill ``batch_size`` and ``epochs``; a fractional ``warmup_steps``, which
  transformers reads as a ratio, is kept as ``warmup_ratio``) and the
  model's ``config.to_dict()`` under ``model.`` (``model.id2label.0``...),
  both converted leniently;
* every number of each ``on_log`` at ``state.global_step``: ``loss``,
  ``learning_rate``, ``grad_norm``, ``epoch``, the ``eval_*`` metrics, and
  the final summary (``train_runtime``, ``train_loss``, ``total_flos``...).

Status: each ``train()`` starts a run; ``on_train_end`` keeps it open, so a
following ``evaluate()`` or ``predict()`` logs into it, and it completes at
interpreter exit (or ``callback.run.complete()``). An exception in
``train()`` skips ``on_train_end``: uncaught, it ends the run ``failed``
with its message (``cancelled`` for Ctrl-C) as the interpreter exits;
caught, the run is ``failed`` ("train() did not finish") at exit or when
the next ``train()`` begins. Inside ``with pacha.run()`` the callback logs
into that run and the block decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pacha_sdk.integrations._framework_run import FrameworkRun, missing_framework

if TYPE_CHECKING:
    import pacha_sdk as pacha

try:
    from transformers import (
        TrainerCallback,
        TrainerControl,
        TrainerState,
        TrainingArguments,
    )
except ImportError as error:
    raise missing_framework("Hugging Face", "transformers") from error

__all__ = ["PachaCallback"]


class PachaCallback(TrainerCallback):
    """Records a Hugging Face ``Trainer`` job as a pacha run (see the module doc)."""

    def __init__(
        self,
        *,
        uri: str | None = None,
        name: str | None = None,
        tags: Mapping[str, Any] | Iterable[str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        **run_options: Any,
    ) -> None:
        """Keep the run's options; the run opens when training (or evaluation) begins.

        Args:
            uri: the store (default ``$PACHA_URI``, else ``./pacha-runs``).
            name: the run's display name (default: ``TrainingArguments.run_name``).
            tags: the run's tags.
            storage_options: the store's client settings.
            **run_options: other keywords of :func:`pacha_sdk.run`.
        """
        self._name = name
        self._pacha = FrameworkRun(
            "transformers",
            unfinished="train() did not finish: an error stopped it",
            uri=uri,
            tags=tags,
            storage_options=storage_options,
            **run_options,
        )

    @property
    def run(self) -> pacha.Run | None:
        """The pacha run, or ``None`` before training began."""
        return self._pacha.run

    def _options(self, args: TrainingArguments) -> dict[str, Any]:
        name = self._name or getattr(args, "run_name", None)
        return {"name": name} if isinstance(name, str) and name else {}

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: Any = None,
        **kwargs: Any,
    ) -> None:
        """Start the run and record the arguments and the model's config."""
        if not state.is_world_process_zero:
            return
        self._pacha.begin(**self._options(args))
        config: dict[str, Any] = dict(args.to_dict())  # type: ignore[no-untyped-call]
        warmup = config.get("warmup_steps")
        if isinstance(warmup, float) and not warmup.is_integer():
            config["warmup_ratio"] = config.pop("warmup_steps")
        model_config = getattr(model, "config", None)
        if model_config is not None and callable(getattr(model_config, "to_dict", None)):
            config["model"] = model_config.to_dict()
        epochs = args.num_train_epochs
        self._pacha.log_hparams(
            config,
            named={
                "batch_size": args.per_device_train_batch_size,
                "epochs": int(epochs) if float(epochs).is_integer() else None,
            },
        )

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Log every number of *logs* at ``state.global_step``."""
        if not state.is_world_process_zero or not logs:
            return
        if self._pacha.run is None or self._pacha.run.is_finished:
            self._pacha.open(**self._options(args))  # evaluate() without train()
        self._pacha.log(logs, state.global_step)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Training reached its end: the run stays open for evaluation, completing at exit."""
        if state.is_world_process_zero:
            self._pacha.training = False
