"""The artifacts a run used: the ``extra.inputs`` of its record.

:meth:`pacha_sdk.Run.use_artifact` adds to them and
:func:`pacha_sdk.lineage` and :func:`pacha_sdk.gc` read them, so they live
on the storage side, where both the live run and the read side may import
them. Each entry is ``{"content_hash", "name", "artifact_type"}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pacha_sdk.storage.blobs import content_hash_of

if TYPE_CHECKING:
    from pydantic import JsonValue

    from pacha_sdk.models import ArtifactReference, ExperimentRun

__all__ = ["INPUTS_KEY", "add_input", "input_hashes"]

INPUTS_KEY = "inputs"
"""Key in ``ExperimentRun.extra`` of the artifacts a run used."""


def add_input(record: ExperimentRun, ref_or_hash: ArtifactReference | str) -> bool:
    """Add an artifact to *record*'s ``extra.inputs``; return whether it was new.

    The entry is ``{"content_hash", "name", "artifact_type"}``, name and type
    only when known (a bare hash gives neither).
    """
    digest = content_hash_of(ref_or_hash)
    if digest in input_hashes(record):
        return False
    entry: dict[str, JsonValue] = {"content_hash": digest}
    if not isinstance(ref_or_hash, str):
        entry["name"] = ref_or_hash.name
        entry["artifact_type"] = ref_or_hash.artifact_type
    inputs = record.extra.get(INPUTS_KEY)
    record.extra[INPUTS_KEY] = [*inputs, entry] if isinstance(inputs, list) else [entry]
    return True


def input_hashes(record: ExperimentRun) -> list[str]:
    """Content hashes in a run's ``extra.inputs``, in the order they were used."""
    entries = record.extra.get(INPUTS_KEY)
    if not isinstance(entries, list):
        return []
    hashes = (entry.get("content_hash") for entry in entries if isinstance(entry, dict))
    return [value for value in hashes if isinstance(value, str)]
