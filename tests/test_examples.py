"""Every example runs after the README's first command, or says what it needs.

The README's table of examples names, for each file in ``examples/``, what
it needs beyond ``pip install -e .``. Each one is run here as a user would
run it, in a fresh folder: with only pacha-sdk's own dependencies importable
(the optional packages hidden, as in a fresh virtual environment), an
example that needs nothing more completes, and one that needs an extra
exits with one line naming the command that installs it, never a traceback.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.py"))
OPTIONAL = ("numpy", "polars", "duckdb", "pandas", "matplotlib", "torch", "s3fs", "gcsfs")
"""Packages the test extra installs but ``pip install -e .`` does not."""

_HIDE = """
import runpy, sys
for name in {optional!r}:
    sys.modules[name] = None  # import raises ImportError, as if not installed
sys.argv = [{path!r}]
runpy.run_path({path!r}, run_name="__main__")
"""


def _needs() -> dict[str, str]:
    """``examples/x.py`` -> the README's "needs" cell for it."""
    readme = (REPO / "README.md").read_text()
    rows = re.findall(r"^\| `(examples/[\w.]+\.py)` \| ([^|]+) \|", readme, re.MULTILINE)
    return {path: needs.strip() for path, needs in rows}


def _run(path: Path, cwd: Path, *, hide_optional: bool) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable]
    argv += (
        ["-c", _HIDE.format(optional=OPTIONAL, path=str(path))] if hide_optional else [str(path)]
    )
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def test_the_readme_says_what_every_example_needs() -> None:
    assert sorted(_needs()) == [f"examples/{path.name}" for path in EXAMPLES]


@pytest.mark.subprocess
@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_each_example_runs_or_says_what_to_install(path: Path, tmp_path: Path) -> None:
    needs = _needs()[f"examples/{path.name}"]
    (tmp_path / "bare").mkdir()
    bare = _run(path, tmp_path / "bare", hide_optional=True)
    assert "Traceback" not in bare.stderr, bare.stderr
    if needs == "nothing more":
        assert bare.returncode == 0, bare.stderr
    else:
        install = re.search(r"`(pip install [^`]+)`", needs)
        assert install is not None, needs
        assert bare.returncode == 1
        assert bare.stderr.count("\n") == 1, bare.stderr
        assert install.group(1) in bare.stderr

    (tmp_path / "full").mkdir()
    full = _run(path, tmp_path / "full", hide_optional=False)  # with everything installed
    assert full.returncode == 0, full.stderr
    assert "completed" in full.stdout
