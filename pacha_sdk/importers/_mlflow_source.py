"""Which MLflow store a SOURCE names, checked before MLflow's client touches it.

MLflow's client creates what it does not find (an empty ``mlruns`` folder, a
fresh SQLite database) and migrates an older database schema in place, so
the source is checked first and never handed over as it is:

* a folder (or ``file://`` URI) must hold an MLflow file store: experiment
  folders with a ``meta.yaml``;
* an SQLite database (``sqlite:///path``, or the path of the file itself)
  must have MLflow's tables; MLflow reads a snapshot of it copied with
  SQLite's backup API into a temporary file, which it may migrate freely:
  the source is never written, even while another process writes it;
* an ``http(s)://`` URL must accept a connection (MLflow itself would retry
  for minutes); credentials in it are never shown;
* any other URI (``postgresql://...``) is handed to MLflow unchanged.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import tempfile
import urllib.parse
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pacha_sdk.exceptions import ImportSourceError

__all__ = ["MlflowSource", "mlflow_environment", "open_source"]

_MLFLOW_TABLES = frozenset({"experiments", "runs", "metrics", "params", "tags"})
_CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class MlflowSource:
    """A checked source: how to show it, the URI MLflow reads, the file store's folder."""

    display: str
    """The source as given, without credentials."""
    tracking_uri: str
    """What MLflow's client is given."""
    kind: str
    """``"file"``, ``"sqlite"``, ``"server"`` or ``"other"``."""
    root: Path | None = None
    """The file store's folder (artifacts of a moved ``mlruns`` are found inside it)."""


def _without_credentials(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _sqlite_path(uri: str) -> Path:
    """The file of a ``sqlite:///relative`` or ``sqlite:////absolute`` URI."""
    rest = uri.split("sqlite:///", 1)[1] if uri.startswith("sqlite:///") else ""
    path = rest.split("?", 1)[0]
    if not path or path == ":memory:":
        raise ImportSourceError(uri, "is not an SQLite database file (sqlite:///path/mlflow.db)")
    return Path(urllib.parse.unquote(path))


def _sqlite_tables(path: Path) -> set[str] | None:
    """The tables of the SQLite database at *path*, or ``None`` if it is not one."""
    try:
        with contextlib.closing(
            sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        ) as db:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except sqlite3.DatabaseError:
        return None
    return {str(row[0]) for row in rows}


def _check_sqlite(display: str, path: Path) -> None:
    if not path.is_file():
        raise ImportSourceError(display, "no such database file")
    tables = _sqlite_tables(path)
    if tables is None:
        raise ImportSourceError(display, "is not an SQLite database")
    if not tables >= _MLFLOW_TABLES:
        raise ImportSourceError(display, "is not an MLflow database (no MLflow tables)")


def _check_file_store(display: str, folder: Path) -> None:
    if not folder.exists():
        raise ImportSourceError(display, "no such folder")
    if not folder.is_dir():
        raise ImportSourceError(display, "is neither a folder nor an MLflow SQLite database")
    if not any(child.is_file() for child in folder.glob("*/meta.yaml")):
        hint = ""
        if (folder / "mlruns").is_dir():
            hint = f"; did you mean {folder / 'mlruns'}?"
        raise ImportSourceError(
            display, f"is not an MLflow store (no experiment folder with a meta.yaml){hint}"
        )


def _check_server(display: str, url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        raise ImportSourceError(display, "is not a URL of a tracking server")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=_CONNECT_TIMEOUT).close()
    except OSError as error:
        raise ImportSourceError(display, f"cannot connect: {error}") from None


def open_source(source: str | os.PathLike[str]) -> MlflowSource:
    """Check *source* and say how MLflow reads it (a database is snapshotted later)."""
    text = os.fspath(source)
    if not isinstance(text, str) or not text.strip():
        raise ImportSourceError(repr(source), "is not an MLflow source")
    if text.startswith(("http://", "https://")):
        display = _without_credentials(text)
        _check_server(display, text)
        return MlflowSource(display, text.rstrip("/"), "server")
    if text.startswith("sqlite:"):
        path = _sqlite_path(text)
        _check_sqlite(text, path)
        return MlflowSource(text, str(path.resolve()), "sqlite")
    if text.startswith("file:"):
        folder = Path(urllib.parse.unquote(urllib.parse.urlsplit(text).path))
    elif "://" in text:
        return MlflowSource(_without_credentials(text), text, "other")
    else:
        folder = Path(text).expanduser()
    if folder.is_file():
        _check_sqlite(text, folder)
        return MlflowSource(text, str(folder.resolve()), "sqlite")
    _check_file_store(text, folder)
    root = folder.resolve()
    return MlflowSource(text, root.as_uri(), "file", root)


def _snapshot(path: str, folder: str) -> str:
    """Copy the database at *path* into *folder* with SQLite's backup API; its ``sqlite://`` URI."""
    copy = Path(folder) / "mlflow.db"
    with (
        contextlib.closing(sqlite3.connect(f"{Path(path).as_uri()}?mode=ro", uri=True)) as src,
        contextlib.closing(sqlite3.connect(copy)) as dst,
    ):
        src.backup(dst)
    return f"sqlite:///{copy}"


@contextlib.contextmanager
def mlflow_environment(source: MlflowSource) -> Iterator[str]:
    """While MLflow reads *source*: its tracking URI, the file store allowed, its chatter muted.

    MLflow refuses file stores unless ``MLFLOW_ALLOW_FILE_STORE=true``; an
    import only reads, so the variable is set for the import and restored
    after. The deprecation warnings MLflow's own dependencies raise are not
    the user's to act on and are silenced inside.
    """
    saved = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    with warnings.catch_warnings(), tempfile.TemporaryDirectory(prefix="pacha-mlflow-") as tmp:
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
            warnings.simplefilter("ignore", category)
        if source.kind == "file":
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        try:
            if source.kind == "sqlite":
                yield _snapshot(source.tracking_uri, tmp)
            else:
                yield source.tracking_uri
        finally:
            if saved is None:
                os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
            else:
                os.environ["MLFLOW_ALLOW_FILE_STORE"] = saved
