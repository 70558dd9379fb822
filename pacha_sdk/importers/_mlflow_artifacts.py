"""An MLflow run's files: its artifacts and the models MLflow 3 logs beside it.

Files are listed and fetched through MLflow's artifact repositories (local
folders, ``mlflow-artifacts:`` through a tracking server, S3...), one file at
a time and only when the pacha store does not have it yet. A file store's
artifact URIs are absolute paths; when the ``mlruns`` folder was moved they
point nowhere, and the same place inside the moved folder is used instead.
"""

from __future__ import annotations

import os
import posixpath
import urllib.parse
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pacha_sdk.importers._ingest import SourceArtifact

if TYPE_CHECKING:
    from collections import Counter

    from pacha_sdk.importers._mlflow_source import MlflowSource

__all__ = ["ArtifactReader", "error_text", "logged_models"]

_PAGE = 1000
_PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


def error_text(error: BaseException) -> str:
    """``"TypeName: message"`` on one line (MLflow's errors carry theirs in ``.message``)."""
    text = str(getattr(error, "message", None) or error)
    return " ".join(f"{type(error).__name__}: {text}".split())


class ArtifactReader:
    """Lists and fetches a run's files through MLflow's artifact repositories."""

    def __init__(self, tracking_uri: str, source: MlflowSource) -> None:
        self._tracking_uri = tracking_uri
        self._source = source

    def _located(self, uri: str, experiment_id: str) -> str:
        """*uri*, or its place inside the file store when the ``mlruns`` folder was moved."""
        root = self._source.root
        if root is None or not uri.startswith("file:"):
            return uri
        old = urllib.parse.unquote(urllib.parse.urlsplit(uri).path)
        marker = f"/{experiment_id}/"
        if os.path.exists(old) or marker not in old:
            return uri
        moved = root / experiment_id / old.rsplit(marker, 1)[1]
        return moved.as_uri() if moved.exists() else uri

    def files(self, uri: str, experiment_id: str, prefix: str) -> list[SourceArtifact]:
        """Every file under the artifact URI, named *prefix* + its path."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        repo = get_artifact_repository(
            self._located(uri, experiment_id), tracking_uri=self._tracking_uri
        )
        listed: list[Any] = []
        pending: list[str | None] = [None]
        while pending:
            for info in repo.list_artifacts(pending.pop()):
                if info.is_dir:
                    pending.append(info.path)
                else:
                    listed.append(info)
        models = {
            posixpath.dirname(i.path) for i in listed if posixpath.basename(i.path) == "MLmodel"
        }

        def kind(path: str) -> str:
            inside = any(path.startswith(f"{m}/") or not m for m in models)
            return "model" if prefix or inside else "file"

        def fetcher(path: str) -> Any:
            def fetch(folder: Path) -> Path:
                # MLflow draws a tqdm bar per download whenever tqdm is installed
                # (transformers brings it): the import shows its own progress.
                os.environ.setdefault(_PROGRESS_BAR, "false")
                return Path(repo.download_artifacts(path, dst_path=str(folder)))

            return fetch

        return [
            SourceArtifact(prefix + i.path, kind(i.path), i.file_size, fetcher(i.path))
            for i in sorted(listed, key=lambda i: str(i.path))
        ]


def logged_models(client: Any, experiment_id: str, ignored: Counter[str]) -> dict[str, list[Any]]:
    """MLflow 3's logged models of an experiment, by the run that logged them."""
    search = getattr(client, "search_logged_models", None)
    if search is None:
        return {}
    by_run: dict[str, list[Any]] = defaultdict(list)
    try:
        token = None
        while True:
            page = search(experiment_ids=[experiment_id], max_results=_PAGE, page_token=token)
            for model in page:
                if model.source_run_id:
                    by_run[model.source_run_id].append(model)
            token = page.token
            if not token:
                break
    except Exception:  # a store or server without logged models
        ignored["logged model listings that failed"] += 1
    return by_run
