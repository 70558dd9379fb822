"""Which listed part files count: a merged part replaces the parts it covers.

Compaction (:mod:`pacha_sdk.storage.compaction`) writes a merged part
``part-<writer>-<first>-<last>.parquet`` holding exactly the points of that
writer's parts ``first..last``, then deletes them. Between the two steps,
or after a crash between them, both are listed. Every SDK reader therefore
passes its listing through :func:`drop_covered`: a part whose seq range lies
inside another listed part's range, of the same writer in the same
``run_id=`` folder, is left out. Decided from the names alone, so it costs
no request.

Ranges of one writer nest or are disjoint, as long as one compactor at a
time works on a run (the live run's own writer, or ``pacha compact`` on a
run that no longer runs). Ranges that overlap without nesting would mean
that rule was broken; :func:`overlapping` finds them, and both parts are
kept (no file-level choice could count their shared points once).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TypeVar

from pacha_sdk.storage.layout import PartRange, part_range

__all__ = ["covered_keys", "drop_covered", "overlapping"]

_Item = TypeVar("_Item")


def _groups(keys: Sequence[str]) -> dict[tuple[str, str], list[tuple[PartRange, str]]]:
    """The part keys by folder and writer, each group sorted by first seq, widest first."""
    groups: dict[tuple[str, str], list[tuple[PartRange, str]]] = defaultdict(list)
    for key in dict.fromkeys(keys):
        found = part_range(key)
        if found is not None:
            groups[(key.rpartition("/")[0], found.writer)].append((found, key))
    for entries in groups.values():
        entries.sort(key=lambda entry: (entry[0].first, -entry[0].last, entry[1]))
    return groups


def covered_keys(keys: Sequence[str]) -> set[str]:
    """The keys among *keys* whose seq range another listed part of their writer covers."""
    covered: set[str] = set()
    for entries in _groups(keys).values():
        reach = -1
        for found, key in entries:
            if found.last <= reach:
                covered.add(key)
            reach = max(reach, found.last)
    return covered


def overlapping(keys: Sequence[str]) -> list[tuple[str, str]]:
    """Pairs of listed parts of one writer whose ranges overlap without one covering the other."""
    pairs: list[tuple[str, str]] = []
    for entries in _groups(keys).values():
        widest: tuple[PartRange, str] | None = None
        for found, key in entries:
            if widest is not None and found.first <= widest[0].last < found.last:
                pairs.append((widest[1], key))
            if widest is None or found.last > widest[0].last:
                widest = (found, key)
    return pairs


def drop_covered(items: Sequence[_Item], key: Callable[[_Item], str]) -> list[_Item]:
    """*items* (listed parts) without those a merged part among them covers, order kept."""
    covered = covered_keys([key(item) for item in items])
    if not covered:
        return list(items)
    return [item for item in items if key(item) not in covered]
