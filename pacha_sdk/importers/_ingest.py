"""One source run into the store: only what is new, never a point twice.

Both importers turn each source run into a :class:`SourceRun` (the record
fields the source gives, every metric point it holds, its artifacts) and
hand it to :meth:`Ingest.add`, which compares it with what the store holds:

* points: the source's points minus the points already stored for the run
  (as a multiset of ``name, step, value, timestamp``, so a point the source
  holds twice is stored twice, and once more only if the source grew), in
  one new part file; nothing when nothing is new;
* artifacts: fetched and stored content-addressed unless the record already
  refers to one of that name and size whose blob is stored;
* ``run.json``: the stored record updated with the source's fields, the
  artifact references and the summary of latest values over every stored
  point; written only if it differs from the stored one.

Blobs first, then the part, then the record: an import stopped half way
leaves nothing a second import does not complete (a part without its record
is counted as stored; a record is only written over everything it names).
"""

from __future__ import annotations

import copy
import math
import struct
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pacha_sdk.exceptions import InvalidRecordError
from pacha_sdk.importers._report import SkippedRun
from pacha_sdk.models import RunId

if TYPE_CHECKING:
    from pacha_sdk.importers._report import ImportProgress, ImportReport
    from pacha_sdk.importers._store import ImportStore, Point
    from pacha_sdk.models import ArtifactReference, ExperimentRun

__all__ = ["IMPORT_NAMESPACE", "Ingest", "SourceArtifact", "SourceRun", "imported_run_id"]

IMPORT_NAMESPACE = uuid.UUID("06eca2c4-95ee-4100-95f2-c215d306ce3a")
"""The UUIDv5 namespace of imported run ids (fixed forever: ids must not change)."""

_NAN_BITS = struct.unpack("<q", struct.pack("<d", math.nan))[0]


def imported_run_id(system: str, source_key: str) -> RunId:
    """The pacha run id of a source run: ``uuid5(IMPORT_NAMESPACE, "<system>:<key>")``."""
    return RunId(uuid.uuid5(IMPORT_NAMESPACE, f"{system}:{source_key}"))


@dataclass
class SourceArtifact:
    """A file of a source run, fetched only when the store does not have it yet."""

    name: str
    """Its path in the source run, the artifact's name in pacha."""
    artifact_type: str
    """``"model"`` or ``"file"``."""
    size: int | None
    """Bytes, when the source says (lets a re-import skip an unchanged file)."""
    fetch: Callable[[Path], Path]
    """Copy the file into the given folder; return the copy's path."""


@dataclass
class SourceRun:
    """A source run as the importers hand it over."""

    source_id: str
    """How the source names the run (shown when it is skipped)."""
    run_id: RunId
    """Its pacha run id (:func:`imported_run_id`)."""
    record: ExperimentRun
    """Fields from the source: hyperparameters, times, status, ``extra`` (name, tags, source...)."""
    points: list[Point]
    """Every metric point the source holds, in the source's order."""
    artifacts: list[SourceArtifact] | None = None
    """The run's files, or ``None`` when artifacts are not imported."""
    ignored: Counter[str] = field(default_factory=Counter)
    """What the source has that is not imported, by kind."""


def _point_key(point: Point) -> tuple[str, int, int, int]:
    """Identity of a point: NaNs are equal to each other, 0.0 and -0.0 are not."""
    bits = (
        _NAN_BITS
        if math.isnan(point.value)
        else struct.unpack("<q", struct.pack("<d", point.value))[0]
    )
    return (point.name, point.step, bits, point.micros)


def new_points(source: Iterable[Point], stored: Iterable[Point]) -> list[Point]:
    """The points of *source* that *stored* does not hold yet (multiset difference, in order)."""
    remaining = Counter(map(_point_key, stored))
    fresh: list[Point] = []
    for point in source:
        key = _point_key(point)
        if remaining[key] > 0:
            remaining[key] -= 1
        else:
            fresh.append(point)
    return fresh


def summary_of(points: Iterable[Point]) -> dict[str, float | None]:
    """Latest value of each metric: highest step, then latest time, then last in order.

    Non-finite values are ``None``: ``run.json`` is strict JSON.
    """
    latest: dict[str, Point] = {}
    for point in points:
        best = latest.get(point.name)
        if best is None or (point.step, point.micros) >= (best.step, best.micros):
            latest[point.name] = point
    return {
        name: point.value if math.isfinite(point.value) else None for name, point in latest.items()
    }


def _stored_sizes(record: ExperimentRun | None) -> dict[str, int]:
    source = record.extra.get("source") if record is not None else None
    sizes = source.get("artifact_sizes") if isinstance(source, dict) else None
    if not isinstance(sizes, dict):
        return {}
    return {str(k): v for k, v in sizes.items() if isinstance(v, int) and not isinstance(v, bool)}


class Ingest:
    """Adds source runs to one store and counts what it did in one report."""

    def __init__(
        self, store: ImportStore, report: ImportReport, progress: ImportProgress | None = None
    ) -> None:
        self.store = store
        self.report = report
        self._progress = progress
        self._done = 0
        self.total = 0
        """Runs the source has (set by the importer once it has listed them)."""

    def skip(self, source_id: str, reason: str) -> None:
        """Record a source run that cannot be imported; the import goes on."""
        self.report.skipped.append(SkippedRun(source_id, " ".join(reason.split())))
        self._tick()

    def _tick(self) -> None:
        self._done += 1
        if self._progress is not None:
            self._progress(self._done, max(self.total, self._done), self.report.points)

    def add(self, run: SourceRun) -> None:
        """Bring *run* into the store: new points, new artifacts, the updated record."""
        try:
            stored = self.store.load_record(run.run_id)
        except InvalidRecordError as error:
            self.skip(run.source_id, f"the stored record cannot be read, left as it is: {error}")
            return
        stored_points = self.store.load_points(run.run_id)
        fresh = new_points(run.points, stored_points)
        references, sizes, failure = self._artifacts(run, stored)
        if failure is not None:
            self.skip(run.source_id, failure)
            return
        record = _merged(stored, run, references, sizes)
        record.extra["summary"] = dict(summary_of([*stored_points, *fresh]))
        if fresh:
            self.store.write_points(run.run_id, fresh)
        changed = stored is None or record != stored
        if changed:
            self.store.write_record(record)
        self.report.points += len(fresh)
        self.report.ignored.update(run.ignored)
        self.report.run_ids[run.source_id] = run.run_id
        if stored is None:
            self.report.imported.append(run.run_id)
        elif changed or fresh:
            self.report.updated.append(run.run_id)
        else:
            self.report.unchanged.append(run.run_id)
        self._tick()

    def _artifacts(
        self, run: SourceRun, stored: ExperimentRun | None
    ) -> tuple[list[ArtifactReference], dict[str, int], str | None]:
        """The run's artifact references and known sizes, storing the files not stored yet.

        The third item says why a file could not be fetched from the source
        (the run is then skipped; blobs stored so far are harmless).
        """
        references = list(stored.artifacts) if stored is not None else []
        sizes = _stored_sizes(stored)
        by_name = {ref.name: index for index, ref in enumerate(references)}
        for artifact in run.artifacts or []:
            index = by_name.get(artifact.name)
            if index is not None and self._still_stored(references[index], artifact, sizes):
                continue
            with tempfile.TemporaryDirectory(prefix="pacha-import-") as folder:
                try:
                    local = artifact.fetch(Path(folder))
                except Exception as error:  # whatever the source's reader raises
                    text = " ".join(f"{type(error).__name__}: {error}".split())
                    return references, sizes, f"artifact {artifact.name!r}: {text}"
                ref = self.store.store_file(
                    local, artifact_type=artifact.artifact_type, name=artifact.name
                )
            if artifact.size is not None:
                sizes[artifact.name] = artifact.size
            if index is None:
                by_name[artifact.name] = len(references)
                references.append(ref)
                self.report.artifacts += 1
            elif references[index] != ref:
                references[index] = ref
                self.report.artifacts += 1
        return references, sizes, None

    def _still_stored(
        self, ref: ArtifactReference, artifact: SourceArtifact, sizes: dict[str, int]
    ) -> bool:
        """Whether the stored reference of this name still stands for the source's file."""
        same_size = artifact.size is None or sizes.get(artifact.name) == artifact.size
        return same_size and self.store.has_blob(ref.content_hash)


def _merged(
    stored: ExperimentRun | None,
    run: SourceRun,
    references: list[ArtifactReference],
    sizes: dict[str, int],
) -> ExperimentRun:
    """The record to store: the stored one (if any) with the source's fields over it."""
    source = run.record
    record = stored.model_copy(deep=True) if stored is not None else source.model_copy(deep=True)
    if stored is not None:
        for name in (
            "hyperparameters", "started_at", "finished_at", "status", "error_message", "git_commit"
        ):  # fmt: skip
            setattr(record, name, getattr(source, name))
        record.extra.update(copy.deepcopy(source.extra))
    record.artifacts = references
    origin = record.extra.get("source")
    if sizes and isinstance(origin, dict):
        origin["artifact_sizes"] = dict(sorted(sizes.items()))
    return record
