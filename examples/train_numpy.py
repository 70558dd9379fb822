"""Train a small logistic-regression model with numpy, logging loss and accuracy per step.

Needs numpy: ``pip install -e '.[examples]'`` (or ``pip install numpy``).
Runs in a few seconds on a laptop CPU.

    python examples/train_numpy.py
"""

import sys

try:
    import numpy as np
except ImportError:
    sys.exit("this example needs numpy: pip install -e '.[examples]' (or pip install numpy)")

import pacha_sdk as pacha


def make_data(rng: np.random.Generator, n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian blobs in 20 dimensions."""
    labels = rng.integers(0, 2, n)
    centres = np.where(labels[:, None] == 1, 0.6, -0.6)
    features = centres + rng.normal(size=(n, 20))
    return features, labels.astype(np.float64)


def main() -> None:
    rng = np.random.default_rng(0)
    x, y = make_data(rng)
    hp = pacha.Hyperparameters(
        learning_rate=0.5, batch_size=128, epochs=5, weight_decay=1e-4, custom={"features": 20}
    )
    weights = np.zeros(x.shape[1])
    bias = 0.0
    step = 0
    with pacha.run(hp, name="numpy-logreg") as run:
        for epoch in range(hp.epochs):
            order = rng.permutation(len(x))
            for start in range(0, len(x), hp.batch_size):
                batch = order[start : start + hp.batch_size]
                logits = x[batch] @ weights + bias
                probs = 1 / (1 + np.exp(-logits))
                error = probs - y[batch]
                weights -= hp.learning_rate * (
                    x[batch].T @ error / len(batch) + hp.weight_decay * weights
                )
                bias -= hp.learning_rate * float(error.mean())
                loss = -np.mean(
                    y[batch] * np.log(probs + 1e-12) + (1 - y[batch]) * np.log(1 - probs + 1e-12)
                )
                run.log_metric("train/loss", loss, step)  # numpy scalars are fine
                step += 1
            accuracy = np.mean(((x @ weights + bias) > 0) == (y == 1))
            run.log_metrics({"eval/accuracy": accuracy, "epoch": epoch}, step=step)
    table = pacha.read_metrics(run.run_id, names=["eval/accuracy"])
    print(f"run {run.run_id} {pacha.load_run(run.run_id).status}")
    print(table.select(["step", "value"]).to_pylist())


if __name__ == "__main__":
    main()
