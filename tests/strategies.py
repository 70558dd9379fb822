"""Hypothesis strategies for pacha-sdk's models and for fuzzing user input."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

from hypothesis import strategies as st

import pacha_sdk as pacha

I64_MIN, I64_MAX = -(2**63), 2**63 - 1

finite_floats = st.floats(allow_nan=False, allow_infinity=False)
i64 = st.integers(min_value=I64_MIN, max_value=I64_MAX)
non_negative_i64 = st.integers(min_value=0, max_value=I64_MAX)

utc_datetimes = st.datetimes(
    min_value=datetime(1, 1, 1),
    max_value=datetime(9999, 12, 31),
    timezones=st.just(timezone.utc),
)
"""Aware UTC datetimes with microseconds, as run.json keeps them."""

hparam_scalars = st.one_of(st.booleans(), i64, finite_floats, st.text(max_size=20))

hparam_values: st.SearchStrategy[Any] = st.recursive(
    hparam_scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=10
)
"""pacha's ``HyperparamValue``: float, int, bool, str or (nested) lists of those."""

json_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.none(), st.booleans(), i64, finite_floats, st.text(max_size=20)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
"""Strict JSON values (finite numbers only), as ``ExperimentRun.extra`` holds."""

hyperparameters = st.builds(
    pacha.Hyperparameters,
    learning_rate=finite_floats,
    batch_size=non_negative_i64,
    epochs=non_negative_i64,
    weight_decay=finite_floats,
    max_grad_norm=st.none() | finite_floats,
    warmup_steps=st.none() | non_negative_i64,
    custom=st.dictionaries(st.text(max_size=15), hparam_values, max_size=6),
)

recipe_versions = st.builds(
    pacha.RecipeVersion,
    major=st.integers(0, 2**32 - 1),  # pacha's u32
    minor=st.integers(0, 2**32 - 1),
    patch=st.integers(0, 2**32 - 1),
)

recipes = st.builds(pacha.RecipeReference, st.text(min_size=1, max_size=20), recipe_versions)

hardware = st.builds(
    pacha.HardwareInfo,
    cpu_model=st.none() | st.text(max_size=30),
    cpu_cores=st.none() | st.integers(0, 4096),
    ram_gb=st.none() | st.integers(0, 1 << 20),
    gpu_model=st.none() | st.text(max_size=30),
    gpu_count=st.none() | st.integers(0, 64),
)

metric_records = st.builds(
    pacha.MetricRecord,
    name=st.text(min_size=1, max_size=15),
    value=finite_floats,
    step=non_negative_i64,
    timestamp=utc_datetimes,
)

artifacts = st.builds(
    pacha.ArtifactReference,
    artifact_type=st.sampled_from(["model", "checkpoint", "dataset"]),
    name=st.text(min_size=1, max_size=20),
    content_hash=st.text("0123456789abcdef", min_size=64, max_size=64),
)

experiment_runs = st.builds(
    pacha.ExperimentRun,
    run_id=st.uuids().map(pacha.RunId),
    recipe=st.none() | recipes,
    hyperparameters=hyperparameters,
    started_at=utc_datetimes,
    finished_at=st.none() | utc_datetimes,
    status=st.sampled_from(pacha.RunStatus),
    hardware=hardware,
    metrics=st.lists(metric_records, max_size=4),
    artifacts=st.lists(artifacts, max_size=3),
    log_uri=st.none() | st.text(max_size=30),
    git_commit=st.none() | st.text("0123456789abcdef", min_size=40, max_size=40),
    git_dirty=st.booleans(),
    error_message=st.none() | st.text(max_size=40),
    extra=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
)
"""Arbitrary valid ``ExperimentRun`` values that strict JSON can hold."""

anything: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=2**60, max_value=2**70),
        st.floats(),
        st.text(),
        st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1),
        st.binary(max_size=8),
        st.decimals(allow_nan=True, allow_infinity=True),
        st.decimals(places=3, allow_nan=False, allow_infinity=False),
        st.fractions(),
        st.complex_numbers(),
        st.just(object()),
        st.just(math.nan),
        st.sampled_from([Decimal("sNaN"), Fraction(10**400, 1), Decimal("1e400"), type, ...]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=5), inner, max_size=3),
        st.dictionaries(st.integers(), inner, min_size=1, max_size=2),
        st.frozensets(st.integers(), max_size=3),
    ),
    max_leaves=8,
)
"""Broad, mostly wrong input: what users pass by mistake."""
