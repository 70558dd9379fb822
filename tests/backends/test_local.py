"""The local backend against the conformance suite, plus local-only behaviour."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from pacha_sdk.backends import Backend, get_backend
from pacha_sdk.backends.local import LocalBackend
from pacha_sdk.exceptions import UnsafeNameError
from tests.backends.conformance import BackendConformance


class LocalFixtures:
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Backend:
        return LocalBackend(str(tmp_path / "store"))


class TestLocalConformance(LocalFixtures, BackendConformance): ...


def test_root_is_created_on_first_write_only(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "store"
    backend = LocalBackend(str(root))
    assert backend.list() == []
    assert not backend.exists("runs/a/run.json")
    with pytest.raises(FileNotFoundError):
        backend.read_bytes("runs/a/run.json")
    assert not root.exists()
    backend.write_new("runs/a/run.json", b"{}")
    assert (root / "runs" / "a" / "run.json").read_bytes() == b"{}"


def test_temp_files_are_never_listed_and_never_left(tmp_path: Path) -> None:
    backend = LocalBackend(str(tmp_path))
    backend.write_new("runs/a/run.json", b"1")
    backend.replace("runs/a/run.json", b"2")
    with pytest.raises(FileExistsError):
        backend.write_new("runs/a/run.json", b"3")
    assert os.listdir(tmp_path / "runs" / "a") == ["run.json"]
    (tmp_path / "runs" / "a" / ".run.json.tmp-0123456789abcdef").write_bytes(b"partial")
    assert backend.list() == ["runs/a/run.json"]


def test_temp_file_names_are_reserved(tmp_path: Path) -> None:
    backend = LocalBackend(str(tmp_path))
    with pytest.raises(UnsafeNameError, match="temporary"):
        backend.write_new("runs/.x.tmp-0123456789abcdef", b"1")
    backend.write_new("runs/.hidden", b"dotfiles are fine")
    assert backend.list() == ["runs/.hidden"]


@pytest.mark.parametrize("form", ["file://{}", "FILE://{}", "local://{}", "{}"])
def test_uri_forms_reach_the_same_folder(tmp_path: Path, form: str) -> None:
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "run.json").write_bytes(b"{}")
    backend = get_backend(form.format(tmp_path))
    assert isinstance(backend, LocalBackend)
    assert backend.root == str(tmp_path)
    assert backend.uri == str(tmp_path)
    assert backend.list() == ["runs/run.json"]


def test_relative_and_home_paths_become_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert LocalBackend("runs").root == str(tmp_path / "runs")
    assert LocalBackend("file://./runs").root == str(tmp_path / "runs")
    assert LocalBackend("~/runs").root == str(tmp_path / "home" / "runs")


def test_arrow_filesystem_is_local(tmp_path: Path) -> None:
    fs, root = LocalBackend(str(tmp_path)).arrow_filesystem()
    assert fs.type_name == "local"
    assert root == str(tmp_path)


def test_write_new_without_hard_links_still_refuses_existing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: str, dst: str) -> None:
        raise OSError(errno.EPERM, "hard links not supported", dst)

    monkeypatch.setattr(os, "link", no_links)
    backend = LocalBackend(str(tmp_path))
    backend.write_new("a/b", b"first")
    with pytest.raises(FileExistsError):
        backend.write_new("a/b", b"second")
    assert backend.read_bytes("a/b") == b"first"
    assert backend.list() == ["a/b"]


def test_file_in_the_way_is_not_reported_as_key_taken(tmp_path: Path) -> None:
    backend = LocalBackend(str(tmp_path))
    backend.write_new("runs/a", b"a file")
    with pytest.raises(NotADirectoryError):
        backend.write_new("runs/a/run.json", b"{}")
    with pytest.raises(NotADirectoryError):
        backend.write_new("runs/a/b/run.json", b"{}")
    assert backend.list() == ["runs/a"]
