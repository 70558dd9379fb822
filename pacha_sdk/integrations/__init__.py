"""Framework integrations: one line records a framework's training job as a pacha run.

Lightning, Hugging Face ``Trainer``, accelerate, Keras 3, XGBoost, LightGBM, Optuna.

Each module imports its framework when it is imported itself and raises
:class:`pacha_sdk.ExtraNotInstalledError` (an ``ImportError``) naming the
missing package otherwise; ``import pacha_sdk`` never imports any of them.
They use only the public face of the SDK (``import pacha_sdk as pacha``).

=====================  ====================================================
module                 use
=====================  ====================================================
``lightning``          ``Trainer(logger=PachaLogger(...))``
``pytorch_lightning``  the same, for the ``pytorch_lightning`` namespace
``transformers``       ``Trainer(..., callbacks=[PachaCallback(...)])``
``accelerate``         ``Accelerator(log_with="pacha")``
``keras``              ``model.fit(..., callbacks=[PachaCallback(...)])``
``xgboost``            ``xgb.train(..., callbacks=[PachaCallback(...)])``
``lightgbm``           ``lgb.train(..., callbacks=[PachaCallback(...)])``
``optuna``             ``study.optimize(PachaStudy(...).track(objective))``
=====================  ====================================================

Inside ``with pacha.run(...)`` every integration logs into that run and
leaves its status to the block; otherwise it opens a run of its own and
ends it with the status of what really happened (see each module).
"""
