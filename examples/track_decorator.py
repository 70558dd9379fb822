"""``@pacha.track``: each call of the function is one run.

The call's arguments (defaults applied) become the run's hyperparameters;
arguments that are not hyperparameter values, such as the data here, are
left out. An exception fails the run and is re-raised.

    python examples/track_decorator.py
"""

import random

import pacha_sdk as pacha


@pacha.track
def train(data: list[float], learning_rate: float = 0.1, epochs: int = 30) -> float:
    """Fit the mean of *data* by gradient descent on the squared error."""
    estimate = 0.0
    for epoch in range(epochs):
        gradient = sum(estimate - x for x in data) / len(data)
        estimate -= learning_rate * gradient
        loss = sum((estimate - x) ** 2 for x in data) / len(data)
        pacha.log_metric("loss", loss, step=epoch)  # goes to this call's run
    return estimate


if __name__ == "__main__":
    rng = random.Random(0)
    data = [rng.gauss(3.0, 1.0) for _ in range(1000)]
    for lr in (0.01, 0.1, 0.5):
        train(data, learning_rate=lr)

    best = pacha.best_run("loss", mode="min")
    assert best is not None
    print(f"best run {best.run_id}: learning_rate={best.hyperparameters.learning_rate}")
    for record in pacha.list_runs()[:3]:
        print(record.run_id, record.name, record.status, record.summary.get("loss"))
