"""``@pacha.track``: bare and with options, sync and async, hyperparameters from the call."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import pacha_sdk as pacha


def only_run(store: str) -> pacha.ExperimentRun:
    runs = pacha.list_runs(uri=store)
    assert len(runs) == 1
    return runs[0]


def test_bare_decorator_uses_the_default_store_and_bound_arguments() -> None:
    @pacha.track
    def train(learning_rate: float = 1e-3, epochs: int = 3, dropout: float = 0.1) -> str:
        pacha.log_metric("loss", 0.5, step=0)
        active = pacha.active_run()
        assert active is not None
        return str(active.run_id)

    run_id = train(learning_rate=0.01)
    record = pacha.load_run(run_id)  # ./pacha-runs in the test's working directory
    assert record.status is pacha.RunStatus.COMPLETED
    assert record.hyperparameters.learning_rate == 0.01
    assert record.hyperparameters.epochs == 3
    assert record.hyperparameters.custom == {"dropout": 0.1}
    assert record.name is not None
    assert record.name.endswith("train")
    assert pacha.read_metrics(run_id)["value"].to_pylist() == [0.5]


def test_decorator_with_options(store: str) -> None:
    @pacha.track(uri=store, name="fit", tags={"team": "nlp"}, flush_interval=1.0)
    def fit(batch_size: int = 16) -> int:
        return batch_size * 2

    assert fit() == 32
    record = only_run(store)
    assert record.name == "fit"
    assert record.tags == {"team": "nlp"}
    assert record.hyperparameters.batch_size == 16
    assert record.extra["flush_interval"] == 1.0


def test_arguments_that_are_not_hyperparameters_are_left_out(store: str) -> None:
    class Model:
        pass

    @pacha.track(uri=store)
    def train(
        model: Model, loader: Any = None, *args: Any, lr: float = 0.1, **options: Any
    ) -> None:
        pass

    train(Model(), iter([1, 2]), "extra-positional", lr=0.2, schedule="cosine", betas=(0.9, 0.99))
    custom = only_run(store).hyperparameters.custom
    assert custom == {"lr": 0.2, "schedule": "cosine", "betas": [0.9, 0.99]}


def test_explicit_hparams_override_the_arguments(store: str) -> None:
    @pacha.track(uri=store, hparams={"learning_rate": 0.5, "seed": 7})
    def train(learning_rate: float = 1e-3) -> None:
        pass

    train()
    hp = only_run(store).hyperparameters
    assert hp.learning_rate == 0.5
    assert hp.custom == {"seed": 7}


def test_each_call_is_its_own_run(store: str) -> None:
    @pacha.track(uri=store)
    def train(seed: int) -> None:
        pacha.log_metric("seed", seed)

    for seed in range(3):
        train(seed)
    runs = pacha.list_runs(uri=store)
    assert sorted(r.hyperparameters.custom["seed"] for r in runs) == [0, 1, 2]
    latest = [r.get_metric("seed") for r in runs]
    assert sorted(value for value in latest if value is not None) == [0.0, 1.0, 2.0]


def test_wraps_keeps_name_and_docstring() -> None:
    @pacha.track
    def train() -> None:
        """Train the model."""

    assert train.__name__ == "train"
    assert train.__doc__ == "Train the model."


def test_async_function(store: str) -> None:
    @pacha.track(uri=store)
    async def train(epochs: int = 2) -> float:
        for epoch in range(epochs):
            await asyncio.sleep(0)
            pacha.log_metric("loss", 1.0 / (epoch + 1), step=epoch)
        return 42.0

    assert asyncio.run(train()) == 42.0
    record = only_run(store)
    assert record.status is pacha.RunStatus.COMPLETED
    assert record.hyperparameters.epochs == 2
    assert record.summary == {"loss": 0.5}


def test_concurrent_async_calls_log_to_their_own_runs(store: str) -> None:
    @pacha.track(uri=store)
    async def train(seed: int) -> str:
        for step in range(20):
            pacha.log_metric("seed", seed, step=step)
            await asyncio.sleep(0)
        active = pacha.active_run()
        assert active is not None
        return str(active.run_id)

    async def main() -> list[str]:
        return list(await asyncio.gather(*(train(seed) for seed in range(4))))

    run_ids = asyncio.run(main())
    for seed, run_id in enumerate(run_ids):
        values = set(pacha.read_metrics(run_id, uri=store)["value"].to_pylist())
        assert values == {float(seed)}


def test_nested_tracked_calls_record_the_parent(store: str) -> None:
    @pacha.track(uri=store)
    def inner() -> str:
        active = pacha.active_run()
        assert active is not None
        return str(active.run_id)

    @pacha.track(uri=store)
    def outer() -> tuple[str, str]:
        active = pacha.active_run()
        assert active is not None
        return str(active.run_id), inner()

    outer_id, inner_id = outer()
    assert pacha.load_run(inner_id, uri=store).parent_run_id == outer_id
    assert pacha.load_run(outer_id, uri=store).parent_run_id is None


def test_generator_functions_are_refused() -> None:
    def steps() -> Any:
        yield 1

    with pytest.raises(TypeError, match="generator"):
        pacha.track(steps)


def test_a_call_with_wrong_arguments_raises_pythons_own_error(store: str) -> None:
    @pacha.track(uri=store)
    def train(learning_rate: float) -> None:
        pass

    with pytest.raises(TypeError):
        train(1, 2, 3)  # type: ignore[call-arg]
