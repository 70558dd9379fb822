"""Distributed training: every rank of a job logs into one run.

Rank 0 owns ``runs/<id>/run.json``; a rank above 0 writes its own part files
and ``runs/<id>/ranks/<rank>.json``. The end-to-end tests start four real
Python processes, as torchrun would, on a local folder and on SeaweedFS.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.compute as pc
import pytest

import pacha_sdk as pacha
from pacha_sdk.tracking import _ranks

if TYPE_CHECKING:
    from tests.servers import ObjectStore

pytest_plugins = ["tests.servers"]

WORLD = 4
POINTS = 300
FAILING_RANK = 2
WAIT = 90.0


# Defaults from the environment.


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, 0),
        ({"RANK": "3"}, 3),
        ({"SLURM_PROCID": "5"}, 5),
        ({"RANK": "1", "SLURM_PROCID": "5"}, 1),
        ({"RANK": " ", "SLURM_PROCID": "2"}, 2),
    ],
)
def test_rank_defaults_to_rank_then_slurm_procid(environ: dict[str, str], expected: int) -> None:
    assert _ranks.resolve_rank(None, environ=environ) == expected
    assert _ranks.resolve_rank(7, environ=environ) == 7  # an explicit rank wins


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"RANK": "abc"}, "$RANK"),
        ({"RANK": "-1"}, "$RANK"),
        ({"SLURM_PROCID": "1.5"}, "$SLURM_PROCID"),
        ({"RANK": str(2**31)}, "$RANK"),
    ],
)
def test_a_bad_rank_variable_is_named(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=rf"\{named} must be a non-negative int") as caught:
        _ranks.resolve_rank(None, environ=environ)
    assert repr(next(iter(environ.values()))) in str(caught.value)


@pytest.mark.parametrize("rank", [-1, True, "1", 1.0, 2**31])
def test_a_bad_rank_argument_is_refused(store: str, rank: Any) -> None:
    with pytest.raises(ValueError, match="rank must be a non-negative int"):
        pacha.run(uri=store, rank=rank)


def test_run_id_defaults_to_pacha_run_id_for_the_outermost_run(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = str(uuid.uuid4())
    monkeypatch.setenv("PACHA_RUN_ID", shared.upper())
    with pacha.run(uri=store, system_metrics=False) as outer:
        with pacha.run(uri=store, system_metrics=False) as inner:
            inner.log_metric("loss", 1.0, 0)
        assert outer.run_id == shared
        assert inner.run_id != shared
    assert pacha.load_run(inner.run_id, uri=store).parent_run_id == shared
    assert pacha.load_run(shared, uri=store).status is pacha.RunStatus.COMPLETED


def test_pacha_run_id_is_taken_by_the_first_run_of_a_sweep_only(
    store: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    shared = str(uuid.uuid4())
    monkeypatch.setenv("PACHA_RUN_ID", shared)
    ids = []
    with caplog.at_level(logging.WARNING, logger="pacha_sdk"):
        for learning_rate in (0.1, 0.01, 0.001):  # a sweep: one run per setting
            with pacha.run(
                {"learning_rate": learning_rate}, uri=store, system_metrics=False
            ) as run:
                run.log_metric("loss", learning_rate, 0)
            ids.append(run.run_id)
    assert ids[0] == shared
    assert len(set(ids)) == 3
    records = {r.run_id: r for r in pacha.list_runs(uri=store)}
    assert sorted(records) == sorted(ids)
    for run_id, learning_rate in zip(ids, (0.1, 0.01, 0.001)):
        assert records[run_id].hyperparameters.learning_rate == learning_rate
        assert records[run_id].summary == {"loss": learning_rate}
        assert records[run_id].status is pacha.RunStatus.COMPLETED
    warned = [r.getMessage() for r in caplog.records if "PACHA_RUN_ID" in r.getMessage()]
    assert len(warned) == 1  # once, not once per run
    assert f"$PACHA_RUN_ID={shared} was taken by this process's first run" in warned[0]


def test_a_tracked_function_called_in_a_loop_records_one_run_per_call(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = str(uuid.uuid4())
    monkeypatch.setenv("PACHA_RUN_ID", shared)

    @pacha.track(uri=store, system_metrics=False)
    def trial(seed: int) -> str:
        pacha.log_metric("score", float(seed), step=0)
        current = pacha.active_run()
        assert current is not None
        return str(current.run_id)

    ids = [trial(seed) for seed in range(3)]
    assert ids[0] == shared
    assert len(set(ids)) == 3
    assert pacha.read_metrics(shared, uri=store)["value"].to_pylist() == [0.0]


def test_a_new_pacha_run_id_value_is_shared_again(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    monkeypatch.setenv("PACHA_RUN_ID", first)
    with pacha.run(uri=store, system_metrics=False) as one:
        pass
    monkeypatch.setenv("PACHA_RUN_ID", second)  # a driver that hands each trial its id
    with pacha.run(uri=store, system_metrics=False) as two:
        pass
    assert (one.run_id, two.run_id) == (first, second)
    with pacha.run(uri=store, run_id=first, system_metrics=False) as again:  # explicit: attaches
        pass
    assert again.run_id == first


def test_a_bad_pacha_run_id_is_named(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACHA_RUN_ID", "job-42")
    with pytest.raises(pacha.InvalidRunIdError, match=r"\$PACHA_RUN_ID: run id 'job-42'"):
        pacha.run(uri=store)


# One rank in this process.


def _shared_run(store: str, rank: int, **options: Any) -> pacha.Run:
    return pacha.run(
        uri=store, run_id=options.pop("run_id", str(uuid.uuid4())), rank=rank,
        flush_interval=0.05, system_metrics=False, **options,
    )  # fmt: skip


def test_a_rank_above_zero_writes_its_own_record_and_never_run_json(store: str) -> None:
    run = _shared_run(store, 3)
    assert run.rank == 3
    assert not run.owns_record
    run.log_metric("loss", 0.5, 0)
    assert run.flush(timeout=10)
    root = Path(store) / "runs" / run.run_id
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        "ranks/3.json"
    ]
    (running,) = pacha.load_rank_records(run.run_id, uri=store)
    assert running.status is pacha.RunStatus.RUNNING
    assert running.summary == {"loss": 0.5}
    assert running.pid == os.getpid()
    assert running.hostname
    assert running.heartbeat_at is not None
    assert not running.stale_at(running.heartbeat_at)
    assert running.stale_at(running.heartbeat_at + timedelta(seconds=1))

    run.fail(ZeroDivisionError("division by zero"))
    (failed,) = pacha.load_rank_records(run.run_id, uri=store)
    assert failed.status is pacha.RunStatus.FAILED
    assert failed.error_message == "ZeroDivisionError: division by zero"
    assert failed.finished_at is not None
    assert not failed.is_stale
    assert not (root / "run.json").exists()
    assert pacha.list_runs(uri=store) == []  # ranks/*.json are not runs
    assert pacha.read_metrics(run.run_id, uri=store)["value"].to_pylist() == [0.5]


def test_a_rank_whose_rank_zero_never_wrote_keeps_its_points(store: str) -> None:
    with _shared_run(store, 2) as orphan:  # rank 0 died before it wrote run.json
        for step in range(10):
            orphan.log_metric("loss", float(step), step)
    shared = orphan.run_id
    assert not (Path(store) / "runs" / shared / "run.json").exists()
    table = pacha.read_metrics(shared, uri=store)
    assert sorted(table["step"].to_pylist()) == list(range(10))
    assert set(table["rank"].to_pylist()) == {2}

    report = pacha.gc(uri=store, delete=True)
    assert report.parts == []
    assert pacha.read_metrics(shared, uri=store).num_rows == 10
    with pytest.raises(pacha.RunNotFoundError):
        pacha.load_run(shared, uri=store)  # the run itself is still unknown

    (Path(store) / "runs" / shared / "ranks" / "2.json").unlink()  # nothing names the run now
    assert len(pacha.gc(uri=store, delete=True).parts) == 1
    with pytest.raises(pacha.RunNotFoundError):
        pacha.read_metrics(shared, uri=store)


def test_rank_zero_and_ranks_in_one_process_share_the_run(store: str) -> None:
    rank0 = _shared_run(store, 0)
    shared = rank0.run_id
    ranks = [_shared_run(store, rank, run_id=shared) for rank in (1, 2)]
    for run in (rank0, *ranks):
        run.log_metric("loss", float(run.rank), 0)
    ranks[0].cancel()
    ranks[1].fail("lost its GPU")
    rank0.complete()
    record = pacha.load_run(shared, uri=store)
    assert record.status is pacha.RunStatus.COMPLETED
    assert record.summary == {"loss": 0.0}
    assert "world_size" not in record.extra
    by_rank = {r.rank: r for r in pacha.load_rank_records(shared, uri=store)}
    assert sorted(by_rank) == [1, 2]
    assert by_rank[1].status is pacha.RunStatus.CANCELLED
    assert by_rank[2].status is pacha.RunStatus.FAILED
    assert by_rank[2].error_message == "lost its GPU"
    table = pacha.read_metrics(shared, uri=store)
    assert sorted(zip(table["rank"].to_pylist(), table["value"].to_pylist())) == [
        (0, 0.0),
        (1, 1.0),
        (2, 2.0),
    ]
    assert [r.run_id for r in pacha.list_runs(uri=store)] == [shared]


def test_a_rank_resumed_keeps_its_summary(store: str) -> None:
    first = _shared_run(store, 1)
    first.log_metric("loss", 0.5, 0)
    first.complete()
    again = _shared_run(store, 1, run_id=first.run_id)
    assert again.get_metric("loss") == 0.5
    again.log_metric("acc", 0.9, 0)
    again.complete()
    (record,) = pacha.load_rank_records(first.run_id, uri=store)
    assert record.summary == {"loss": 0.5, "acc": 0.9}
    assert record.status is pacha.RunStatus.COMPLETED


def test_a_rank_captures_its_console_output_beside_its_record(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with _shared_run(store, 2, capture_output=True) as run:
        print("hello from rank 2")
    log = Path(store) / "runs" / run.run_id / "ranks" / "2.log"
    assert "hello from rank 2" in log.read_text()
    (record,) = pacha.load_rank_records(run.run_id, uri=store)
    assert record.log_uri == f"{run.uri}/runs/{run.run_id}/ranks/2.log"
    assert "hello from rank 2" in capsys.readouterr().out


def test_artifacts_are_logged_by_rank_zero_only(store: str, tmp_path: Path) -> None:
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"weights")
    with _shared_run(store, 1) as run:
        with pytest.raises(pacha.RunStateError, match=r"rank 1 .* rank 0 owns"):
            run.log_artifact(weights)
        run.use_artifact("0" * 64)  # every rank runs the same code: rank 0 records inputs
    assert not (Path(store) / "artifacts").exists()


def test_a_rank_above_zero_without_a_shared_id_records_a_run_of_its_own(
    store: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr(_ranks, "_warned_unshared", False)
    with (
        caplog.at_level(logging.WARNING, logger="pacha_sdk"),
        pacha.run(uri=store, system_metrics=False) as run,
    ):
        run.log_metric("loss", 1.0, 0)
    assert "rank 1 has no run id to share" in caplog.text
    assert "PACHA_RUN_ID" in caplog.text
    assert run.owns_record
    assert pacha.load_run(run.run_id, uri=store).status is pacha.RunStatus.COMPLETED
    assert pacha.read_metrics(run.run_id, uri=store)["rank"].to_pylist() == [1]
    assert pacha.load_rank_records(run.run_id, uri=store) == []


def test_track_takes_the_run_id_and_rank_from_the_environment(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = str(uuid.uuid4())
    monkeypatch.setenv("PACHA_RUN_ID", shared)
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "8")

    @pacha.track(uri=store, system_metrics=False)
    def train(learning_rate: float = 0.1) -> str:
        current = pacha.active_run()
        assert current is not None
        pacha.log_metric("loss", 0.25, step=0)
        with pacha.run(uri=store, system_metrics=False) as nested:  # its own run, same rank
            nested.log_metric("inner", 1.0, 0)
        assert nested.owns_record
        assert nested.rank == 2
        return str(current.run_id)

    assert train() == shared
    (record,) = pacha.load_rank_records(shared, uri=store)
    assert record.rank == 2
    assert record.world_size == 8
    assert record.status is pacha.RunStatus.COMPLETED


def test_load_rank_records_errors(store: str) -> None:
    Path(store).mkdir()
    with pytest.raises(pacha.RunNotFoundError):
        pacha.load_rank_records(str(uuid.uuid4()), uri=store)
    with pytest.raises(pacha.InvalidRunIdError):
        pacha.load_rank_records("not-a-run", uri=store)
    run = _shared_run(store, 0)
    run.complete()
    ranks = Path(store) / "runs" / run.run_id / "ranks"
    ranks.mkdir()
    (ranks / "1.json").write_text('{"run_id": "' + run.run_id + '", "rank": 1, "status": "b')
    (ranks / "2.json").write_text(
        json.dumps({"run_id": run.run_id, "rank": 3, "started_at": "2026-01-01T00:00:00Z"})
    )
    (ranks / "notes.txt").write_text("ignored")
    (ranks / "04.json").write_text("{}")  # not a name pacha writes: ignored
    with pytest.warns(UserWarning, match="skipping") as caught:
        assert pacha.load_rank_records(run.run_id, uri=store) == []
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert "skipping rank 1" in messages[0]
    assert "2.json: it says rank 3" in messages[1]


# Four processes, as torchrun starts them.

WORKER = textwrap.dedent(
    """
    import json, os, sys
    import pacha_sdk as pacha

    uri, options, rank, points, mode = sys.argv[1:6]
    rank, points = int(rank), int(points)
    if mode == "env":  # the torchrun recipe: PACHA_RUN_ID exported, RANK set per process
        os.environ["RANK"] = str(rank)
        shared = {}
    else:
        shared = {"run_id": os.environ.pop("PACHA_RUN_ID"), "rank": rank}
    try:
        with pacha.run(
            {"learning_rate": 0.1}, uri=uri, storage_options=json.loads(options) or None,
            flush_interval=0.2, flush_rows=101, system_metrics=False, **shared,
        ) as run:
            for step in range(points):
                run.log_metric("loss", rank * 1000.0 + step, step)
                run.log_metrics({"acc": step / points, "who": float(rank)}, step=step)
            if rank == FAILING_RANK:
                raise RuntimeError(f"rank {rank} diverged")
    except RuntimeError:
        sys.exit(3)
    """
).replace("FAILING_RANK", str(FAILING_RANK))


def _launch(uri: str, options: dict[str, Any], mode: str, tmp_path: Path) -> str:
    """Start WORLD ranks at once, as a launcher would; return the shared run id."""
    shared = str(uuid.uuid4())
    env = {**os.environ, "PACHA_RUN_ID": shared, "WORLD_SIZE": str(WORLD)}
    logs = [(tmp_path / f"rank{rank}.log").open("w") for rank in range(WORLD)]
    args = [uri, json.dumps(options), "RANK", str(POINTS), mode]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, *[str(rank) if a == "RANK" else a for a in args]],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for rank, log in enumerate(logs)
    ]
    try:
        codes = [child.wait(timeout=WAIT) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
        for log in logs:
            log.close()
    expected = [3 if rank == FAILING_RANK else 0 for rank in range(WORLD)]
    output = "\n".join((tmp_path / f"rank{rank}.log").read_text() for rank in range(WORLD))
    assert codes == expected, output
    return shared


def _check_shared_run(shared: str, uri: str, options: dict[str, Any]) -> None:
    where: dict[str, Any] = {"uri": uri, "storage_options": options or None}
    record = pacha.load_run(shared, **where)
    assert record.status is pacha.RunStatus.COMPLETED  # rank 0 completed, whatever rank 2 did
    assert record.error_message is None
    assert record.summary == {"loss": POINTS - 1.0, "acc": (POINTS - 1) / POINTS, "who": 0.0}
    assert record.hyperparameters.learning_rate == 0.1
    assert record.extra["world_size"] == WORLD

    ranks = pacha.load_rank_records(shared, **where)
    assert [r.rank for r in ranks] == list(range(1, WORLD))
    for rank_record in ranks:
        assert rank_record.run_id == shared
        assert rank_record.world_size == WORLD
        assert rank_record.summary["loss"] == rank_record.rank * 1000.0 + POINTS - 1
        assert rank_record.pid is not None
        assert rank_record.pid != os.getpid()
        if rank_record.rank == FAILING_RANK:
            assert rank_record.status is pacha.RunStatus.FAILED
            assert rank_record.error_message == f"RuntimeError: rank {FAILING_RANK} diverged"
            assert rank_record.traceback is not None
            assert "Traceback" in rank_record.traceback
        else:
            assert rank_record.status is pacha.RunStatus.COMPLETED
            assert rank_record.error_message is None

    table = pacha.read_metrics(shared, **where)
    assert table.num_rows == WORLD * POINTS * 3
    assert Counter(table["rank"].to_pylist()) == dict.fromkeys(range(WORLD), POINTS * 3)
    loss = sorted(
        (rank, step, value)
        for name, rank, step, value in zip(
            table["name"].to_pylist(),
            table["rank"].to_pylist(),
            table["step"].to_pylist(),
            table["value"].to_pylist(),
        )
        if name == "loss"
    )
    assert loss == [(r, s, r * 1000.0 + s) for r in range(WORLD) for s in range(POINTS)]
    who = table.filter(pc.field("name") == "who")
    assert who["value"].to_pylist() == [float(r) for r in who["rank"].to_pylist()]
    assert [r.run_id for r in pacha.list_runs(**where)] == [shared]


@pytest.mark.subprocess
def test_four_processes_on_a_local_folder(store: str, tmp_path: Path) -> None:
    shared = _launch(store, {}, "env", tmp_path)
    _check_shared_run(shared, store, {})

    import duckdb

    relation = duckdb.sql(
        f"select rank, count(*) from read_parquet('{store}/metrics/*/*.parquet', "
        "hive_partitioning=true) group by rank order by rank"
    )
    assert relation is not None
    assert relation.fetchall() == [(rank, POINTS * 3) for rank in range(WORLD)]


@pytest.mark.subprocess
@pytest.mark.servers
def test_four_processes_on_seaweedfs(seaweedfs_store: ObjectStore, tmp_path: Path) -> None:
    options = dict(seaweedfs_store.storage_options)
    shared = _launch(seaweedfs_store.uri, options, "keywords", tmp_path)
    _check_shared_run(shared, seaweedfs_store.uri, options)
