"""One behavioural suite, run on every store: local, memory, SeaweedFS, moto, fake-gcs-server.

What a user does -- a run in a ``with`` block, a decorated function, bad
input, reading back with this SDK and with pyarrow alone -- must behave the
same whatever the URI, and leave the same layout (DESIGN section 3).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs
import pytest

import pacha_sdk as pacha

if TYPE_CHECKING:
    from pathlib import Path

    from tests.servers import ObjectStore

pytest_plugins = ["tests.servers"]

FLUSH: dict[str, Any] = {"flush_interval": 0.5, "flush_rows": 1000}
STEPS = 1200
"""Steps per metric: 3 metrics make 3,600 points, several part files per run."""


@dataclass(frozen=True)
class Target:
    """A store as a user names it, plus how pyarrow alone reaches its root."""

    kind: str
    uri: str
    storage_options: dict[str, Any] | None = None
    server: ObjectStore | None = field(default=None, compare=False)

    @property
    def options(self) -> dict[str, Any]:
        """Keywords every pacha call takes for this store."""
        return {"uri": self.uri, "storage_options": self.storage_options}

    def native_filesystem(self) -> tuple[pyarrow.fs.FileSystem, str] | None:
        """pyarrow's own filesystem for the root and the root's path on it, if pyarrow has one."""
        if self.kind == "local":
            return pyarrow.fs.LocalFileSystem(), self.uri
        server = self.server
        if server is None:
            return None
        host = server.endpoint_url.removeprefix("http://")
        path = f"{server.bucket}/{server.prefix}"
        if server.scheme == "s3":
            options = server.storage_options
            native: pyarrow.fs.FileSystem = pyarrow.fs.S3FileSystem(
                access_key=options["key"],
                secret_key=options["secret"],
                endpoint_override=host,
                scheme="http",
                region="us-east-1",
            )
            return native, path
        return pyarrow.fs.GcsFileSystem(anonymous=True, endpoint_override=host, scheme="http"), path


_SERVERS = {"seaweedfs": "seaweedfs_store", "moto": "moto_store", "fake-gcs": "gcs_store"}


@pytest.fixture(
    params=[
        "local",
        "memory",
        *(pytest.param(kind, marks=pytest.mark.servers) for kind in _SERVERS),
    ]
)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    kind: str = request.param
    if kind == "local":
        return Target(kind, str(tmp_path / "runs"))
    if kind == "memory":
        return Target(kind, f"memory://pacha-{uuid.uuid4().hex}")
    server: ObjectStore = request.getfixturevalue(_SERVERS[kind])
    return Target(kind, server.uri, dict(server.storage_options), server)


def _log_curve(run: pacha.Run, offset: float = 0.0) -> dict[tuple[str, int], float]:
    """Log 3 metrics over STEPS steps (NaN and inf included); return what was logged."""
    logged: dict[tuple[str, int], float] = {}
    for step in range(STEPS):
        loss = offset + 1.0 / (step + 1)
        if step == 17:
            loss = math.nan
        run.log_metric("loss", loss, step)
        acc = offset + step / STEPS
        lr = math.inf if step == 3 else 1e-3
        run.log_metrics({"acc": acc, "lr": lr}, step=step)
        logged.update({("loss", step): loss, ("acc", step): acc, ("lr", step): lr})
    return logged


def _points(table: pa.Table) -> dict[tuple[str, int], float]:
    names = table.column("name").to_pylist()
    steps = table.column("step").to_pylist()
    return dict(zip(zip(names, steps), table.column("value").to_pylist()))


def _same(got: dict[tuple[str, int], float], want: dict[tuple[str, int], float]) -> bool:
    return got.keys() == want.keys() and all(
        (math.isnan(want[k]) and math.isnan(got[k])) or got[k] == want[k] for k in want
    )


def test_run_completes_and_reads_back(target: Target) -> None:
    with pacha.run(
        {"learning_rate": 3e-4, "optimizer": "adamw"}, name="e2e", **target.options, **FLUSH
    ) as run:
        logged = _log_curve(run)
    assert run.status is pacha.RunStatus.COMPLETED

    table = pacha.read_metrics(run.run_id, **target.options)
    assert table.num_rows == len(logged) == 3 * STEPS
    assert _same(_points(table), logged)
    assert set(table.column("run_id").to_pylist()) == {str(run.run_id)}

    stored = pacha.load_run(str(run.run_id), **target.options)
    assert stored.status is pacha.RunStatus.COMPLETED
    assert stored.name == "e2e"
    assert stored.hyperparameters.learning_rate == 3e-4
    assert stored.summary["acc"] == pytest.approx((STEPS - 1) / STEPS)
    assert [r.run_id for r in pacha.list_runs(**target.options)] == [run.run_id]

    only_loss = pacha.read_metrics(run.run_id, names="loss", **target.options)
    assert only_loss.num_rows == STEPS


def test_several_runs_list_rank_and_scan(target: Target) -> None:
    ids = []
    for offset in (0.0, 0.5, 0.25):
        with pacha.run({"offset": offset}, **target.options, **FLUSH) as run:
            _log_curve(run, offset)
        ids.append(run.run_id)

    listed = pacha.list_runs(**target.options)
    assert [r.run_id for r in listed] == ids[::-1]  # newest first
    best = pacha.best_run("acc", mode="max", **target.options)
    assert best is not None
    assert best.run_id == ids[1]
    worst = pacha.best_run("acc", mode="min", **target.options)
    assert worst is not None
    assert worst.run_id == ids[0]

    dataset = pacha.metrics_dataset(target.uri, storage_options=target.storage_options)
    assert dataset.count_rows() == 3 * 3 * STEPS
    one = dataset.to_table(filter=(pc.field("run_id") == str(ids[2])) & (pc.field("name") == "acc"))
    assert one.num_rows == STEPS
    assert pacha.read_metrics(**target.options).num_rows == 3 * 3 * STEPS


def _fail_inside(run: pacha.Run) -> None:
    with run:
        run.log_metric("loss", 0.5, 0)
        run.log_metric("loss", 0.25, 1)
        _ = 1 / 0


def test_failing_block_is_recorded_as_failed(target: Target) -> None:
    run = pacha.run(**target.options, **FLUSH)
    with pytest.raises(ZeroDivisionError):
        _fail_inside(run)
    stored = pacha.load_run(str(run.run_id), **target.options)
    assert stored.status is pacha.RunStatus.FAILED
    assert stored.error_message is not None
    assert stored.error_message.startswith("ZeroDivisionError")
    assert pacha.read_metrics(run.run_id, **target.options).num_rows == 2
    assert pacha.best_run("loss", **target.options) is None  # failed runs are not candidates


def test_track_decorator(target: Target) -> None:
    @pacha.track(**target.options, **FLUSH)
    def train(learning_rate: float = 0.1, epochs: int = 3, model: object = None) -> str:
        for epoch in range(epochs):
            pacha.log_metric("loss", learning_rate / (epoch + 1), step=epoch)
        current = pacha.active_run()
        assert current is not None
        return str(current.run_id)

    run_id = train(epochs=4, model=object())
    stored = pacha.load_run(run_id, **target.options)
    assert stored.status is pacha.RunStatus.COMPLETED
    assert stored.hyperparameters.learning_rate == 0.1
    assert stored.hyperparameters.epochs == 4
    assert "model" not in stored.hyperparameters.custom
    assert pacha.read_metrics(run_id, **target.options).column("step").to_pylist() == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ("high", pacha.MetricTypeError),
        (None, pacha.MetricTypeError),
        ([1.0], pacha.MetricTypeError),
    ],
    ids=["str", "None", "list"],
)
def test_bad_metric_value_raises_and_keeps_earlier_points(
    target: Target, bad: object, error: type[Exception]
) -> None:
    with pacha.run(**target.options, **FLUSH) as run:
        run.log_metric("loss", 1.0, 0)
        run.flush()
        run.log_metric("loss", 0.5, 1)
        with pytest.raises(error, match="loss"):
            run.log_metric("loss", bad, 2)  # type: ignore[arg-type]
        with pytest.raises(pacha.InvalidMetricError):
            run.log_metrics({"acc": 0.9, "loss": bad}, step=2)  # type: ignore[dict-item]
        run.log_metric("loss", 0.25, 2)
    table = pacha.read_metrics(run.run_id, **target.options)
    assert sorted(_points(table).items()) == [
        (("loss", 0), 1.0),
        (("loss", 1), 0.5),
        (("loss", 2), 0.25),
    ]
    assert pacha.load_run(str(run.run_id), **target.options).status is pacha.RunStatus.COMPLETED


def test_unknown_run_is_not_found(target: Target) -> None:
    with pacha.run(**target.options, **FLUSH) as run:
        run.log_metric("x", 1.0, 0)
    missing = str(uuid.uuid4())
    with pytest.raises(pacha.RunNotFoundError):
        pacha.load_run(missing, **target.options)
    with pytest.raises(pacha.RunNotFoundError):
        pacha.read_metrics(missing, **target.options)


def test_metrics_folder_is_a_hive_dataset_for_pyarrow_alone(target: Target) -> None:
    """pyarrow reads ``<root>/metrics`` with its own filesystem, no pacha code involved."""
    with pacha.run(**target.options, **FLUSH) as first:
        logged = _log_curve(first)
    with pacha.run(**target.options, **FLUSH) as second:
        second.log_metric("loss", 9.0, 0)

    native = target.native_filesystem()
    if native is None:  # memory:// lives in this process only: go through the backend
        backend = pacha.backends.get_backend(target.uri, storage_options=target.storage_options)
        native = backend.arrow_filesystem()
    filesystem, root = native
    dataset = pads.dataset(
        f"{root}/metrics", filesystem=filesystem, format="parquet", partitioning="hive"
    )
    assert dataset.count_rows() == 3 * STEPS + 1
    table = dataset.to_table(filter=pc.field("run_id") == str(first.run_id))
    assert _same(_points(table), logged)
    assert table.schema.field("value").type == pa.float64()
    assert table.schema.field("step").type == pa.int64()
    folders = {f.path.rsplit("/", 2)[-2] for f in dataset.get_fragments()}
    assert folders == {f"run_id={first.run_id}", f"run_id={second.run_id}"}
