"""``pacha ui`` in a real headless Chromium, on a local store and on SeaweedFS.

What a user does with the page: see every run, filter, chart selected runs,
watch a running run's curve grow, read a failed run's error, download an
artifact. Every page also checks that no script error, CSP violation or
alert happened (the ``page`` fixture).
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

import pacha_sdk as pacha
from tests.ui.conftest import (
    ARTIFACT,
    CONSOLE_LINE,
    ERROR,
    HTML_NAME,
    LEARNING_RATES,
    Store,
    start_server,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, Page

    from pacha_sdk.ui import UiServer

pytest_plugins = ["tests.servers"]

ROWS = "#runs-table tbody tr"


def runs_table_names(page: Page) -> list[str]:
    page.wait_for_selector(ROWS)
    return [text.strip() for text in page.locator(f"{ROWS} td.name").all_text_contents()]


def test_the_table_lists_every_run(page: Page, store: Store) -> None:
    assert sorted(runs_table_names(page)) == sorted(store.runs)
    assert (
        page.locator("#run-count").text_content()
        == f"{len(store.runs)} of {len(store.runs)} runs · 0 selected"
    )
    headers = page.locator("#runs-table thead th").all_text_contents()
    assert any(h.startswith("learning_rate") for h in headers)  # differs between runs
    assert any(h.startswith("loss") for h in headers)  # a metric's latest value


def test_a_name_with_html_renders_as_text(page: Page, store: Store) -> None:
    runs_table_names(page)
    cell = page.locator(f"{ROWS} td.name a", has_text="<img")
    assert cell.text_content() == HTML_NAME
    assert page.locator("#runs-table img").count() == 0
    cell.click()
    page.wait_for_selector("#run-name")
    assert (page.locator("#run-name").text_content() or "").startswith(HTML_NAME)
    assert page.locator("main img").count() == 0


def test_the_filter_narrows_the_table(page: Page, store: Store) -> None:
    runs_table_names(page)
    page.fill("#filter", "learning_rate < 0.02")
    expect(page.locator(ROWS)).to_have_count(2)
    assert sorted(runs_table_names(page)) == ["sweep-1", "sweep-2"]
    page.fill("#filter", "learning_rate < 0.02 and loss < 0.1")
    expect(page.locator(ROWS)).to_have_count(1)
    assert runs_table_names(page) == ["sweep-1"]
    page.fill("#filter", "")
    page.select_option("#status-filter", "failed")
    expect(page.locator(ROWS)).to_have_count(1)
    assert runs_table_names(page) == ["diverged"]
    page.select_option("#status-filter", "all")
    page.fill("#filter", "sweep")  # free text: names and tags
    expect(page.locator(ROWS)).to_have_count(3)
    page.fill("#filter", "loss <")
    page.wait_for_selector("#filter-message:has-text('needs a value')")


def test_sorting_by_a_column(page: Page, store: Store) -> None:
    runs_table_names(page)
    page.fill("#filter", "sweep")
    expect(page.locator(ROWS)).to_have_count(3)
    page.click("#runs-table thead th[data-key='hp:learning_rate']")
    first = runs_table_names(page)
    page.click("#runs-table thead th[data-key='hp:learning_rate']")
    assert runs_table_names(page) == first[::-1]
    by_lr = [f"sweep-{i}" for i in sorted(range(3), key=lambda i: LEARNING_RATES[i])]
    assert first in (by_lr, by_lr[::-1])


def test_a_chart_has_one_series_per_selected_run(page: Page, store: Store) -> None:
    runs_table_names(page)
    for name in ("sweep-0", "sweep-2"):
        page.locator(ROWS, has_text=name).locator("td.select input").check()
    page.click("#chart-selected")
    loss = page.locator("figure.chart[data-metric='loss']")
    loss.locator("canvas").wait_for()
    assert loss.get_attribute("data-runs") == "2"
    assert loss.get_attribute("data-points") == "400"
    legend = loss.locator(".u-legend .u-series").all_text_contents()
    assert len(legend) == 3  # the x value, then one entry per run
    assert any("sweep-0" in entry for entry in legend)
    assert any("sweep-2" in entry for entry in legend)
    # Smoothing adds a faint raw line per run; log scale and time axes redraw.
    page.fill("#smoothing", "0.9")
    page.dispatch_event("#smoothing", "input")
    assert loss.locator(".u-legend .u-series").count() == 5  # a faint raw line per run...
    assert loss.locator(".u-legend .u-series:visible").count() == 3  # ...without a legend entry
    page.select_option("#x-axis", "relative")
    page.check("#log-scale")
    loss.locator("canvas").wait_for()
    assert loss.get_attribute("data-runs") == "2"


def test_the_run_page_shows_the_error_of_a_failed_run(page: Page, store: Store) -> None:
    page.goto(page.url.split("#")[0] + f"#/run/{store.runs['diverged']}")
    page.wait_for_selector("#error-message")
    assert page.locator("#error-message").text_content() == ERROR
    assert "Traceback" in (page.locator("#traceback").text_content() or "")
    assert page.locator("#run-status").text_content() == "failed"


def test_an_artifact_downloads_with_the_right_bytes(
    page: Page, store: Store, tmp_path: Path
) -> None:
    page.goto(page.url.split("#")[0] + f"#/run/{store.runs['sweep-0']}")
    link = page.locator("#artifacts a.download")
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename == "model.bin"
    target = tmp_path / "downloaded.bin"
    download.save_as(target)
    assert target.read_bytes() == ARTIFACT


def test_the_run_page_shows_the_console_output_as_text(page: Page, store: Store) -> None:
    page.goto(page.url.split("#")[0] + f"#/run/{store.runs['sweep-0']}")
    page.wait_for_selector("#console")
    assert CONSOLE_LINE in (page.locator("#console").text_content() or "")
    assert page.locator("#console b").count() == 0
    assert page.locator("section[data-section='hyperparameters'] td", has_text="sgd").count() == 1


def test_compare_shows_differences_and_parallel_coordinates(page: Page, store: Store) -> None:
    ids = ",".join(store.runs[f"sweep-{i}"] for i in range(3))
    page.goto(page.url.split("#")[0] + f"#/compare?runs={ids}")
    page.wait_for_selector("#hparam-diff tbody tr")
    rows = page.locator("#hparam-diff tbody th").all_text_contents()
    assert rows == ["learning_rate", "optimizer"]  # only what differs
    assert page.locator("#parallel").is_visible()
    page.locator("#compare-charts figure.chart[data-metric='loss'] canvas").wait_for()
    assert (
        page.locator("#compare-charts figure.chart[data-metric='loss']").get_attribute("data-runs")
        == "3"
    )


def test_a_request_without_the_token_gets_401(browser: Browser, server: UiServer) -> None:
    context = browser.new_context()
    try:
        bare = server.url.split("?")[0]
        response = context.new_page().goto(bare)
        assert response is not None
        assert response.status == 401
        assert "token" in response.json()["error"]
    finally:
        context.close()
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(bare + "api/runs", timeout=10)
    assert caught.value.code == 401


LIVE_RUN = textwrap.dedent(
    """
    import ast, sys, time
    import pacha_sdk as pacha
    uri, options = sys.argv[1], ast.literal_eval(sys.argv[2])
    with pacha.run({"learning_rate": 0.3}, name="live", uri=uri, storage_options=options,
                   flush_interval=0.5) as run:
        run.log_metric("loss", 1.0, step=0)
        run.flush()
        print(run.run_id, flush=True)
        sys.stdin.readline()  # the page is open: start training
        for step in range(1, 400):
            run.log_metric("loss", 1.0 / (1 + step), step=step)
            time.sleep(0.02)
    """
)


def test_a_running_run_shows_new_points_without_a_reload(page: Page, store: Store) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", LIVE_RUN, store.uri, repr(store.storage_options)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            _watch_live_run(page, child)
        finally:
            if child.poll() is None:
                child.kill()


def _watch_live_run(page: Page, child: subprocess.Popen[str]) -> None:
    assert child.stdout is not None
    assert child.stdin is not None
    run_id = child.stdout.readline().strip()
    page.goto(page.url.split("#")[0] + f"#/charts?runs={run_id}")
    loss = page.locator("figure.chart[data-metric='loss']")
    loss.locator("canvas").wait_for()
    assert loss.get_attribute("data-last-step") == "0"
    assert page.locator("#live").is_visible()
    page.evaluate("window.__notReloaded = true")
    child.stdin.write("go\n")
    child.stdin.flush()
    expect(loss).to_have_attribute("data-last-step", "399", timeout=60_000)
    assert page.evaluate("window.__notReloaded") is True
    assert loss.get_attribute("data-points") == "400"
    assert child.wait(timeout=60) == 0
    expect(page.locator("#live")).to_be_hidden(timeout=30_000)


@pytest.fixture
def long_run_page(browser: Browser, tmp_path: Path) -> Iterator[tuple[Page, str]]:
    """The charts page of one run of 20,000 steps: more than a chart's worth of points."""
    uri = str(tmp_path / "long")
    with pacha.run(uri=uri, name="long", flush_rows=5000) as run:
        for step in range(20_000):
            run.log_metric("loss", 1.0 / (1 + step) + (5.0 if step == 12_345 else 0.0), step)
    server = start_server(Store(uri, None))
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        tab = context.new_page()
        tab.goto(server.url)
        tab.goto(server.url.split("?")[0] + f"#/charts?runs={run.run_id}")
        yield tab, run.run_id
    finally:
        context.close()
        server.shutdown()
        server.server_close()


def test_zooming_in_reads_the_window_at_full_resolution(long_run_page: tuple[Page, str]) -> None:
    page, _ = long_run_page
    loss = page.locator("figure.chart[data-metric='loss']")
    loss.locator("canvas").wait_for()
    overview = int(loss.get_attribute("data-points") or 0)
    assert overview < 20_000  # thinned by the server
    box = loss.locator(".u-over").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.6, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.62, y, steps=5)
    page.mouse.up()
    expect(page.locator("#charts")).to_have_attribute("data-zoom", re.compile(r"^\d+-\d+$"))
    low, high = map(int, (page.locator("#charts").get_attribute("data-zoom") or "").split("-"))
    assert 0 < high - low < overview
    expect(loss).to_have_attribute("data-window-points", str(min(high, 19_999) - low + 1))
    loss.locator(".u-over").dblclick()
    expect(page.locator("#charts")).not_to_have_attribute("data-zoom", re.compile("."))


def test_smoothing_is_debiased_and_the_filter_is_parsed_not_evaluated(
    page: Page, store: Store
) -> None:
    runs_table_names(page)
    smoothed = page.evaluate(
        "import('/static/plot.js').then((m) => [m.smooth([2, 2, 2], 0.9), m.smooth([0, 10], 0.5)])"
    )
    assert smoothed[0] == pytest.approx([2, 2, 2])  # no pull towards zero at the start
    assert smoothed[1] == pytest.approx([0, 20 / 3])
    parsed = page.evaluate(
        """import('/static/filter.js').then((m) => [
            m.parseFilter('learning_rate < 0.01 and loss<=0.3, tag.sweep = lr'),
            m.parseFilter("constructor.constructor('alert(1)')()"),
            (() => {
                try { m.parseFilter('loss >'); return null } catch (e) { return e.message }
            })(),
        ])"""
    )
    assert parsed[0] == [
        {"key": "learning_rate", "op": "<", "value": 0.01},
        {"key": "loss", "op": "<=", "value": 0.3},
        {"key": "tag.sweep", "op": "=", "value": "lr"},
    ]
    assert parsed[1] == [{"text": "constructor.constructor('alert(1)')()"}]
    assert "needs a value" in parsed[2]
