"""Finish uploads that a run left in its local spool.

A run whose store stopped answering keeps its unwritten parts (and, if
needed, its final ``run.json``) in a spool folder on local disk and says
so when it ends. :func:`sync` uploads them, in order, exactly once (part
files are create-only, so a part the store already has is skipped), and
removes what it uploaded. ``python -m pacha_sdk sync`` does the same.

A spooled record never replaces a newer stored one: it is uploaded only if
the store has none, or one whose heartbeat (``heartbeat_at``, rewritten at
every write, the final one included) is older. A run resumed before the
sync, for instance, keeps its own record; a record ``reap`` marked failed
while the run could not write is replaced by the run's real final one (reap
keeps the heartbeat it found). The heartbeat is the writing machine's
clock: between machines, as good as their clocks agree.

Several syncs of one spool may run at once (a cron job and a user, two
shells): whatever another one uploaded or removed first is skipped, never
an error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pacha_sdk.backends import Backend, get_backend
from pacha_sdk.backends.local import LocalBackend
from pacha_sdk.exceptions import StoreError
from pacha_sdk.storage.layout import METRICS_DIR, RUNS_DIR
from pacha_sdk.storage.records import location, store_errors, write_record, written_at
from pacha_sdk.storage.spool import MANIFEST, default_spool_root

logger = logging.getLogger("pacha_sdk")

__all__ = ["SyncReport", "spool_folders", "sync"]


@dataclass
class SyncReport:
    """What :func:`sync` uploaded."""

    runs: set[str] = field(default_factory=set)
    """Ids of the runs whose spooled data was uploaded."""
    parts: int = 0
    """Part files uploaded (or found already stored)."""
    records: int = 0
    """Final ``run.json`` records uploaded."""
    kept_newer: int = 0
    """Spooled records not uploaded because the store's record is newer (and kept)."""


def spool_folders(root: str) -> list[str]:
    """Every writer folder (one holding ``spool.json``) under *root*, at any depth."""
    if os.path.isfile(os.path.join(root, MANIFEST)):
        return [root]
    found = []
    for folder, _, files in os.walk(root):
        if MANIFEST in files:
            found.append(folder)
    return sorted(found)


def _sync_folder(
    folder: str, report: SyncReport, storage_options: Mapping[str, Any] | None
) -> None:
    try:
        with open(os.path.join(folder, MANIFEST), encoding="utf-8") as manifest_file:
            manifest = json.load(manifest_file)
    except FileNotFoundError:
        return  # another sync finished this folder
    store = get_backend(manifest["uri"], storage_options=storage_options)
    spooled = LocalBackend(folder)
    keys = [key for key in spooled.list() if key != MANIFEST]
    for key in sorted(k for k in keys if k.startswith(f"{METRICS_DIR}/")):
        data = _spooled(spooled, key)
        if data is None:
            continue
        with (
            contextlib.suppress(FileExistsError),  # stored before the outage ended, or by a peer
            store_errors(store, "write", key, passing=(FileExistsError,)),
        ):
            store.write_new(key, data)
        _forget(spooled, key)
        report.parts += 1
    for key in (k for k in keys if k.startswith(f"{RUNS_DIR}/")):
        data = _spooled(spooled, key)
        if data is None:
            continue
        if _newer_than_stored(store, key, data):
            write_record(store, key, data)
            report.records += 1
        else:
            logger.info("pacha: kept %s: the store's record is newer than the spooled one", key)
            report.kept_newer += 1
        _forget(spooled, key)
    report.runs.add(str(manifest["run_id"]))
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(folder))


def _spooled(spooled: LocalBackend, key: str) -> bytes | None:
    """The spooled bytes of *key*, or ``None`` if another sync took them meanwhile."""
    try:
        return spooled.read_bytes(key)
    except FileNotFoundError:
        return None


def _forget(spooled: LocalBackend, key: str) -> None:
    with contextlib.suppress(FileNotFoundError):  # another sync removed it first
        spooled.delete(key)


def _newer_than_stored(store: Backend, key: str, data: bytes) -> bool:
    """Whether the spooled record *data* is newer than the store's record at *key*.

    A store without a record, or with one that cannot be read as a record,
    takes the spooled one; a spooled record that cannot be read never
    replaces a stored one.
    """
    with store_errors(store, "read", key, passing=(FileNotFoundError,)):
        try:
            stored = store.read_bytes(key)
        except FileNotFoundError:
            return True
    mine = written_at(key, data, location(store, key))
    theirs = written_at(key, stored, location(store, key))
    if theirs is None:
        return True
    return mine is not None and mine > theirs


def sync(
    spool: str | None = None, *, storage_options: Mapping[str, Any] | None = None
) -> SyncReport:
    """Upload everything waiting in the spool to the stores it belongs to.

    Args:
        spool: a spool root, one run's folder or one writer's folder (default:
            ``$PACHA_SPOOL_DIR``, else ``~/.cache/pacha-sdk/spool``).
        storage_options: settings for the stores' clients (credentials,
            endpoint); the spool never records them.

    Raises :class:`StoreError` naming the folders left in the spool if a
    store still refuses; everything else was uploaded and removed.
    """
    root = os.path.abspath(os.path.expanduser(spool or default_spool_root()))
    report = SyncReport()
    failed: list[str] = []
    for folder in spool_folders(root) if os.path.isdir(root) else []:
        try:
            _sync_folder(folder, report, storage_options)
        except (OSError, ValueError, KeyError) as error:
            failed.append(f"{folder} ({type(error).__name__}: {error})")
    if failed:
        raise StoreError("could not upload from the spool: " + "; ".join(failed))
    return report
