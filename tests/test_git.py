"""git_commit and git_dirty from real temporary repositories."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import pacha_sdk as pacha


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with one commit of train.py and README.md."""
    folder = tmp_path / "repo"
    folder.mkdir()
    git(folder, "init", "-q")
    (folder / "train.py").write_text("print('train')\n")
    (folder / "README.md").write_text("# model\n")
    git(folder, "add", "train.py", "README.md")
    git(folder, "commit", "-q", "-m", "first")
    return folder


@pytest.fixture
def script_elsewhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Pretend the program is a script outside any repository."""
    folder = tmp_path / "scripts"
    folder.mkdir()
    script = folder / "main.py"
    monkeypatch.setattr(sys.modules["__main__"], "__file__", str(script), raising=False)
    return script


def recorded(store: str) -> tuple[pacha.ExperimentRun, dict[str, object]]:
    with pacha.run(uri=store, system_metrics=False) as run:
        pass
    raw = (Path(store) / "runs" / str(run.run_id) / "run.json").read_text()
    return pacha.load_run(run.run_id, uri=store), json.loads(raw)


def test_clean_repository(
    repo: Path, store: str, monkeypatch: pytest.MonkeyPatch, script_elsewhere: Path
) -> None:
    monkeypatch.chdir(repo)
    record, _ = recorded(store)
    assert record.git_commit == git(repo, "rev-parse", "HEAD")
    assert len(record.git_commit) == 40
    assert record.git_dirty is False


def test_a_subfolder_of_the_repository_finds_it(
    repo: Path, store: str, monkeypatch: pytest.MonkeyPatch, script_elsewhere: Path
) -> None:
    (repo / "configs").mkdir()
    monkeypatch.chdir(repo / "configs")
    record, _ = recorded(store)
    assert record.git_commit == git(repo, "rev-parse", "HEAD")


def test_a_modified_tracked_file_is_dirty(
    repo: Path, store: str, monkeypatch: pytest.MonkeyPatch, script_elsewhere: Path
) -> None:
    (repo / "train.py").write_text("print('train harder')\n")
    monkeypatch.chdir(repo)
    record, _ = recorded(store)
    assert record.git_commit == git(repo, "rev-parse", "HEAD")
    assert record.git_dirty is True


def test_a_staged_new_file_is_dirty(
    repo: Path, store: str, monkeypatch: pytest.MonkeyPatch, script_elsewhere: Path
) -> None:
    (repo / "model.py").write_text("class Model: ...\n")
    git(repo, "add", "model.py")
    monkeypatch.chdir(repo)
    record, _ = recorded(store)
    assert record.git_dirty is True


def test_a_deleted_tracked_file_is_dirty(
    repo: Path, store: str, monkeypatch: pytest.MonkeyPatch, script_elsewhere: Path
) -> None:
    (repo / "README.md").unlink()
    monkeypatch.chdir(repo)
    assert recorded(store)[0].git_dirty is True


def test_untracked_files_alone_are_not_dirty(
    repo: Path, store: str, monkeypatch: pytest.MonkeyPatch, script_elsewhere: Path
) -> None:
    (repo / "outputs").mkdir()
    (repo / "outputs" / "checkpoint.pt").write_bytes(b"\x00" * 64)
    (repo / "notes.txt").write_text("try lr=3e-4\n")
    monkeypatch.chdir(repo)
    record, _ = recorded(store)
    assert record.git_commit == git(repo, "rev-parse", "HEAD")
    assert record.git_dirty is False


def test_a_repository_without_commits(
    tmp_path: Path, store: str, monkeypatch: pytest.MonkeyPatch, script_elsewhere: Path
) -> None:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    git(fresh, "init", "-q")
    (fresh / "train.py").write_text("pass\n")
    git(fresh, "add", "train.py")
    monkeypatch.chdir(fresh)
    record, raw = recorded(store)
    assert record.git_commit is None
    assert "git_commit" not in raw
    assert record.git_dirty is True


def test_outside_a_repository_git_fields_are_empty(
    tmp_path: Path, store: str, monkeypatch: pytest.MonkeyPatch, script_elsewhere: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.chdir(outside)
    record, raw = recorded(store)
    assert record.status is pacha.RunStatus.COMPLETED
    assert record.git_commit is None
    assert "git_commit" not in raw
    assert raw["git_dirty"] is False


def test_outside_a_repository_the_scripts_repository_is_used(
    repo: Path, tmp_path: Path, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.chdir(outside)
    monkeypatch.setattr(sys.modules["__main__"], "__file__", str(repo / "train.py"), raising=False)
    record, _ = recorded(store)
    assert record.git_commit == git(repo, "rev-parse", "HEAD")
    assert record.git_dirty is False


def test_without_git_on_path_the_run_still_records(
    repo: Path, tmp_path: Path, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    monkeypatch.chdir(repo)
    monkeypatch.setenv("PATH", str(empty_bin))
    record, _ = recorded(store)
    assert record.status is pacha.RunStatus.COMPLETED
    assert record.git_commit is None
    assert record.git_dirty is False
