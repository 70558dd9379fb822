"""``pacha import mlflow | tensorboard``: summary line, JSON report, exit status, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import pacha_sdk as pacha
from tests.cli.conftest import Cli

if TYPE_CHECKING:
    from tests.importers.conftest import MlflowSource

pytest.importorskip("mlflow", reason="needs pacha-sdk[import] (mlflow-skinny)")


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(capsys)


def test_import_mlflow_prints_one_summary_line(cli: Cli, mlruns: MlflowSource, store: str) -> None:
    first = cli.ok("import", "mlflow", mlruns.source, "--uri", store)
    assert first.out == (
        "5 run(s) from mlflow: 5 new, 0 updated, 0 unchanged; 36 point(s), 5 artifact(s) added; "
        "not imported: 1 points with a negative step\n"
    )
    again = cli.ok("import", "mlflow", mlruns.source, "--uri", store)
    assert "0 new, 0 updated, 5 unchanged; 0 point(s), 0 artifact(s)" in again.out
    listed = cli.ok("runs", "list", "--uri", store, "--json").json()
    assert sorted(run["name"] for run in listed) == [
        "bert", "child-failed", "child-killed", "child-ok", "resnet-sweep",
    ]  # fmt: skip


def test_import_mlflow_options_and_json_report(cli: Cli, mlruns: MlflowSource, store: str) -> None:
    result = cli.ok(
        "import", "mlflow", mlruns.source, "--experiment", "vision", "--no-artifacts",
        "--uri", store, "--json",
    )  # fmt: skip
    report = result.json()
    assert (len(report["imported"]), report["artifacts"], report["skipped"]) == (4, 0, [])
    assert report["run_ids"][mlruns.runs["parent"]] in report["imported"]


def test_a_skipped_run_is_a_warning_and_exit_status_1(
    cli: Cli, mlruns: MlflowSource, store: str
) -> None:
    metric = Path(mlruns.source, mlruns.experiments["vision"], mlruns.runs["child-ok"], "metrics")
    (metric / "loss").write_text("not a metric line at all\n")
    result = cli("import", "mlflow", mlruns.source, "--uri", store)
    assert result.code == 1
    lines = result.err.splitlines()
    assert lines[0].startswith(f"pacha: warning: skipped {mlruns.runs['child-ok']}: ")
    assert lines[-1] == "pacha: error: 1 run(s) could not be imported (see the warnings above)"
    assert "4 new" in result.out
    assert "1 run(s) skipped" in result.out
    assert len(pacha.list_runs(uri=store)) == 4


def test_import_tensorboard(cli: Cli, tmp_path: Path, store: str) -> None:
    tensorboardx = pytest.importorskip("tensorboardX", reason="needs tensorboardX")
    with tensorboardx.SummaryWriter(str(tmp_path / "logs" / "a")) as writer:
        for step in range(3):
            writer.add_scalar("loss", 1.0 / (step + 1), step)
    result = cli.ok("import", "tensorboard", str(tmp_path / "logs"), "--uri", store)
    assert result.out == (
        "1 run(s) from tensorboard: 1 new, 0 updated, 0 unchanged; "
        "3 point(s), 0 artifact(s) added\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["mlflow", "absent-folder"], "pacha: error: absent-folder: no such folder"),
        (["mlflow", "sqlite:///absent.db"], "pacha: error: sqlite:///absent.db: no such database"),
        (["tensorboard", "."], "pacha: error: .: has no TensorBoard event files"),
    ],
)
def test_bad_sources_are_one_line_and_exit_1(cli: Cli, argv: list[str], message: str) -> None:
    result = cli("import", *argv, "--uri", "store")
    assert result.code == 1
    assert result.out == ""
    assert result.err.startswith(message)
    assert result.err.count("\n") == 1
    assert not Path("store").exists()


@pytest.mark.subprocess
def test_as_a_process_errors_print_no_traceback_and_progress_stays_off_in_a_pipe(
    mlruns: MlflowSource, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    done = subprocess.run(
        [sys.executable, "-m", "pacha_sdk", "import", "mlflow", mlruns.source, "--uri", "s"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("5 run(s) from mlflow: 5 new")
    bad = subprocess.run(
        [sys.executable, "-m", "pacha_sdk", "import", "mlflow", str(tmp_path / "nope")],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert bad.returncode == 1
    assert bad.stderr == f"pacha: error: {tmp_path / 'nope'}: no such folder\n"
    assert bad.stdout == ""
