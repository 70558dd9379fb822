"""Lightning (``lightning.pytorch``): ``Trainer(logger=PachaLogger(...))``.

::

    from pacha_sdk.integrations.lightning import PachaLogger

    trainer = lightning.pytorch.Trainer(logger=PachaLogger(name="bert-ft"), max_epochs=3)
    trainer.fit(model, datamodule)
    trainer.test(model, datamodule)      # the same run

Logged: the module's and datamodule's ``hparams`` (leniently converted),
every metric Lightning hands its loggers (``self.log(...)``, plus
``epoch``) at ``trainer.global_step``, and with ``log_checkpoints=True``
every checkpoint file as an artifact. How the run's status follows the
trainer, SIGTERM, DDP and ``with pacha.run()`` blocks:
:mod:`pacha_sdk.integrations._lightning_logger`. For the ``pytorch_lightning``
namespace use :mod:`pacha_sdk.integrations.pytorch_lightning`.
"""

from __future__ import annotations

from typing import ClassVar

from pacha_sdk.integrations._framework_run import missing_framework
from pacha_sdk.integrations._lightning_logger import LightningLoggerBody

try:
    from lightning.fabric.utilities.rank_zero import rank_zero_only
    from lightning.pytorch.loggers import Logger
    from lightning.pytorch.utilities.exceptions import SIGTERMException
except ImportError as error:
    raise missing_framework("Lightning", "lightning") from error

__all__ = ["PachaLogger"]


class PachaLogger(LightningLoggerBody, Logger):
    """A ``lightning.pytorch`` logger recording the job as one pacha run (see the module doc)."""

    _sigterm_exception: ClassVar[type[BaseException]] = SIGTERMException

    def _global_rank(self) -> int:
        return int(getattr(rank_zero_only, "rank", 0) or 0)
