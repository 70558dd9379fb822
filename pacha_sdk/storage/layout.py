"""Where things live under a root (DESIGN section 3). The layout is a public contract.

::

    <root>/runs/<run_id>/run.json                               ExperimentRun, replaced whole
    <root>/metrics/run_id=<run_id>/part-<writer>-<seq>.parquet  immutable, created once
    <root>/artifacts/<hash[0:2]>/<hash>                         content-addressed blobs

``metrics/`` is a Hive-partitioned Parquet dataset, so pyarrow, DuckDB,
Polars and Spark read it without this SDK.
"""

from __future__ import annotations

import re

from pacha_sdk.models import RunId

__all__ = [
    "METRICS_DIR",
    "RUNS_DIR",
    "RUN_RECORD",
    "artifact_key",
    "metrics_prefix",
    "part_key",
    "run_id_from_record_key",
    "run_record_key",
]

RUNS_DIR = "runs"
METRICS_DIR = "metrics"
ARTIFACTS_DIR = "artifacts"
RUN_RECORD = "run.json"

_RECORD_KEY = re.compile(rf"^{RUNS_DIR}/([^/]+)/{re.escape(RUN_RECORD)}$")
_HASH = re.compile(r"^[0-9a-f]{64}$")


def run_record_key(run_id: RunId) -> str:
    """Key of a run's ``run.json``."""
    return f"{RUNS_DIR}/{run_id}/{RUN_RECORD}"


def run_id_from_record_key(key: str) -> RunId | None:
    """The run id in a ``runs/<id>/run.json`` key, or ``None`` for any other key."""
    match = _RECORD_KEY.match(key)
    if match is None:
        return None
    try:
        return RunId(match.group(1))
    except ValueError:
        return None


def metrics_prefix(run_id: RunId) -> str:
    """Folder of a run's metric part files (a Hive partition)."""
    return f"{METRICS_DIR}/run_id={run_id}"


def part_key(run_id: RunId, writer: str, seq: int) -> str:
    """Key of one metric part file; *writer* is unique per writing process and run."""
    return f"{metrics_prefix(run_id)}/part-{writer}-{seq:06d}.parquet"


def artifact_key(content_hash: str) -> str:
    """Key of a content-addressed blob."""
    if not _HASH.match(content_hash):
        raise ValueError(f"{content_hash!r} is not a BLAKE3 hex digest")
    return f"{ARTIFACTS_DIR}/{content_hash[:2]}/{content_hash}"
