"""The README's first command: log a run to ./pacha-runs and read it back.

python examples/quickstart.py
"""

import math

import pacha_sdk as pacha

hparams = {"learning_rate": 3e-4, "batch_size": 64, "layers": 12, "optimizer": {"beta1": 0.9}}

with pacha.run(hparams, name="quickstart", tags={"example": "quickstart"}) as run:
    for step in range(200):
        loss = 2.0 * math.exp(-step / 60) + 0.05 * math.sin(step)
        run.log_metric("loss", loss, step)
        run.log_metrics({"accuracy": 1 - loss / 2.2, "lr": 3e-4 * 0.99**step}, step=step)

record = pacha.load_run(run.run_id)
table = pacha.read_metrics(run.run_id)

print(f"run id:    {record.run_id}")
print(f"status:    {record.status}")
print(f"duration:  {record.duration_secs} s")
print(f"stored in: {run.uri}")
print(f"latest:    {record.summary}")
print(f"points:    {table.num_rows} rows, metrics {sorted(set(table['name'].to_pylist()))}")
print(
    table.select(["name", "step", "value", "timestamp"]).sort_by(
        [("name", "ascending"), ("step", "ascending")]
    )
)
