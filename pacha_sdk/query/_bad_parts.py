"""Part files that cannot be read: what makes one bad, and what a read does about it.

Anything can end up under ``metrics/``: a part file cut short by a failing
disk or an interrupted copy, an empty file, a Parquet file another tool
wrote. Left alone, pyarrow fails the whole read on the first of them (or,
for a file of another schema, returns rows of nulls). A ``.parquet`` file in
a ``run_id=`` folder (:func:`~pacha_sdk.query.part_files.list_part_files`
leaves every other name out) is bad when:

* it is not a Parquet file pyarrow can open (empty, cut short, another format);
* its columns are not those of :data:`~pacha_sdk.storage.schema.METRIC_SCHEMA`
  (:func:`schema_problem`; a dictionary-encoded column counts as its values).

What happens is the read's *bad_parts* policy (:func:`bad_part`): ``"skip"``
leaves the file out with one warning naming it, ``"raise"`` raises
:class:`~pacha_sdk.exceptions.InvalidPartError` naming it. Only what the file
holds makes it bad: an error of the store itself (an :class:`OSError`) is
raised as it is, never taken for a bad file.

The readers call this module: :mod:`pacha_sdk.query.scan` for each part it
decodes, and :func:`readable_dataset` for a lazy dataset, whose footers it
reads once, side by side (:data:`CHECK_THREADS`), and keeps on the
fragments, so that the scans do not fetch them again.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Literal

from pacha_sdk.exceptions import InvalidPartError
from pacha_sdk.storage.schema import schema_problem

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds

__all__ = [
    "CHECK_THREADS",
    "BadParts",
    "bad_part",
    "check_bad_parts",
    "read_table",
    "readable_dataset",
    "schema_problem",
    "without_path",
]

BadParts = Literal["raise", "skip"]
"""What a read does with a part file that is not readable."""

CHECK_THREADS = 16
"""Most part-file footers read at once."""

Locate = Callable[[str], str]
"""Turns a path on a dataset's filesystem into the location messages show."""


def check_bad_parts(value: object) -> BadParts:
    """*value* if it is ``"raise"`` or ``"skip"``; else :class:`ValueError` naming it."""
    if value not in ("raise", "skip"):
        raise ValueError(f"bad_parts must be 'raise' or 'skip', got {value!r}")
    return value


def bad_part(location: str, problem: str, bad_parts: BadParts) -> None:
    """Raise :class:`InvalidPartError` for the part at *location*, or warn that it is skipped."""
    if bad_parts == "raise":
        raise InvalidPartError(location, problem)
    warnings.warn(
        f"pacha: skipping {location}: not a readable metric part file ({problem})",
        UserWarning,
        stacklevel=5,
    )


def without_path(message: str) -> str:
    """Pyarrow's message without its ``Could not open Parquet input source '<path>': `` lead."""
    lead, quote, rest = message.partition("': ")
    return rest if quote and lead.startswith("Could not open") else message


def _problem(fragment: ds.ParquetFileFragment) -> str | None:
    """Why *fragment* is not a readable part file, or None; a store error is raised."""
    import pyarrow as pa

    try:
        fragment.ensure_complete_metadata()  # reads the footer once; the scans reuse it
        physical = fragment.physical_schema
    except pa.ArrowInvalid as error:  # empty, cut short, not Parquet: the file, not the store
        return without_path(str(error))
    return schema_problem(physical)


def _rebuilt(dataset: ds.FileSystemDataset, fragments: list[ds.Fragment]) -> ds.FileSystemDataset:
    import pyarrow.dataset as ds

    return ds.FileSystemDataset(
        fragments, schema=dataset.schema, format=dataset.format, filesystem=dataset.filesystem
    )


def readable_dataset(
    dataset: ds.FileSystemDataset, *, bad_parts: BadParts, locate: Locate
) -> ds.FileSystemDataset:
    """*dataset* with only its readable part files (the others skipped, or raised for)."""
    fragments = list(dataset.get_fragments())
    if not fragments:
        return dataset
    with ThreadPoolExecutor(min(CHECK_THREADS, len(fragments))) as pool:
        problems = list(pool.map(_problem, fragments))
    for fragment, problem in zip(fragments, problems):
        if problem is not None:
            bad_part(locate(fragment.path), problem, bad_parts)
    return _rebuilt(dataset, [f for f, problem in zip(fragments, problems) if problem is None])


def read_table(
    dataset: ds.FileSystemDataset,
    *,
    filter: ds.Expression | None,
    bad_parts: BadParts,
    locate: Locate,
) -> pa.Table:
    """``dataset.to_table(filter=...)``; a file whose data cannot be decoded is handled as bad.

    :func:`readable_dataset` catches nearly every bad file before the read;
    this catches the rest (pages damaged past an intact footer) by reading
    file by file once the whole read failed.
    """
    import pyarrow as pa

    try:
        return dataset.to_table(filter=filter)
    except pa.ArrowInvalid:
        pass
    good: list[ds.Fragment] = []
    for fragment in dataset.get_fragments():
        try:
            fragment.to_table(schema=dataset.schema, filter=filter)
        except pa.ArrowInvalid as error:
            bad_part(locate(fragment.path), without_path(str(error)), bad_parts)
        else:
            good.append(fragment)
    return _rebuilt(dataset, good).to_table(filter=filter)
