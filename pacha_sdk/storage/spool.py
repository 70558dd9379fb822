"""A local spool for what could not reach the store yet.

When a write to the store fails, the writer moves the part (and every part
queued behind it) to a folder on local disk right away, so a process killed
during an outage still loses nothing older than one flush interval. The
spool mirrors the store's layout under one folder per writer::

    <spool_root>/<run_id>/<writer_id>/spool.json          {"uri": ..., "run_id": ...}
    <spool_root>/<run_id>/<writer_id>/metrics/run_id=<id>/part-<writer>-<seq>.parquet
    <spool_root>/<run_id>/<writer_id>/runs/<id>/run.json  (if the final record could not be written)

``spool.json`` holds the store's URI only: never credentials or
``storage_options``. :func:`pacha_sdk.storage.sync` uploads a spool and removes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil

from pacha_sdk.backends.local import LocalBackend

__all__ = ["MANIFEST", "Spool", "default_spool_root"]

MANIFEST = "spool.json"
"""Name of the file that says which store a spool folder belongs to."""

SPOOL_DIR_VARIABLE = "PACHA_SPOOL_DIR"


def default_spool_root() -> str:
    """``$PACHA_SPOOL_DIR``, else ``$XDG_CACHE_HOME/pacha-sdk/spool`` (``~/.cache/...``)."""
    configured = os.environ.get(SPOOL_DIR_VARIABLE)
    if configured:
        return os.path.abspath(os.path.expanduser(configured))
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "pacha-sdk", "spool")


class Spool:
    """One writer's spool folder; created on the first write, removed once empty."""

    def __init__(self, root: str, *, uri: str, run_id: str, writer_id: str) -> None:
        self.path = os.path.join(root, run_id, writer_id)
        self._uri = uri
        self._run_id = run_id
        self._files = LocalBackend(self.path)
        self._keys: set[str] = set()

    def put(self, key: str, data: bytes, *, replace: bool = False) -> None:
        """Keep *data* for *key* on local disk (durably: fsynced)."""
        if not self._keys and not os.path.exists(os.path.join(self.path, MANIFEST)):
            manifest = {"uri": self._uri, "run_id": self._run_id}
            self._files.replace(MANIFEST, json.dumps(manifest).encode("utf-8"))
        if replace:
            self._files.replace(key, data)
        else:
            # FileExistsError: spilled before, identical content under a create-only key.
            with contextlib.suppress(FileExistsError):
                self._files.write_new(key, data)
        self._keys.add(key)

    def get(self, key: str) -> bytes:
        """The spooled bytes of *key*."""
        return self._files.read_bytes(key)

    def discard(self, key: str) -> None:
        """Forget *key* once the store has it; remove the folder when nothing is left."""
        if key not in self._keys:
            return
        self._keys.discard(key)
        with contextlib.suppress(FileNotFoundError):
            self._files.delete(key)
        if not self._keys:
            shutil.rmtree(self.path, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(self.path))  # the run's folder, if no other writer

    def __len__(self) -> int:
        return len(self._keys)
