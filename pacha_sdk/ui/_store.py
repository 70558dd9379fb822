"""Everything ``pacha ui`` reads from the store, in one place.

The web app reads through the public read side (:mod:`pacha_sdk.query`)
and, for metric points, straight from the part files with pyarrow so that
it can prune by row-group statistics (:mod:`pacha_sdk.ui._series`).

:class:`StoreReader` only reads. :class:`StoreCurator` holds the UI's only
writes, and makes them through the curation API
(:mod:`pacha_sdk.query.curation`) and nothing else: an edit is a new,
create-only annotation file, a deletion or restore moves a run's files to
or from ``trash/``. The UI never writes ``run.json``, a part file or an
artifact, and ``pacha ui --read-only`` has no curator at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pacha_sdk.env import resolve_uri
from pacha_sdk.exceptions import StoreError
from pacha_sdk.query._store import open_store
from pacha_sdk.query.artifacts import open_artifact
from pacha_sdk.query.curation import annotate, delete_run, list_deleted_runs, restore_run
from pacha_sdk.query.read import list_runs, load_rank_records, load_run
from pacha_sdk.storage.inputs import input_hashes
from pacha_sdk.storage.layout import RUNS_DIR, metrics_prefix

if TYPE_CHECKING:
    import io

    import pyarrow.fs
    from pydantic import BaseModel

    from pacha_sdk.backends import Backend
    from pacha_sdk.models import DeletedRun, ExperimentRun, RunId

__all__ = ["CONSOLE_LIMIT", "Edit", "StoreCurator", "StoreReader"]

CONSOLE_LIMIT = 2 * 1024 * 1024
"""Most bytes of captured console output the run page shows (the end of the log)."""


class StoreReader:
    """Read-only access to one store (``--uri`` and ``--storage-option`` of ``pacha ui``)."""

    def __init__(self, uri: str | None, storage_options: Mapping[str, Any] | None) -> None:
        self.uri = resolve_uri(uri)
        self.storage_options = dict(storage_options) if storage_options else None

    @cached_property
    def backend(self) -> Backend:
        """The store's backend, opened once (its client is thread-safe for reads).

        A local store that is not there is :class:`StoreNotFoundError`, as
        for every other reader.
        """
        return open_store(self.uri, self.storage_options)

    @cached_property
    def arrow(self) -> tuple[pyarrow.fs.FileSystem, str]:
        """The store as a pyarrow filesystem and the root path on it."""
        return self.backend.arrow_filesystem()

    def options(self) -> dict[str, Any]:
        """``uri`` and ``storage_options``, as the public functions take them."""
        return {"uri": self.uri, "storage_options": self.storage_options}

    def check(self) -> None:
        """Fail early (:class:`StoreError`) if the store cannot be listed at all."""
        try:
            self.backend.list(RUNS_DIR)
        except StoreError:
            raise
        except OSError as error:
            raise StoreError(f"could not read {self.uri}: {error}") from error

    def runs(self, *, archived: bool | None = False) -> list[ExperimentRun]:
        """Run records, newest first: archived ones only if *archived* (``None``: every run)."""
        return list_runs(archived=archived, **self.options())

    def deleted_runs(self) -> list[DeletedRun]:
        """The runs in the trash, most recently deleted first, each with its record."""
        return list_deleted_runs(**self.options())

    def run(self, run_id: RunId) -> ExperimentRun:
        """One run record; :class:`RunNotFoundError` if absent."""
        return load_run(str(run_id), **self.options())

    def rank_records(self, run_id: RunId) -> Sequence[BaseModel]:
        """The records of ranks above 0 (empty for a single-process run)."""
        return load_rank_records(str(run_id), **self.options())

    def part_paths(self, run_id: RunId) -> list[str]:
        """Paths (on :attr:`arrow`'s filesystem) of the run's metric part files, sorted."""
        prefix = metrics_prefix(run_id)
        try:
            keys = self.backend.list(prefix)
        except FileNotFoundError:
            keys = []
        except OSError as error:
            raise StoreError(f"could not list {self.uri}/{prefix}: {error}") from error
        root = self.arrow[1]
        return sorted(f"{root}/{key}" for key in keys if key.endswith(".parquet"))

    def open_artifact(self, content_hash: str) -> io.BufferedReader:
        """A stored blob, verified against its hash as it is read."""
        return open_artifact(content_hash, **self.options())

    def run_lineage(self, record: ExperimentRun) -> dict[str, list[dict[str, Any]]]:
        """What *record* produced and used, each artifact with the runs at its other end.

        ``produced``: the run's artifacts, each with ``used_by``; ``used``: its
        ``extra.inputs`` entries, each with ``produced_by``; runs as
        ``{"run_id", "name"}``, oldest first. One listing of the store, as
        :func:`pacha_sdk.lineage` makes for one artifact.
        """
        producers: dict[str, list[dict[str, Any]]] = {}
        users: dict[str, list[dict[str, Any]]] = {}
        for other in sorted(self.runs(archived=None), key=lambda r: r.started_at):
            link = {"run_id": str(other.run_id), "name": other.name}
            for digest in dict.fromkeys(ref.content_hash for ref in other.artifacts):
                producers.setdefault(digest, []).append(link)
            for digest in dict.fromkeys(input_hashes(other)):
                users.setdefault(digest, []).append(link)
        produced = [
            {**ref.model_dump(mode="json"), "used_by": users.get(ref.content_hash, [])}
            for ref in record.artifacts
        ]
        inputs = record.extra.get("inputs")
        entries = [e for e in inputs if isinstance(e, dict)] if isinstance(inputs, list) else []
        used = [
            {**entry, "produced_by": producers.get(str(entry.get("content_hash")), [])}
            for entry in entries
        ]
        return {"produced": produced, "used": used}

    def console_output(self, record: ExperimentRun) -> str | None:
        """The end of the run's captured console output, or ``None`` when it has none.

        Only a log inside the run's own folder of this store is read, whatever
        ``log_uri`` says, so a record cannot point the UI at other files.
        """
        prefix = f"{self.backend.uri.rstrip('/')}/"
        log_uri = record.log_uri
        if not log_uri or not log_uri.startswith(prefix):
            return None
        key = log_uri[len(prefix) :]
        if not key.startswith(f"{RUNS_DIR}/{record.run_id}/") or ".." in key.split("/"):
            return None
        try:
            with self.backend.open_read(key) as log:
                size = log.seek(0, 2)
                log.seek(max(0, size - CONSOLE_LIMIT))
                data = log.read()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StoreError(f"could not read {self.uri}/{key}: {error}") from error
        return data.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Edit:
    """One edit asked of the UI: the keywords of :func:`pacha_sdk.annotate`."""

    add_tags: dict[str, str] | list[str] = field(default_factory=list)
    """Tags to set: a ``{name: value}`` mapping, or names (valued ``""``)."""
    remove_tags: list[str] = field(default_factory=list)
    """Names of tags to remove."""
    note: str | None = None
    """The new note (``""`` clears it); ``None`` leaves it."""
    name: str | None = None
    """The new display name; ``None`` leaves it."""
    archived: bool | None = None
    """Archive (``True``) or unarchive (``False``); ``None`` leaves it."""


class StoreCurator:
    """The UI's writes, all through the curation API: annotations and trash moves.

    Args:
        reader: the store being shown; the curator writes to the same one.
    """

    def __init__(self, reader: StoreReader) -> None:
        self.reader = reader

    def annotate(self, run_id: RunId, edit: Edit) -> ExperimentRun:
        """Store *edit* as a new annotation file; the record with it folded in."""
        return annotate(
            str(run_id),
            add_tags=edit.add_tags,
            remove_tags=edit.remove_tags,
            note=edit.note,
            name=edit.name,
            archived=edit.archived,
            **self.reader.options(),
        )

    def delete(self, run_id: RunId, *, force: bool) -> DeletedRun:
        """Move the run to the trash (a live run only if *force*)."""
        return delete_run(str(run_id), force=force, **self.reader.options())

    def restore(self, run_id: RunId) -> ExperimentRun:
        """Move the run back from the trash; its record."""
        return restore_run(str(run_id), **self.reader.options())
