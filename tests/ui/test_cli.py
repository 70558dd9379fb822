"""``pacha ui`` as a command: prints its URL, serves, stops cleanly on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import pytest

import pacha_sdk as pacha
from pacha_sdk.cli import main

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.subprocess


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pacha_sdk", "ui", "--no-browser", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_prints_the_url_serves_and_exits_0_on_ctrl_c(tmp_path: Path, stop: signal.Signals) -> None:
    uri = str(tmp_path / "store")
    with pacha.run(uri=uri, name="one") as run:
        run.log_metric("loss", 0.25, step=0)
    with start("--uri", uri, "--port", "0") as server:
        assert server.stdout is not None
        assert server.stderr is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert "/?token=" in url
        base, token = url.split("/?token=")
        request = urllib.request.Request(
            base + "/api/runs", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert [r["name"] for r in json.load(answer)] == ["one"]
        server.send_signal(stop)
        assert server.wait(timeout=30) == 0
        errors = server.stderr.read()
    assert "Traceback" not in errors
    assert "stopped" in errors


def test_read_only_refuses_writes_and_says_so(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    with pacha.run(uri=uri, name="kept") as run:
        run.log_metric("loss", 0.25, step=0)
    with start("--uri", uri, "--read-only") as server:
        assert server.stdout is not None
        assert server.stderr is not None
        base, token = server.stdout.readline().strip().split("/?token=")
        request = urllib.request.Request(
            f"{base}/api/runs/{run.run_id}/annotations",
            data=json.dumps({"note": "x"}).encode(),
            headers={"X-Pacha-Token": token, "Content-Type": "application/json"},
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        with refused.value as answer:
            assert answer.code == 405
            assert "read-only" in json.load(answer)["error"]
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 0
        assert "(read-only)" in server.stderr.read()
    assert pacha.load_run(run.run_id, uri=uri).note is None


def test_another_host_is_warned_about(tmp_path: Path) -> None:
    with start("--uri", str(tmp_path), "--host", "0.0.0.0") as server:
        assert server.stdout is not None
        assert server.stderr is not None
        url = server.stdout.readline()
        assert url.startswith("http://0.0.0.0:")
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 0
        assert "warning: serving on 0.0.0.0" in server.stderr.read()


def test_a_taken_port_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["ui", "--uri", str(tmp_path), "--port", str(port), "--no-browser"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pacha: error:")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--port", "70000"], "65535"), (["--port", "http"], "port number"), (["--host", ""], "host")],
)
def test_bad_arguments_are_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["ui", "--no-browser", *args])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_an_unreachable_store_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ui", "--uri", "nosuch://bucket/x", "--no-browser"]) == 1
    assert capsys.readouterr().err.startswith("pacha: error:")


def test_a_missing_local_store_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo-runs"
    assert main(["ui", "--uri", str(missing), "--no-browser"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pacha: error:")
    assert str(missing) in err
    assert "does not exist" in err
    assert not missing.exists()  # the UI never creates the store it was asked to read


def test_without_numpy_it_names_the_extra(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['numpy'] = None\n"
        "from pacha_sdk.cli import main\n"
        f"sys.exit(main(['ui', '--no-browser', '--uri', {str(tmp_path)!r}]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "pip install 'pacha-sdk[ui]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
