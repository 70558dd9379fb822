"""Engines over the bucket: one store, five engines, three queries, one answer.

The same store (a local folder, and a prefix on SeaweedFS) is read by
pyarrow.dataset, DuckDB, Polars, Dask and Spark, straight from the layout,
without the SDK. Each engine answers three questions, and each answer must
equal the one computed from ``pacha.read_metrics``:

* the last value of a metric per run: the point with the highest step; on a
  tie, the last logged, which engines see as the latest ``timestamp``
  (``Run.get_metric``'s rule);
* the best run by that metric: the run whose last value is highest;
* the per-step mean across runs: the mean of every point at each step.

The runs are written so that these rules matter: steps logged out of order,
a step logged twice (later with a larger timestamp), several flushes per
run merged into one part each (by the run's own writer, or by
``pacha.compact``), and a second metric that must be filtered out.

Dask and Spark are heavy and live in the ``engines`` extra and marker; they
skip, naming what to install, where absent. Spark reads the local folder
only: ``s3a://`` needs the hadoop-aws jars, which pyspark does not ship.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl
import pyarrow.dataset as ds
import pytest

import pacha_sdk as pacha
from tests.servers import SeaweedFS, isolated_cloud_env

pytest_plugins = ["tests.servers"]

METRIC = "loss"
RUNS = 3


@dataclass(frozen=True)
class Store:
    """Where the engines read: a local root, or an S3 prefix with its credentials."""

    kind: str
    uri: str
    storage_options: dict[str, Any] | None = None
    endpoint_url: str = ""

    @property
    def metrics(self) -> str:
        return f"{self.uri}/metrics"

    def s3fs(self) -> Any:
        import s3fs  # type: ignore[import-untyped]

        options = self.storage_options or {}
        return s3fs.S3FileSystem(
            key=options["key"],
            secret=options["secret"],
            endpoint_url=self.endpoint_url,
            skip_instance_cache=True,
        )


@dataclass(frozen=True)
class Answers:
    """The three answers, in plain Python values."""

    last: dict[str, float]
    best: str
    mean: dict[int, float]

    @classmethod
    def of(cls, last: dict[str, float], mean: dict[int, float]) -> Answers:
        return cls(last=last, best=max(last, key=lambda run_id: last[run_id]), mean=mean)


def fill(uri: str, storage_options: dict[str, Any] | None) -> None:
    """The runs; the first is compacted afterwards by ``pacha.compact``, the rest by themselves."""
    for index in range(RUNS):
        with pacha.run(
            uri=uri, storage_options=storage_options, flush_rows=3, compact_parts=index > 0
        ) as run:
            for step in (0, 2, 1, 3):  # out of order
                run.log_metric(METRIC, index + 1.0 / (step + 1), step)
                run.log_metric("acc", 0.1 * step, step)
            run.flush()
            run.log_metric(METRIC, 10.0 + index, 3)
            time.sleep(0.002)  # a later timestamp for the same step: it is the last value
            run.log_metric(METRIC, 0.5 * index, 3)
    report = pacha.compact(uri=uri, storage_options=storage_options)
    assert report.parts_after == RUNS  # one merged part per run: engines read those alone


@pytest.fixture(scope="module", params=["local", "s3"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PACHA_SPOOL_DIR", str(tmp_path_factory.mktemp("spool")))
        if request.param == "local":
            root = str(tmp_path_factory.mktemp("engines") / "store")
            fill(root, None)
            yield Store("local", root)
            return
        server: SeaweedFS = request.getfixturevalue("seaweedfs_server")
        place = server.store()
        options = dict(place.storage_options)
        with isolated_cloud_env():
            fill(place.uri, options)
            yield Store("s3", place.uri, options, place.endpoint_url)


@pytest.fixture(scope="module")
def expected(store: Store) -> Answers:
    """The answers from ``pacha.read_metrics``, computed in Python."""
    rows = pacha.read_metrics(uri=store.uri, storage_options=store.storage_options, names=[METRIC])
    latest: dict[str, tuple[int, Any, int, float]] = {}
    sums: dict[int, list[float]] = {}
    for index, row in enumerate(rows.to_pylist()):
        key = (row["step"], row["timestamp"], index, row["value"])
        latest[row["run_id"]] = max(latest.get(row["run_id"], key), key)
        sums.setdefault(row["step"], []).append(row["value"])
    assert len(latest) == RUNS
    return Answers.of(
        {run_id: value for run_id, (*_, value) in latest.items()},
        {step: sum(values) / len(values) for step, values in sums.items()},
    )


# The engines. Each reads the store as a user would, with no pacha import.

LAST_SQL = f"""
    select run_id, value from (
        select run_id, value,
               row_number() over (partition by run_id order by step desc, timestamp desc) as n
        from metrics where name = '{METRIC}'
    ) where n = 1
"""
MEAN_SQL = f"select step, avg(value) from metrics where name = '{METRIC}' group by step"


def with_pyarrow(store: Store) -> Answers:
    filesystem = store.s3fs() if store.kind == "s3" else None
    root = store.metrics.removeprefix("s3://")
    dataset = ds.dataset(root, filesystem=filesystem, format="parquet", partitioning="hive")
    table = dataset.to_table(filter=ds.field("name") == METRIC)
    ordered = table.sort_by(
        [("run_id", "ascending"), ("step", "ascending"), ("timestamp", "ascending")]
    )
    last = ordered.group_by("run_id", use_threads=False).aggregate([("value", "last")])
    mean = table.group_by("step").aggregate([("value", "mean")])
    return Answers.of(
        dict(zip(last["run_id"].to_pylist(), last["value_last"].to_pylist())),
        dict(zip(mean["step"].to_pylist(), mean["value_mean"].to_pylist())),
    )


def with_duckdb(store: Store) -> Answers:
    connection = duckdb.connect()
    if store.kind == "s3":
        connection.register_filesystem(store.s3fs())
    connection.execute(
        "create view metrics as select * from "
        f"read_parquet('{store.metrics}/*/*.parquet', hive_partitioning=true)"
    )
    return Answers.of(
        dict(connection.sql(LAST_SQL).fetchall()), dict(connection.sql(MEAN_SQL).fetchall())
    )


def with_polars(store: Store) -> Answers:
    options = None
    if store.kind == "s3":
        assert store.storage_options is not None
        options = {
            "aws_endpoint_url": store.endpoint_url,
            "aws_access_key_id": store.storage_options["key"],
            "aws_secret_access_key": store.storage_options["secret"],
            "aws_region": "us-east-1",
            "aws_allow_http": "true",
        }
    frame = pl.scan_parquet(
        f"{store.metrics}/*/*.parquet", hive_partitioning=True, storage_options=options
    ).filter(pl.col("name") == METRIC)
    last = frame.sort("step", "timestamp").group_by("run_id").agg(pl.col("value").last())
    mean = frame.group_by("step").agg(pl.col("value").mean())
    return Answers.of(dict(last.collect().iter_rows()), dict(mean.collect().iter_rows()))


def with_dask(store: Store) -> Answers:
    dd = pytest.importorskip("dask.dataframe", reason="Dask: pip install -e '.[engines]'")
    options = None
    if store.kind == "s3":
        assert store.storage_options is not None
        options = {
            "key": store.storage_options["key"],
            "secret": store.storage_options["secret"],
            "client_kwargs": {"endpoint_url": store.endpoint_url},
        }
    frame = dd.read_parquet(
        store.metrics, storage_options=options, filters=[("name", "==", METRIC)]
    )
    points = frame.compute()
    points["run_id"] = points["run_id"].astype(str)  # a category or string dtype, by version
    ordered = points.sort_values(["run_id", "step", "timestamp"], kind="stable")
    last = ordered.groupby("run_id")["value"].last()
    mean = points.groupby("step")["value"].mean()
    return Answers.of(
        {str(k): float(v) for k, v in last.items()}, {int(k): float(v) for k, v in mean.items()}
    )


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """One local Spark session for the module (it takes seconds to start)."""
    pytest.importorskip("pyspark", reason="Spark: pip install -e '.[engines]'")
    if shutil.which("java") is None:
        pytest.skip("Spark needs a Java runtime (17) on PATH")
    from pyspark.sql import SparkSession

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
        session = (
            SparkSession.builder.master("local[2]")
            .appName("pacha-engines-test")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        yield session
        session.stop()


def with_spark(store: Store, spark: Any) -> Answers:
    if store.kind == "s3":
        pytest.skip("Spark reads s3a:// only with the hadoop-aws jars, not shipped by pyspark")
    spark.read.parquet(store.metrics).createOrReplaceTempView("metrics")
    last = {row[0]: row[1] for row in spark.sql(LAST_SQL).collect()}
    mean = {row[0]: row[1] for row in spark.sql(MEAN_SQL).collect()}
    return Answers.of(last, mean)


def assert_same(got: Answers, expected: Answers) -> None:
    assert got.last == pytest.approx(expected.last)
    assert got.best == expected.best
    assert got.mean == pytest.approx(expected.mean)


ENGINES: dict[str, Callable[[Store], Answers]] = {
    "pyarrow": with_pyarrow,
    "duckdb": with_duckdb,
    "polars": with_polars,
}


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_engine_answers_as_read_metrics(store: Store, expected: Answers, engine: str) -> None:
    assert_same(ENGINES[engine](store), expected)


@pytest.mark.engines
@pytest.mark.filterwarnings(
    "ignore:The inplace keyword in DataFrame.reset_index is deprecated:DeprecationWarning"
)
def test_dask_answers_as_read_metrics(store: Store, expected: Answers) -> None:
    assert_same(with_dask(store), expected)


@pytest.mark.engines
def test_spark_answers_as_read_metrics(store: Store, expected: Answers, spark: Any) -> None:
    assert_same(with_spark(store, spark), expected)


def test_the_rules_matter(expected: Answers) -> None:
    """The store is built so that a wrong rule gives a wrong answer."""
    assert sorted(expected.last.values()) == [0.0, 0.5, 1.0]  # the latest of the step-3 points
    assert set(expected.mean) == {0, 1, 2, 3}
