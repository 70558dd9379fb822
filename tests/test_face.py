"""The package face: one lazy table, the same names for type checkers, a sorted ``__all__``.

``pacha_sdk/__init__.py`` keeps three lists that must agree: the lazy table
(``_LAZY``, name -> module), the imports under ``TYPE_CHECKING`` (what mypy
and IDEs see) and ``__all__``. These tests read the file with :mod:`ast`, so
a name added to one list and forgotten in another fails here, and then run
mypy on small probe files to show that a typo such as ``pacha.read_metricz``
is a type error rather than ``Any``.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pacha_sdk as pacha

FACE = Path(pacha.__file__)
REPO = Path(__file__).resolve().parents[1]


def _face() -> ast.Module:
    return ast.parse(FACE.read_text(encoding="utf-8"))


def _is_type_checking(test: ast.expr) -> bool:
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"


def _is_not_type_checking(test: ast.expr) -> bool:
    return (
        isinstance(test, ast.UnaryOp)
        and isinstance(test.op, ast.Not)
        and _is_type_checking(test.operand)
    )


def _lazy_table() -> dict[str, str]:
    for node in _face().body:
        if isinstance(node, ast.AnnAssign) and ast.unparse(node.target) == "_LAZY":
            assert node.value is not None
            table = ast.literal_eval(node.value)
            assert isinstance(table, dict)
            return table
    raise AssertionError("no `_LAZY: dict[str, str] = {...}` in pacha_sdk/__init__.py")


def _type_checking_imports() -> dict[str, str]:
    """Name -> module of every ``from M import N`` under ``if TYPE_CHECKING:``."""
    names: dict[str, str] = {}
    for node in _face().body:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom), ast.unparse(statement)
                assert statement.module is not None
                for alias in statement.names:
                    assert alias.asname is None, f"{alias.name} is imported under another name"
                    assert alias.name not in names, f"{alias.name} is imported twice"
                    names[alias.name] = statement.module
    return names


def _dunder_all() -> list[str]:
    for node in _face().body:
        if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["__all__"]:
            names = ast.literal_eval(node.value)
            assert isinstance(names, list)
            return names
    raise AssertionError("no literal `__all__ = [...]` in pacha_sdk/__init__.py")


# The three lists agree.


def test_type_checking_imports_are_the_lazy_table() -> None:
    assert _type_checking_imports() == _lazy_table()


def test_all_is_the_lazy_table_and_the_version_sorted() -> None:
    names = _dunder_all()
    assert names == sorted(set(names))
    assert set(names) == {*_lazy_table(), "__version__"}


def test_the_runtime_face_is_the_one_in_the_file() -> None:
    assert pacha.__all__ == _dunder_all()
    assert _lazy_table() == pacha._LAZY


# Each lazy name is what the table says.


@pytest.mark.parametrize("name", sorted(_lazy_table()))
def test_each_lazy_name_comes_from_its_module(name: str) -> None:
    module_name = _lazy_table()[name]
    module = importlib.import_module(module_name)
    value = getattr(pacha, name)
    assert value is getattr(module, name)
    assert name in getattr(module, "__all__", [name]), f"{module_name}.__all__ lacks {name}"
    if inspect.isclass(value) or inspect.isfunction(value):
        # The module itself, or a private module of the package the table names.
        assert value.__module__ == module_name or value.__module__.startswith(f"{module_name}.")


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="'pacha_sdk' has no attribute 'read_metricz'"):
        pacha.read_metricz  # type: ignore[attr-defined]  # noqa: B018
    assert not hasattr(pacha, "tracking_run")


def test_dir_lists_every_public_name() -> None:
    assert set(dir(pacha)) >= set(pacha.__all__)


# How the face is built.


def test_getattr_is_hidden_from_type_checkers() -> None:
    hidden = [
        statement.name
        for node in _face().body
        if isinstance(node, ast.If) and _is_not_type_checking(node.test)
        for statement in node.body
        if isinstance(statement, ast.FunctionDef)
    ]
    visible = [node.name for node in _face().body if isinstance(node, ast.FunctionDef)]
    assert hidden == ["__getattr__"]
    assert "__getattr__" not in visible


def test_the_module_class_is_never_swapped() -> None:
    source = FACE.read_text(encoding="utf-8")
    assert "__class__" not in source
    assert type(sys.modules["pacha_sdk"]) is type(os)


def test_importing_submodules_keeps_the_public_functions() -> None:
    code = textwrap.dedent(
        """
        import sys
        import pacha_sdk as pacha
        loaded = sorted(m for m in sys.modules if m.startswith("pacha_sdk."))
        assert loaded == ["pacha_sdk._version"], loaded
        heavy = {"pydantic", "pyarrow", "psutil", "rich", "s3fs", "gcsfs"} & set(sys.modules)
        assert not heavy, heavy
        import pacha_sdk.tracking.run, pacha_sdk.tracking.track, pacha_sdk.tracking.api
        import pacha_sdk.storage.sync, pacha_sdk.query.lineage
        for name, module in pacha._LAZY.items():
            assert getattr(pacha, name) is getattr(sys.modules[module], name), name
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# A typo fails mypy --strict.

_PROBES = {
    "typo.py": """
        import pacha_sdk as pacha

        pacha.read_metricz("0f8fad5b-d9cb-469f-a165-70867728950e")
        """,
    "wrong_type.py": """
        import pacha_sdk as pacha

        pacha.log_metric("loss", "high")
        """,
    "correct.py": """
        from __future__ import annotations

        import pacha_sdk as pacha


        def train(uri: str) -> pacha.ExperimentRun | None:
            with pacha.run({"learning_rate": 3e-4}, uri=uri) as run:
                run.log_metric("loss", 0.5, 1)
                pacha.log_metric("loss", 0.25, 2)
            try:
                return pacha.load_run(run.run_id, uri=uri)
            except (pacha.RunNotFoundError, pacha.ExtraNotInstalledError):
                return None
            except pacha.BackendNotInstalledError as error:
                print(error.extra)
                return None


        print(pacha.__version__, train("memory://probe"))
        """,
}


def _checkable_tree(root: Path) -> Path:
    """A folder where ``pacha_sdk`` is laid out as installed, by links to the source.

    An editable install is found through an import hook that mypy cannot
    follow, and ``backends/`` sits outside ``pacha_sdk/``; the links put it
    at ``pacha_sdk/backends`` as the wheel does.
    """
    site = root / "site"
    package = site / "pacha_sdk"
    package.mkdir(parents=True)
    for entry in Path(pacha.__file__).parent.iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    backends = importlib.util.find_spec("pacha_sdk.backends")
    assert backends is not None
    assert backends.submodule_search_locations
    if not (package / "backends").exists():
        (package / "backends").symlink_to(Path(backends.submodule_search_locations[0]))
    return site


@pytest.fixture(scope="module")
def mypy_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """mypy --strict on each probe: file name -> its error lines."""
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install -e '.[dev]')")
    root = tmp_path_factory.mktemp("face-probes")
    site = _checkable_tree(root)
    for name, text in _PROBES.items():
        (root / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    done = subprocess.run(
        [
            *(sys.executable, "-m", "mypy", "--strict"),
            *("--config-file", str(REPO / "pyproject.toml")),
            *("--cache-dir", str(root / "cache")),
            *("--no-error-summary", "--hide-error-context"),
            *sorted(_PROBES),
        ],
        cwd=root,
        env={**os.environ, "MYPYPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    report: dict[str, list[str]] = {name: [] for name in _PROBES}
    for line in done.stdout.splitlines():
        file, _, rest = line.partition(":")
        assert file in report, done.stdout + done.stderr
        report[file].append(rest)
    return report


def test_a_typo_of_a_public_name_fails_mypy(mypy_report: dict[str, list[str]]) -> None:
    (error,) = mypy_report["typo.py"]
    assert 'Module has no attribute "read_metricz"' in error
    assert 'maybe "read_metrics"' in error


def test_mypy_sees_the_real_signatures(mypy_report: dict[str, list[str]]) -> None:
    (error,) = mypy_report["wrong_type.py"]
    assert '"log_metric"' in error
    assert "[arg-type]" in error


def test_correct_use_of_the_face_passes_mypy(mypy_report: dict[str, list[str]]) -> None:
    assert mypy_report["correct.py"] == []
