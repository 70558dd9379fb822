"""What an import tells its caller: the report and the progress callback."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pacha_sdk.models import RunId

__all__ = ["ImportProgress", "ImportReport", "SkippedRun"]

ImportProgress = Callable[[int, int, int], None]
"""Called as ``progress(runs_done, runs_total, points_written)`` after each run."""


@dataclass(frozen=True)
class SkippedRun:
    """A source run that was not imported, and why (the rest of the import went on)."""

    source_id: str
    """The run as the source names it: an MLflow run id, a TensorBoard run folder."""
    reason: str
    """Why it was skipped, in one line."""


@dataclass
class ImportReport:
    """What one import did: runs new, updated and unchanged, points, artifacts, skips.

    A second import of an unchanged source reports every run as unchanged
    and writes nothing. ``run_ids`` maps each source run to its pacha run id.
    """

    source: str
    """The source as given."""
    system: str
    """``"mlflow"`` or ``"tensorboard"``."""
    imported: list[RunId] = field(default_factory=list)
    """Runs that were not in the store before."""
    updated: list[RunId] = field(default_factory=list)
    """Runs already in the store that got new points, artifacts or record fields."""
    unchanged: list[RunId] = field(default_factory=list)
    """Runs already in the store as the source has them: nothing written."""
    points: int = 0
    """Metric points written (points already in the store are not counted again)."""
    artifacts: int = 0
    """Artifacts newly referenced by an imported run."""
    skipped: list[SkippedRun] = field(default_factory=list)
    """Source runs that could not be imported."""
    ignored: Counter[str] = field(default_factory=Counter)
    """What the source has that pacha does not import, counted by kind (histograms, images...)."""
    run_ids: dict[str, RunId] = field(default_factory=dict)
    """Source run id or folder → pacha run id."""

    @property
    def runs(self) -> int:
        """Runs imported, updated or unchanged."""
        return len(self.imported) + len(self.updated) + len(self.unchanged)

    def summary(self) -> str:
        """The report as one line, as ``pacha import`` prints it."""
        line = (
            f"{self.runs} run(s) from {self.system}: {len(self.imported)} new, "
            f"{len(self.updated)} updated, {len(self.unchanged)} unchanged; "
            f"{self.points} point(s), {self.artifacts} artifact(s) added"
        )
        if self.ignored:
            kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(self.ignored.items()))
            line += f"; not imported: {kinds}"
        if self.skipped:
            line += f"; {len(self.skipped)} run(s) skipped"
        return line

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON values (``pacha import --json``)."""
        return {
            "source": self.source,
            "system": self.system,
            "imported": list(self.imported),
            "updated": list(self.updated),
            "unchanged": list(self.unchanged),
            "points": self.points,
            "artifacts": self.artifacts,
            "skipped": [{"source_id": s.source_id, "reason": s.reason} for s in self.skipped],
            "ignored": dict(sorted(self.ignored.items())),
            "run_ids": dict(self.run_ids),
        }
