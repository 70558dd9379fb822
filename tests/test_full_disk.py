"""A full disk under both the store and the spool (the default layout) never breaks the exit.

``./pacha-runs`` and ``~/.cache/pacha-sdk/spool`` are usually on one disk.
When it fills, nothing can be written anywhere; leaving the ``with`` block
must still never raise the SDK's own :class:`OSError`, a user's exception
from the block is the one re-raised, and the SIGTERM handler and the
registry of open runs are restored whatever happened.

The disk is real: a 2 MiB tmpfs mounted for the test when it runs as root
(and the sandbox allows mounts), else a child whose ``RLIMIT_FSIZE`` is cut
to nothing (every write that grows a file fails with EFBIG, as a full disk
fails with ENOSPC). Each scenario runs in a child process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.subprocess

CHILD = textwrap.dedent(
    """
    import json, logging, os, resource, signal, sys
    from pathlib import Path
    import pacha_sdk as pacha
    from pacha_sdk.tracking._finish import open_runs

    disk, how = Path(sys.argv[1]), sys.argv[2]
    store, spool = disk / "pacha-runs", disk / "spool"
    filler = disk / "filler"
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death, for RLIMIT_FSIZE
    original_handler = signal.getsignal(signal.SIGTERM)

    def fill_the_disk():
        if how == "rlimit":
            resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
            return
        with open(filler, "ab", buffering=0) as f:  # unbuffered: every write meets the disk
            for size in (65536, 4096, 512, 1):  # down to the last crumbs
                try:
                    while True:
                        f.write(b"\\0" * size)
                except OSError:
                    pass

    def free_the_disk():
        if how == "rlimit":
            resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        elif filler.exists():
            filler.unlink()

    def a_run():
        free_the_disk()
        return pacha.run(uri=str(store), spool_dir=str(spool), flush_interval=0.05,
                         close_timeout=1, system_metrics=False)

    def log_points(run):
        for step in range(2000):
            run.log_metric("loss", 1.0 / (step + 1), step)

    def report(scenario, raised, run):
        print(json.dumps({
            "scenario": scenario,
            "raised": None if raised is None else f"{type(raised).__name__}: {raised}",
            "status": run.status.value,
            "last_error": type(run.last_error).__name__,
            "handler_restored": signal.getsignal(signal.SIGTERM) is original_handler,
            "open_runs": len(open_runs),
        }), flush=True)

    users_error = ValueError("the user's own error")
    raised = None
    try:
        with a_run() as run:
            fill_the_disk()
            log_points(run)
            raise users_error
    except BaseException as error:
        raised = error
    assert raised is users_error, repr(raised)
    report("user's exception", raised, run)

    raised = None
    try:
        with a_run() as run:
            fill_the_disk()
            log_points(run)
    except BaseException as error:
        raised = error
    report("normal exit", raised, run)

    raised = None
    try:
        with a_run() as run:
            fill_the_disk()
            log_points(run)
            raise KeyboardInterrupt
    except BaseException as error:
        raised = error
    report("ctrl-c", raised, run)

    raised = None
    run = a_run()
    fill_the_disk()
    log_points(run)
    try:
        run.complete()
    except BaseException as error:
        raised = error
    report("complete()", raised, run)
    """
)


def _try_mount(folder: Path) -> bool:
    if os.geteuid() != 0:
        return False
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    return mounted.returncode == 0


@pytest.fixture(params=["tmpfs", "rlimit"])
def small_disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder on a 2 MiB tmpfs, or a plain one for a child with RLIMIT_FSIZE cut to 0.

    The tmpfs needs root and a sandbox that allows mounts; without them only
    the RLIMIT_FSIZE variant runs.
    """
    folder = tmp_path / "disk"
    folder.mkdir()
    if request.param == "rlimit":
        yield folder, "rlimit"
        return
    if not _try_mount(folder):
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights)")
    try:
        yield folder, "tmpfs"
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_leaving_a_run_on_a_full_disk_raises_only_the_users_own_exception(
    small_disk: tuple[Path, str],
) -> None:
    disk, how = small_disk
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(disk), how],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    results = {line["scenario"]: line for line in map(json.loads, done.stdout.splitlines())}
    assert list(results) == ["user's exception", "normal exit", "ctrl-c", "complete()"]

    assert results["user's exception"]["raised"] == "ValueError: the user's own error"
    assert results["user's exception"]["status"] == "failed"
    assert results["normal exit"]["raised"] is None
    assert results["ctrl-c"]["raised"] == "KeyboardInterrupt: "
    assert results["ctrl-c"]["status"] == "cancelled"
    assert results["complete()"]["raised"] is None
    for result in results.values():
        assert result["handler_restored"], result
        assert result["open_runs"] == 0, result
        assert result["last_error"] in ("OSError", "StoreError"), result
    # The points were lost, and the run says so rather than claiming they were kept.
    assert results["normal exit"]["status"] == "failed"
    assert "kept in" not in done.stderr
    assert "lost" in done.stderr
    assert "Traceback" not in done.stderr
