"""What a run ran with: Python, platform, command line, key package versions.

:func:`capture_context_later` gathers, in the background when a run starts,
everything needed to reproduce it: :class:`~pacha_sdk.models.HardwareInfo`, the git commit
and dirty flag, and ``extra.environment``::

    {"python": "3.11.7", "implementation": "CPython",
     "platform": "Linux-6.1.0-x86_64-with-glibc2.36", "hostname": "gpu-7",
     "argv": ["train.py", "--lr", "3e-4"],
     "packages": {"numpy": "2.4.6", "torch": "2.5.1", ...},
     "env": {"CUDA_VISIBLE_DEVICES": "0,1"}}

The command line is recorded with credentials as ``***`` (see
:mod:`pacha_sdk.tracking._redact`). Package versions come from installed
metadata (:mod:`importlib.metadata`), so nothing is imported and a missing
package is simply absent. Environment
variables are recorded only when named in ``env_vars``, and names that look
like secrets are refused with a warning: a run record is meant to be shared.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import sys
import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pacha_sdk.tracking._git import capture_git
from pacha_sdk.tracking._hardware import capture_hardware
from pacha_sdk.tracking._redact import Secrets

if TYPE_CHECKING:
    from pacha_sdk.models import ExperimentRun, HardwareInfo
    from pacha_sdk.tracking._git import GitState

__all__ = [
    "KEY_PACKAGES",
    "RunContext",
    "capture_context",
    "capture_context_later",
    "check_env_vars",
    "describe_environment",
    "gather_context",
    "looks_secret",
]

KEY_PACKAGES = (
    "pacha-sdk",
    "torch",
    "torchvision",
    "numpy",
    "pandas",
    "polars",
    "pyarrow",
    "scipy",
    "scikit-learn",
    "jax",
    "jaxlib",
    "flax",
    "tensorflow",
    "keras",
    "transformers",
    "tokenizers",
    "datasets",
    "accelerate",
    "peft",
    "deepspeed",
    "lightning",
    "pytorch-lightning",
    "xgboost",
    "lightgbm",
    "safetensors",
)
"""Distributions whose versions go into ``extra.environment.packages`` when installed."""

_SECRET = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)


def looks_secret(name: str) -> bool:
    """Whether an environment variable *name* looks like it holds a secret."""
    return _SECRET.search(name) is not None


def check_env_vars(names: Iterable[str] | None) -> tuple[str, ...]:
    """The names to record from ``env_vars``, minus secret-looking ones (with a warning).

    Raises :class:`TypeError` for a bare string or a name that is not a
    non-empty ``str``.
    """
    if names is None:
        return ()
    if isinstance(names, str):
        raise TypeError(f"env_vars must be a list of variable names, got the string {names!r}")
    kept: list[str] = []
    for name in names:
        if not isinstance(name, str) or not name:
            raise TypeError(f"env_vars names must be non-empty str, got {name!r}")
        if looks_secret(name):
            warnings.warn(
                f"pacha: not recording environment variable {name!r}: its name looks like "
                "a secret (KEY, SECRET, TOKEN, PASSWORD, CREDENTIAL)",
                UserWarning,
                stacklevel=5,  # past the option checks and run/Run/track: the user's line
            )
        elif name not in kept:
            kept.append(name)
    return tuple(kept)


def package_versions(names: Iterable[str] = KEY_PACKAGES) -> dict[str, str]:
    """Installed versions of the distributions *names*, without importing them."""
    import importlib.metadata  # here, not at import: it costs ~10 ms

    versions: dict[str, str] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except (importlib.metadata.PackageNotFoundError, ValueError, OSError):
            continue
    return versions


def describe_environment(
    env_vars: Iterable[str] = (), *, secrets: Secrets | None = None
) -> dict[str, Any]:
    """The ``extra.environment`` dict; ``env`` maps each of *env_vars* to its value or None.

    ``argv`` is the command line with the credentials *secrets* found in it
    (by default those of ``sys.argv`` alone) as ``***``.
    """
    import socket

    if secrets is None:
        secrets = Secrets(sys.argv, storage_options=None)
    environment: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "argv": secrets.argv(),
        "packages": package_versions(),
    }
    if env_vars:
        environment["env"] = {name: os.environ.get(name) for name in env_vars}
    return environment


@dataclass
class RunContext:
    """What :func:`gather_context` found: each part ``None`` where it could not be captured."""

    hardware: HardwareInfo | None = None
    git: GitState | None = None
    environment: dict[str, Any] | None = None

    def apply(self, record: ExperimentRun) -> None:
        """Fill *record*'s hardware, git fields and ``extra.environment`` with what was found."""
        if self.hardware is not None:
            record.hardware = self.hardware
        if self.git is not None:
            record.git_commit = self.git.commit
            record.git_dirty = self.git.dirty
        if self.environment is not None:
            record.extra["environment"] = self.environment


def gather_context(env_vars: Iterable[str] = (), secrets: Secrets | None = None) -> RunContext:
    """The run's hardware, git state and environment; never raises.

    *secrets* are the run's credentials, kept out of the recorded command line.

    Each part is independent: one that fails is left unknown and the others
    are still captured.
    """
    context = RunContext()
    with contextlib.suppress(Exception):  # the run starts whatever the OS answers
        context.hardware = capture_hardware()
    with contextlib.suppress(Exception):
        context.git = capture_git()
    with contextlib.suppress(Exception):
        context.environment = describe_environment(env_vars, secrets=secrets)
    return context


def capture_context(
    record: ExperimentRun, *, env_vars: Iterable[str] = (), secrets: Secrets | None = None
) -> None:
    """Fill *record*'s hardware, git fields and ``extra.environment`` now; never raises."""
    gather_context(env_vars, secrets).apply(record)


def capture_context_later(
    deliver: Callable[[RunContext], None],
    *,
    env_vars: Iterable[str] = (),
    secrets: Secrets | None = None,
) -> threading.Thread:
    """Gather the context in a daemon thread (started) and hand it to *deliver* there.

    ``pacha.run()`` returns without waiting for ``git`` and the hardware
    probes (tens of milliseconds, more on a loaded machine); the record gets
    the context at the first flush after it arrives, and a run's end waits
    for the thread (within its ``close_timeout``) before its final write.
    *secrets* are the run's credentials, kept out of the recorded command line.
    """
    names = tuple(env_vars)
    thread = threading.Thread(
        target=lambda: deliver(gather_context(names, secrets)), name="pacha-context", daemon=True
    )
    thread.start()
    return thread
