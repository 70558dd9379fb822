"""How runs and values read as text: shared by the command line and the HTML report.

Pure functions over :class:`ExperimentRun` records, no I/O, so ``pacha runs
list`` and ``pacha report`` show a run the same way: an 8-character id
prefix, times in UTC with a ``Z``, durations as ``1h 02m``, numbers with six
significant digits, values in table cells cut to :data:`CELL_CHARS`
characters, and a stale ``running`` run marked as such.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pacha_sdk.models import RunStatus

if TYPE_CHECKING:
    from pacha_sdk.models import DeletedRun, ExperimentRun

__all__ = [
    "CELL_CHARS",
    "SHORT_ID_LENGTH",
    "deleted_overview",
    "format_duration",
    "format_time",
    "format_value",
    "hparam_order",
    "jsonable",
    "main_metrics",
    "run_label",
    "run_overview",
    "short_id",
    "status_text",
    "varying_hparams",
]

SHORT_ID_LENGTH = 8
"""Characters of a run id shown in tables; any unique prefix is accepted back."""

CELL_CHARS = 32
"""Longest value shown in a table cell (``runs list``, the report); longer ones end in ``…``."""

SYSTEM_PREFIX = "system/"
"""Metrics the SDK samples itself; never picked as a run's main metrics."""

_DEFAULT_HPARAMS = ("learning_rate", "batch_size", "epochs")
_NAMED_HPARAMS = (*_DEFAULT_HPARAMS, "weight_decay", "max_grad_norm", "warmup_steps")


def short_id(run_id: str) -> str:
    """The first :data:`SHORT_ID_LENGTH` characters of a run id."""
    return str(run_id)[:SHORT_ID_LENGTH]


def run_label(record: ExperimentRun) -> str:
    """``name (1a2b3c4d)``, or the short id alone for an unnamed run."""
    return f"{record.name} ({short_id(record.run_id)})" if record.name else short_id(record.run_id)


def status_text(record: ExperimentRun) -> str:
    """The status, with ``running`` runs whose heartbeat stopped shown as ``running (stale)``."""
    if record.status is RunStatus.RUNNING and record.is_stale:
        return "running (stale)"
    return record.status.value


def format_time(moment: datetime | None) -> str:
    """``2026-05-09 07:35:12Z`` (UTC, to the second), or ``-``."""
    if moment is None:
        return "-"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def format_duration(seconds: float | None) -> str:
    """``42s``, ``3m 05s``, ``2h 03m`` or ``1d 04h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def format_value(value: object, *, max_chars: int | None = None) -> str:
    """A hyperparameter or metric value as short text; ``None`` (a non-finite latest) as ``nan``.

    ``run.json`` stores a NaN or infinite latest value as ``null`` (strict
    JSON), so the record cannot tell which of the three it was. With
    *max_chars*, a longer text is cut to that many characters, the last one
    ``…`` (a list of 200 values in a table cell).
    """
    text = _value_text(value)
    if max_chars is not None and len(text) > max_chars:
        return text[: max_chars - 1] + "…"
    return text


def _value_text(value: object) -> str:
    if value is None:
        return "nan"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ", ".join(_value_text(item) for item in value) + "]"
    return str(value)


def hparam_order(names: Iterable[str]) -> list[str]:
    """Names once each: pacha's named fields first, in its order, then the rest alphabetically."""
    unique = set(names)
    return [n for n in _NAMED_HPARAMS if n in unique] + sorted(unique - set(_NAMED_HPARAMS))


def varying_hparams(records: Sequence[ExperimentRun], limit: int = 3) -> list[str]:
    """Up to *limit* hyperparameters whose values differ among *records* (the telling ones).

    pacha's named fields come first, then custom ones alphabetically. When
    nothing differs (one run, or a sweep of one), the learning rate, batch
    size and epochs are shown instead.
    """
    flats = [record.hyperparameters.as_flat_dict() for record in records]
    names = hparam_order(name for flat in flats for name in flat)
    varying = [
        name
        for name in names
        if len({json.dumps(flat.get(name), sort_keys=True) for flat in flats}) > 1
    ]
    return (varying or [n for n in _DEFAULT_HPARAMS if records])[:limit]


def main_metrics(records: Sequence[ExperimentRun], limit: int = 3) -> list[str]:
    """Up to *limit* metric names most runs have a latest value of (``system/*`` left out)."""
    counts = Counter(
        name for record in records for name in record.summary if not name.startswith(SYSTEM_PREFIX)
    )
    return [name for name, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][:limit]


def jsonable(value: Any) -> Any:
    """*value* with non-finite floats as ``None`` and datetimes as RFC 3339, for strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value


def run_overview(record: ExperimentRun) -> dict[str, Any]:
    """One run as a flat JSON object: what ``runs list --json`` prints per run."""
    return {
        "run_id": str(record.run_id),
        "name": record.name,
        "status": record.status.value,
        "stale": record.is_stale,
        "started_at": jsonable(record.started_at),
        "finished_at": jsonable(record.finished_at),
        "duration_secs": record.duration_secs,
        "recipe": str(record.recipe) if record.recipe else None,
        "tags": record.tags,
        "note": record.note,
        "archived": record.archived,
        "hyperparameters": record.hyperparameters.as_flat_dict(),
        "metrics": record.summary,
    }


def deleted_overview(deletion: DeletedRun) -> dict[str, Any]:
    """One run in the trash as a flat JSON object: what ``runs list --deleted --json`` prints."""
    record = deletion.record
    return {
        **deletion.model_dump(mode="json"),
        "name": record.name if record else None,
        "status": record.status.value if record else None,
    }
