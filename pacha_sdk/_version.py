"""The pacha-sdk version: recorded in every run (``extra.sdk_version``) and read by the build.

A constant rather than an ``importlib.metadata`` lookup, which would cost
about 15 ms of every ``import pacha_sdk``; ``pyproject.toml`` reads it
(``[tool.setuptools.dynamic]``), so there is one place to bump.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
