"""The importers on the public face: lazy, and a clear error without their extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import pacha_sdk as pacha

_CHILD = """
import sys
sys.modules[{blocked!r}] = None  # as if the extra were not installed
import pacha_sdk as pacha
assert all(sys.modules.get(name) is None for name in ("mlflow", "tensorboard"))
try:
    pacha.{function}({source!r}, uri="store")
except pacha.PachaError as error:
    print(type(error).__name__, error)
"""


def test_the_face_exports_the_importers() -> None:
    assert pacha.import_mlflow is pacha.importers.import_mlflow
    assert pacha.import_tensorboard is pacha.importers.import_tensorboard
    assert issubclass(pacha.ImportSourceError, pacha.PachaError)
    assert issubclass(pacha.ImportSourceError, ValueError)


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("function", "blocked", "marker", "package"),
    [
        ("import_mlflow", "mlflow", "mlruns/0/meta.yaml", "MLflow imports need mlflow-skinny"),
        ("import_tensorboard", "tensorboard", "logs/events.out.tfevents.1.host",
         "TensorBoard imports need tensorboard"),
    ],
)  # fmt: skip
def test_without_the_extra_the_error_says_what_to_install(
    function: str, blocked: str, marker: str, package: str, tmp_path: Path
) -> None:
    (tmp_path / marker).parent.mkdir(parents=True)
    (tmp_path / marker).write_text("")
    source = str(tmp_path / marker.split("/")[0])
    code = _CHILD.format(blocked=blocked, function=function, source=source)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = f"{package}, which is not installed: pip install 'pacha-sdk[import]'"
    assert done.stdout == f"ExtraNotInstalledError {expected}\n"
    assert not (tmp_path / "store").exists()
