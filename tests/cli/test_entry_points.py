"""``pacha`` and ``python -m pacha_sdk`` as real processes, other stores, and store errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import pacha_sdk as pacha
from tests.cli.conftest import Cli, Store, populate

if TYPE_CHECKING:
    from tests.servers import ObjectStore

pytest_plugins = ["tests.servers"]


def _pacha_script() -> str:
    beside = Path(sysconfig.get_path("scripts")) / "pacha"
    found = str(beside) if beside.is_file() else shutil.which("pacha")
    if found is None:
        pytest.fail("the pacha console script is not installed: pip install -e .")
    return found


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    return subprocess.run(
        list(argv), capture_output=True, text=True, timeout=60, check=False, env=env
    )


@pytest.mark.subprocess
def test_console_script_and_module_agree(shared_store: Store) -> None:
    script = _run(_pacha_script(), "runs", "list", "--uri", shared_store.uri, "--json")
    module = _run(
        sys.executable, "-m", "pacha_sdk", "runs", "list", "--uri", shared_store.uri, "--json"
    )
    assert script.returncode == module.returncode == 0, script.stderr + module.stderr
    assert [r["run_id"] for r in json.loads(script.stdout)] == [
        r["run_id"] for r in json.loads(module.stdout)
    ]
    assert script.stderr == module.stderr == ""


@pytest.mark.subprocess
@pytest.mark.parametrize("pure", ["0", "1"])
def test_version_names_the_buffer_logging_fills(pure: str) -> None:
    env = {**os.environ, "PACHA_SDK_PURE_PYTHON": pure}
    done = subprocess.run(
        [_pacha_script(), "--version"], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    built = (
        subprocess.run(
            [sys.executable, "-c", "import pacha_sdk.storage._pointbuf"], capture_output=True
        ).returncode
        == 0
    )
    kind = "C" if built and pure == "0" else "pure-Python"
    assert done.stdout == f"pacha-sdk {pacha.__version__} ({kind} buffer)\n"


def test_errors_are_one_line_without_traceback(shared_store: Store, tmp_path: Path) -> None:
    cases = {
        "unknown run": ["runs", "show", "ffff", "--uri", shared_store.uri],
        "unknown scheme": ["runs", "list", "--uri", "nope://x"],
        "bad storage option": ["runs", "list", "--storage-option", "novalue"],
    }
    for what, argv in cases.items():
        done = _run(sys.executable, "-m", "pacha_sdk", *argv)
        assert done.returncode != 0, what
        assert "Traceback" not in done.stderr, what
        assert re.match(r"pacha( runs list)?: error: ", done.stderr.splitlines()[-1]), what
        assert done.stdout == "", what


def test_unreachable_store_is_one_line(cli: Cli) -> None:
    argv = ["runs", "list", "--uri", "s3://bucket/prefix"]
    options = {
        "endpoint_url": "http://127.0.0.1:9",  # discard port: nothing listens
        "key": "k",
        "secret": "s",
        "config_kwargs": '{"retries": {"max_attempts": 1}}',
    }
    for key, value in options.items():
        argv += ["--storage-option", f"{key}={value}"]
    result = cli(*argv)
    assert result.code == 1
    assert result.out == ""
    assert result.err.startswith("pacha: error: could not read runs in s3://bucket/prefix")
    assert result.err.count("\n") == 1
    assert "secret" not in result.err.replace("secret=", "")


def test_default_uri_is_pacha_uri_then_local_folder(
    cli: Cli, shared_store: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PACHA_URI", shared_store.uri)
    assert len(cli.ok("runs", "list", "--json").json()) == 4
    monkeypatch.delenv("PACHA_URI")
    with pacha.run(uri=str(tmp_path / "pacha-runs"), name="here"):
        pass
    assert [r["name"] for r in cli.ok("runs", "list", "--json").json()] == ["here"]


def test_memory_store(cli: Cli) -> None:
    store = populate("memory://cli-memory")
    runs = cli.ok("runs", "list", "--uri", store.uri, "--json").json()
    assert {run["name"] for run in runs} == set(store.runs)
    points = cli.ok("metrics", store.runs["bert-0"][:8], "--uri", store.uri, "--json").json()
    assert len(points) == 40


def test_progress_bar_on_a_terminal_only(
    cli: Cli, shared_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = list(shared_store.runs.values())
    quiet = cli("metrics", *ids, "--json", "--uri", shared_store.uri)
    assert quiet.err == ""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich: treat the streams as terminals
    shown = cli("metrics", *ids, "--json", "--uri", shared_store.uri)
    assert "reading metrics" in shown.err
    assert json.loads(shown.out) == json.loads(quiet.out)


@pytest.mark.servers
def test_s3_store(cli: Cli, moto_store: ObjectStore) -> None:
    store = populate(moto_store.uri, **moto_store.storage_options)
    options = [f"--storage-option={k}={v}" for k, v in moto_store.storage_options.items()]
    on_s3 = ["--uri", moto_store.uri, *options]
    runs = cli.ok("runs", "list", *on_s3, "--json").json()
    assert {run["name"] for run in runs} == set(store.runs)
    shown = cli.ok("runs", "show", store.runs["bert-1"][:8], *on_s3, "--json").json()
    assert shown["run_id"] == store.runs["bert-1"]
    points = cli.ok("metrics", store.runs["bert-0"][:8], *on_s3, "--json").json()
    assert len(points) == 40
    assert cli.ok("gc", *on_s3, "--json").json() == {
        "deleted": False,
        "blobs": [],
        "parts": [],
        "covered_parts": [],
        "trash": [],
        "temp_files": [],  # an object store writes each object in one request
        "recent_temp_files": [],
        "snapshots": [],
    }
