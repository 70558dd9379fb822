"""The integrations' import rules: the public face only, and a clear error without the framework.

These tests need no framework: they read the source, and block the
framework's import to see what a user without it gets.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import pacha_sdk as pacha

INTEGRATIONS = Path(pacha.__file__).parent / "integrations"

FRAMEWORKS = {
    "lightning": ("lightning", "lightning"),
    "pytorch_lightning": ("pytorch_lightning", "pytorch-lightning"),
    "transformers": ("transformers", "transformers"),
    "accelerate": ("accelerate", "accelerate"),
    "keras": ("keras", "keras"),
    "xgboost": ("xgboost", "xgboost-cpu"),
    "lightgbm": ("lightgbm", "lightgbm"),
    "optuna": ("optuna", "optuna"),
}
"""Integration module -> (the framework's top-level package, what to install)."""


def _package_imports(path: Path) -> list[str]:
    """Every ``pacha_sdk...`` module *path* imports."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return [name for name in names if name.split(".")[0] == "pacha_sdk"]


def test_every_framework_has_a_module() -> None:
    modules = {path.stem for path in INTEGRATIONS.glob("*.py") if not path.stem.startswith("_")}
    assert modules == set(FRAMEWORKS)


@pytest.mark.parametrize("path", sorted(INTEGRATIONS.glob("*.py")), ids=lambda p: p.name)
def test_integrations_use_only_the_public_face(path: Path) -> None:
    for name in _package_imports(path):
        assert name == "pacha_sdk" or name.startswith("pacha_sdk.integrations"), (
            f"{path.name} imports {name}: integrations use only `import pacha_sdk as pacha`"
        )


def test_import_pacha_sdk_loads_no_integration_and_no_framework() -> None:
    code = (
        "import sys, pacha_sdk\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "frameworks = {'torch', 'lightning', 'transformers', 'keras', 'optuna'} & loaded\n"
        "assert not frameworks, frameworks\n"
        "assert 'pacha_sdk.integrations' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(("module", "framework"), sorted(FRAMEWORKS.items()))
def test_a_missing_framework_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, module: str, framework: tuple[str, str]
) -> None:
    top, package = framework
    for name in list(sys.modules):
        if name == top or name.startswith(f"{top}."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, top, None)  # `import top` now raises ImportError
    full_name = f"pacha_sdk.integrations.{module}"
    if full_name in sys.modules:
        monkeypatch.delitem(sys.modules, full_name)
    with pytest.raises(pacha.ExtraNotInstalledError, match=package) as raised:
        importlib.import_module(full_name)
    assert isinstance(raised.value, ImportError)
    assert "pacha-sdk[frameworks]" in str(raised.value)
    assert isinstance(raised.value.__cause__, ImportError)
    monkeypatch.delitem(sys.modules, full_name, raising=False)
