"""extra.environment: interpreter, platform, command line, packages, chosen variables."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow
import pytest

import pacha_sdk as pacha


def environment_of(store: str, **options: Any) -> dict[str, Any]:
    with pacha.run(uri=store, system_metrics=False, **options) as run:
        pass
    environment = pacha.load_run(run.run_id, uri=store).extra["environment"]
    assert isinstance(environment, dict)
    return environment


def run_json_text(store: str) -> str:
    (record,) = (Path(store) / "runs").glob("*/run.json")
    return record.read_text()


def test_interpreter_platform_and_command_line(store: str) -> None:
    environment = environment_of(store)
    assert environment["python"] == platform.python_version()
    assert environment["implementation"] == platform.python_implementation()
    assert environment["platform"] == platform.platform()
    assert environment["hostname"] == socket.gethostname()
    assert environment["argv"] == sys.argv
    assert "env" not in environment


def test_versions_of_installed_key_packages(store: str) -> None:
    packages = environment_of(store)["packages"]
    assert packages["pyarrow"] == pyarrow.__version__
    assert packages["pacha-sdk"] == pacha.__version__
    for missing in ("tensorflow", "jax", "deepspeed"):
        try:
            importlib.metadata.version(missing)
        except importlib.metadata.PackageNotFoundError:
            assert missing not in packages


@pytest.mark.subprocess
def test_package_versions_are_read_without_importing_the_packages(store: str) -> None:
    pytest.importorskip("polars")
    program = (
        "import json, sys\n"
        "import pacha_sdk as pacha\n"
        f"with pacha.run(uri={store!r}, system_metrics=False) as run:\n"
        "    pass\n"
        "packages = pacha.load_run(run.run_id, uri=" + repr(store) + ").extra['environment']"
        "['packages']\n"
        "print(json.dumps({'imported': 'polars' in sys.modules, 'packages': packages}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    seen = json.loads(result.stdout)
    assert seen["packages"]["polars"] == importlib.metadata.version("polars")
    assert seen["imported"] is False


def test_named_environment_variables_are_recorded(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setenv("NOT_ASKED_FOR", "private")
    monkeypatch.delenv("PACHA_TEST_UNSET", raising=False)
    environment = environment_of(store, env_vars=["CUDA_VISIBLE_DEVICES", "PACHA_TEST_UNSET"])
    assert environment["env"] == {"CUDA_VISIBLE_DEVICES": "0,1", "PACHA_TEST_UNSET": None}
    assert "private" not in run_json_text(store)


@pytest.mark.parametrize(
    "name",
    ["AWS_SECRET_ACCESS_KEY", "HF_TOKEN", "db_password", "OPENAI_API_KEY", "Github_Token"],
)
def test_secret_looking_names_are_refused_with_a_warning(
    store: str, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "s3cr3t-value")
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    with pytest.warns(UserWarning, match=name):
        environment = environment_of(store, env_vars=[name, "OMP_NUM_THREADS"])
    assert environment["env"] == {"OMP_NUM_THREADS": "4"}
    assert "s3cr3t-value" not in run_json_text(store)


def test_env_vars_must_be_a_list_of_names(store: str) -> None:
    with pytest.raises(TypeError, match="HOME"):
        pacha.run(uri=store, env_vars="HOME")
    with pytest.raises(TypeError, match="42"):
        pacha.run(uri=store, env_vars=["HOME", 42])  # type: ignore[list-item]
    assert not Path(store).exists()  # nothing written


def test_track_records_named_variables(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEED", "7")

    @pacha.track(uri=store, system_metrics=False, env_vars=iter(["SEED"]))
    def train() -> None:
        pass

    train()
    train()  # the iterator was read once, at decoration
    for record in pacha.list_runs(uri=store):
        assert record.extra["environment"]["env"] == {"SEED": "7"}  # type: ignore[index,call-overload]
