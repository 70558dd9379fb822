"""capture_output=True: stdout and stderr teed into runs/<id>/output.log, streams restored."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import pytest

import pacha_sdk as pacha


def log_of(store: str, run: pacha.Run) -> str:
    record = pacha.load_run(run.run_id, uri=store)
    assert record.log_uri == f"{run.uri}/runs/{run.run_id}/output.log"
    return Path(record.log_uri).read_text(encoding="utf-8")


def test_stdout_and_stderr_go_to_the_log_and_still_to_the_console(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pacha.run(uri=store, capture_output=True, system_metrics=False) as run:
        print("epoch 1: loss 0.5")
        print("warning: lr is high", file=sys.stderr)
        sys.stdout.write("naïve ✓ done\n")
    assert log_of(store, run) == "epoch 1: loss 0.5\nwarning: lr is high\nnaïve ✓ done\n"
    console = capsys.readouterr()
    assert console.out == "epoch 1: loss 0.5\nnaïve ✓ done\n"
    assert console.err == "warning: lr is high\n"


def test_streams_are_restored_after_the_run(store: str) -> None:
    before = (sys.stdout, sys.stderr)
    with pacha.run(uri=store, capture_output=True, system_metrics=False):
        assert (sys.stdout, sys.stderr) != before
    assert (sys.stdout, sys.stderr) == before
    print("after the run")  # goes nowhere near the finished run's log


def test_streams_are_restored_when_the_block_raises(store: str) -> None:
    def train() -> float:
        print("about to divide")
        return 1 / 0

    before = (sys.stdout, sys.stderr)
    run = pacha.run(uri=store, capture_output=True, system_metrics=False)
    with pytest.raises(ZeroDivisionError), run:
        train()
    assert (sys.stdout, sys.stderr) == before
    assert log_of(store, run) == "about to divide\n"
    assert pacha.load_run(run.run_id, uri=store).status is pacha.RunStatus.FAILED


def test_logging_set_up_before_the_run_is_captured(store: str) -> None:
    handler = logging.StreamHandler(sys.stderr)  # as logging.basicConfig() makes
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("pacha-test-training")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with pacha.run(uri=store, capture_output=True, system_metrics=False) as run:
            logger.warning("loss spiked at step %d", 7)
        assert handler.stream is sys.stderr
    finally:
        logger.removeHandler(handler)
    assert log_of(store, run) == "WARNING loss spiked at step 7\n"


def test_output_of_other_threads_is_captured(store: str) -> None:
    with pacha.run(uri=store, capture_output=True, system_metrics=False) as run:
        worker = threading.Thread(target=print, args=("from a data-loader thread",))
        worker.start()
        worker.join()
    assert log_of(store, run) == "from a data-loader thread\n"


def test_the_log_is_uploaded_at_each_flush(store: str) -> None:
    with pacha.run(uri=store, capture_output=True, system_metrics=False) as run:
        print("step 1")
        assert run.flush(timeout=10)
        log = Path(store) / "runs" / str(run.run_id) / "output.log"
        assert log.read_text() == "step 1\n"
        print("step 2")
    assert log.read_text() == "step 1\nstep 2\n"


def test_nested_runs_each_keep_their_own_log(store: str) -> None:
    with pacha.run(uri=store, capture_output=True, system_metrics=False) as outer:
        print("outer")
        with pacha.run(uri=store, capture_output=True, system_metrics=False) as inner:
            print("inner")
        print("outer again")
    assert log_of(store, inner) == "inner\n"
    assert log_of(store, outer) == "outer\ninner\nouter again\n"


def test_without_capture_there_is_no_log(store: str) -> None:
    with pacha.run(uri=store, system_metrics=False) as run:
        print("not captured")
    assert pacha.load_run(run.run_id, uri=store).log_uri is None
    assert not (Path(store) / "runs" / str(run.run_id) / "output.log").exists()


def test_track_captures_the_functions_output(store: str) -> None:
    @pacha.track(uri=store, capture_output=True, system_metrics=False)
    def train() -> pacha.Run:
        print("training")
        run = pacha.active_run()
        assert run is not None
        return run

    run = train()
    assert log_of(store, run) == "training\n"


def test_capture_output_must_be_a_bool(store: str) -> None:
    with pytest.raises(TypeError, match="capture_output"):
        pacha.run(uri=store, capture_output="yes")  # type: ignore[arg-type]
    assert not Path(store).exists()  # nothing written
