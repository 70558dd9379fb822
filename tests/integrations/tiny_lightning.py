"""A tiny Lightning module and data, for both namespaces, in the tests and their children."""

from __future__ import annotations

__all__ = ["loaders", "module_class", "note_exception_callback", "trainer"]

import time
from types import ModuleType
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset


def loaders(batch_size: int = 8) -> tuple[DataLoader[Any], DataLoader[Any]]:
    """A train and a validation loader of 32 and 16 random points (fixed seed)."""
    generator = torch.Generator().manual_seed(0)
    train = TensorDataset(
        torch.randn(32, 3, generator=generator), torch.randn(32, 1, generator=generator)
    )
    valid = TensorDataset(
        torch.randn(16, 3, generator=generator), torch.randn(16, 1, generator=generator)
    )
    return DataLoader(train, batch_size=batch_size), DataLoader(valid, batch_size=batch_size)


def module_class(pl: ModuleType) -> type[Any]:
    """``Tiny``, a linear regression LightningModule of namespace *pl*."""

    class Tiny(pl.LightningModule):  # type: ignore[name-defined,misc]
        def __init__(
            self, lr: float = 0.1, hidden: int = 4, fail_at: int = -1, wait_at: int = -1
        ) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(3, 1)

        def training_step(self, batch: Any, index: int) -> torch.Tensor:
            if self.global_step == self.hparams.fail_at:
                raise ValueError(f"diverged at step {self.global_step}")
            if self.global_step == self.hparams.wait_at:
                print("READY", flush=True)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and not self.trainer.received_sigterm:
                    time.sleep(0.01)
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch: Any, index: int) -> None:
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

        def test_step(self, batch: Any, index: int) -> None:
            x, y = batch
            self.log("test_loss", torch.nn.functional.mse_loss(self.layer(x), y))

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    return Tiny


def trainer(pl: ModuleType, logger: Any, root: str, **options: Any) -> Any:
    """A quiet CPU trainer: 2 epochs, a point every step, no checkpoints unless asked."""
    settings: dict[str, Any] = {
        "max_epochs": 2,
        "log_every_n_steps": 1,
        "accelerator": "cpu",
        "devices": 1,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "default_root_dir": root,
        **options,
    }
    return pl.Trainer(logger=logger, **settings)


def note_exception_callback(pl: ModuleType) -> Any:
    """A callback printing ``EXCEPTION <type>`` from Lightning's ``on_exception`` hook."""

    class Note(pl.Callback):  # type: ignore[name-defined,misc]
        def on_exception(self, trainer: Any, module: Any, exception: BaseException) -> None:
            print("EXCEPTION", type(exception).__name__, flush=True)

    return Note()
