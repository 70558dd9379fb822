"""Which code a run ran: the git commit and whether tracked files had changes.

One ``git status --porcelain=v2 --branch --untracked-files=no`` call gives
both: the ``# branch.oid`` header is ``HEAD`` and any entry line is a
modified, staged, deleted or conflicted tracked file. Untracked files do not
make a tree dirty (data, outputs and caches usually are untracked), and
leaving them out also keeps the call fast in big folders.

The repository is the one holding the working directory, else the one
holding the ``__main__`` script (a script run from elsewhere). No git on
``PATH``, no repository, a slow or failing git: the commit stays unknown and
the run goes on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import NamedTuple

__all__ = ["GIT_TIMEOUT", "GitState", "capture_git", "git_state"]

GIT_TIMEOUT = 2.0
"""Seconds one ``git status`` may take before the run starts without git data."""

_HEAD_PREFIX = "# branch.oid "


class GitState(NamedTuple):
    """``HEAD`` of a repository (``None`` before the first commit) and its dirty flag."""

    commit: str | None
    dirty: bool


def git_state(folder: str, timeout: float = GIT_TIMEOUT) -> GitState | None:
    """The :class:`GitState` of the repository holding *folder*, or ``None``.

    ``None`` when *folder* is in no repository, git is not installed, or git
    fails or takes longer than *timeout* seconds.
    """
    try:
        result = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    commit: str | None = None
    dirty = False
    for line in result.stdout.splitlines():
        if line.startswith(_HEAD_PREFIX):
            oid = line[len(_HEAD_PREFIX) :].strip()
            commit = None if oid == "(initial)" else oid
        elif line and not line.startswith("#"):
            dirty = True
    return GitState(commit, dirty)


def _script_folder() -> str | None:
    """The folder of the ``__main__`` script, if the program is one."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if not isinstance(path, str) or not path:
        return None
    return os.path.dirname(os.path.abspath(path))


def capture_git() -> GitState | None:
    """The git state of the working directory's repository, else of the script's."""
    try:
        cwd: str | None = os.getcwd()
    except OSError:  # the working directory was removed
        cwd = None
    script = _script_folder()
    for folder in dict.fromkeys(f for f in (cwd, script) if f is not None):
        state = git_state(folder)
        if state is not None:
            return state
    return None
