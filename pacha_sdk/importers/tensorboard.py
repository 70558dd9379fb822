"""Import TensorBoard logs: ``pacha.import_tensorboard("runs/")``, ``pacha import tensorboard``.

Event files are read with the ``tensorboard`` package's event file loader,
which needs no TensorFlow (``pip install 'pacha-sdk[import]'``). LOGDIR is a
local folder; each folder under it that holds event files is one run:

* its scalars, with their steps, values and wall times (to the µs), are the
  run's metrics; histograms, images, audio, text and graphs are counted in
  the report and left out;
* ``add_hparams`` (tensorboardX and ``torch.utils.tensorboard``) writes a
  sub-folder holding the hparams plugin's data and the metric scalars given
  to it. That sub-folder is the parent run's hyperparameters (its scalars
  join the parent's metrics), not a run of its own. Only where one writer
  logged several ``add_hparams`` (a sweep through one writer) does each
  sub-folder stay a run, nested under the parent (``extra.parent_run_id``);
* the run starts at its first event and finishes at its last; its status is
  the hparams session's end status where there is one, else ``completed``;
* its name is the folder's path under LOGDIR (LOGDIR's own name for LOGDIR).

The run id is ``uuid5`` of the first event file's name and first wall time,
not of the folder's path: moving or renaming LOGDIR or a run folder, or
importing LOGDIR's parent later, finds the same runs (a copied folder is
the same run and is skipped once seen). Importing again adds only new points.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pacha_sdk.backends import get_backend
from pacha_sdk.env import resolve_uri
from pacha_sdk.exceptions import ExtraNotInstalledError, ImportSourceError
from pacha_sdk.importers._ingest import Ingest, SourceRun, imported_run_id
from pacha_sdk.importers._params import build_hyperparameters
from pacha_sdk.importers._report import ImportReport
from pacha_sdk.importers._store import ImportStore
from pacha_sdk.importers._tb_events import RunFolder, is_event_file, read_folder
from pacha_sdk.models import ExperimentRun, RunStatus

if TYPE_CHECKING:
    from pacha_sdk.importers._report import ImportProgress
    from pacha_sdk.models import RunId

__all__ = ["import_tensorboard"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _require_tensorboard() -> None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise ExtraNotInstalledError(
            "TensorBoard imports", package="tensorboard", extra="import"
        ) from None


def _event_folders(logdir: Path) -> list[Path]:
    """Every folder under *logdir* (itself included) that holds an event file, parents first."""
    found: list[Path] = []
    for here, dirs, files in os.walk(logdir):
        dirs.sort()
        folder = Path(here)
        if any(is_event_file(folder / name) for name in files):
            found.append(folder)
    return found


def _open_logdir(logdir: str | os.PathLike[str]) -> tuple[Path, list[Path]]:
    text = os.fspath(logdir)
    if "://" in text:
        raise ImportSourceError(text, "is not a local folder (TensorBoard logs are read locally)")
    root = Path(text).expanduser()
    if not root.exists():
        raise ImportSourceError(text, "no such folder")
    if not root.is_dir():
        raise ImportSourceError(text, "is not a folder")
    folders = _event_folders(root)
    if not folders:
        raise ImportSourceError(text, "has no TensorBoard event files (events.out.tfevents.*)")
    return root.resolve(), [folder.resolve() for folder in folders]


def _label(root: Path, folder: Path) -> str:
    relative = folder.relative_to(root).as_posix()
    return root.name if relative == "." else relative


def _micros(micros: int | None) -> datetime | None:
    return None if micros is None else _EPOCH + timedelta(microseconds=micros)


def _source_run(root: Path, run: RunFolder, parent: RunId | None) -> SourceRun:
    run_id = imported_run_id("tensorboard", run.identity)
    label = _label(root, run.path)
    extra: dict[str, Any] = {"name": label}
    if parent is not None:
        extra["parent_run_id"] = str(parent)
    extra["source"] = {
        "system": "tensorboard",
        "run_dir": label,
        "event_files": list(run.files),
        "identity": run.identity,
    }
    status = run.status or RunStatus.COMPLETED
    record = ExperimentRun(
        run_id=run_id,
        hyperparameters=build_hyperparameters(dict(sorted(run.hparams.items()))),
        started_at=_micros(run.first_micros) or _EPOCH,
        finished_at=_micros(run.last_micros) if status.is_finished else None,
        status=status,
        extra=extra,
    )
    return SourceRun(label, run_id, record, run.points, None, run.ignored)


class _Reader:
    """Reads each folder once, keeping it only until its run is imported."""

    def __init__(self, ingest: Ingest, root: Path) -> None:
        self._ingest = ingest
        self._root = root
        self._read: dict[Path, RunFolder | None] = {}

    def get(self, folder: Path) -> RunFolder | None:
        if folder not in self._read:
            try:
                self._read[folder] = read_folder(folder)
            except Exception as error:  # a corrupt file skips its run only
                self._read[folder] = None
                shown = error if isinstance(error, ImportSourceError) else repr(error)
                reason = " ".join(str(shown).split())
                self._ingest.skip(
                    _label(self._root, folder), f"cannot read its event files: {reason}"
                )
        return self._read[folder]

    def drop(self, folder: Path) -> None:
        self._read.pop(folder, None)


def import_tensorboard(
    logdir: str | os.PathLike[str],
    *,
    uri: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    progress: ImportProgress | None = None,
) -> ImportReport:
    """Import the TensorBoard runs under *logdir* into a pacha store; return what was done.

    Args:
        logdir: a local folder of event files (a run, or a folder of runs).
        uri: the pacha store (default ``$PACHA_URI``, else ``./pacha-runs``).
        storage_options: settings for the pacha store's client.
        progress: called as ``progress(runs_done, runs_total, points_written)``.

    A folder that does not exist or holds no event files raises
    :class:`ImportSourceError` before anything is written; a run folder whose
    event files cannot be read is skipped and listed in the report.
    """
    root, folders = _open_logdir(logdir)
    _require_tensorboard()
    store = ImportStore(get_backend(resolve_uri(uri), storage_options=storage_options))
    report = ImportReport(source=os.fspath(logdir), system="tensorboard")
    ingest = Ingest(store, report, progress)
    ingest.total = len(folders)
    reader = _Reader(ingest, root)
    taken: set[Path] = set()
    nested: dict[Path, RunId] = {}
    seen: dict[str, str] = {}
    for folder in folders:
        if folder in taken:
            continue
        run = reader.get(folder)
        if run is None:
            continue
        children = [(c, reader.get(c)) for c in folders if c.parent == folder]
        sessions = [(c, child) for c, child in children if child is not None and child.has_session]
        if len(sessions) == 1:
            ((child_folder, child),) = sessions
            run.absorb(child)
            taken.add(child_folder)
            reader.drop(child_folder)
            ingest.total -= 1
        elif len(sessions) > 1:
            for child_folder, _ in sessions:
                nested[child_folder] = imported_run_id("tensorboard", run.identity)
        label = _label(root, folder)
        if run.identity in seen:
            ingest.skip(label, f"holds the same event files as {seen[run.identity]} (a copy?)")
        else:
            seen[run.identity] = label
            ingest.add(_source_run(root, run, nested.get(folder)))
        reader.drop(folder)
    return report
