"""A run's artifacts: files it stores as outputs and the ones it records as inputs.

Outputs are stored content-addressed (:mod:`pacha_sdk.storage.blobs`) and
listed in the record's ``artifacts``; inputs go to ``extra.inputs`` for
:func:`pacha_sdk.lineage`. Only the process that owns the run's record
(rank 0) records either.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pacha_sdk.exceptions import RunStateError
from pacha_sdk.storage.blobs import store_artifact
from pacha_sdk.storage.inputs import add_input
from pacha_sdk.tracking._view import RunView

if TYPE_CHECKING:
    from pacha_sdk.models import ArtifactReference

__all__ = ["RunArtifacts"]


class RunArtifacts(RunView):
    """Artifact methods of :class:`~pacha_sdk.tracking.run.Run`."""

    def log_artifact(
        self,
        path_or_bytes: str | os.PathLike[str] | bytes | bytearray | memoryview,
        *,
        artifact_type: str = "model",
        name: str | None = None,
    ) -> ArtifactReference:
        """Store a file (or bytes) content-addressed and record it as this run's output.

        The content is streamed, stored once per store under its BLAKE3 hash
        (a blob already there is not uploaded again), and its
        :class:`ArtifactReference` is appended to the run's ``artifacts``.
        *name* defaults to the file's name (required for bytes). Unlike
        metrics, a store that fails here raises :class:`StoreError`: the
        artifact is not stored. In distributed training only rank 0, which
        owns the run's record, logs artifacts; other ranks get
        :class:`RunStateError`, and so does a forked child process.
        """
        self._require_running("log_artifact")
        self._require_record_owner("log artifacts")
        if self._writes_rank_record:
            raise RunStateError(
                f"rank {self._rank} of run {self.run_id} cannot log artifacts: "
                "rank 0 owns the run's record; log them from rank 0"
            )
        ref = store_artifact(self._backend, path_or_bytes, artifact_type=artifact_type, name=name)
        with self._keeper.lock:
            added = ref not in self._record.artifacts
            if added:
                self._record.artifacts.append(ref)
        if added:
            self._keeper.write_soon()  # outside the lock: a store call may take a while
        return ref

    def use_artifact(self, ref_or_hash: ArtifactReference | str) -> None:
        """Record that this run consumed an artifact, for :func:`pacha_sdk.query.lineage`.

        The entry goes to ``extra.inputs`` (once per content hash); a bare hash
        records no name or type. In distributed training rank 0 records the
        run's inputs; on other ranks (which run the same code) this does nothing.
        A forked child process gets :class:`RunStateError`.
        """
        self._require_running("use_artifact")
        self._require_record_owner("record inputs")
        if self._writes_rank_record:
            return
        with self._keeper.lock:
            added = add_input(self._record, ref_or_hash)
        if added:
            self._keeper.write_soon()  # outside the lock: a store call may take a while
