"""Importing into an object store, and a store that stops answering half way through."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import pacha_sdk as pacha
from tests.importers.conftest import point_rows

if TYPE_CHECKING:
    from tests.servers import ObjectStore

pytest_plugins = ["tests.servers"]
tensorboardX = pytest.importorskip("tensorboardX", reason="needs tensorboardX (pacha-sdk[test])")
pytest.importorskip("tensorboard", reason="needs pacha-sdk[import] (tensorboard)")

T0 = 1_700_000_000.0


def write_logs(root: Path, runs: int = 3) -> None:
    for index in range(runs):
        with tensorboardX.SummaryWriter(str(root / f"run-{index}")) as writer:
            for step in range(50):
                writer.add_scalar("loss", 1.0 / (step + 1 + index), step, walltime=T0 + step)


@pytest.mark.servers
def test_an_import_the_store_refuses_half_way_is_completed_by_the_next(
    faulty_s3: ObjectStore, tmp_path: Path
) -> None:
    write_logs(tmp_path / "logs")
    proxy = faulty_s3.proxy
    assert proxy is not None
    options = dict(faulty_s3.storage_options)

    def refuse_after_the_first_run(done: int, total: int, points: int) -> None:
        if done == 1:
            proxy.http_error(403)

    with pytest.raises(pacha.StoreError):
        pacha.import_tensorboard(
            tmp_path / "logs",
            uri=faulty_s3.uri,
            storage_options=options,
            progress=refuse_after_the_first_run,
        )
    proxy.heal()
    assert len(pacha.list_runs(uri=faulty_s3.uri, storage_options=options)) == 1

    report = pacha.import_tensorboard(tmp_path / "logs", uri=faulty_s3.uri, storage_options=options)

    assert (len(report.imported), len(report.unchanged), report.points) == (2, 1, 100)
    table = pacha.read_metrics(uri=faulty_s3.uri, storage_options=options)
    assert table.num_rows == 150
    assert len(set(point_rows(table))) == 150
    again = pacha.import_tensorboard(tmp_path / "logs", uri=faulty_s3.uri, storage_options=options)
    assert (len(again.unchanged), again.points) == (3, 0)
