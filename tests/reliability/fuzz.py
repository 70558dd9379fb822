"""Fuzz suite: every odd input is either stored faithfully or refused with a clear error.

Hypothesis draws metric names (Unicode, very long, slashes, control
characters), values (numpy scalars, 0-d arrays, bools, ``Decimal``, huge
ints, NaN, infinities), steps, hyperparameters (nested, non-JSON, NaN), run
names and tags, artifact names with path tricks, and ``run.json`` files that
are truncated, empty, wrong-typed or from a future version. For each input
the SDK must either

* store it faithfully: it reads back equal to what the README's conversion
  rules promise (bit for bit for metric values; NaN as NaN), or
* raise :class:`~pacha_sdk.PachaError`, :class:`TypeError` or
  :class:`ValueError` whose message names the offending metric, key or value,

and in every case the writer thread stays alive with no error
(``run.flush()`` succeeds, ``run.last_error is None``), the run completes, and
the store still reads (``list_runs`` without warnings, ``read_metrics``).

Run as a script for the figures table::

    python -m tests.reliability.fuzz --examples 500
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import json
import math
import operator
import os
import struct
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pacha_sdk as pacha
from tests.strategies import hparam_values

REFUSALS = (pacha.PachaError, TypeError, ValueError)
"""What a refusal may raise."""
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
NAMED = pacha.Hyperparameters.NAMED


class Reject(Exception):
    """The oracle says the SDK must refuse this input."""


@dataclass
class Tally:
    """Figures of one fuzz target."""

    tried: int = 0
    accepted: int = 0
    rejected: int = 0
    failures: int = 0
    failure: str = ""
    """The first failure's message (the falsifying example, once shrunk)."""

    def count(self, *, accepted: bool) -> None:
        """Count one input, accepted or rejected."""
        self.tried += 1
        if accepted:
            self.accepted += 1
        else:
            self.rejected += 1


@contextlib.contextmanager
def fresh_store() -> Iterator[str]:
    """A new, empty local store, removed afterwards (bounded disk use over many examples).

    Local rather than ``memory://``: files on disk are what users have, and
    pyarrow 26 reading through fsspec's memory filesystem can abort the
    process at exit ("terminate called without an active exception").
    """
    with tempfile.TemporaryDirectory(prefix="pacha-fuzz-") as folder:
        yield os.path.join(folder, "store")


def new_run(uri: str, hparams: Any = None, **options: Any) -> pacha.Run:
    """A run with short flushes and no system metrics (only the fuzzed points are stored)."""
    return pacha.run(hparams, uri=uri, flush_interval=0.05, system_metrics=False, **options)


def finish_checked(run: pacha.Run) -> None:
    """The writer is alive, stored everything, saw no error; the run completes; the store reads."""
    assert run.flush(timeout=30), "the writer did not store every accepted point"
    assert run.last_error is None, f"the writer saw {run.last_error!r}"
    run.complete()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        listed = pacha.list_runs(uri=run.uri)
    assert [r.run_id for r in listed] == [run.run_id]
    assert listed[0].status is pacha.RunStatus.COMPLETED


def assert_names_it(error: BaseException, *culprits: object) -> None:
    """A refusal is of an allowed type and its message shows one of *culprits*."""
    assert isinstance(error, REFUSALS), f"refused with {type(error).__name__}: {error}"
    message = str(error)
    shown = [repr(c)[:20] for c in culprits] + [str(c)[:20] for c in culprits if isinstance(c, str)]
    assert any(part in message for part in shown), f"{message!r} names none of {culprits!r}"


def _text_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Metric names, values and steps.

surrogates = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1)
metric_names: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(["loss", "acc"]),
    st.text(max_size=12),
    st.text(st.characters(max_codepoint=0x1F), min_size=1, max_size=4),
    st.lists(
        st.sampled_from(["a", "/", "\\", "..", ".", " ", "é", "\x00"]), min_size=1, max_size=8
    ).map("".join),
    st.integers(1_000, 20_000).map(lambda n: "m" * n),
    surrogates.map(lambda s: "x" + s[:2]),
    st.none(),
    st.integers(),
    st.binary(max_size=3),
    st.tuples(st.text(max_size=2)),
)
"""Metric names: Unicode, control characters, path-like, very long, lone surrogates, non-str."""

metric_values: st.SearchStrategy[Any] = st.one_of(
    st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308]),
    st.booleans(),
    st.integers(),
    st.integers(2**53 - 3, 2**53 + 3),
    st.integers(min_value=2**1000, max_value=2**1100),
    st.floats(width=16).map(np.float16),
    st.floats(width=32).map(np.float32),
    st.floats().map(np.float64),
    st.floats().map(np.longdouble),
    st.floats().map(np.array),
    st.integers(I64_MIN, I64_MAX).map(np.int64),
    st.integers(0, 2**64 - 1).map(np.uint64),
    st.integers(I64_MIN, I64_MAX).map(np.array),
    st.booleans().map(np.bool_),
    st.decimals(),
    st.fractions(),
    st.sampled_from([Decimal("sNaN"), Decimal("1e400"), Decimal("-0"), Fraction(10**400, 3)]),
    st.complex_numbers(),
    st.complex_numbers().map(np.complex128),
    st.text(max_size=3),
    st.none(),
    st.lists(st.floats(), max_size=2),
    st.lists(st.floats(), min_size=1, max_size=2).map(np.array),
)
"""Metric values: what a training loop hands over, and what it should not."""

metric_steps: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.integers(-3, 40),
    st.integers(I64_MAX - 2, I64_MAX + 2),
    st.integers(0, I64_MAX).map(np.int64),
    st.integers(0, 255).map(np.uint8),
    st.integers(2**63 - 1, 2**64 - 1).map(np.uint64),
    st.booleans(),
    st.booleans().map(np.bool_),
    st.floats(),
    st.text(max_size=2),
)


def expected_value(value: Any) -> float:
    """The float64 the README promises for *value*; :class:`Reject` if it must be refused."""
    if isinstance(value, (bool, np.bool_)):
        return 1.0 if value else 0.0
    if isinstance(value, np.ndarray):
        if value.ndim != 0:
            raise Reject
        return expected_value(value[()])
    if isinstance(value, np.longdouble):
        as_float = float(value)
        if math.isinf(as_float) and not np.isinf(value):
            raise Reject
        return as_float
    if isinstance(value, np.generic):
        return expected_value(value.item())
    if isinstance(value, int):
        try:
            as_float = float(value)
        except OverflowError:
            raise Reject from None
        if as_float != value:
            raise Reject
        return as_float
    if isinstance(value, float):
        return value
    if isinstance(value, (Decimal, Fraction)):
        try:
            as_float = float(value)
        except (ValueError, OverflowError, ArithmeticError):
            raise Reject from None
        if math.isinf(as_float) and not (isinstance(value, Decimal) and value.is_infinite()):
            raise Reject
        return as_float
    raise Reject


def expected_step(step: Any, last: int) -> int:
    """The step the README promises; :class:`Reject` if it must be refused."""
    if step is None:
        if last + 1 > I64_MAX:  # the automatic step after the largest int64 does not fit
            raise Reject
        return last + 1
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, (int, np.integer)):
        raise Reject
    as_int = operator.index(step)
    if not 0 <= as_int <= I64_MAX:
        raise Reject
    return as_int


def _name_ok(name: Any) -> bool:
    return isinstance(name, str) and bool(name) and _text_ok(name)


Point = tuple[str, int, float]


def _bits(value: float) -> bytes:
    return b"nan" if math.isnan(value) else struct.pack("<d", value)


def _point_key(point: Point) -> tuple[str, int, bytes]:
    return (point[0], point[1], _bits(point[2]))


def refusal_of(call: Callable[[], object]) -> BaseException | None:
    """The error *call* refused its input with, or ``None`` if it accepted it."""
    try:
        call()
    except REFUSALS as error:
        return error
    return None


def _judge(
    call: tuple[Any, ...], expected: list[Point] | None, refusal: BaseException | None
) -> list[Point] | None:
    """Check a call's outcome against the oracle; return the points stored by it."""
    if refusal is not None:
        assert expected is None, f"refused {call!r}, expected {expected!r}: {refusal}"
        return None
    assert expected is not None, f"accepted {call!r}, which must be refused"
    return expected


def _log_one(run: pacha.Run, call: tuple[Any, ...], last: dict[str, int]) -> list[Point] | None:
    """Make one call; return the points the oracle expects, or ``None`` if it was refused."""
    _, name, value, step = call
    try:
        if not _name_ok(name):
            raise Reject
        expected = [(name, expected_step(step, last.get(name, -1)), expected_value(value))]
    except Reject:
        expected = None
    refusal = refusal_of(lambda: run.log_metric(name, value, step))
    if refusal is not None:
        assert_names_it(refusal, name)
    return _judge(call, expected, refusal)


def _log_many(run: pacha.Run, call: tuple[Any, ...], last: dict[str, int]) -> list[Point] | None:
    _, metrics, step = call
    try:
        expected = []
        for name, value in metrics.items():
            if not _name_ok(name):
                raise Reject
            expected.append((name, expected_step(step, last.get(name, -1)), expected_value(value)))
    except Reject:
        expected = None
    refusal = refusal_of(lambda: run.log_metrics(metrics, step=step))
    if refusal is not None:
        assert_names_it(refusal, *metrics, "metrics")
    return _judge(call, expected, refusal)


storable_names = st.one_of(
    st.text(min_size=1, max_size=12),
    st.text(st.characters(max_codepoint=0x1F), min_size=1, max_size=4),
    st.lists(st.sampled_from(["a", "/", "\\", "..", "é", "\x00"]), min_size=1, max_size=6).map(
        "".join
    ),
    st.integers(1_000, 20_000).map(lambda n: "m" * n),
)
storable_values = st.one_of(
    st.floats(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(width=32).map(np.float32),
    st.integers(I64_MIN, I64_MAX).map(np.int64),
    st.floats().map(np.array),
    st.booleans().map(np.bool_),
    st.decimals(allow_nan=True),
    st.fractions(),
)
hashable_names = metric_names.filter(lambda name: not isinstance(name, list))
metric_calls = st.lists(
    st.one_of(
        st.tuples(st.just("one"), storable_names, storable_values, st.none() | st.integers(0, 40)),
        st.tuples(st.just("one"), metric_names, metric_values, metric_steps),
        st.tuples(
            st.just("many"),
            st.dictionaries(hashable_names, metric_values, min_size=1, max_size=3),
            metric_steps,
        ),
    ),
    min_size=1,
    max_size=12,
)


def check_metric_calls(calls: list[tuple[Any, ...]], tally: Tally) -> None:
    """Log *calls* into one run; the store holds exactly the accepted points, bit for bit."""
    with fresh_store() as uri:
        run = new_run(uri, flush_rows=5)
        stored: list[Point] = []
        last: dict[str, int] = {}
        for call in calls:
            log = _log_one if call[0] == "one" else _log_many
            points = log(run, call, last)
            tally.count(accepted=points is not None)
            for name, step, value in points or []:
                stored.append((name, step, value))
                last[name] = step
        finish_checked(run)
        table = pacha.read_metrics(run.run_id, uri=uri)
        got = zip(table["name"].to_pylist(), table["step"].to_pylist(), table["value"].to_pylist())
        assert sorted(map(_point_key, got)) == sorted(map(_point_key, stored))
        assert set(table["rank"].to_pylist()) <= {0}


# Hyperparameters.


class Colour(enum.Enum):
    """An enum a config might hold."""

    RED = "red"
    BLUE = 2


hp_keys: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(["a", "b", "a.b", "opt", "opt.lr", "x.y.z"]),
    st.text(max_size=6).filter(lambda key: key not in NAMED),
    surrogates.map(lambda s: s[:1]),
    st.integers(0, 3),
    st.none(),
)
hp_scalars: st.SearchStrategy[Any] = st.one_of(
    st.booleans(),
    st.integers(I64_MIN, I64_MAX),
    st.integers(min_value=2**63, max_value=2**70),
    st.floats(),
    st.text(max_size=6),
    surrogates.map(lambda s: "v" + s[:1]),
    st.none(),
    st.floats(width=32).map(np.float32),
    st.integers(-(2**31), 2**31).map(np.int64),
    st.booleans().map(np.bool_),
    st.floats().map(np.array),
    st.decimals(places=2, allow_nan=True),
    st.fractions(max_denominator=8),
    st.sampled_from([PurePosixPath("/data/x"), Path("rel/p"), Colour.RED, Colour.BLUE]),
    st.sampled_from([b"raw", {1, 2}, object(), 1 + 2j, Ellipsis]),
)
hp_values: st.SearchStrategy[Any] = st.recursive(
    hp_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(hp_keys, inner, max_size=3),
    ),
    max_leaves=8,
)
valid_keys = st.sampled_from(["a", "b", "a.b", "opt", "opt.lr", "seed"])
"""Few keys, some of which flatten onto others (``{"a.b": 1, "a": {"b": 2}}``)."""
nested_keys = st.sampled_from(["b", "lr", "c"])
hyperparameter_mappings: st.SearchStrategy[dict[Any, Any]] = st.one_of(
    st.dictionaries(  # mostly storable: pacha's own value shapes, some nesting
        valid_keys,
        hparam_values | st.dictionaries(nested_keys, hparam_values, min_size=1, max_size=2),
        max_size=5,
    ),
    st.dictionaries(hp_keys, hp_values, max_size=5),
)


def expected_hparam(value: Any) -> Any:
    """The stored form of one (non-mapping) value per the README; :class:`Reject` if refused."""
    if isinstance(value, (list, tuple)):
        if any(item is None for item in value):
            raise Reject
        return [expected_hparam(item) for item in value]
    if isinstance(value, enum.Enum):
        return expected_hparam(value.value)
    if isinstance(value, PurePosixPath):
        return str(value)
    if isinstance(value, (np.generic, np.ndarray)):
        if getattr(value, "ndim", 0) != 0:
            raise Reject
        return expected_hparam(value.item())
    if isinstance(value, str):
        if not _text_ok(value):
            raise Reject
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -(2**53) <= value <= 2**53:  # pacha reads custom numbers as float64
            raise Reject
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Reject
        return value
    if isinstance(value, (Decimal, Fraction)):
        try:
            as_float = float(value)
        except (ValueError, OverflowError, ArithmeticError):
            raise Reject from None
        if as_float != value or not math.isfinite(as_float):
            raise Reject
        return as_float
    raise Reject


def expected_custom(mapping: Mapping[Any, Any]) -> dict[str, Any]:
    """The ``custom`` dict the README promises; :class:`Reject` if the mapping must be refused."""
    flat: dict[str, Any] = {}

    def walk(inner: Mapping[Any, Any], prefix: str) -> None:
        for key, value in inner.items():
            if not isinstance(key, str) or not key or not _text_ok(key):
                raise Reject
            dotted = prefix + key
            if isinstance(value, Mapping):
                walk(value, dotted + ".")
            elif dotted in flat:
                raise Reject  # two spellings of one key: refused, never one silently kept
            else:
                flat[dotted] = value

    walk(mapping, "")
    converted = {key: expected_hparam(value) for key, value in flat.items() if value is not None}
    if any(key in NAMED for key in converted):
        raise Reject  # a nested key that spells a named field: not drawn on purpose
    return converted


def _typed(value: Any) -> Any:
    """*value* with its types spelled out, so 1, 1.0 and True compare unequal."""
    if isinstance(value, list):
        return ["list", [_typed(item) for item in value]]
    return [type(value).__name__, value]


def check_hyperparameters(hparams: dict[Any, Any], tally: Tally) -> None:
    """A mapping is stored as the README says, or refused naming the key, before any write."""
    try:
        expected: dict[str, Any] | None = expected_custom(hparams)
    except Reject:
        expected = None
    with fresh_store() as uri:
        runs: list[pacha.Run] = []
        refusal = refusal_of(lambda: runs.append(new_run(uri, hparams)))
        tally.count(accepted=refusal is None)
        if refusal is not None:
            assert expected is None, f"refused {hparams!r}, expected {expected!r}: {refusal}"
            assert isinstance(refusal, pacha.InvalidHyperparameterError), repr(refusal)
            assert repr(refusal.key)[:20] in str(refusal)
            assert not os.path.exists(uri)  # nothing written
            return
        assert expected is not None, f"accepted {hparams!r}, which must be refused"
        (run,) = runs
        finish_checked(run)
        stored = pacha.load_run(run.run_id, uri=uri).hyperparameters.custom
        assert {k: _typed(v) for k, v in stored.items()} == {
            k: _typed(v) for k, v in expected.items()
        }


# Run names, tags and artifact names.

display_names: st.SearchStrategy[Any] = st.one_of(
    st.text(max_size=12),
    st.lists(
        st.sampled_from(["a", "b", "/", "\\", "..", ".", "~", " ", "\t", "\n", "C:", "\x7f", "é"]),
        min_size=1,
        max_size=7,
    ).map("".join),
    st.integers(300, 5_000).map(lambda n: "n" * n),
    surrogates.map(lambda s: "r" + s[:1]),
    st.none(),
    st.integers(),
)
tag_sets: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(
        st.one_of(st.text(max_size=5), st.integers(0, 2), surrogates.map(lambda s: s[:1])),
        st.one_of(st.text(max_size=5), st.integers(), st.floats(), st.booleans(), st.none()),
        max_size=3,
    ),
    st.text(min_size=1, max_size=3),
)


def display_name_ok(name: Any) -> bool:
    """The documented rule for run and artifact names."""
    if not isinstance(name, str) or not name.strip() or not _text_ok(name):
        return False
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        return False
    parts = name.replace("\\", "/").split("/")
    return not name.startswith(("/", "\\")) and ".." not in parts


def expected_tags(tags: Any) -> dict[str, str]:
    """Tags as stored: names to ``str(value)``; a list maps each name to ``""``."""
    if tags is None:
        return {}
    if isinstance(tags, str):
        raise Reject
    items = tags.items() if isinstance(tags, Mapping) else [(tag, "") for tag in tags]
    result: dict[str, str] = {}
    for key, value in items:
        text = value if isinstance(value, str) else str(value)
        if not isinstance(key, str) or not key or not _text_ok(key) or not _text_ok(text):
            raise Reject
        result[key] = text
    return result


def check_name_and_tags(name_and_tags: tuple[Any, Any], tally: Tally) -> None:
    """A run name and tags read back equal, or are refused naming them."""
    name, tags = name_and_tags
    try:
        wanted = expected_tags(tags)
        if name is not None and not display_name_ok(name):
            raise Reject
        accept = True
    except Reject:
        accept = False
    with fresh_store() as uri:
        runs: list[pacha.Run] = []
        refusal = refusal_of(lambda: runs.append(new_run(uri, name=name, tags=tags)))
        tally.count(accepted=refusal is None)
        if refusal is not None:
            assert not accept, f"refused name={name!r} tags={tags!r}: {refusal}"
            culprits = [name, *(tags if isinstance(tags, (list, dict)) else [tags])]
            assert_names_it(refusal, *culprits, *(tags.values() if isinstance(tags, dict) else []))
            assert not os.path.exists(uri)  # nothing written
            return
        assert accept, f"accepted name={name!r} tags={tags!r}, which must be refused"
        (run,) = runs
        finish_checked(run)
        record = pacha.load_run(run.run_id, uri=uri)
        assert record.name == name
        assert record.tags == wanted


def check_artifact_name(name: Any, tally: Tally) -> None:
    """An artifact name is recorded as given, and downloading stays inside the folder."""
    content = b"weights " + str(name).encode("utf-8", "replace")[:50]
    with fresh_store() as uri, tempfile.TemporaryDirectory() as tmp:
        run = new_run(uri)
        refs: list[pacha.ArtifactReference] = []
        refusal = refusal_of(lambda: refs.append(run.log_artifact(content, name=name)))
        tally.count(accepted=refusal is None)
        finish_checked(run)
        if refusal is not None:
            assert not display_name_ok(name), f"refused artifact name {name!r}: {refusal}"
            assert_names_it(refusal, name, "name=")
            assert pacha.load_run(run.run_id, uri=uri).artifacts == []
            return
        assert display_name_ok(name), f"accepted artifact name {name!r}, which must be refused"
        (ref,) = refs
        assert pacha.load_run(run.run_id, uri=uri).artifacts == [ref]
        assert ref.name == name
        folder = Path(tmp) / "downloads"
        folder.mkdir()
        path = pacha.download_artifact(ref, folder, uri=uri)
        assert path.resolve().parent == folder.resolve(), f"{name!r} escaped to {path}"
        assert path.read_bytes() == content


# Stored run.json files.

future_fields: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
    st.text(min_size=1, max_size=8).filter(lambda key: key not in pacha.ExperimentRun.model_fields),
    st.one_of(st.integers(), st.text(max_size=4), st.lists(st.integers(), max_size=2)),
    min_size=1,
    max_size=3,
)
record_mutations: st.SearchStrategy[tuple[str, Any]] = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0.0, 0.999)),
    st.tuples(st.just("empty"), st.just(None)),
    st.tuples(st.just("garbage"), st.binary(max_size=20)),
    st.tuples(
        st.just("wrong type"),
        st.tuples(
            st.sampled_from(list(pacha.ExperimentRun.model_fields)),
            st.one_of(st.integers(), st.text(max_size=5), st.none(), st.lists(st.integers())),
        ),
    ),
    st.tuples(st.just("unknown status"), st.text(min_size=1, max_size=8)),
    st.tuples(st.just("future fields"), future_fields),
    st.tuples(
        st.just("odd extra"),
        st.fixed_dictionaries(
            {
                "summary": st.one_of(st.integers(), st.lists(st.integers()), st.text(max_size=3)),
                "heartbeat_at": st.one_of(st.integers(), st.text(max_size=5)),
                "flush_interval": st.one_of(st.text(max_size=3), st.none(), st.booleans()),
            }
        ),
    ),
)


def mutate_record(text: str, mutation: tuple[str, Any]) -> bytes:
    """A valid ``run.json`` *text* changed by *mutation*."""
    kind, arg = mutation
    data = json.loads(text)
    if kind == "truncate":
        return text.encode("utf-8")[: int(len(text) * arg)]
    if kind == "empty":
        return b""
    if kind == "garbage":
        return bytes(arg)
    if kind == "wrong type":
        data[arg[0]] = arg[1]
    elif kind == "unknown status":
        data["status"] = arg
    elif kind == "future fields":
        data.update(arg)
        data["extra"]["sdk_version"] = "99.0.0"
    else:
        data["extra"].update(arg)
    return json.dumps(data).encode("utf-8")


def check_stored_record(mutation: tuple[str, Any], tally: Tally) -> None:
    """A damaged or newer ``run.json`` reads, or is a clear error; other runs and points stay."""
    with fresh_store() as uri:
        neighbour = new_run(uri)
        neighbour.complete()
        run = new_run(uri)
        run.log_metric("loss", 0.5, 0)
        run.complete()
        key = f"runs/{run.run_id}/run.json"
        path = Path(uri, key)
        damaged = mutate_record(path.read_text(encoding="utf-8"), mutation)
        path.write_bytes(damaged)
        records: list[pacha.ExperimentRun] = []
        refusal = refusal_of(lambda: records.append(pacha.load_run(run.run_id, uri=uri)))
        tally.count(accepted=refusal is None)
        if refusal is not None:
            assert isinstance(refusal, pacha.InvalidRecordError), repr(refusal)
            assert key in str(refusal)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                listed = pacha.list_runs(uri=uri)
            assert [r.run_id for r in listed] == [neighbour.run_id]
            assert any(run.run_id in str(w.message) for w in caught)
            attach = refusal_of(lambda: new_run(uri, run_id=run.run_id).complete())
            assert isinstance(attach, pacha.InvalidRecordError), f"attached: {attach!r}"
            assert path.read_bytes() == damaged  # nothing written over it
        else:
            (record,) = records
            assert record.run_id == run.run_id
            # Odd extra values never break the properties that read them.
            assert isinstance(record.is_stale, bool)
            assert isinstance(record.summary, dict)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                assert len(pacha.list_runs(uri=uri)) == 2
        table = pacha.read_metrics(run.run_id, uri=uri)
        assert table["value"].to_pylist() == [0.5]


# Running the targets.

Target = Callable[[Tally], Callable[[], None]]


def _given(strategy: st.SearchStrategy[Any], check: Callable[..., None], examples: int) -> Target:
    def build(tally: Tally) -> Callable[[], None]:
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.filter_too_much,
                HealthCheck.data_too_large,
            ],
        )
        @given(strategy)
        def run_target(drawn: Any) -> None:
            check(drawn, tally)

        return run_target

    return build


def targets(examples: int) -> dict[str, Target]:
    """Every fuzz target, *examples* hypothesis examples each (run.json ones get more)."""
    return {
        "metric names/values/steps": _given(metric_calls, check_metric_calls, examples),
        "hyperparameters": _given(hyperparameter_mappings, check_hyperparameters, examples),
        "run names and tags": _given(
            st.tuples(display_names, tag_sets), check_name_and_tags, examples
        ),
        "artifact names": _given(display_names, check_artifact_name, examples),
        "run.json files": _given(record_mutations, check_stored_record, examples),
    }


def run_targets(examples: int) -> dict[str, Tally]:
    """Run every target; a failure is counted (with its falsifying example), not raised."""
    tallies: dict[str, Tally] = {}
    for name, build in targets(examples).items():
        tally = tallies[name] = Tally()
        try:
            build(tally)()
        except Exception as error:  # the figure is the point: count it, go on
            tally.failures += 1
            tally.failure = f"{type(error).__name__}: {error}"
    return tallies


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fuzz suite and print its figures; exit 1 on any failure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=500, help="hypothesis examples per target")
    args = parser.parse_args(argv)
    started = time.monotonic()
    tallies = run_targets(args.examples)
    elapsed = time.monotonic() - started
    print(f"fuzz suite: {args.examples} examples per target, {elapsed:.0f} s\n")
    rows: list[tuple[str, ...]] = [
        (name, str(t.tried), str(t.accepted), str(t.rejected), str(t.failures))
        for name, t in tallies.items()
    ]
    total = [sum(int(row[i]) for row in rows) for i in range(1, 5)]
    rows.append(("total", *map(str, total)))
    columns = ("target", "inputs tried", "accepted", "rejected", "failures")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    for name, tally in tallies.items():
        if tally.failures:
            print(f"\n{name}: {tally.failure}")
    return 1 if total[3] else 0


if __name__ == "__main__":
    sys.exit(main())
