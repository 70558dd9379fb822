"""``pacha.compact()`` / ``pacha compact``: merge the part files of runs no writer merges.

A live run merges its own parts as it goes and at its end
(:mod:`pacha_sdk.storage.own_compaction`). What is left to do here:

* runs that died (killed, out of memory, machine lost) before their final merge;
* runs written by an SDK older than compaction;
* runs whose final merge was skipped (the run's ``close_timeout`` ran out);
* every rank's writer of a distributed run, and imported runs.

For each run, each writer's uncovered parts are merged into as few parts as
:data:`~pacha_sdk.storage.compaction.MAX_PART_BYTES` allows, never across
a gap (:func:`~pacha_sdk.storage.compaction.plan_writers`), and parts a
merged part already covers (left by a compaction that was killed) are
deleted.

Only one compactor may work on a run at a time, or two merged ranges could
overlap without nesting. So a run (or any rank of it) that is ``running``
and not stale is skipped: its own writer compacts it. A run in the trash
(``trash/<id>/deleted.json``, even a deletion under way) is skipped, and
checked again just before each merged part is written. A part that cannot
be read is left in place, named in :attr:`CompactedRun.unreadable`, and
the parts on either side of it are merged separately.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pacha_sdk.exceptions import InvalidPartError, RunNotFoundError
from pacha_sdk.models import (
    ExperimentRun,
    RankRecord,
    RunId,
    RunStatus,
    seconds_since_beat,
    utc_now,
)
from pacha_sdk.query._store import open_store
from pacha_sdk.storage import records
from pacha_sdk.storage.annotated import refresh_records_snapshot
from pacha_sdk.storage.compaction import Part, delete_parts, merge_parts, plan_writers
from pacha_sdk.storage.coverage import covered_keys
from pacha_sdk.storage.layout import (
    METRICS_DIR,
    deletion_record_key,
    metrics_prefix,
    run_id_from_part_key,
)

if TYPE_CHECKING:
    from pacha_sdk.backends import Backend

__all__ = ["CompactReport", "CompactedRun", "compact", "garbage_parts"]

_DELETE_THREADS = 16
"""Parts deleted side by side once merged (an object store answers each in milliseconds)."""
_REPLANS = 8
"""Times one run is planned again after finding a part it cannot read or one gone."""


@dataclass
class CompactedRun:
    """What :func:`compact` did to one run."""

    run_id: str
    parts_before: int = 0
    """Part files the run had (as SDK readers count them: covered ones left out)."""
    parts_after: int = 0
    """Part files it has now, as SDK readers count them."""
    merged: list[str] = field(default_factory=list)
    """Keys of the merged parts written."""
    removed: list[str] = field(default_factory=list)
    """Keys of parts deleted because a merged part holds their points."""
    left: list[str] = field(default_factory=list)
    """Parts a merged part holds that the store would not delete (readers drop them)."""
    unreadable: list[str] = field(default_factory=list)
    """Parts that cannot be read: left in place, never merged (``location: problem``)."""
    overlapping: list[str] = field(default_factory=list)
    """Parts whose ranges overlap without nesting (two compactors at once): left alone."""
    skipped: str | None = None
    """Why the run was left alone (running, in the trash), or ``None``."""


@dataclass
class CompactReport:
    """What :func:`compact` did, run by run."""

    runs: list[CompactedRun] = field(default_factory=list)
    records_snapshot: str | None = None
    """Key of the records snapshot written after compacting every run (``index/...``), or
    ``None``: run ids were given, nothing changed since the newest, or the store gives no
    versions (see :mod:`pacha_sdk.storage.snapshots`)."""

    @property
    def parts_before(self) -> int:
        """Part files of the runs compacted, before."""
        return sum(run.parts_before for run in self.runs if run.skipped is None)

    @property
    def parts_after(self) -> int:
        """Part files of the runs compacted, after."""
        return sum(run.parts_after for run in self.runs if run.skipped is None)

    @property
    def skipped(self) -> dict[str, str]:
        """Run id to the reason, for each run left alone."""
        return {run.run_id: run.skipped for run in self.runs if run.skipped is not None}

    @property
    def unreadable(self) -> list[str]:
        """Every part that cannot be read (left in place), with its problem."""
        return [problem for run in self.runs for problem in run.unreadable]


def compact(
    run_ids: str | Sequence[str] | None = None,
    *,
    uri: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> CompactReport:
    """Merge the part files of *run_ids* (every run in the store if ``None``).

    Each writer of each run ends with one part (one per 256 MB of points),
    except across a gap or an unreadable part; SDK readers see the same
    points before, during and after. Raises :class:`RunNotFoundError` for a
    given id the store has no run of (nothing is changed then), and
    :class:`StoreError` if the store cannot be read. Runs that are running
    (and not stale) or in the trash are skipped, with the reason in the report.

    Compacting every run (no *run_ids*) also leaves a records snapshot of
    every run's record behind, unless the newest one already holds them
    (:attr:`CompactReport.records_snapshot`): later ``list_runs`` calls on an
    object store then read one object instead of one per run.
    """
    backend = open_store(uri, storage_options)
    if run_ids is None:
        wanted = _runs_with_parts(backend)
    else:
        wanted = list(dict.fromkeys(RunId(text) for text in _listed(run_ids)))
        for run_id in wanted:
            trashed = backend_has(backend, deletion_record_key(run_id))
            if not trashed and not _has_records(backend, run_id):
                raise RunNotFoundError(str(run_id), backend.uri)
    report = CompactReport([_compact_run(backend, run_id) for run_id in wanted])
    if run_ids is None:
        report.records_snapshot = refresh_records_snapshot(backend)
    return report


def _listed(run_ids: str | Sequence[str]) -> list[str]:
    return [run_ids] if isinstance(run_ids, str) else list(run_ids)


def backend_has(backend: Backend, key: str) -> bool:
    """Whether *key* exists in the store (a store error raised as :class:`StoreError`)."""
    with records.store_errors(backend, "read", key):
        return backend.exists(key)


def _has_records(backend: Backend, run_id: RunId) -> bool:
    return records.has_run(backend, run_id) or records.has_rank_records(backend, run_id)


def _runs_with_parts(backend: Backend) -> list[RunId]:
    """The runs that have a ``metrics/run_id=`` folder, in id order."""
    found = {run_id_from_part_key(key) for key in records.list_keys(backend, METRICS_DIR)}
    return sorted(run_id for run_id in found if run_id is not None)


def _why_not(backend: Backend, run_id: RunId) -> str | None:
    """Why *run_id* must not be compacted now (in the trash, running, no record), or ``None``."""
    if backend_has(backend, deletion_record_key(run_id)):
        return "in the trash"
    record = records.read_run(backend, run_id)
    beating: list[ExperimentRun | RankRecord] = [record] if record is not None else []
    try:
        beating += records.list_rank_records(backend, run_id)
    except RunNotFoundError:
        return "no run record (pacha gc removes its parts)"
    now = utc_now()
    for each in beating:
        if each.status is RunStatus.RUNNING and not each.stale_at(now):
            beat = seconds_since_beat(each, now)
            return f"running (last heartbeat {beat:.0f} s ago): its own writer compacts it"
    return None


def _listed_parts(backend: Backend, run_id: RunId) -> list[Part]:
    listed = (Part.listed(item) for item in records.list_objects(backend, metrics_prefix(run_id)))
    return [part for part in listed if part is not None]


def _compact_run(backend: Backend, run_id: RunId) -> CompactedRun:
    done = CompactedRun(str(run_id))
    done.skipped = _why_not(backend, run_id)
    if done.skipped is not None:
        return done
    unreadable: set[str] = set()
    for attempt in range(_REPLANS):
        parts = _listed_parts(backend, run_id)
        plans = plan_writers(parts, skip=frozenset(unreadable))
        if attempt == 0:
            covered = sum(len(plan.covered) for plan in plans)
            done.parts_before = len(parts) - covered
        done.overlapping = sorted({key for plan in plans for pair in plan.overlaps for key in pair})
        doomed = [part.key for plan in plans for part in plan.covered]
        done.left += delete_parts(backend, doomed, threads=_DELETE_THREADS)
        done.removed += [key for key in doomed if key not in done.left]
        try:
            for group in (group for plan in plans for group in plan.groups):
                merged = merge_parts(
                    backend,
                    run_id,
                    group,
                    still_wanted=lambda: not backend_has(backend, deletion_record_key(run_id)),
                    threads=_DELETE_THREADS,
                )
                if merged is None:
                    done.skipped = "deleted while being compacted"
                    return done
                done.merged.append(merged.key)
                done.left += merged.left
                done.removed += [part.key for part in group if part.key not in merged.left]
        except InvalidPartError as bad:
            unreadable.add(_key_of(bad, parts))
            done.unreadable.append(str(bad.location) + ": " + bad.problem)
            continue
        except FileNotFoundError:
            continue  # a part went meanwhile (deleted, or merged by someone else): plan again
        break
    parts = _listed_parts(backend, run_id)
    covered = sum(len(plan.covered) for plan in plan_writers(parts))
    done.parts_after = len(parts) - covered
    done.left = sorted(set(done.left) & {part.key for part in parts})
    return done


def _key_of(bad: InvalidPartError, parts: list[Part]) -> str:
    """The key of the listed part *bad* names (its location ends with the key)."""
    for part in parts:
        if bad.location.endswith(part.key):
            return part.key
    return bad.location


def garbage_parts(part_keys: list[str], run_ids: set[RunId]) -> tuple[list[str], list[str]]:
    """The part files ``pacha gc`` removes: those of no run, and those a merged part covers.

    Orphans lie in a ``run_id=<id>`` folder of none of *run_ids* (other
    folders are not pacha's); covered parts are left by a compaction killed
    between writing a merged part and deleting what it holds.
    """
    orphans = [
        key
        for key in part_keys
        if (owner := run_id_from_part_key(key)) is not None and owner not in run_ids
    ]
    return orphans, sorted(covered_keys(part_keys) - set(orphans))
