"""Records of what people do to runs after the fact: edits, and deletions.

* :class:`RunAnnotation` is one edit (tags, a note, a new name, archived or
  not), stored create-only as ``runs/<id>/annotations/<time>-<uuid>.json``.
  A live run's writer replaces ``run.json`` at every flush, so an edit
  written into it would be lost; kept beside it and folded over it when
  read (:meth:`RunAnnotation.apply_to`), it survives, and two people
  editing at once both land.
* :class:`DeletedRun` is the deletion record of a run in the trash,
  ``trash/<id>/deleted.json``: written before anything moves, it lists
  every key the deletion moves, so a deletion killed halfway can be
  finished or undone by running it again.
"""

from __future__ import annotations

from enum import Enum

from pydantic import Field

from pacha_sdk.models._base import Model, RunId, UtcDatetime, format_timestamp, utc_now
from pacha_sdk.models.experiment import ExperimentRun  # noqa: TC001 - a pydantic field type

__all__ = ["DeletedRun", "DeletionState", "RunAnnotation"]


class RunAnnotation(Model, frozen=True):
    """One edit of a run's tags, note, name or archived flag.

    Annotations fold over ``run.json`` in key order (time, then a random
    UUID): a later edit wins over an earlier one and over what the run
    itself wrote. Tags fold as a set: each edit removes the names in
    :attr:`remove_tags`, then sets those in :attr:`add_tags`, so one
    person's tag never erases another's. The note is replaced whole
    (the empty string clears it), as W&B's and MLflow's single notes field.
    Folding is idempotent: folding twice gives what folding once does.
    """

    run_id: RunId
    """The run edited."""
    created_at: UtcDatetime = Field(default_factory=utc_now)
    """When the edit was made (also the start of its key)."""
    author: str | None = None
    """``user@host`` of whoever made it, when known."""
    add_tags: dict[str, str] = Field(default_factory=dict)
    """Tags set, name to value (``""`` for a plain label)."""
    remove_tags: list[str] = Field(default_factory=list)
    """Names of tags removed."""
    note: str | None = None
    """The run's new note; ``""`` clears it; ``None`` leaves it."""
    name: str | None = None
    """The run's new display name; ``None`` leaves it."""
    archived: bool | None = None
    """Whether the run is now archived (hidden from listings); ``None`` leaves it."""

    def apply_to(self, record: ExperimentRun) -> None:
        """Fold this edit into *record* (its ``extra``), in place."""
        extra = record.extra
        if self.add_tags or self.remove_tags:
            tags: dict[str, str] = record.tags
            for tag in self.remove_tags:
                tags.pop(tag, None)
            tags.update(self.add_tags)
            extra["tags"] = dict(tags)
        if self.note is not None:
            if self.note:
                extra["note"] = self.note
            else:
                extra.pop("note", None)
        if self.name is not None:
            extra["name"] = self.name
        if self.archived is not None:
            if self.archived:
                extra["archived"] = True
            else:
                extra.pop("archived", None)
        extra["edited_at"] = format_timestamp(self.created_at)
        if self.author is not None:
            extra["edited_by"] = self.author


class DeletionState(str, Enum):
    """Where a run in the trash stands."""

    DELETING = "deleting"
    """Its files are being moved to the trash, or a move was interrupted."""
    DELETED = "deleted"
    """Every file it had is in the trash."""
    RESTORING = "restoring"
    """Its files are being moved back, or a restore was interrupted."""

    def __str__(self) -> str:
        return self.value


class DeletedRun(Model):
    """A run in the trash: its deletion record, ``trash/<id>/deleted.json``.

    Written (replaced) before each step that moves files: at the start of a
    deletion (state ``deleting``, listing every key it will move), once
    everything is moved (``deleted``), and at the start of a restore
    (``restoring``). The record goes away when a restore has put every key
    back, or when ``gc`` empties the trash.
    """

    run_id: RunId
    """The deleted run."""
    deleted_at: UtcDatetime = Field(default_factory=utc_now)
    """When the deletion started; the trash's retention counts from here."""
    deleted_by: str | None = None
    """``user@host`` of whoever deleted it, when known."""
    state: DeletionState = DeletionState.DELETING
    """Whether the move to the trash, or back, is finished."""
    keys: list[str] = Field(default_factory=list)
    """The original keys of every file moved to the trash (``runs/...``, ``metrics/...``)."""
    record: ExperimentRun | None = Field(default=None, exclude=True)
    """The run's record as it was deleted (edits folded in); filled when read, never stored."""
