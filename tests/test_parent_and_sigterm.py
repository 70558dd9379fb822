"""Two run options frameworks need: ``parent=`` (nesting from another thread) and
``handle_sigterm=False`` (the framework owns SIGTERM).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import pacha_sdk as pacha


def test_parent_nests_a_run_started_in_another_thread(store: str) -> None:
    with pacha.run(uri=store, name="study", system_metrics=False) as study:
        children: list[pacha.Run] = []

        def trial() -> None:
            assert pacha.active_run() is None  # a new thread sees no active run
            with pacha.run(uri=store, parent=study, system_metrics=False) as child:
                children.append(child)

        worker = threading.Thread(target=trial)
        worker.start()
        worker.join()
        with pacha.run(uri=store, system_metrics=False) as nested:  # the active one, as before
            pass
    (child,) = children
    assert pacha.load_run(child.run_id, uri=store).parent_run_id == str(study.run_id)
    assert pacha.load_run(nested.run_id, uri=store).parent_run_id == str(study.run_id)


def test_parent_must_be_a_run(store: str) -> None:
    with pytest.raises(TypeError, match=r"parent must be a pacha\.Run"):
        pacha.run(uri=store, parent="0f9b3c1e-7f2a-4c1d-9d7e-1a2b3c4d5e6f")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="handle_sigterm must be a bool"):
        pacha.run(uri=store, handle_sigterm="no")  # type: ignore[arg-type]
    assert not Path(store).exists()  # nothing written


_CHILD = """
import signal, sys, time
import pacha_sdk as pacha

stopping = []
signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
with pacha.run(uri={store!r}, handle_sigterm={handle}, system_metrics=False) as run:
    print(run.run_id, flush=True)
    for step in range(6000):
        if stopping:
            print("graceful stop at", step, flush=True)
            break
        run.log_metric("loss", 1.0 / (step + 1), step)
        time.sleep(0.005)
"""


def _child(
    store: str, tmp_path: Path, *, handle: bool
) -> tuple[str, subprocess.CompletedProcess[str]]:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(_CHILD.format(store=store, handle=handle)))
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    return run_id, subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.subprocess
def test_without_sigterm_handling_the_programs_own_handler_decides(
    store: str, tmp_path: Path
) -> None:
    run_id, finished = _child(store, tmp_path, handle=False)
    assert finished.returncode == 0, finished.stderr
    assert "graceful stop at" in finished.stdout
    record = pacha.load_run(run_id, uri=store)
    assert record.status is pacha.RunStatus.COMPLETED  # the block ended normally
    stop = int(finished.stdout.split()[-1])
    assert pacha.read_metrics(run_id, uri=store).num_rows == stop


@pytest.mark.subprocess
def test_by_default_sigterm_cancels_then_hands_over_to_the_programs_handler(
    store: str, tmp_path: Path
) -> None:
    run_id, finished = _child(store, tmp_path, handle=True)
    assert finished.returncode == 0, finished.stderr
    record = pacha.load_run(run_id, uri=store)
    assert record.status is pacha.RunStatus.CANCELLED
