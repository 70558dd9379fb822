"""Temporary files a killed writer leaves in a local store are found and removed by ``gc``.

A local write goes to ``.<name>.tmp-<hex>`` beside its target and is then
linked or renamed into place, so a process killed with SIGKILL mid-write
leaves the temporary file behind. Listings never show it; ``gc`` lists it
and, with ``--yes``, deletes it once it has not been written to for
``temp_older_than`` seconds (default an hour), so the file of a write still
under way is never touched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pacha_sdk as pacha
from pacha_sdk.cli import main
from pacha_sdk.query.maintenance import TEMP_FILE_AGE
from tests.conftest import wait_until

HOUR = 3600.0


def _temp_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob(".*.tmp-*") if p.is_file())


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture
def store_with_leftovers(tmp_path: Path) -> tuple[str, pacha.Run, list[Path], Path]:
    """A store with one run, two old temporary files and one written to just now."""
    uri = str(tmp_path / "store")
    with pacha.run(uri=uri, system_metrics=False) as run:
        run.log_metric("loss", 0.5, 0)
    root = Path(uri)
    part_folder = root / "metrics" / f"run_id={run.run_id}"
    old_part = part_folder / ".part-0123456789abcdef-000007.parquet.tmp-00112233445566aa"
    old_record = root / "runs" / run.run_id / ".run.json.tmp-ffeeddccbbaa9988"
    fresh = root / "artifacts" / "ab" / (".ab" + "0" * 62 + ".tmp-0000000000000001")
    for path in (old_part, old_record, fresh):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a write")
    _age(old_part, 2 * HOUR)
    _age(old_record, TEMP_FILE_AGE + 60)
    return uri, run, [old_part, old_record], fresh


def test_gc_lists_old_temporary_files_and_deletes_them_only_when_asked(
    store_with_leftovers: tuple[str, pacha.Run, list[Path], Path],
) -> None:
    uri, run, old, fresh = store_with_leftovers
    root = Path(uri)

    report = pacha.gc(uri=uri)
    assert sorted(report.temp_files) == sorted(p.relative_to(root).as_posix() for p in old)
    assert report.recent_temp_files == [fresh.relative_to(root).as_posix()]
    assert all(p.exists() for p in [*old, fresh])  # a dry run deletes nothing

    report = pacha.gc(uri=uri, delete=True)
    assert report.deleted
    assert _temp_files(root) == [fresh]  # written to a moment ago: a write may be under way
    assert pacha.read_metrics(run.run_id, uri=uri)["value"].to_pylist() == [0.5]
    assert pacha.load_run(run.run_id, uri=uri).status is pacha.RunStatus.COMPLETED


def test_the_command_line_lists_deletes_and_counts_them(
    store_with_leftovers: tuple[str, pacha.Run, list[Path], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    uri, _, old, fresh = store_with_leftovers
    assert main(["gc", "--uri", uri]) == 0
    out, err = capsys.readouterr()
    for path in old:
        assert path.name in out
    assert fresh.name not in out
    assert "would delete 0 artifact blob(s), 0 part file(s) and 2 temporary file(s)" in err
    assert "1 temporary file written to in the last 3600 s is kept" in err

    assert main(["gc", "--uri", uri, "--yes", "--temp-older-than", "0"]) == 0
    out, err = capsys.readouterr()
    assert "deleted 0 artifact blob(s), 0 part file(s) and 3 temporary file(s)" in err
    assert _temp_files(Path(uri)) == []


_BLOCKED_WRITER = """
import sys
from pacha_sdk.backends import get_backend

backend = get_backend(sys.argv[1])
with open(sys.argv[2], "rb") as pipe:  # the parent writes some, then keeps it open
    backend.write_new_from("artifacts/big.bin", pipe)
print("written", flush=True)
"""


def _start_blocked_writer(uri: str, fifo: Path) -> subprocess.Popen[str]:
    os.mkfifo(fifo)
    child = subprocess.Popen(
        [sys.executable, "-c", _BLOCKED_WRITER, uri, str(fifo)],
        stdout=subprocess.PIPE,
        text=True,
    )
    return child


@pytest.mark.subprocess
def test_a_write_killed_midway_leaves_a_temporary_file_that_gc_removes(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    Path(uri).mkdir()
    fifo = tmp_path / "source"
    child = _start_blocked_writer(uri, fifo)
    with open(fifo, "wb") as pipe:
        pipe.write(b"x" * (3 * 1024 * 1024))
        pipe.flush()
        wait_until(lambda: _temp_files(Path(uri)), message="no temporary file appeared")

        # The writer is alive and mid-write: gc leaves its file alone, even with --yes.
        assert pacha.gc(uri=uri, delete=True).recent_temp_files
        assert len(_temp_files(Path(uri))) == 1

        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    (left,) = _temp_files(Path(uri))
    assert not (Path(uri) / "artifacts" / "big.bin").exists()

    report = pacha.gc(uri=uri, delete=True, temp_older_than=0)
    assert report.temp_files == [left.relative_to(uri).as_posix()]
    assert _temp_files(Path(uri)) == []


@pytest.mark.subprocess
def test_a_live_write_finishes_after_gc(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    Path(uri).mkdir()
    fifo = tmp_path / "source"
    child = _start_blocked_writer(uri, fifo)
    with open(fifo, "wb") as pipe:
        pipe.write(b"y" * (1024 * 1024))
        pipe.flush()
        wait_until(lambda: _temp_files(Path(uri)), message="no temporary file appeared")
        report = pacha.gc(uri=uri, delete=True)
        assert report.temp_files == []
        pipe.write(b"z" * 10)
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    assert out.strip() == "written"
    assert (Path(uri) / "artifacts" / "big.bin").stat().st_size == 1024 * 1024 + 10
    assert _temp_files(Path(uri)) == []


def test_temp_older_than_must_not_be_negative(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="temp_older_than"):
        pacha.gc(uri=str(tmp_path), temp_older_than=-1)
