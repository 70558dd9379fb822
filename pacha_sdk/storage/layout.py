"""Where things live under a root (DESIGN section 3). The layout is a public contract.

::

    <root>/runs/<run_id>/run.json                               ExperimentRun, replaced whole
    <root>/runs/<run_id>/output.log                             captured console output
    <root>/runs/<run_id>/ranks/<rank>.json                      RankRecord of a rank above 0
    <root>/runs/<run_id>/ranks/<rank>.log                       that rank's console output
    <root>/runs/<run_id>/sessions/<n>.json                      who took over run.json, n-th time
    <root>/runs/<run_id>/annotations/<time>-<uuid>.json         one edit: tags, note, name...
    <root>/metrics/run_id=<run_id>/part-<writer>-<seq>.parquet  immutable, created once
    <root>/metrics/run_id=<run_id>/part-<writer>-<first>-<last>.parquet   merged: seqs first..last
    <root>/artifacts/<hash[0:2]>/<hash>                         content-addressed blobs
    <root>/trash/<run_id>/deleted.json                          a deleted run's deletion record
    <root>/trash/<run_id>/<key>                                 its files, under their original keys
    <root>/index/records-<time>-<uuid>.parquet                  records snapshot: a cache, once

``metrics/`` is a Hive-partitioned Parquet dataset, so pyarrow, DuckDB,
Polars and Spark read it without this SDK. ``index/`` holds only caches
that SDK readers check against the listing (:mod:`pacha_sdk.storage.snapshots`);
engines ignore it. Every key and key pattern the
SDK uses is built or parsed here, and nowhere else.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import NamedTuple

from pacha_sdk.models import RunId

__all__ = [
    "ANNOTATIONS_DIR",
    "ARTIFACTS_DIR",
    "DELETION_RECORD",
    "INDEX_DIR",
    "METRICS_DIR",
    "OUTPUT_LOG",
    "RANKS_DIR",
    "RUNS_DIR",
    "RUN_RECORD",
    "SESSIONS_DIR",
    "TRASH_DIR",
    "PartRange",
    "annotation_key",
    "annotations_prefix",
    "artifact_key",
    "deletion_record_key",
    "hash_from_artifact_key",
    "merged_part_key",
    "metrics_prefix",
    "original_key",
    "output_log_key",
    "part_key",
    "part_range",
    "part_writer_and_seq",
    "rank_from_record_key",
    "rank_log_key",
    "rank_record_key",
    "rank_records_prefix",
    "records_snapshot_key",
    "run_id_from_annotation_key",
    "run_id_from_deletion_record_key",
    "run_id_from_part_key",
    "run_id_from_rank_record_key",
    "run_id_from_record_key",
    "run_prefix",
    "run_record_key",
    "session_from_key",
    "session_key",
    "sessions_prefix",
    "trash_key",
    "trash_prefix",
    "written_at_from_snapshot_key",
]

RUNS_DIR = "runs"
METRICS_DIR = "metrics"
ARTIFACTS_DIR = "artifacts"
RUN_RECORD = "run.json"
OUTPUT_LOG = "output.log"
"""File name of a run's captured console output, beside its ``run.json``."""
RANKS_DIR = "ranks"
SESSIONS_DIR = "sessions"
"""Folder of a run's sessions: one create-only file each time a process takes its run.json over."""
ANNOTATIONS_DIR = "annotations"
"""Folder of a run's edits made after the fact, beside its ``run.json``."""
TRASH_DIR = "trash"
"""Where deleted runs wait, restorable, until ``gc`` empties it."""
DELETION_RECORD = "deleted.json"
"""File name of a trashed run's deletion record, at the top of its trash folder."""
INDEX_DIR = "index"
"""Caches of what lies elsewhere in the store (records snapshots), never the truth."""
_STAMP = "%Y%m%dT%H%M%S%fZ"

_RECORD_KEY = re.compile(rf"^{RUNS_DIR}/([^/]+)/{re.escape(RUN_RECORD)}$")
_ANNOTATION_KEY = re.compile(
    rf"^{RUNS_DIR}/([^/]+)/{ANNOTATIONS_DIR}/[0-9]{{8}}T[0-9]{{12}}Z-[0-9a-f]{{32}}\.json$"
)
_DELETION_KEY = re.compile(rf"^{TRASH_DIR}/([^/]+)/{re.escape(DELETION_RECORD)}$")
_TRASHED_KEY = re.compile(rf"^{TRASH_DIR}/([^/]+)/((?:{RUNS_DIR}|{METRICS_DIR})/.+)$")
_PART_KEY = re.compile(rf"^{METRICS_DIR}/run_id=([^/]+)/[^/]+$")
_RANK_RECORD_KEY = re.compile(rf"^{RUNS_DIR}/([^/]+)/{RANKS_DIR}/(0|[1-9][0-9]*)\.json$")
_PART_NAME = re.compile(r"^part-([^/]+)-([0-9]+)\.parquet$")
_MERGED_PART_NAME = re.compile(r"^part-([^/-]+)-([0-9]{6,})-([0-9]{6,})\.parquet$")
_SESSION_NAME = re.compile(r"^(0|[1-9][0-9]*)\.json$")
_SNAPSHOT_KEY = re.compile(
    rf"^{INDEX_DIR}/records-([0-9]{{8}}T[0-9]{{12}}Z)-[0-9a-f]{{32}}\.parquet$"
)
_ARTIFACT_KEY = re.compile(rf"^{ARTIFACTS_DIR}/([0-9a-f]{{2}})/(\1[0-9a-f]{{62}})$")
_HASH = re.compile(r"^[0-9a-f]{64}$")


def _run_id_or_none(text: str) -> RunId | None:
    try:
        return RunId(text)
    except ValueError:
        return None


# Run records and what sits beside them.


def run_record_key(run_id: RunId) -> str:
    """Key of a run's ``run.json``."""
    return f"{RUNS_DIR}/{run_id}/{RUN_RECORD}"


def run_id_from_record_key(key: str) -> RunId | None:
    """The run id in a ``runs/<id>/run.json`` key, or ``None`` for any other key."""
    match = _RECORD_KEY.match(key)
    return None if match is None else _run_id_or_none(match.group(1))


def run_prefix(run_id: RunId) -> str:
    """Folder of everything a run keeps beside its record (``runs/<id>``)."""
    return f"{RUNS_DIR}/{run_id}"


def output_log_key(run_id: RunId) -> str:
    """Key of a run's captured console output (``capture_output=True``)."""
    return f"{RUNS_DIR}/{run_id}/{OUTPUT_LOG}"


# Edits made after the fact (create-only, folded over run.json when read).


def annotations_prefix(run_id: RunId) -> str:
    """Folder of a run's annotations."""
    return f"{RUNS_DIR}/{run_id}/{ANNOTATIONS_DIR}"


def annotation_key(run_id: RunId, at: datetime, unique: str) -> str:
    """Key of one annotation made at *at*; *unique* is 32 hex digits (a UUID's).

    The name starts with the UTC time to the microsecond, fixed width, so
    key order is time order (then *unique*, for edits in the same microsecond).
    """
    return f"{annotations_prefix(run_id)}/{_stamp(at, unique)}.json"


def _stamp(at: datetime, unique: str) -> str:
    """``<UTC time to the microsecond>-<unique>``: fixed width, so key order is time order."""
    if not re.fullmatch(r"[0-9a-f]{32}", unique):
        raise ValueError(f"{unique!r} is not 32 lowercase hex digits")
    return f"{at.astimezone(timezone.utc).strftime(_STAMP)}-{unique}"


def run_id_from_annotation_key(key: str) -> RunId | None:
    """The run id of a ``runs/<id>/annotations/<time>-<uuid>.json`` key, or ``None``."""
    match = _ANNOTATION_KEY.match(key)
    return None if match is None else _run_id_or_none(match.group(1))


# Rank records of a distributed run.


def rank_records_prefix(run_id: RunId) -> str:
    """Folder of a shared run's rank records."""
    return f"{RUNS_DIR}/{run_id}/{RANKS_DIR}"


def rank_record_key(run_id: RunId, rank: int) -> str:
    """Key of one rank's record."""
    return f"{rank_records_prefix(run_id)}/{rank}.json"


def rank_log_key(run_id: RunId, rank: int) -> str:
    """Key of one rank's captured console output (``capture_output=True``)."""
    return f"{rank_records_prefix(run_id)}/{rank}.log"


def rank_from_record_key(run_id: RunId, key: str) -> int | None:
    """The rank in a ``runs/<id>/ranks/<rank>.json`` key, or ``None`` for any other key."""
    name = key.removeprefix(rank_records_prefix(run_id) + "/")
    if name == key or not name.endswith(".json"):
        return None
    digits = name.removesuffix(".json")
    if not digits.isascii() or not digits.isdigit() or str(int(digits)) != digits:
        return None
    return int(digits)


def run_id_from_rank_record_key(key: str) -> RunId | None:
    """The run id in a ``runs/<id>/ranks/<rank>.json`` key, or ``None`` for any other key."""
    match = _RANK_RECORD_KEY.match(key)
    return None if match is None else _run_id_or_none(match.group(1))


# Sessions: who took a stored run's run.json over (resume, a shared id).


def sessions_prefix(run_id: RunId) -> str:
    """Folder of a run's session files."""
    return f"{RUNS_DIR}/{run_id}/{SESSIONS_DIR}"


def session_key(run_id: RunId, number: int) -> str:
    """Key of the run's *number*-th session file (0, 1, 2...)."""
    return f"{sessions_prefix(run_id)}/{number}.json"


def session_from_key(run_id: RunId, key: str) -> int | None:
    """The number of a ``runs/<id>/sessions/<n>.json`` key, or ``None`` for any other key."""
    name = key.removeprefix(sessions_prefix(run_id) + "/")
    match = _SESSION_NAME.match(name) if name != key else None
    return None if match is None else int(match.group(1))


# Metric part files.


def metrics_prefix(run_id: RunId) -> str:
    """Folder of a run's metric part files (a Hive partition)."""
    return f"{METRICS_DIR}/run_id={run_id}"


def part_key(run_id: RunId, writer: str, seq: int) -> str:
    """Key of one metric part file; *writer* is unique per writing process and run."""
    return f"{metrics_prefix(run_id)}/part-{writer}-{seq:06d}.parquet"


def part_writer_and_seq(key: str) -> tuple[str, int] | None:
    """The writer id and sequence number in a single part's key, or ``None`` if it is not one.

    ``None`` for a merged part too (:func:`part_range` reads both kinds).
    """
    found = part_range(key)
    if found is None or found.first != found.last:
        return None
    return found.writer, found.first


class PartRange(NamedTuple):
    """The writer seqs a part file holds: ``first`` to ``last``, inclusive."""

    writer: str
    first: int
    last: int

    def covers(self, other: PartRange) -> bool:
        """Whether *other* is a part of the same writer with every seq inside this range."""
        return self.writer == other.writer and self.first <= other.first and other.last <= self.last


def merged_part_key(run_id: RunId, writer: str, first: int, last: int) -> str:
    """Key of a merged part holding exactly the points of *writer*'s parts *first*..*last*.

    ``part-<writer>-<first:06d>-<last:06d>.parquet``: coverage is decidable from
    the name alone. *writer* must have no ``-`` (every writer id pacha makes:
    16 hex digits, or ``import``), so the name reads back one way only.
    """
    if "-" in writer or "/" in writer or not writer:
        raise ValueError(f"writer id {writer!r} cannot name a merged part (no '-' or '/' allowed)")
    if not 0 <= first < last:
        raise ValueError(f"a merged part covers at least two seqs, got {first}..{last}")
    return f"{metrics_prefix(run_id)}/part-{writer}-{first:06d}-{last:06d}.parquet"


def part_range(key: str) -> PartRange | None:
    """The writer and seq range of a part's key (single: ``first == last``), or ``None``.

    A name ``part-<w>-<a>-<b>.parquet`` with a dash-free writer ``w`` and
    ``a < b`` is a merged part; any other ``part-<writer>-<seq>.parquet``
    is a single part (its writer may hold dashes, as names written before
    merged parts existed could).
    """
    name = _name(key)
    merged = _MERGED_PART_NAME.match(name)
    if merged is not None and int(merged.group(2)) < int(merged.group(3)):
        return PartRange(merged.group(1), int(merged.group(2)), int(merged.group(3)))
    single = _PART_NAME.match(name)
    if single is None:
        return None
    seq = int(single.group(2))
    return PartRange(single.group(1), seq, seq)


def _name(key: str) -> str:
    return key.rpartition("/")[2]


def run_id_from_part_key(key: str) -> RunId | None:
    """The run id of the ``metrics/run_id=<id>/`` folder *key* lies in, or ``None``.

    ``None`` also for a folder whose id is not a UUID: pacha never wrote it.
    """
    match = _PART_KEY.match(key)
    return None if match is None else _run_id_or_none(match.group(1))


# The trash: deleted runs, restorable until gc empties it.


def trash_prefix(run_id: RunId) -> str:
    """Folder of a deleted run in the trash."""
    return f"{TRASH_DIR}/{run_id}"


def deletion_record_key(run_id: RunId) -> str:
    """Key of a deleted run's deletion record (written before anything is moved)."""
    return f"{trash_prefix(run_id)}/{DELETION_RECORD}"


def run_id_from_deletion_record_key(key: str) -> RunId | None:
    """The run id of a ``trash/<id>/deleted.json`` key, or ``None`` for any other key."""
    match = _DELETION_KEY.match(key)
    return None if match is None else _run_id_or_none(match.group(1))


def trash_key(run_id: RunId, key: str) -> str:
    """Where a deleted run's file *key* (``runs/...`` or ``metrics/...``) waits in the trash."""
    return f"{trash_prefix(run_id)}/{key}"


def original_key(key: str) -> tuple[RunId, str] | None:
    """The run id and original key of a file in the trash, or ``None`` for any other key."""
    match = _TRASHED_KEY.match(key)
    if match is None or (run_id := _run_id_or_none(match.group(1))) is None:
        return None
    return run_id, match.group(2)


# Records snapshots (caches of many small records in one object).


def records_snapshot_key(at: datetime, unique: str) -> str:
    """Key of a records snapshot written at *at*; *unique* is 32 hex digits (a UUID's).

    Key order is time order, so the newest snapshot is the last key listed.
    """
    return f"{INDEX_DIR}/records-{_stamp(at, unique)}.parquet"


def written_at_from_snapshot_key(key: str) -> datetime | None:
    """When the records snapshot at *key* was written (its name says), or ``None`` if not one."""
    match = _SNAPSHOT_KEY.match(key)
    if match is None:
        return None
    return datetime.strptime(match.group(1), _STAMP).replace(tzinfo=timezone.utc)


# Content-addressed blobs.


def artifact_key(content_hash: str) -> str:
    """Key of a content-addressed blob."""
    if not _HASH.match(content_hash):
        raise ValueError(f"{content_hash!r} is not a BLAKE3 hex digest")
    return f"{ARTIFACTS_DIR}/{content_hash[:2]}/{content_hash}"


def hash_from_artifact_key(key: str) -> str | None:
    """The content hash in an ``artifacts/<hash[:2]>/<hash>`` key, or ``None`` for any other."""
    match = _ARTIFACT_KEY.match(key)
    return None if match is None else match.group(2)
