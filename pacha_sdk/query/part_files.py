"""Which metric part files hold a set of runs' points: decided from listings alone.

Every SDK reader of points (``read_metrics``, ``metrics_dataset``, the CLI
through them) learns its files here and nowhere else, so a rule about which
listed parts count — such as dropping parts that a merged part covers — is
applied once, in :func:`list_part_files`.

Listing ``metrics/`` once is cheaper than asking a pyarrow dataset to
discover it: discovery lists every ``run_id=`` folder with its own request,
one after another, where one recursive listing returns 1,000 keys per
request. A handful of runs is listed folder by folder instead, side by side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from pacha_sdk.storage import records
from pacha_sdk.storage.coverage import drop_covered
from pacha_sdk.storage.layout import METRICS_DIR, metrics_prefix, run_id_from_part_key

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from pacha_sdk.backends import Backend, StoredObject
    from pacha_sdk.models import RunId

__all__ = ["FOLDER_LISTINGS_UP_TO", "PartFile", "list_part_files"]

FOLDER_LISTINGS_UP_TO = 16
"""Up to this many runs are listed folder by folder; more, with one listing of ``metrics/``."""


class PartFile(NamedTuple):
    """One metric part file as its listing showed it."""

    run_id: RunId
    """The run whose ``run_id=`` folder holds it."""
    key: str
    """Its key under the store's root."""
    size: int | None
    """Its size in bytes, if the listing said."""


def list_part_files(backend: Backend, run_ids: Sequence[RunId] | None = None) -> list[PartFile]:
    """The part files of *run_ids* (of every run if ``None``), run by run, in key order.

    Runs come in the order of *run_ids* (else by key). Only ``*.parquet``
    files in a ``run_id=<uuid>`` folder count; names starting with ``.`` or
    ``_`` are left out, as pyarrow datasets leave them, and so is a part a
    merged part covers (:func:`~pacha_sdk.storage.coverage.drop_covered`:
    while a compaction runs, or after one was killed, both are listed).
    """
    if run_ids is not None and len(run_ids) <= FOLDER_LISTINGS_UP_TO:
        listings = records.list_each(backend, [metrics_prefix(run_id) for run_id in run_ids])
        return _parts(item for listing in listings for item in listing)
    parts = _parts(records.list_objects(backend, METRICS_DIR))
    if run_ids is None:
        return parts
    position = {run_id: index for index, run_id in enumerate(run_ids)}
    wanted = [part for part in parts if part.run_id in position]
    return sorted(wanted, key=lambda part: position[part.run_id])  # stable: keys stay sorted


def _parts(listed: Iterable[StoredObject]) -> list[PartFile]:
    """The listed objects that are part files, with their run ids."""
    parts: list[PartFile] = []
    for item in listed:
        name = item.key.rsplit("/", 1)[-1]
        if not name.endswith(".parquet") or name.startswith((".", "_")):
            continue
        run_id = run_id_from_part_key(item.key)
        if run_id is not None:
            parts.append(PartFile(run_id, item.key, item.size))
    return drop_covered(parts, lambda part: part.key)
