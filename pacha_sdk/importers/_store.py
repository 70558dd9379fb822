"""Everything an import reads from and writes to the pacha store, in one place.

An import never goes through a live :class:`pacha_sdk.Run`: a live run
stamps its own start time, heartbeat and status, while an imported run
keeps the source's. So this module writes the documented layout directly
(DESIGN section 3) with the storage layer's own pieces:
:mod:`pacha_sdk.storage.records` for ``run.json`` (read, parsed, replaced
whole), :func:`~pacha_sdk.storage.parts.build_part` and
:func:`~pacha_sdk.storage.parts.part_bytes` for metric parts (created, never
replaced), and :func:`~pacha_sdk.storage.blobs.store_artifact` for
content-addressed blobs.

Imported points go to parts named ``part-import-<seq>.parquet`` (``pacha
compact`` may merge them into ``part-import-<first>-<last>.parquet``, so the
next free seq comes after every range); every store failure is a
:class:`~pacha_sdk.exceptions.StoreError` naming the key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from pacha_sdk.exceptions import StoreError
from pacha_sdk.storage import records
from pacha_sdk.storage.blobs import store_artifact
from pacha_sdk.storage.coverage import drop_covered
from pacha_sdk.storage.layout import artifact_key, metrics_prefix, part_key, part_range

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from pacha_sdk.backends import Backend
    from pacha_sdk.models import ArtifactReference, ExperimentRun, RunId

__all__ = ["IMPORT_WRITER", "ImportStore", "Point"]

IMPORT_WRITER = "import"
"""The writer id in the names of the part files an import writes."""
_MAX_SEQ_TRIES = 1000
_POINT_COLUMNS = ["name", "step", "value", "timestamp"]


class Point(NamedTuple):
    """One metric point as an import handles it: the source's values, time in µs UTC."""

    name: str
    step: int
    value: float
    micros: int
    """Microseconds since the Unix epoch, UTC."""


class ImportStore:
    """The pacha store an import writes into (one backend)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @property
    def uri(self) -> str:
        """The store's root URI."""
        return self.backend.uri

    def load_record(self, run_id: RunId) -> ExperimentRun | None:
        """The stored ``run.json`` of *run_id*, or ``None`` if there is none yet."""
        return records.read_run(self.backend, run_id)

    def _part_keys(self, run_id: RunId) -> list[str]:
        """The run's part keys, less those a merged part covers."""
        keys = records.list_keys(self.backend, metrics_prefix(run_id))
        return drop_covered([key for key in keys if key.endswith(".parquet")], str)

    def load_points(self, run_id: RunId) -> list[Point]:
        """Every point stored for *run_id*, by any writer, in part and row order.

        Read from the part files directly (not through ``run.json``), so
        points of an import that stopped before writing the record count too.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        points: list[Point] = []
        for key in self._part_keys(run_id):
            with records.store_errors(self.backend, "read", key):
                data = self.backend.read_bytes(key)
            table = pq.read_table(pa.BufferReader(data), columns=_POINT_COLUMNS)
            names, steps, values = (table.column(c).to_pylist() for c in _POINT_COLUMNS[:3])
            micros = table.column("timestamp").cast(pa.int64()).to_pylist()
            points.extend(map(Point, names, steps, values, micros))
        return points

    def write_points(self, run_id: RunId, points: Sequence[Point]) -> str:
        """Write *points* as one new part file of *run_id*; return its key.

        The part is created, never replaced: the next free ``import`` sequence
        number is taken, and a name taken meanwhile moves on to the next one.
        """
        from pacha_sdk.storage.parts import build_part, part_bytes

        rows: list[object] = []
        for point in points:
            rows.extend((point.name, point.value, point.step, point.micros * 1000))
        data = part_bytes(build_part(str(run_id), 0, rows))
        ranges = [part_range(key) for key in self._part_keys(run_id)]
        taken = [found.last for found in ranges if found and found.writer == IMPORT_WRITER]
        seq = max(taken, default=-1) + 1
        for _ in range(_MAX_SEQ_TRIES):
            key = part_key(run_id, IMPORT_WRITER, seq)
            try:
                with records.store_errors(self.backend, "write", key, passing=(FileExistsError,)):
                    self.backend.write_new(key, data)
            except FileExistsError:
                seq += 1
                continue
            return key
        prefix = records.location(self.backend, metrics_prefix(run_id))
        raise StoreError(f"could not find a free part name under {prefix}")

    def write_record(self, record: ExperimentRun) -> None:
        """Replace the run's ``run.json`` with *record* (atomically)."""
        records.write_run(self.backend, record)

    def has_blob(self, content_hash: str) -> bool:
        """Whether the store holds the artifact blob named *content_hash*."""
        key = artifact_key(content_hash)
        with records.store_errors(self.backend, "read", key):
            return self.backend.exists(key)

    def store_file(self, path: Path, *, artifact_type: str, name: str) -> ArtifactReference:
        """Store a local file content-addressed (once per content) and return its reference."""
        return store_artifact(self.backend, path, artifact_type=artifact_type, name=name)
