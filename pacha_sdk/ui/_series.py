"""One metric of one run, read from its part files with pruning and thinned for a chart.

A chart needs a few thousand points, a run may hold tens of millions. The
answer is read part file by part file and row group by row group, with only
the columns it needs, so memory is bounded by one row group (128 Ki rows)
plus what is kept:

* Row groups are chosen by their Parquet statistics: the writer clusters a
  part by metric name and sorts it by step, so ``name`` min/max skip the
  row groups of other metrics, ``step`` min/max skip what ``after_step``,
  ``min_step`` and ``max_step`` exclude, and ``rank`` min/max pick one
  rank of a distributed run. Footers are cached (part files are immutable), so a live chart polling
  a growing run opens only the new parts' footers.
* Thinning is M4 (:mod:`pacha_sdk.ui._thin`) over ``max_points // 4``
  buckets of the step range, applied to each row group as it is read and
  once more to what they kept.

NaN and infinite values are legal points (a diverging loss); they are never
a bucket's lowest or highest, but can be its first or last, and reach the
JSON answer as ``null`` (a gap in the chart).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs
import pyarrow.parquet as pq

from pacha_sdk.ui._thin import m4_rows, sorted_by_step

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence


__all__ = ["PartIndex", "Series", "SeriesQuery", "read_series"]

_COLUMNS = ["step", "value", "timestamp"]


class PartIndex:
    """What the part files say, cached: footers, and each row group's facts about a metric.

    Part files are never rewritten, so a footer or a count read once stays
    true; a part removed by compaction simply stops being listed. Both
    caches drop their least recently used entries past *size*.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._footers: OrderedDict[str, pq.FileMetaData] = OrderedDict()
        self._facts: OrderedDict[tuple[str, int, str], _Facts] = OrderedDict()
        self._lock = threading.Lock()

    def _remember(self, cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        with self._lock:
            cache[key] = value
            while len(cache) > self._size:
                cache.popitem(last=False)

    def _lookup(self, cache: OrderedDict[Any, Any], key: Any) -> Any:
        with self._lock:
            if key in cache:
                cache.move_to_end(key)
                return cache[key]
        return None

    def footer(self, filesystem: pyarrow.fs.FileSystem, path: str) -> pq.FileMetaData:
        """The footer of *path*, read once."""
        cached: pq.FileMetaData | None = self._lookup(self._footers, path)
        if cached is not None:
            return cached
        with filesystem.open_input_file(path) as source:
            metadata = pq.read_metadata(source)
        self._remember(self._footers, path, metadata)
        return metadata

    def facts(self, parts: _OpenParts, group: _Group, name: str) -> _Facts:
        """How many points of *name* the row group holds, and their step range.

        A group of that metric alone answers from its statistics; a group
        shared with other metrics is read once (the ``name`` and ``step``
        columns) and remembered.
        """
        if group.pure and group.step_min is not None and group.step_max is not None:
            return _Facts(group.rows, group.step_min, group.step_max)
        key = (group.path, group.index, name)
        cached: _Facts | None = self._lookup(self._facts, key)
        if cached is not None:
            return cached
        steps = _read(parts, group, SeriesQuery(name, 1), None, ["step"])["step"]
        facts = _Facts(len(steps), *(_bounds(steps) if len(steps) else (0, 0)))
        self._remember(self._facts, key, facts)
        return facts


@dataclass(frozen=True)
class _Facts:
    """Points of one metric in one row group: how many, lowest and highest step."""

    count: int
    low: int
    high: int


@dataclass(frozen=True)
class SeriesQuery:
    """What a chart asks for: one metric, at most *max_points*, in a step range.

    ``after_step`` (exclusive) is what a live chart polls with; ``min_step``
    and ``max_step`` (inclusive) are the window of a zoomed chart.
    """

    name: str
    max_points: int
    after_step: int | None = None
    min_step: int | None = None
    max_step: int | None = None
    rank: int | None = None

    @property
    def lowest(self) -> int | None:
        """The lowest step wanted (inclusive), if bounded below."""
        bounds = [b for b in (self.min_step, _after(self.after_step)) if b is not None]
        return max(bounds) if bounds else None

    def covers(self, low: int, high: int) -> bool:
        """Whether every step from *low* to *high* is wanted."""
        lowest = self.lowest
        return (lowest is None or low >= lowest) and (
            self.max_step is None or high <= self.max_step
        )

    def overlaps(self, low: int, high: int) -> bool:
        """Whether some step from *low* to *high* is wanted."""
        lowest = self.lowest
        return (lowest is None or high >= lowest) and (
            self.max_step is None or low <= self.max_step
        )


@dataclass
class _Group:
    """One row group that may hold points of the metric."""

    path: str
    index: int
    pure: bool
    """All its rows are the metric (statistics say so): no name filter needed."""
    rows: int
    step_min: int | None
    step_max: int | None
    rank: int | None


@dataclass
class Series:
    """The answer: parallel lists, plus what the chart needs to poll for more."""

    name: str
    rank: int | None
    step: list[int] = field(default_factory=list)
    value: list[float | None] = field(default_factory=list)
    timestamp: list[float] = field(default_factory=list)
    total: int = 0
    """Points in the range asked for, before thinning."""
    ranks: list[int] = field(default_factory=list)
    """Every rank that logged the metric."""

    def as_json(self) -> dict[str, Any]:
        """The API's JSON object; ``timestamp`` in Unix seconds."""
        return {
            "name": self.name,
            "rank": self.rank,
            "ranks": self.ranks,
            "step": self.step,
            "value": self.value,
            "timestamp": self.timestamp,
            "total": self.total,
            "downsampled": len(self.step) < self.total,
            "last_step": self.step[-1] if self.step else None,
        }


def _after(step: int | None) -> int | None:
    return None if step is None else step + 1


def _stats(metadata: pq.FileMetaData, group: int, column: int | None) -> Any:
    if column is None:
        return None
    stats = metadata.row_group(group).column(column).statistics
    return stats if stats is not None and stats.has_min_max else None


def _groups(metadata: pq.FileMetaData, path: str, name: str) -> Iterator[_Group]:
    """Row groups of one part that may hold *name*, with what their statistics tell."""
    names = metadata.schema.names
    where = {column: names.index(column) if column in names else None for column in names}
    for index in range(metadata.num_row_groups):
        name_stats = _stats(metadata, index, where.get("name"))
        if name_stats is not None and not name_stats.min <= name <= name_stats.max:
            continue
        step = _stats(metadata, index, where.get("step"))
        rank = _stats(metadata, index, where.get("rank"))
        yield _Group(
            path=path,
            index=index,
            pure=name_stats is not None and name_stats.min == name_stats.max == name,
            rows=metadata.row_group(index).num_rows,
            step_min=step.min if step is not None else None,
            step_max=step.max if step is not None else None,
            rank=rank.min if rank is not None and rank.min == rank.max else None,
        )


class _OpenParts:
    """The part files one request reads, each opened once and closed at the end."""

    def __init__(self, filesystem: pyarrow.fs.FileSystem, index: PartIndex) -> None:
        self.filesystem = filesystem
        self.index = index
        self._files: dict[str, tuple[Any, pq.ParquetFile]] = {}

    def parquet(self, path: str) -> pq.ParquetFile:
        if path not in self._files:
            source = self.filesystem.open_input_file(path)
            footer = self.index.footer(self.filesystem, path)
            self._files[path] = (source, pq.ParquetFile(source, metadata=footer))
        return self._files[path][1]

    def __enter__(self) -> _OpenParts:
        return self

    def __exit__(self, *exc: object) -> None:
        for source, _ in self._files.values():
            source.close()
        self._files.clear()


def _read(
    parts: _OpenParts,
    group: _Group,
    query: SeriesQuery,
    rank: int | None,
    columns: Sequence[str],
) -> pa.Table:
    """The metric's rows of one row group (only *columns*), filtered as *query* says."""
    wanted = list(columns)
    extra = [c for c in ("name",) if not group.pure] + (["rank"] if group.rank is None else [])
    parquet = parts.parquet(group.path)
    table = parquet.read_row_group(group.index, columns=list(dict.fromkeys(wanted + extra)))
    mask = None
    if not group.pure:
        mask = pc.equal(table["name"], query.name)
    if group.rank is None and rank is not None:
        by_rank = pc.equal(table["rank"], rank)
        mask = by_rank if mask is None else pc.and_(mask, by_rank)
    for bound, compare in ((query.lowest, pc.greater_equal), (query.max_step, pc.less_equal)):
        if bound is not None:
            inside = compare(table["step"], bound)
            mask = inside if mask is None else pc.and_(mask, inside)
    if mask is not None:
        table = table.filter(mask)
    return table.select(wanted)


def _bounds(steps: pa.ChunkedArray | pa.Array) -> tuple[int, int]:
    bounds = pc.min_max(steps)
    return bounds["min"].as_py(), bounds["max"].as_py()


def _extent(
    parts: _OpenParts,
    groups: list[tuple[_Group, _Facts]],
    query: SeriesQuery,
    rank: int | None,
) -> tuple[int, int, int]:
    """Exact point count and step range of the metric in *groups*, within the query's range.

    From the cached facts, except for a group that straddles a bound (the
    one a live chart polls into, the ends of a zoom window), whose steps are read.
    """
    count, low, high = 0, None, None
    for group, facts in groups:
        if query.covers(facts.low, facts.high):
            rows, first, last = facts.count, facts.low, facts.high
        else:
            steps = _read(parts, group, query, rank, ["step"])["step"]
            if len(steps) == 0:
                continue
            rows, (first, last) = len(steps), _bounds(steps)
        count += rows
        low = first if low is None else min(low, first)
        high = last if high is None else max(high, last)
    return count, low or 0, high or 0


def read_series(
    filesystem: pyarrow.fs.FileSystem,
    paths: Sequence[str],
    query: SeriesQuery,
    index: PartIndex,
) -> Series | None:
    """The metric *query* names, thinned to ``query.max_points``; ``None`` if no part has it.

    With ``after_step``, only points at higher steps count (a live chart
    asking for what it does not have), with ``min_step``/``max_step`` only
    those in the window; an empty answer is then normal.
    Without ``rank``, the lowest rank that logged the metric is read.
    """
    with _OpenParts(filesystem, index) as parts:
        return _read_series(parts, paths, query)


def _read_series(parts: _OpenParts, paths: Sequence[str], query: SeriesQuery) -> Series | None:
    index = parts.index
    candidates = [
        (group, facts)
        for path in paths
        for group in _groups(index.footer(parts.filesystem, path), path, query.name)
        if (facts := index.facts(parts, group, query.name)).count
    ]
    if not candidates:
        return None
    ranks = sorted({group.rank for group, _ in candidates if group.rank is not None})
    rank = query.rank if query.rank is not None else (ranks[0] if ranks else None)
    groups = [
        (group, facts)
        for group, facts in candidates
        if (rank is None or group.rank is None or group.rank == rank)
        and query.overlaps(facts.low, facts.high)
    ]
    series = Series(name=query.name, rank=rank, ranks=ranks)
    if not groups:
        return series
    total, low, high = _extent(parts, groups, query, rank)
    thin = total > query.max_points
    buckets = max(1, query.max_points // 4)
    pieces = []
    for group, _ in groups:
        table = _read(parts, group, query, rank, _COLUMNS)
        if table.num_rows:
            table = sorted_by_step(table)
            pieces.append(m4_rows(table, low, high, buckets) if thin else table)
    if not pieces:
        return series
    table = sorted_by_step(pa.concat_tables(pieces).combine_chunks())
    if thin and len(pieces) > 1:
        table = m4_rows(table, low, high, buckets)
    values = table["value"]
    finite = pc.if_else(pc.is_finite(values), values, pa.scalar(None, pa.float64()))
    series.step = table["step"].to_pylist()
    series.value = finite.to_pylist()
    series.timestamp = pc.divide(table["timestamp"].cast(pa.int64()), 1_000_000.0).to_pylist()
    series.total = total
    return series
