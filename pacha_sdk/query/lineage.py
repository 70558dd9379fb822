"""Lineage: which runs produced an artifact, and which runs used it.

A run records what it produced in ``artifacts`` (:meth:`Run.log_artifact`)
and what it consumed in ``extra.inputs`` (:meth:`Run.use_artifact`), each
entry ``{"content_hash", "name", "artifact_type"}``. :func:`lineage` reads
every ``run.json`` under the root (no Parquet file) and answers for one
artifact; ``inputs`` then leads one step upstream, so a chain such as data
-> model -> fine-tuned model is walked one :func:`lineage` call per step::

    step = pacha.lineage(finetuned_ref, uri=store)
    while step.inputs:
        step = pacha.lineage(step.inputs[0], uri=store)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from pacha_sdk.query.read import list_runs
from pacha_sdk.storage.blobs import content_hash_of
from pacha_sdk.storage.inputs import input_hashes

if TYPE_CHECKING:
    from pacha_sdk.models import ArtifactReference

__all__ = ["Lineage", "lineage"]


class Lineage(BaseModel):
    """Where one artifact came from and where it went, as lists of run ids (oldest first)."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True, defer_build=True)

    content_hash: str
    """The artifact's BLAKE3 hex digest."""
    produced_by: list[str] = Field(default_factory=list)
    """Runs that logged the artifact (:meth:`Run.log_artifact`)."""
    used_by: list[str] = Field(default_factory=list)
    """Runs that consumed the artifact (:meth:`Run.use_artifact`)."""
    inputs: list[str] = Field(default_factory=list)
    """Content hashes of the artifacts the producing runs used: one step upstream."""


def lineage(
    ref_or_hash: ArtifactReference | str,
    *,
    uri: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Lineage:
    """Which runs in the store produced and used an artifact.

    Reads every run record (like :func:`list_runs`, no Parquet), archived
    runs included (deleted ones are not); a run that logged or used the
    artifact several times is listed once. An artifact no run mentions gives
    empty lists, not an error.
    """
    digest = content_hash_of(ref_or_hash)
    records = sorted(
        list_runs(uri=uri, storage_options=storage_options, archived=None),
        key=lambda record: record.started_at,
    )
    produced_by: list[str] = []
    used_by: list[str] = []
    inputs: dict[str, None] = {}
    for record in records:
        if any(ref.content_hash == digest for ref in record.artifacts):
            produced_by.append(str(record.run_id))
            inputs.update(dict.fromkeys(h for h in input_hashes(record) if h != digest))
        if digest in input_hashes(record):
            used_by.append(str(record.run_id))
    return Lineage(
        content_hash=digest, produced_by=produced_by, used_by=used_by, inputs=list(inputs)
    )
