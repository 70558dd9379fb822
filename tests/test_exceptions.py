"""One error tree: drawn in ``pacha_sdk/exceptions.py``, and every error class lives there.

The drawing in the module's docstring is what users read; these tests parse
it and compare it with the classes, so the picture cannot drift from the
code, and they refuse an exception class defined anywhere else in the
package or the backends.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import re
from pathlib import Path

import pytest

import pacha_sdk as pacha
from pacha_sdk import exceptions

REPO = Path(__file__).resolve().parents[1]
_ENTRY = re.compile(r"^(?P<indent>[│├└─ ]*)(?P<name>[A-Z]\w+)(?: \((?P<builtin>\w+)\))?")


def _drawn_tree() -> list[tuple[str, str | None, str | None]]:
    """``(class, parent, builtin)`` for each line of the docstring's drawing."""
    doc = exceptions.__doc__ or ""
    block = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    lines = [line[4:] for line in block.splitlines()]
    entries: list[tuple[str, str | None, str | None]] = []
    parents: dict[int, str] = {}
    for line in lines:
        match = _ENTRY.match(line)
        assert match, line
        depth = len(match["indent"]) // 4
        parents[depth] = match["name"]
        entries.append((match["name"], parents.get(depth - 1) if depth else None, match["builtin"]))
    return entries


def _error_classes() -> dict[str, type[BaseException]]:
    return {
        name: value
        for name, value in vars(exceptions).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == exceptions.__name__
        and value.__name__ == name
    }


def test_the_drawing_shows_every_class_once() -> None:
    drawn = [name for name, _, _ in _drawn_tree()]
    assert len(drawn) == len(set(drawn))
    assert set(drawn) == set(_error_classes())


def test_the_drawing_shows_each_class_under_its_parent_and_builtin() -> None:
    classes = _error_classes()
    for name, parent, builtin in _drawn_tree():
        cls = classes[name]
        if parent is None:
            assert cls.__bases__ == (Exception,), name
            continue
        assert cls.__bases__[0] is classes[parent], name
        extra_bases = [base.__name__ for base in cls.__bases__[1:]]
        assert extra_bases == ([builtin] if builtin else []), name
        if builtin:
            assert getattr(builtins, builtin) in cls.__bases__


def test_every_error_is_exported_from_the_package() -> None:
    assert set(exceptions.__all__) <= set(pacha.__all__)
    assert set(_error_classes()) <= set(exceptions.__all__)
    for name in exceptions.__all__:
        assert getattr(pacha, name) is getattr(exceptions, name)


def test_backend_not_installed_is_the_extra_error() -> None:
    assert pacha.BackendNotInstalledError is pacha.ExtraNotInstalledError
    assert issubclass(pacha.ExtraNotInstalledError, ImportError)
    error = pacha.ExtraNotInstalledError("the s3:// backend", extra="s3", scheme="s3")
    assert str(error) == "the s3:// backend is not installed: pip install 'pacha-sdk[s3]'"
    assert (error.extra, error.scheme) == ("s3", "s3")
    with pytest.raises(pacha.BackendNotInstalledError):
        raise pacha.ExtraNotInstalledError("PNG charts", package="matplotlib", extra="plot")


def test_an_error_without_an_extra_says_what_failed() -> None:
    error = pacha.ExtraNotInstalledError(
        "the my:// backend", extra=None, reason="cannot import 'my_store:Backend'"
    )
    assert str(error) == "the my:// backend is not installed: cannot import 'my_store:Backend'"
    assert error.extra is None


def _exception_bases() -> set[str]:
    names = {name for name, value in vars(builtins).items() if inspect.isclass(value)}
    names = {name for name in names if issubclass(getattr(builtins, name), BaseException)}
    return names | set(_error_classes()) | {"BackendNotInstalledError"}


def test_no_error_class_is_defined_outside_exceptions_py() -> None:
    bases = _exception_bases()
    outside = []
    for path in sorted([*(REPO / "pacha_sdk").rglob("*.py"), *(REPO / "backends").rglob("*.py")]):
        if path == REPO / "pacha_sdk" / "exceptions.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            names = {ast.unparse(base).rsplit(".", 1)[-1] for base in node.bases}
            if names & bases or node.name.endswith(("Error", "Exception")):
                outside.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}")
    assert outside == [], "error classes belong in pacha_sdk/exceptions.py"
