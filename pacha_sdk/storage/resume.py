"""Where a resumed run goes on from: the latest point of each metric it stored before.

A record (``run.json``, or a rank record) keeps the latest value of each
metric and its step (``summary`` and ``summary_steps``), and which part
files of its writer they count (:class:`~pacha_sdk.models.WriterMark`). A
process killed between storing a part and rewriting the record leaves
parts the record has not counted; a record written by an older SDK has no
steps at all. Only those parts are read here (their ``name``, ``step``,
``value`` and ``rank`` columns), so resuming a long run costs one listing
and, usually, no part read.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pacha_sdk.storage.buffer import merge_latest
from pacha_sdk.storage.coverage import drop_covered
from pacha_sdk.storage.layout import metrics_prefix, part_range
from pacha_sdk.storage.records import list_keys, location

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs

    from pacha_sdk.backends import Backend
    from pacha_sdk.models import RunId, WriterMark
    from pacha_sdk.storage.parts import Latest

__all__ = ["latest_in_parts", "parts_to_read"]

logger = logging.getLogger("pacha_sdk")

_COLUMNS = ["name", "step", "value", "rank"]


def parts_to_read(
    backend: Backend, run_id: RunId, mark: WriterMark | None, *, has_steps: bool
) -> list[str]:
    """The run's part keys whose points its record may not count, oldest first.

    With steps in the record, those are the parts of the record's writer
    (*mark*) holding a seq from ``mark.parts`` on (a merged part that also
    holds counted points is read whole: the latest point is the same);
    without them (an older SDK), every part. Parts a merged part covers are
    left out.
    """
    if has_steps and mark is None:
        return []
    listed = [key for key in list_keys(backend, metrics_prefix(run_id)) if key.endswith(".parquet")]
    keys = drop_covered(listed, str)
    if not has_steps or mark is None:
        return sorted(keys)
    uncounted: list[tuple[int, str]] = []
    for key in keys:
        found = part_range(key)
        if found is not None and found.writer == mark.id and found.last >= mark.parts:
            uncounted.append((found.first, key))
    return [key for _, key in sorted(uncounted)]


def latest_in_parts(backend: Backend, keys: list[str], rank: int) -> Latest:
    """The latest point (highest step, then the last stored) of each metric *rank* logged.

    *keys* are read in order; a part that cannot be read is skipped with a
    warning naming it (resuming must not fail because of one bad file).
    """
    if not keys:
        return {}
    import pyarrow as pa  # loaded only when a part is read
    import pyarrow.compute as pc

    from pacha_sdk.storage.parts import latest_points

    filesystem, root = backend.arrow_filesystem()
    latest: Latest = {}
    for key in keys:
        try:
            table = _read_columns(f"{root}/{key}", filesystem)
        except (OSError, pa.ArrowException, ValueError) as error:
            logger.warning("pacha: skipping part %s: %s", location(backend, key), error)
            continue
        table = table.filter(pc.equal(table["rank"], rank))
        order = pc.sort_indices(table, sort_keys=[("name", "ascending"), ("step", "ascending")])
        merge_latest(latest, latest_points(table.take(order)))
    return latest


def _read_columns(path: str, filesystem: pyarrow.fs.FileSystem) -> pa.Table:
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=_COLUMNS, filesystem=filesystem)
