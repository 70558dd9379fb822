"""Whether a ``run.json`` loads as pacha 0.2.5's ``ExperimentRun`` through serde_json.

:func:`serde_problem` applies, in Python, the rules serde_json and pacha's
derived ``Deserialize`` impls apply to the types of the seed
(``shared/seed/experiment.rs``) and of pacha's ``recipe`` module: strict JSON
(no NaN or Infinity), a nesting limit of 128, ``usize`` fields (``u64`` here)
that take only non-negative integers without a fraction or exponent, ``u32``
version numbers, ``Option`` fields that take ``null``, and the untagged
``HyperparamValue`` enum (``Float(f64)`` first, so every JSON number loads,
as a float; ``null`` and objects match no variant).

:func:`real_serde` runs the same check with serde itself when a Rust
toolchain and the Debian-packaged crates are on the machine
(``apt-get install librust-serde-json-dev librust-serde-derive-dev
librust-chrono-dev librust-uuid-dev``): ``tests/serde_check`` is built once
into the user cache and the tests that cross-check this module skip
otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

__all__ = ["real_serde", "serde_problem"]

RECURSION_LIMIT = 128
"""serde_json's default nesting limit: a document nested this deep (arrays and objects) fails."""

U32_MAX = 2**32 - 1
USIZE_MAX = 2**64 - 1
_RFC3339 = re.compile(
    r"^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$"
)  # chrono's DateTime<Utc> parser


class _Refused(Exception):
    pass


def _strict_loads(text: str) -> Any:
    def refuse(token: str) -> None:
        raise _Refused(f"{token} is not JSON")

    def parse_int(digits: str) -> int | float:
        return _F(digits) if digits == "-0" else int(digits)  # serde_json: -0 is a float

    return json.loads(text, parse_constant=refuse, parse_int=parse_int, parse_float=_F)


class _F(float):
    """A JSON number written with a fraction or an exponent (serde: a float, never an int)."""

    def __new__(cls, text: str) -> _F:
        value = float.__new__(cls, text)
        if value in (float("inf"), float("-inf")):
            raise _Refused(f"number out of range: {text}")
        return value


def _depth(value: Any) -> int:
    """Nesting depth of *value*; a string with a lone surrogate is refused (not Unicode)."""
    if isinstance(value, dict):
        for key in value:
            _unicode(key)
        return 1 + max((_depth(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    if isinstance(value, str):
        _unicode(value)
    return 0


def _unicode(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Refused(f"lone surrogate in {text!r}") from None


def _where(path: str, problem: str) -> _Refused:
    return _Refused(f"{path}: {problem}")


def _number(value: Any, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _where(path, f"expected f64, got {value!r}")


def _unsigned(value: Any, path: str, maximum: int) -> None:
    if isinstance(value, (bool, float)) or not isinstance(value, int):
        raise _where(path, f"expected an unsigned integer, got {value!r}")
    if not 0 <= value <= maximum:
        raise _where(path, f"{value} out of range (0..={maximum})")


def _string(value: Any, path: str) -> None:
    if not isinstance(value, str):
        raise _where(path, f"expected a string, got {value!r}")


def _optional(value: Any, path: str, check: Any, *args: Any) -> None:
    if value is not None:
        check(value, path, *args)


def _hyperparam_value(value: Any, path: str) -> None:
    if isinstance(value, list):
        for index, item in enumerate(value):
            _hyperparam_value(item, f"{path}[{index}]")
    elif value is None or isinstance(value, dict):
        raise _where(path, "data did not match any variant of untagged enum HyperparamValue")


def _hyperparameters(value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise _where(path, "expected struct Hyperparameters")
    for name in ("learning_rate", "batch_size", "epochs"):
        if name not in value:
            raise _where(path, f"missing field `{name}`")
    _number(value["learning_rate"], f"{path}.learning_rate")
    _unsigned(value["batch_size"], f"{path}.batch_size", USIZE_MAX)
    _unsigned(value["epochs"], f"{path}.epochs", USIZE_MAX)
    if "weight_decay" in value:
        _number(value["weight_decay"], f"{path}.weight_decay")
    _optional(value.get("max_grad_norm"), f"{path}.max_grad_norm", _number)
    _optional(value.get("warmup_steps"), f"{path}.warmup_steps", _unsigned, USIZE_MAX)
    custom = value.get("custom", {})
    if not isinstance(custom, dict):
        raise _where(f"{path}.custom", "expected a map")
    for key, item in custom.items():
        _hyperparam_value(item, f"{path}.custom[{key!r}]")


def _recipe(value: Any, path: str) -> None:
    if not isinstance(value, dict) or "name" not in value or "version" not in value:
        raise _where(path, "expected struct RecipeReference {name, version}")
    _string(value["name"], f"{path}.name")
    version = value["version"]
    if not isinstance(version, dict):
        raise _where(f"{path}.version", "expected struct RecipeVersion")
    for part in ("major", "minor", "patch"):
        if part not in version:
            raise _where(f"{path}.version", f"missing field `{part}`")
        _unsigned(version[part], f"{path}.version.{part}", U32_MAX)


def _timestamp(value: Any, path: str) -> None:
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise _where(path, f"expected an RFC 3339 timestamp, got {value!r}")


def _run(document: Any) -> None:
    if not isinstance(document, dict):
        raise _Refused("expected struct ExperimentRun")
    for name in ("run_id", "hyperparameters", "started_at", "status", "hardware"):
        if name not in document:
            raise _Refused(f"missing field `{name}`")
    try:
        uuid.UUID(document["run_id"])
    except (TypeError, ValueError, AttributeError):
        raise _where("run_id", f"not a UUID: {document['run_id']!r}") from None
    _optional(document.get("recipe"), "recipe", _recipe)
    _hyperparameters(document["hyperparameters"], "hyperparameters")
    _timestamp(document["started_at"], "started_at")
    _optional(document.get("finished_at"), "finished_at", _timestamp)
    if document["status"] not in ("pending", "running", "completed", "failed", "cancelled"):
        raise _where("status", f"unknown variant {document['status']!r}")
    hardware = document["hardware"]
    if not isinstance(hardware, dict):
        raise _where("hardware", "expected struct HardwareInfo")
    for name in ("cpu_model", "gpu_model"):
        _optional(hardware.get(name), f"hardware.{name}", _string)
    for name in ("cpu_cores", "ram_gb", "gpu_count"):
        _optional(hardware.get(name), f"hardware.{name}", _unsigned, USIZE_MAX)
    for index, metric in enumerate(document.get("metrics") or []):
        where = f"metrics[{index}]"
        _string(metric.get("name"), f"{where}.name")
        _number(metric.get("value"), f"{where}.value")
        _unsigned(metric.get("step"), f"{where}.step", USIZE_MAX)
        _timestamp(metric.get("timestamp"), f"{where}.timestamp")
    for index, artifact in enumerate(document.get("artifacts") or []):
        for name in ("artifact_type", "name", "content_hash"):
            _string(artifact.get(name), f"artifacts[{index}].{name}")
    for name in ("log_uri", "git_commit", "error_message"):
        _optional(document.get(name), name, _string)
    if not isinstance(document.get("git_dirty", False), bool):
        raise _where("git_dirty", "expected a bool")
    if not isinstance(document.get("extra", {}), dict):
        raise _where("extra", "expected a map")


def serde_problem(text: str) -> str | None:
    """Why pacha 0.2.5 (serde_json) would refuse *text* as an ``ExperimentRun``; None if not."""
    try:
        document = _strict_loads(text)
        if _depth(document) >= RECURSION_LIMIT:
            raise _Refused("recursion limit exceeded")
        _run(document)
    except _Refused as refused:
        return str(refused)
    except ValueError as error:
        return f"not JSON: {error}"
    return None


_CHECKER = Path(__file__).parent / "serde_check"
_REGISTRY = Path("/usr/share/cargo/registry")


def _built_checker() -> Path | None:
    """The serde_check binary, built once into the user cache; None without a Rust toolchain."""
    cargo = shutil.which("cargo") or (
        str(Path.home() / ".cargo/bin/cargo")
        if (Path.home() / ".cargo/bin/cargo").exists()
        else None
    )
    if cargo is None or not any(_REGISTRY.glob("serde_json-1.*")):
        return None
    target = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pacha-serde-check"
    binary = target / "release" / "serde_check"
    if not binary.exists():
        result = subprocess.run(
            [cargo, "build", "--release", "--offline", "--quiet", "--target-dir", str(target)],
            cwd=_CHECKER,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        if result.returncode != 0 or not binary.exists():
            return None
    return binary


def real_serde(texts: list[str]) -> list[str | None] | None:
    """serde's verdict on each of *texts* (None: loads), or None if serde is not available here."""
    binary = _built_checker()
    if binary is None:
        return None
    result = subprocess.run(
        [str(binary)],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    verdicts: list[str | None] = json.loads(result.stdout)
    return verdicts
