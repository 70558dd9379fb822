"""A store URI that names no store is an error that says so, once, and never echoes a secret.

``s3://`` (no bucket) and ``s3://user:pw@bkt/x`` (credentials in the URI)
raise :class:`InvalidUriError`; a local folder that does not exist is
:class:`StoreNotFoundError` for every reader (a mistyped path must not read
as "no runs"), while a run creates it. The command line prints one line and
exits 1 for each.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pacha_sdk as pacha
from pacha_sdk.cli import main

SECRET = "pw-5ecr3t-value"
BAD_URIS = [
    "s3://",
    "gs://",
    "gcs://",
    "s3a://",
    f"s3://user:{SECRET}@bkt/x",
    f"gs://user:{SECRET}@bkt/x",
    f"s3://:{SECRET}@bkt",
    f"s3://{SECRET}@bkt/x",
]


@pytest.mark.parametrize("uri", BAD_URIS)
def test_a_uri_naming_no_store_raises_invalid_uri_error(uri: str) -> None:
    with pytest.raises(pacha.InvalidUriError) as caught:
        pacha.list_runs(uri=uri)
    assert isinstance(caught.value, ValueError)  # what it was before: except ValueError works
    assert SECRET not in str(caught.value)
    with pytest.raises(pacha.InvalidUriError):
        pacha.run(uri=uri)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


COMMANDS = [
    ("runs", "list"),
    ("runs", "show", "1a2b"),
    ("runs", "show", "not-hex!"),
    ("runs", "compare", "1a2b", "3c4d"),
    ("runs", "reap"),
    ("metrics", "1a2b"),
    ("plot", "1a2b", "--name", "loss"),
    ("report",),
    ("gc",),
    ("sync",),
]


@pytest.mark.parametrize("uri", BAD_URIS)
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_says_a_bad_uri_in_one_line(
    capsys: pytest.CaptureFixture[str], command: tuple[str, ...], uri: str
) -> None:
    code, out, err = _cli(capsys, *command, "--uri", uri)
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("pacha: error: ")
    assert SECRET not in err


@pytest.mark.subprocess
def test_no_traceback_from_the_real_command(tmp_path: Path) -> None:
    for uri in (BAD_URIS[0], BAD_URIS[4], str(tmp_path / "nope")):
        done = subprocess.run(
            [sys.executable, "-m", "pacha_sdk", "runs", "list", "--uri", uri],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr
        assert len(done.stderr.splitlines()) == 1, done.stderr
        assert SECRET not in done.stderr + done.stdout


READERS: dict[str, Callable[[str], Any]] = {
    "list_runs": lambda uri: pacha.list_runs(uri=uri),
    "best_run": lambda uri: pacha.best_run("loss", uri=uri),
    "load_run": lambda uri: pacha.load_run("6f9619ff-8b86-d011-b42d-00c04fc964ff", uri=uri),
    "read_metrics": lambda uri: pacha.read_metrics(uri=uri),
    "read_metrics(id)": lambda uri: pacha.read_metrics(
        "6f9619ff-8b86-d011-b42d-00c04fc964ff", uri=uri
    ),
    "metrics_dataset": lambda uri: pacha.metrics_dataset(uri),
    "load_rank_records": lambda uri: pacha.load_rank_records(
        "6f9619ff-8b86-d011-b42d-00c04fc964ff", uri=uri
    ),
    "reap": lambda uri: pacha.reap(uri=uri),
    "gc": lambda uri: pacha.gc(uri=uri),
    "resolve_run_id": lambda uri: pacha.resolve_run_id("6f96", uri=uri),
    "lineage": lambda uri: pacha.lineage("0" * 64, uri=uri),
    "download_artifact": lambda uri: pacha.download_artifact("0" * 64, "out", uri=uri),
}


@pytest.mark.parametrize("read", READERS.values(), ids=READERS.keys())
def test_reading_a_local_store_that_does_not_exist_names_the_path(
    tmp_path: Path, read: Callable[[str], Any]
) -> None:
    missing = tmp_path / "typo" / "pacha-runs"
    with pytest.raises(pacha.StoreNotFoundError, match="does not exist") as caught:
        read(str(missing))
    assert str(missing) in str(caught.value)
    assert isinstance(caught.value, pacha.StoreError)
    assert not missing.exists()  # reading created nothing
    assert not (tmp_path / "out").exists()


def test_a_file_where_the_store_should_be_is_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "runs.txt"
    path.write_text("not a folder")
    with pytest.raises(pacha.StoreNotFoundError, match="not a folder"):
        pacha.list_runs(uri=str(path))


def test_a_run_creates_the_store_and_then_it_reads(tmp_path: Path) -> None:
    uri = str(tmp_path / "new" / "store")
    with pacha.run(uri=uri, system_metrics=False) as run:
        run.log_metric("loss", 0.5, 0)
    assert [r.run_id for r in pacha.list_runs(uri=uri)] == [run.run_id]
    assert pacha.read_metrics(uri=uri).num_rows == 1


def test_an_existing_empty_folder_is_an_empty_store(tmp_path: Path) -> None:
    assert pacha.list_runs(uri=str(tmp_path)) == []
    assert pacha.read_metrics(uri=str(tmp_path)).num_rows == 0


def test_the_command_line_names_a_missing_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope"
    code, out, err = _cli(capsys, "runs", "list", "--uri", str(missing))
    assert (code, out) == (1, "")
    assert err == f"pacha: error: no pacha store at {missing}: the folder does not exist\n"

    monkeypatch.chdir(tmp_path)  # the default store, ./pacha-runs, is not there either
    code, out, err = _cli(capsys, "runs", "list")
    assert code == 1
    assert str(tmp_path / "pacha-runs") in err

    (tmp_path / "pacha-runs").mkdir()
    code, out, err = _cli(capsys, "runs", "list")
    assert (code, out, err) == (0, "", "no runs\n")
