"""A training loop for the crash suite to kill: it logs at full speed until it dies.

Usage: ``python crash_child.py MODE URI PROGRESS FLUSH_INTERVAL [STEP_MS]``

* ``loop``: log ``loss`` (value = step) as fast as Python goes, plus ``acc`` and
  ``lr`` through ``log_metrics`` every 100 steps, until killed. Every
  :data:`PROGRESS_EVERY` steps it appends ``<step> <monotonic time>`` to the
  PROGRESS file, after logging that step: the parent then knows which points
  were logged long enough before the kill to be stored. With STEP_MS, each
  step first sleeps that long (a loop waiting on its accelerator), which
  shows the writer when the loop is not pure logging.
* ``thread``: a background thread of "user code" logs ``worker`` points and
  then raises; another passes a bad value and gets the SDK's error in its
  own thread. The main thread logs ``loss`` and ends the run normally.

The run id is printed on the first line of stdout, then ``ready``.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import pacha_sdk as pacha

PROGRESS_EVERY = 64
"""Steps between two progress lines."""
THREAD_POINTS = 20_000
"""``worker`` points the crashing thread logs before it raises."""
MAIN_POINTS = 200_000
"""``loss`` points the main thread logs in ``thread`` mode."""


def loop(uri: str, progress: str, flush_interval: float, step_ms: float = 0.0) -> None:
    """Log at full speed (or one step per *step_ms*) until killed, writing progress lines."""
    fd = os.open(progress, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    with pacha.run(uri=uri, flush_interval=flush_interval, system_metrics=False) as run:
        print(run.run_id, flush=True)
        log = run.log_metric
        pause = step_ms / 1000.0
        step = 0
        while True:
            if pause:
                time.sleep(pause)
            log("loss", float(step), step)
            if step % 100 == 0:
                run.log_metrics({"acc": step / 1e9, "lr": 1e-3}, step=step)
            if step % PROGRESS_EVERY == 0:
                os.write(fd, f"{step} {time.monotonic()}\n".encode())
                if step == 0:
                    print("ready", flush=True)
            step += 1


def _crashing_worker(run: pacha.Run) -> None:
    for step in range(THREAD_POINTS):
        run.log_metric("worker", float(step), step)
    raise RuntimeError("worker thread crashed")


def _bad_value_worker(run: pacha.Run, after: threading.Thread) -> None:
    after.join()  # one traceback at a time: two at once interleave on stderr
    run.log_metric("bad", "not a number", 0)  # type: ignore[arg-type]


def threads(uri: str, flush_interval: float) -> None:
    """Background threads of user code raise; the main thread goes on and completes."""
    with pacha.run(uri=uri, flush_interval=flush_interval, system_metrics=False) as run:
        print(run.run_id, flush=True)
        print("ready", flush=True)
        crashing = threading.Thread(target=_crashing_worker, args=(run,))
        workers = [crashing, threading.Thread(target=_bad_value_worker, args=(run, crashing))]
        for worker in workers:
            worker.start()
        for step in range(MAIN_POINTS):
            run.log_metric("loss", float(step), step)
        for worker in workers:
            worker.join(timeout=60)
        time.sleep(3 * flush_interval)  # several flushes after the threads died
        # True only if the writer thread is alive and stored every point so far.
        print(f"flushed={run.flush(timeout=30)} last_error={run.last_error!r}", flush=True)


def main() -> None:
    """Dispatch on MODE."""
    mode, uri, progress, flush_interval = sys.argv[1:5]
    if mode == "loop":
        loop(uri, progress, float(flush_interval), float(sys.argv[5]) if sys.argv[5:] else 0.0)
    elif mode == "thread":
        threads(uri, float(flush_interval))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
