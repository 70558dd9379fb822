"""The layout's rules (``ARCHITECTURE.md``), read from the source with :mod:`ast`.

Data flows one way: user code -> ``tracking/`` -> ``storage/`` -> ``backends/``
-> store, and back: store -> ``backends/`` -> ``storage/`` -> ``query/`` ->
``views/``, ``cli/``, ``ui/``. Every ``import`` and ``from ... import`` in
``pacha_sdk/`` and ``backends/`` is read, including imports inside
functions and under ``TYPE_CHECKING`` (a type-only import is still a
dependency on the other layer), plus ``importlib.import_module("...")``
with a literal name. The face (``pacha_sdk/__init__.py``) imports every
public name's module and is exempt.

Rules enforced (``RULES`` below, each with its reason):

- ``exceptions.py`` imports nothing of the package; ``models`` imports only
  ``exceptions`` (ARCHITECTURE.md says "nothing else of the package", but
  the models raise the SDK's errors, e.g. ``InvalidRunIdError``); ``env.py``,
  ``_names.py`` and ``_version.py`` are leaves too (only ``exceptions`` and
  ``models``).
- ``backends/`` imports only ``pacha_sdk.exceptions`` and its own modules.
- ``storage/`` never imports ``tracking/``, ``query/``, ``views/``, ``cli/``,
  ``ui/``, ``integrations/``.
- ``tracking/`` never imports ``query/``, ``views/``, ``cli/``, ``ui/``: the
  write side does not borrow the read side's pieces (issue 10, point 3).
- ``query/`` never imports ``tracking/`` (reading never needs a live run),
  nor ``views/``, ``cli/``, ``ui/``, which sit above it.
- ``views/``, ``cli/`` and ``ui/`` never import ``tracking/``.
- ``integrations/`` import only the face ``pacha_sdk``, ``pacha_sdk.exceptions``
  and each other; no other module imports the face.

Violations that exist today and are being removed sit in
``KNOWN_VIOLATIONS``; the test fails when one of them is gone, so the list
can only shrink. The same holds for modules over :data:`MAX_LINES` in
``KNOWN_OVERSIZE``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import pacha_sdk as pacha

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 400
"""Longest module allowed in ``pacha_sdk/`` and ``backends/`` (STYLE.md: about 400)."""

KNOWN_VIOLATIONS: set[tuple[str, str]] = set()
"""(importing module, imported module) pairs that break a rule today; only ever shrinks."""

KNOWN_OVERSIZE: set[str] = set()
"""Modules over :data:`MAX_LINES` today; only ever shrinks."""


@dataclass(frozen=True)
class Module:
    """One module of the installed package and where its source is."""

    name: str
    path: Path
    is_package: bool

    @property
    def relative(self) -> str:
        return self.path.relative_to(REPO).as_posix()


def _modules() -> list[Module]:
    """Every module of ``pacha_sdk``, with ``backends/`` named ``pacha_sdk.backends``."""
    found = []
    for folder, package in [("pacha_sdk", ["pacha_sdk"]), ("backends", ["pacha_sdk", "backends"])]:
        root = REPO / folder
        for path in sorted(root.rglob("*.py")):
            parts = [*package, *path.relative_to(root).with_suffix("").parts]
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            found.append(Module(name, path, is_package))
    return found


MODULES = {module.name: module for module in _modules()}


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    """The module a ``from ... import`` names, relative imports resolved."""
    if not node.level:
        return node.module or ""
    package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(module: Module) -> Iterator[str]:
    """Every module of the package that *module* imports, anywhere in its source."""
    tree = ast.parse(module.path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, node)
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                yield submodule if submodule in MODULES else source
        elif (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) in {"importlib.import_module", "import_module"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.args[0].value


def _within(name: str, *packages: str) -> bool:
    return any(name == f"pacha_sdk.{p}" or name.startswith(f"pacha_sdk.{p}.") for p in packages)


@dataclass(frozen=True)
class Rule:
    """Modules *applies_to* select may import only what *allows* accepts."""

    text: str
    applies_to: Callable[[str], bool]
    allows: Callable[[str], bool]


RULES = [
    Rule(
        "exceptions.py imports nothing of the package",
        lambda m: m == "pacha_sdk.exceptions",
        lambda i: False,
    ),
    Rule(
        "models imports only pacha_sdk.exceptions (and, as a package, its own modules)",
        lambda m: _within(m, "models"),
        lambda i: i == "pacha_sdk.exceptions" or _within(i, "models"),
    ),
    Rule(
        "env.py, _names.py and _version.py are leaves: only exceptions and models",
        lambda m: m in {"pacha_sdk.env", "pacha_sdk._names", "pacha_sdk._version"},
        lambda i: i in {"pacha_sdk.exceptions", "pacha_sdk.models"},
    ),
    Rule(
        "backends/ imports only pacha_sdk.exceptions and its own modules",
        lambda m: _within(m, "backends"),
        lambda i: i == "pacha_sdk.exceptions" or _within(i, "backends"),
    ),
    Rule(
        "storage/ never imports tracking/, query/, views/, cli/, ui/, integrations/",
        lambda m: _within(m, "storage"),
        lambda i: not _within(i, "tracking", "query", "views", "cli", "ui", "integrations"),
    ),
    Rule(
        "tracking/ never imports query/, views/, cli/, ui/ (writing never borrows the read side)",
        lambda m: _within(m, "tracking"),
        lambda i: not _within(i, "query", "views", "cli", "ui", "integrations"),
    ),
    Rule(
        "query/ never imports tracking/ (reading never needs a live run), views/, cli/, ui/",
        lambda m: _within(m, "query"),
        lambda i: not _within(i, "tracking", "views", "cli", "ui", "integrations"),
    ),
    Rule(
        "views/, cli/ and ui/ never import tracking/ (they read through query/ and models)",
        lambda m: _within(m, "views", "cli", "ui"),
        lambda i: not _within(i, "tracking", "integrations"),
    ),
    Rule(
        "integrations/ import only the face pacha_sdk, pacha_sdk.exceptions and each other",
        lambda m: _within(m, "integrations"),
        lambda i: i in {"pacha_sdk", "pacha_sdk.exceptions"} or _within(i, "integrations"),
    ),
    Rule(
        "only integrations/ import the face pacha_sdk; the rest import the defining module",
        lambda m: m != "pacha_sdk" and not _within(m, "integrations"),
        lambda i: i != "pacha_sdk",
    ),
]


def broken_rules(module: str, imported: str) -> list[str]:
    """The rules that *module* breaks by importing *imported*."""
    return [rule.text for rule in RULES if rule.applies_to(module) and not rule.allows(imported)]


def violations() -> dict[tuple[str, str], list[str]]:
    """(importing module, imported module) -> the rules that import breaks."""
    found: dict[tuple[str, str], list[str]] = {}
    for module in MODULES.values():
        if module.name == "pacha_sdk":
            continue  # the face imports every public name's module
        for imported in set(imports_of(module)):
            if imported != "pacha_sdk" and not imported.startswith("pacha_sdk."):
                continue
            if broken := broken_rules(module.name, imported):
                found[module.name, imported] = broken
    return found


def _describe(found: dict[tuple[str, str], list[str]], pairs: set[tuple[str, str]]) -> str:
    return "\n".join(
        f"{importer} imports {imported}: {'; '.join(found.get((importer, imported), []))}"
        for importer, imported in sorted(pairs)
    )


def test_imports_follow_the_layers() -> None:
    found = violations()
    new = set(found) - KNOWN_VIOLATIONS
    assert not new, "import rules broken (ARCHITECTURE.md):\n" + _describe(found, new)


def test_known_violations_still_exist() -> None:
    gone = KNOWN_VIOLATIONS - set(violations())
    assert not gone, f"fixed: remove from KNOWN_VIOLATIONS: {sorted(gone)}"


def test_the_rules_see_every_kind_of_import(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import pacha_sdk.env\n"
        "from pacha_sdk.storage import layout\n"
        "from . import _ranks\n"
        "from ..storage.schema import METRIC_SCHEMA\n"
        "if TYPE_CHECKING:\n"
        "    from pacha_sdk.models import ExperimentRun\n"
        "def later() -> None:\n"
        "    from pacha_sdk.query.read import load_run\n"
        "    importlib.import_module('pacha_sdk.views.charts')\n",
        encoding="utf-8",
    )
    found = set(imports_of(Module("pacha_sdk.tracking.probe", source, is_package=False)))
    assert found >= {
        "pacha_sdk.env",
        "pacha_sdk.storage.layout",
        "pacha_sdk.tracking._ranks",
        "pacha_sdk.storage.schema",
        "pacha_sdk.models",
        "pacha_sdk.query.read",
        "pacha_sdk.views.charts",
    }


@pytest.mark.parametrize(
    ("module", "imported"),
    [
        ("pacha_sdk.exceptions", "pacha_sdk.models"),
        ("pacha_sdk.models", "pacha_sdk.storage.layout"),
        ("pacha_sdk.backends.s3", "pacha_sdk.storage.layout"),
        ("pacha_sdk.storage.writer", "pacha_sdk.tracking.run"),
        ("pacha_sdk.tracking.run", "pacha_sdk.query.read"),
        ("pacha_sdk.query.read", "pacha_sdk.tracking._ranks"),
        ("pacha_sdk.views.report", "pacha_sdk.tracking.api"),
        ("pacha_sdk.ui.server", "pacha_sdk.tracking.run"),
        ("pacha_sdk.integrations.keras", "pacha_sdk.tracking.run"),
        ("pacha_sdk.storage.records", "pacha_sdk"),
    ],
)
def test_a_rule_refuses(module: str, imported: str) -> None:
    assert broken_rules(module, imported)


@pytest.mark.parametrize(
    ("module", "imported"),
    [
        ("pacha_sdk.models", "pacha_sdk.exceptions"),
        ("pacha_sdk.backends.s3", "pacha_sdk.backends._bucket"),
        ("pacha_sdk.tracking.run", "pacha_sdk.storage.writer"),
        ("pacha_sdk.query.read", "pacha_sdk.storage.layout"),
        ("pacha_sdk.cli.runs", "pacha_sdk.query.read"),
        ("pacha_sdk.integrations.keras", "pacha_sdk"),
    ],
)
def test_a_rule_allows(module: str, imported: str) -> None:
    assert broken_rules(module, imported) == []


# Names.


def _submodules(package: Module) -> set[str]:
    prefix = f"{package.name}."
    return {
        name.removeprefix(prefix)
        for name in MODULES
        if name.startswith(prefix) and "." not in name.removeprefix(prefix)
    }


def _exported(package: Module) -> list[str]:
    for node in ast.parse(package.path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if [ast.unparse(t) for t in targets] == ["__all__"] and node.value is not None:
                names = ast.literal_eval(node.value)
                assert isinstance(names, list)
                return names
    return []


def test_no_module_is_named_like_a_public_name() -> None:
    clashes = sorted(
        f"pacha_sdk.{name} (pacha.{name})"
        for name in pacha.__all__
        if f"pacha_sdk.{name}" in MODULES or (REPO / "pacha_sdk" / name).exists()
    )
    assert not clashes, f"a submodule would shadow a public name: {clashes}"


def test_no_package_exports_the_name_of_its_submodule() -> None:
    clashes = sorted(
        f"{package.name}.{name}"
        for package in MODULES.values()
        if package.is_package
        for name in set(_exported(package)) & _submodules(package)
    )
    assert not clashes, f"exported names equal to a submodule of the same package: {clashes}"


def test_the_face_is_checked_for_clashes_like_any_package() -> None:
    face = MODULES["pacha_sdk"]
    assert _exported(face) == pacha.__all__
    assert {"tracking", "storage", "query", "views", "cli", "backends"} <= _submodules(face)


# Size.


def _oversize() -> dict[str, int]:
    lengths = {m.relative: len(m.path.read_text(encoding="utf-8").splitlines()) for m in _modules()}
    return {path: lines for path, lines in sorted(lengths.items()) if lines > MAX_LINES}


def test_no_module_is_over_the_line_limit() -> None:
    new = {path: lines for path, lines in _oversize().items() if path not in KNOWN_OVERSIZE}
    assert not new, f"modules over {MAX_LINES} lines (split them by concept): {new}"


def test_known_oversize_modules_are_still_over() -> None:
    gone = KNOWN_OVERSIZE - set(_oversize())
    assert not gone, f"now short enough: remove from KNOWN_OVERSIZE: {sorted(gone)}"
