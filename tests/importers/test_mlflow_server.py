"""An MLflow tracking server on 127.0.0.1 as the source.

``mlflow server`` from mlflow-skinny does not start (its FastAPI wrapper
imports the AI gateway, which needs pandas), so the test serves MLflow's
own tracking server application (``mlflow.server.app``: the REST handlers
``mlflow server`` runs, with proxied artifacts) through werkzeug in a child
process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import pacha_sdk as pacha
from tests.importers.conftest import MlflowSource, write_mlflow_source
from tests.importers.test_mlflow import pacha_id, source_points, stored_points

pytest.importorskip("mlflow.server", reason="needs pacha-sdk[import] (mlflow-skinny)")

_SERVE = """
import sys
from werkzeug.serving import make_server
from mlflow.server import app
server = make_server("127.0.0.1", 0, app, threaded=True)
print(server.server_port, flush=True)
server.serve_forever()
"""


@pytest.fixture
def tracking_server(tmp_path: Path) -> Iterator[str]:
    env = {
        **os.environ,
        "_MLFLOW_SERVER_FILE_STORE": f"sqlite:///{tmp_path / 'server.db'}",
        "_MLFLOW_SERVER_ARTIFACT_ROOT": "mlflow-artifacts:/",
        "_MLFLOW_SERVER_ARTIFACT_DESTINATION": str(tmp_path / "served-artifacts"),
        "_MLFLOW_SERVER_SERVE_ARTIFACTS": "true",
        "PYTHONWARNINGS": "ignore",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVE],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        if not port:
            pytest.fail("the MLflow tracking server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def served(tracking_server: str, tmp_path: Path) -> MlflowSource:
    files = tmp_path / "files"
    files.mkdir()
    return write_mlflow_source(tracking_server, tracking_server, files)


@pytest.mark.subprocess
def test_a_tracking_server_is_imported_exactly_and_once(served: MlflowSource, store: str) -> None:
    report = pacha.import_mlflow(served.source, uri=store)

    assert len(report.imported) == 5
    assert report.skipped == []
    assert report.artifacts == 5
    for role, run_id in served.runs.items():
        if role != "deleted":
            assert stored_points(store, run_id) == source_points(served, run_id), role
    parent = pacha.load_run(pacha_id(served.runs["parent"]), uri=store)
    assert parent.name == "resnet-sweep"
    assert parent.hyperparameters.batch_size == 64
    refs = {ref.name: ref for ref in parent.artifacts}
    with pacha.open_artifact(refs["notes.txt"], uri=store) as blob:
        assert blob.read() == b"first sweep\n"

    again = pacha.import_mlflow(served.source, uri=store)
    assert len(again.unchanged) == 5
    assert again.points == 0
    assert again.artifacts == 0
