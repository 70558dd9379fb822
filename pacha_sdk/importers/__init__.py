"""Bring existing runs into pacha: from MLflow and from TensorBoard logs.

::

    import pacha_sdk as pacha

    report = pacha.import_mlflow("./mlruns", uri="s3://bucket/exp")
    report = pacha.import_tensorboard("runs/", uri="s3://bucket/exp")
    print(report.summary())

Both read their source with its own package (``pip install 'pacha-sdk[import]'``),
write the documented layout directly (an imported run keeps the source's
times, status and metric timestamps), and are idempotent: run ids are
``uuid5`` of the source's run identity, so importing again writes nothing
unless the source grew, and then only what is new.
"""

from __future__ import annotations

from pacha_sdk.exceptions import ImportSourceError
from pacha_sdk.importers._report import ImportReport, SkippedRun
from pacha_sdk.importers.mlflow import import_mlflow
from pacha_sdk.importers.tensorboard import import_tensorboard

__all__ = ["ImportReport", "ImportSourceError", "SkippedRun", "import_mlflow", "import_tensorboard"]
