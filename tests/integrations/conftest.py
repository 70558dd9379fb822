"""Framework tests: tiny models built from code, a few steps on the CPU, nothing downloaded.

Keras runs on the torch backend and Hugging Face never reaches the hub; both
are set before any framework is imported, here and in every child process.
"""

from __future__ import annotations

import os

import pytest

FRAMEWORK_ENVIRONMENT = {
    "KERAS_BACKEND": "torch",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "OMP_NUM_THREADS": "1",
}

for _name, _value in FRAMEWORK_ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)


@pytest.fixture(autouse=True)
def _framework_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same settings for every test, whatever the shared conftest cleans."""
    for name, value in FRAMEWORK_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
