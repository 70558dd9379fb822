"""Finish uploads that a run left in its local spool.

A run whose store stopped answering keeps its unwritten parts (and, if
needed, its final ``run.json``) in a spool folder on local disk and says
so when it ends. :func:`sync` uploads them, in order, exactly once (part
files are create-only, so a part the store already has is skipped), and
removes what it uploaded. ``python -m pacha_sdk sync`` does the same.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pacha_sdk.backends import get_backend
from pacha_sdk.backends.local import LocalBackend
from pacha_sdk.exceptions import StoreError
from pacha_sdk.storage.layout import METRICS_DIR, RUNS_DIR
from pacha_sdk.storage.records import store_errors, write_record
from pacha_sdk.storage.spool import MANIFEST, default_spool_root

__all__ = ["SyncReport", "sync"]


@dataclass
class SyncReport:
    """What :func:`sync` uploaded."""

    runs: set[str] = field(default_factory=set)
    """Ids of the runs whose spooled data was uploaded."""
    parts: int = 0
    """Part files uploaded (or found already stored)."""
    records: int = 0
    """Final ``run.json`` records uploaded."""


def _spool_folders(root: str) -> list[str]:
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
    with open(os.path.join(folder, MANIFEST), encoding="utf-8") as manifest_file:
        manifest = json.load(manifest_file)
    store = get_backend(manifest["uri"], storage_options=storage_options)
    spooled = LocalBackend(folder)
    keys = [key for key in spooled.list() if key != MANIFEST]
    for key in sorted(k for k in keys if k.startswith(f"{METRICS_DIR}/")):
        data = spooled.read_bytes(key)
        with (
            contextlib.suppress(FileExistsError),  # stored before the outage ended
            store_errors(store, "write", key, passing=(FileExistsError,)),
        ):
            store.write_new(key, data)
        spooled.delete(key)
        report.parts += 1
    for key in (k for k in keys if k.startswith(f"{RUNS_DIR}/")):
        write_record(store, key, spooled.read_bytes(key))
        spooled.delete(key)
        report.records += 1
    report.runs.add(str(manifest["run_id"]))
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(folder))


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
    for folder in _spool_folders(root) if os.path.isdir(root) else []:
        try:
            _sync_folder(folder, report, storage_options)
        except (OSError, ValueError, KeyError) as error:
            failed.append(f"{folder} ({type(error).__name__}: {error})")
    if failed:
        raise StoreError("could not upload from the spool: " + "; ".join(failed))
    return report
