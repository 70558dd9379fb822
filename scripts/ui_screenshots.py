#!/usr/bin/env python3
"""Regenerate the README's screenshots of ``pacha ui`` (docs/ui-runs.png, -chart, -curate).

    python scripts/ui_screenshots.py

Logs a small learning-rate sweep with the SDK into a temporary store,
serves it with the real server and photographs the runs table, the
charts of three runs, and the diverged run's page after tagging it and
writing a note in the page, in headless Chromium (Debian's, through
Playwright).
Nothing is drawn by hand: what you see is what ``pacha ui`` shows.
"""

from __future__ import annotations

import math
import random
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

import pacha_sdk as pacha
from pacha_sdk.ui import StoreReader, UiServer

DOCS = Path(__file__).resolve().parent.parent / "docs"
RATES = (3e-3, 1e-3, 3e-4, 1e-4)


def sweep(uri: str) -> list[str]:
    """Four runs of a sweep and one that diverged (last); returns the run ids."""
    rng = random.Random(7)
    ids = []
    for index, lr in enumerate(RATES):
        hparams = {"learning_rate": lr, "batch_size": 64, "optimizer": "adamw", "dropout": 0.1}
        with pacha.run(hparams, uri=uri, name=f"bert-ft-lr{lr:g}", tags={"sweep": "lr"}) as run:
            for step in range(0, 3000, 5):
                speed = lr * 1500
                loss = 2.2 * math.exp(-speed * step / 3000) + 0.15 + rng.gauss(0, 0.04)
                if index == 0 and step == 1800:
                    loss += 1.5  # a spike: the thinning keeps it
                run.log_metrics(
                    {"loss": loss, "accuracy": 1 - loss / 2.6, "lr": lr * min(1, step / 300)},
                    step=step,
                )
        ids.append(run.run_id)
    diverged = pacha.run({"learning_rate": 1e-2, "batch_size": 64}, uri=uri, name="bert-ft-lr0.01")
    try:
        with diverged:
            pacha.log_metric("loss", 2.3, step=0)
            pacha.log_metric("loss", 9.7, step=5)
            raise FloatingPointError("loss is nan at step 10")
    except FloatingPointError:
        pass
    return [*ids, diverged.run_id]


def main() -> int:
    """Write the two PNG files."""
    DOCS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as root:
        ids = sweep(root)
        server = UiServer(StoreReader(root, None))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which("chromium"),
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 520})
            page.goto(server.url)
            page.wait_for_selector("#runs-table tbody tr")
            for name in ("bert-ft-lr0.003", "bert-ft-lr0.001", "bert-ft-lr0.0003"):
                page.locator("#runs-table tbody tr", has_text=name).locator("input").check()
            page.screenshot(path=str(DOCS / "ui-runs.png"))
            page.set_viewport_size({"width": 1280, "height": 760})
            page.goto(server.url.split("?")[0] + "#/charts?runs=" + ",".join(ids[:3]))
            page.locator("figure.chart[data-metric='loss'] canvas").wait_for()
            page.fill("#smoothing", "0.6")
            page.dispatch_event("#smoothing", "input")
            page.wait_for_timeout(300)
            page.screenshot(path=str(DOCS / "ui-chart.png"))
            page.set_viewport_size({"width": 1280, "height": 600})
            page.goto(server.url.split("?")[0] + f"#/run/{ids[-1]}")
            page.fill("#tag-input", "diverged")
            page.click("#add-tag")
            page.locator("#tags .tag[data-tag='diverged']").wait_for()
            page.fill("#note-input", "lr 1e-2 is too high: loss 9.7 by step 5, nan at 10.")
            page.click("#save-note")
            page.locator("#curate-status", has_text="Note saved.").wait_for()
            page.screenshot(path=str(DOCS / "ui-curate.png"))
            browser.close()
        server.shutdown()
        server.server_close()
    print(f"wrote ui-runs.png, ui-chart.png and ui-curate.png in {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
