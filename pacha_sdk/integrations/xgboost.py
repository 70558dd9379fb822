"""XGBoost: ``xgb.train(..., callbacks=[PachaCallback(...)])``.

::

    from pacha_sdk.integrations.xgboost import PachaCallback

    booster = xgb.train(params, dtrain, num_boost_round=100,
                        evals=[(dtrain, "train"), (dvalid, "valid")],
                        callbacks=[PachaCallback(name="churn")])

Also works with the scikit-learn API (``XGBClassifier(callbacks=[...])``)
and ``xgb.cv`` (means as ``data/metric``, deviations as
``data/metric_std``).

Logged:

* hyperparameters from the booster's configuration (``save_config()``):
  every training parameter by its name (``eta``, ``max_depth``,
  ``objective``, ``tree_method``, ``seed``...), numbers as numbers, plus
  ``eval_metric``; ``eta`` also fills pacha's ``learning_rate``;
* after every boosting round, the last value of each
  ``evals_log[data][metric]`` as ``data/metric`` at step = the round.

Status: ``after_training`` (also reached after early stopping) completes
the run. XGBoost has no error hook: an uncaught exception ends the run
``failed`` with its message (``cancelled`` for Ctrl-C) as the interpreter
exits; a caught one leaves the run ``failed`` ("training did not finish")
at exit or when the next training begins. Inside ``with pacha.run()``
the callback logs into that run and the block decides.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pacha_sdk.integrations._framework_run import FrameworkRun, missing_framework

if TYPE_CHECKING:
    import pacha_sdk as pacha

try:
    import numpy as np
    import xgboost  # noqa: TC002 - imported here so a missing XGBoost fails at import
    from xgboost.callback import TrainingCallback
except ImportError as error:
    raise missing_framework("XGBoost", "xgboost-cpu") from error

__all__ = ["PachaCallback", "booster_params"]

_MODEL_STATE = frozenset({"learner_model_param", "gbtree_model_param"})
"""Tables describing the model built so far (feature and tree counts), not its training."""


class PachaCallback(TrainingCallback):
    """Records an XGBoost training as a pacha run (see the module doc)."""

    def __init__(
        self,
        *,
        uri: str | None = None,
        name: str | None = None,
        tags: Mapping[str, Any] | Iterable[str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        **run_options: Any,
    ) -> None:
        """Keep the run's options; the run opens when training begins.

        Args:
            uri: the store (default ``$PACHA_URI``, else ``./pacha-runs``).
            name: the run's display name.
            tags: the run's tags.
            storage_options: the store's client settings.
            **run_options: other keywords of :func:`pacha_sdk.run`.
        """
        super().__init__()
        self._pacha = FrameworkRun(
            "XGBoost",
            unfinished="XGBoost training did not finish: an error stopped it",
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

    def before_training(self, model: xgboost.Booster) -> xgboost.Booster:
        """Start the run and record the booster's training parameters."""
        self._pacha.begin()
        params = booster_params(model)
        self._pacha.log_hparams(params, named={"learning_rate": params.get("eta")})
        return model

    def after_iteration(
        self, model: xgboost.Booster, epoch: int, evals_log: Mapping[str, Mapping[str, Any]]
    ) -> bool:
        """The round's last value of each evaluation metric, at step = round."""
        metrics: dict[str, Any] = {}
        for data, by_metric in evals_log.items():
            for metric, values in by_metric.items():
                if not values:
                    continue
                last = values[-1]
                if isinstance(last, tuple):  # xgb.cv: (mean, std)
                    metrics[f"{data}/{metric}"] = last[0]
                    metrics[f"{data}/{metric}_std"] = last[1]
                else:
                    metrics[f"{data}/{metric}"] = last
        if metrics:
            self._pacha.log(metrics, epoch)
        return False  # never stops training

    def after_training(self, model: xgboost.Booster) -> xgboost.Booster:
        """Training reached its end (early stopping included): the run completes."""
        self._pacha.finish()
        return model


def booster_params(model: xgboost.Booster) -> dict[str, Any]:
    """The training parameters in a booster's configuration, by name, numbers parsed."""
    try:
        config = json.loads(model.save_config())
    except Exception:  # a booster that cannot describe itself: no hyperparameters
        return {}
    params: dict[str, Any] = {}
    _collect(config.get("learner", {}), params)
    metrics = config.get("learner", {}).get("metrics")
    if isinstance(metrics, list):
        names = [m.get("name") for m in metrics if isinstance(m, dict)]
        params["eval_metric"] = [name for name in names if isinstance(name, str)]
    return params


def _collect(section: Any, params: dict[str, Any]) -> None:
    """Every leaf of the ``*_param`` tables under *section*, first name wins."""
    if not isinstance(section, dict):
        return
    for key, value in section.items():
        if key.endswith("_param") and isinstance(value, dict) and key not in _MODEL_STATE:
            for name, text in value.items():
                if not isinstance(text, dict | list):
                    params.setdefault(name, _parse(text))
        elif isinstance(value, dict):
            _collect(value, params)


def _parse(text: Any) -> Any:
    """A configuration string as a number when it is one (XGBoost stores floats as float32)."""
    if not isinstance(text, str):
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    if math.isfinite(number) and f"{np.float32(number):.9g}" == text:
        return float(str(np.float32(number)))  # '0.300000012' -> 0.3, as given
    return number
