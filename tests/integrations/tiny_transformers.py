"""A tiny BERT classifier built from a config (nothing downloaded), for the tests and children."""

from __future__ import annotations

import time
from typing import Any

import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

__all__ = ["Recorder", "StopAt", "model", "trainer"]


class Sentences(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """16 random 8-token sentences with a 0/1 label (fixed seed)."""

    def __init__(self, count: int = 16) -> None:
        generator = torch.Generator().manual_seed(0)
        self.ids = torch.randint(1, 50, (count, 8), generator=generator)
        self.labels = torch.randint(0, 2, (count,), generator=generator)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {
            "input_ids": self.ids[index],
            "attention_mask": torch.ones(8, dtype=torch.long),
            "labels": self.labels[index],
        }


def model() -> BertForSequenceClassification:
    """A 2-layer BERT with hidden size 16 and labels NEG/POS."""
    torch.manual_seed(0)
    config = BertConfig(  # type: ignore[call-arg]
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
        id2label={0: "NEG", 1: "POS"},
        label2id={"NEG": 0, "POS": 1},
    )
    return BertForSequenceClassification(config)


class Recorder(TrainerCallback):
    """Keeps every ``on_log`` as ``(global_step, logs)``."""

    def __init__(self) -> None:
        self.logs: list[tuple[int, dict[str, Any]]] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        self.logs.append((state.global_step, dict(logs or {})))


class StopAt(TrainerCallback):
    """Raises (or waits for a signal, printing READY) at the end of optimizer step *step*."""

    def __init__(self, step: int, *, wait: bool = False) -> None:
        self.step = step
        self.wait = wait

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step != self.step:
            return
        if self.wait:
            print("READY", flush=True)
            time.sleep(60)
        raise RuntimeError(f"stopped at step {state.global_step}")


def trainer(output_dir: str, callbacks: list[Any], **arguments: Any) -> Trainer:
    """A CPU trainer: batches of 4, 2 epochs, a log every step, evaluation every epoch."""
    settings: dict[str, Any] = {
        "output_dir": output_dir,
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 8,
        "num_train_epochs": 2,
        "learning_rate": 1e-3,
        "logging_steps": 1,
        "eval_strategy": "epoch",
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        **arguments,
    }
    return Trainer(
        model=model(),
        args=TrainingArguments(**settings),
        train_dataset=Sentences(),
        eval_dataset=Sentences(8),
        callbacks=callbacks,
    )
