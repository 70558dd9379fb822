"""LightGBM: ``lgb.train(..., callbacks=[PachaCallback(...)])``.

::

    from pacha_sdk.integrations.lightgbm import PachaCallback

    booster = lgb.train(params, train_set, num_boost_round=100,
                        valid_sets=[train_set, valid_set], valid_names=["train", "valid"],
                        callbacks=[PachaCallback(name="churn")])

Also works with the scikit-learn API (``LGBMClassifier().fit(...,
callbacks=[...])``) and ``lgb.cv`` (means as ``data/metric``, deviations
as ``data/metric_std``).

Logged: ``env.params`` as hyperparameters (``learning_rate`` fills pacha's
named field), converted leniently; after every iteration each entry of
``env.evaluation_result_list`` as ``data/metric`` at step =
``env.iteration``. The callback runs before LightGBM's early-stopping
check (``order = 20``), so the round that stops training is logged too.

Status: the last round (``env.end_iteration - 1``) completes the run.
LightGBM tells callbacks neither about early stopping nor about errors, so
a run that stopped early completes when the next training with this
callback begins, or at interpreter exit; an uncaught exception ends it
``failed`` with its message (``cancelled`` for Ctrl-C) as the interpreter
exits. For an exact end, wrap the call in ``with pacha.run()``: the
callback then logs into that run and the block decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pacha_sdk.integrations._framework_run import FrameworkRun, missing_framework

if TYPE_CHECKING:
    import pacha_sdk as pacha

try:
    import lightgbm  # noqa: TC002 - imported here so a missing LightGBM fails at import
except ImportError as error:
    raise missing_framework("LightGBM", "lightgbm") from error

__all__ = ["PachaCallback"]


class PachaCallback:
    """Records a LightGBM training as a pacha run (see the module doc)."""

    order = 20
    """Before LightGBM's ``early_stopping`` (30): the stopping round is logged too."""
    before_iteration = False

    def __init__(
        self,
        *,
        uri: str | None = None,
        name: str | None = None,
        tags: Mapping[str, Any] | Iterable[str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        **run_options: Any,
    ) -> None:
        """Keep the run's options; the run opens at the first iteration.

        Args:
            uri: the store (default ``$PACHA_URI``, else ``./pacha-runs``).
            name: the run's display name.
            tags: the run's tags.
            storage_options: the store's client settings.
            **run_options: other keywords of :func:`pacha_sdk.run`.
        """
        self._pacha = FrameworkRun(
            "LightGBM",
            unfinished="LightGBM training did not finish",
            uri=uri,
            name=name,
            tags=tags,
            storage_options=storage_options,
            **run_options,
        )

    @property
    def run(self) -> pacha.Run | None:
        """The pacha run of the current (or last) training, or ``None`` before one."""
        return self._pacha.run

    def __call__(self, env: lightgbm.callback.CallbackEnv) -> None:
        """One iteration: open the run at the first, log the evaluations, complete at the last."""
        if env.iteration == env.begin_iteration or self._pacha.run is None:
            self._pacha.begin()
            self._pacha.training = False  # early stopping ends training unseen: not an error
            params = dict(env.params or {})
            self._pacha.log_hparams(params, named={"learning_rate": params.get("learning_rate")})
        metrics: dict[str, Any] = {}
        for entry in env.evaluation_result_list or []:
            data, metric, value = entry[0], entry[1], entry[2]
            metrics[f"{data}/{metric}"] = value
            if len(entry) > 4 and entry[4] is not None:  # lgb.cv: the standard deviation
                metrics[f"{data}/{metric}_std"] = entry[4]
        if metrics:
            self._pacha.log(metrics, env.iteration)
        if env.iteration >= env.end_iteration - 1:
            self._pacha.finish()
