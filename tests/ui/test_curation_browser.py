"""Curating runs in ``pacha ui`` with a real headless Chromium, on a local store and SeaweedFS.

What a user does: tag a run and write a note on its page, rename it,
archive runs from the table, delete one (confirming, and forcing for a
live run) and restore it from the trash. Each action shows at once,
without a reload, and lands in the store where ``pacha.load_run`` and
``pacha.list_runs`` see it. The guards hold in the browser too: a page on
another origin cannot write through the user's cookie, a read-only server
shows no buttons, and a refused edit shows the server's reason.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import expect

import pacha_sdk as pacha
from tests.ui.conftest import PageProblems, Store, open_page, start_server

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, Page

    from pacha_sdk.ui import UiServer

pytest_plugins = ["tests.servers"]

ROWS = "#runs-table tbody tr"


def open_run(page: Page, run_id: str) -> None:
    page.goto(page.url.split("#")[0] + f"#/run/{run_id}")
    page.wait_for_selector("#curate")


def row(page: Page, name: str) -> Any:
    return page.locator(ROWS, has=page.locator("td.name a", has_text=name))


def mark_loaded(page: Page) -> None:
    """Set a flag that a full reload of the page would clear."""
    page.evaluate("window.__notReloaded = true")


def not_reloaded(page: Page) -> bool:
    return page.evaluate("window.__notReloaded === true") is True


def test_tag_a_run_on_its_page_and_see_it_everywhere(page: Page, store: Store) -> None:
    run_id = store.runs["sweep-0"]
    open_run(page, run_id)
    mark_loaded(page)
    page.fill("#tag-input", "good")
    page.click("#add-tag")
    expect(page.locator("#tags .tag[data-tag='good'] .tag-text")).to_have_text("good")
    page.fill("#tag-input", "lr=1e-1")
    page.press("#tag-input", "Enter")
    expect(page.locator("#tags .tag[data-tag='lr'] .tag-text")).to_have_text("lr=1e-1")
    page.click("#tags .tag[data-tag='sweep'] .tag-remove")
    expect(page.locator("#tags .tag[data-tag='sweep']")).to_have_count(0)
    assert pacha.load_run(run_id, **store.options).tags == {"good": "", "lr": "1e-1"}
    page.click("nav a[data-route='/']")
    expect(row(page, "sweep-0").locator("td").nth(6)).to_have_text("good, lr=1e-1")
    assert not_reloaded(page)


def test_write_a_note_and_rename_a_run(page: Page, store: Store) -> None:
    run_id = store.runs["sweep-1"]
    open_run(page, run_id)
    mark_loaded(page)
    note = "diverged at step 5:\nlr too high <b>not bold</b>"
    page.fill("#note-input", note)
    page.click("#save-note")
    expect(page.locator("#curate-status")).to_have_text("Note saved.")
    assert page.input_value("#note-input") == note
    expect(page.locator("#edited")).to_contain_text("last edited")
    page.fill("#rename-input", "sweep-1-kept")
    page.click("#rename")
    expect(page.locator("#run-name")).to_have_text(f"sweep-1-kept ({run_id[:8]})")
    assert not_reloaded(page)
    stored = pacha.load_run(run_id, **store.options)
    assert (stored.note, stored.name) == (note, "sweep-1-kept")
    assert page.locator("main b").count() == 0
    page.reload()
    page.wait_for_selector("#curate")
    assert page.input_value("#note-input") == note


def test_archive_from_the_table_hides_the_runs_unless_asked(page: Page, store: Store) -> None:
    page.wait_for_selector(ROWS)
    mark_loaded(page)
    for name in ("sweep-0", "sweep-1"):
        row(page, name).locator("td.select input").check()
    page.click("#bulk-archive")
    expect(page.locator("#bulk-message")).to_have_text("Archived 2 runs")
    left = len(store.runs) - 2
    expect(page.locator(ROWS)).to_have_count(left)
    expect(page.locator("#run-count")).to_have_text(f"{left} of {left} runs · 0 selected")
    listed = {run.name for run in pacha.list_runs(**store.options)}
    assert listed == set(store.runs) - {"sweep-0", "sweep-1"}
    page.check("#show-archived")
    expect(page.locator(ROWS)).to_have_count(len(store.runs))
    expect(page.locator(f"{ROWS}.archived")).to_have_count(2)
    expect(row(page, "sweep-0").locator(".badge.archived")).to_have_text("archived")
    row(page, "sweep-0").locator("td.select input").check()
    page.fill("#bulk-tag", "keep")
    page.click("#bulk-tag-add")
    expect(page.locator("#bulk-message")).to_have_text("Tagged 1 run")
    page.click("#bulk-unarchive")
    expect(page.locator("#bulk-message")).to_have_text("Unarchived 1 run")
    expect(page.locator(f"{ROWS}.archived")).to_have_count(1)
    assert not_reloaded(page)
    record = pacha.load_run(store.runs["sweep-0"], **store.options)
    assert (record.archived, record.tags) == (False, {"sweep": "lr", "keep": ""})


def test_delete_from_the_run_page_then_restore_from_the_trash(page: Page, store: Store) -> None:
    run_id = store.runs["sweep-2"]
    open_run(page, run_id)
    mark_loaded(page)
    page.click("#delete-run")
    expect(page.locator("#delete-dialog")).to_be_visible()
    page.click("#cancel-delete")
    expect(page.locator("#delete-dialog")).to_have_count(0)
    assert pacha.load_run(run_id, **store.options).name == "sweep-2"
    page.click("#delete-run")
    page.click("#confirm-delete")
    expect(page.locator("#deleted-message")).to_contain_text("in the trash")
    with pytest.raises(pacha.RunDeletedError):
        pacha.load_run(run_id, **store.options)
    page.click("#run-deleted a[href='#/trash']")
    trashed = page.locator(f"#trash-table tbody tr[data-run-id='{run_id}']")
    expect(trashed.locator("td.name")).to_have_text("sweep-2")
    trashed.locator("button.restore").click()
    expect(page.locator("#trash-message")).to_have_text("Restored sweep-2.")
    expect(trashed).to_have_count(0)
    assert pacha.load_run(run_id, **store.options).name == "sweep-2"
    page.click("#trash-message a")
    expect(page.locator("#run-name")).to_have_text(f"sweep-2 ({run_id[:8]})")
    assert not_reloaded(page)


def test_bulk_delete_and_restore_on_the_deleted_runs_page(
    page: Page, store: Store, page_problems: PageProblems
) -> None:
    page_problems.expect_status(404)  # the run page of a deleted run asks for it first
    page.wait_for_selector(ROWS)
    row(page, "diverged").locator("td.select input").check()
    page.click("#bulk-delete")
    page.click("#confirm-delete")
    expect(page.locator("#bulk-message")).to_have_text("Deleted 1 run")
    expect(page.locator(ROWS)).to_have_count(len(store.runs) - 1)
    run_id = store.runs["diverged"]
    assert run_id in {deleted.run_id for deleted in pacha.list_deleted_runs(**store.options)}
    open_run_page = page.url.split("#")[0] + f"#/run/{run_id}"
    page.goto(open_run_page)
    page.click("#restore-run")
    expect(page.locator("#error-message")).to_have_text("ValueError: loss exploded at step 3")
    assert pacha.list_deleted_runs(**store.options) == []


def test_a_live_run_is_deleted_only_with_the_force_box(page: Page, store: Store) -> None:
    with pacha.run(name="training", flush_interval=30, **store.options) as run:
        run.log_metric("loss", 1.0, step=0)
        run.flush()
        open_run(page, run.run_id)
        page.click("#delete-run")
        expect(page.locator("#confirm-delete")).to_be_disabled()
        expect(page.locator("#delete-dialog label.force")).to_contain_text("still running")
        page.check("#force-delete")
        page.click("#confirm-delete")
        expect(page.locator("#deleted-message")).to_contain_text("in the trash")
        assert run.run_id in {d.run_id for d in pacha.list_deleted_runs(**store.options)}


def test_an_over_long_tag_shows_the_error_in_the_page(
    page: Page, store: Store, page_problems: PageProblems
) -> None:
    page_problems.expect_status(400)
    run_id = store.runs["sweep-0"]
    open_run(page, run_id)
    page.fill("#tag-input", "x" * 129)
    page.click("#add-tag")
    expect(page.locator("#curate-error")).to_contain_text("the limit is 128")
    assert page.input_value("#tag-input") == "x" * 129  # kept, to fix and retry
    assert pacha.load_run(run_id, **store.options).tags == {"sweep": "lr"}


def test_a_write_without_the_token_is_401(browser: Browser, server: UiServer, store: Store) -> None:
    run_id = store.runs["sweep-0"]
    context = browser.new_context()
    try:
        answer = context.request.post(
            server.url.split("?")[0] + f"api/runs/{run_id}/annotations",
            data={"note": "no token"},
            headers={"Content-Type": "application/json"},
        )
        assert answer.status == 401
        assert "token" in answer.json()["error"]
    finally:
        context.close()
    assert pacha.load_run(run_id, **store.options).note is None


@pytest.fixture
def other_site(server: UiServer, store: Store) -> Iterator[str]:
    """A page on another origin (another port) that tries to write through the user's cookie.

    Ports do not make another *site*, so a SameSite=Strict cookie still goes
    along: what stops the writes is the token header and the JSON body.
    """
    target = f"http://127.0.0.1:{server.port}/api/runs/{store.runs['sweep-0']}"
    html = f"""<!doctype html><body>
<form id="f" method="POST" action="{target}/delete" enctype="text/plain">
<input name='{{"force": true, "x": "' value='"}}'></form>
<script>
fetch("{target}/annotations", {{method: "POST", mode: "no-cors", credentials: "include",
  headers: {{"Content-Type": "application/json"}}, body: JSON.stringify({{note: "pwned"}})}})
  .finally(() => document.getElementById("f").submit());
</script></body>""".encode()

    class Evil(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    evil = ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{evil.server_address[1]}/"
    evil.shutdown()
    evil.server_close()


def test_a_page_on_another_origin_cannot_write(page: Page, store: Store, other_site: str) -> None:
    page.wait_for_selector(ROWS)  # signed in: the browser holds the cookie
    evil = page.context.new_page()  # the attacker's tab, in the same browser
    with evil.expect_response(lambda answer: answer.url.endswith("/delete")) as refused:
        evil.goto(other_site)
    assert refused.value.status == 403
    assert "cross-origin" in refused.value.json()["error"]
    record = pacha.load_run(store.runs["sweep-0"], **store.options)
    assert (record.note, record.name) == (None, "sweep-0")  # the no-cors fetch wrote nothing


@pytest.fixture
def read_only_page(
    browser: Browser, store: Store, page_problems: PageProblems
) -> Iterator[tuple[Page, UiServer]]:
    server = start_server(store, read_only=True)
    context, tab = open_page(browser, server.url, page_problems)
    try:
        yield tab, server
    finally:
        context.close()
        server.shutdown()
        server.server_close()
    assert page_problems.unexpected() == []


def test_a_read_only_server_shows_no_buttons_and_refuses_writes(
    read_only_page: tuple[Page, UiServer], store: Store, page_problems: PageProblems
) -> None:
    page, server = read_only_page
    page_problems.expect_status(405)
    page.wait_for_selector(ROWS)
    assert page.locator("#bulk-actions").is_hidden()
    pacha.delete_run(store.runs["sweep-2"], **store.options)
    open_run(page, store.runs["sweep-0"])
    for control in ("#add-tag", "#tag-input", "#save-note", "#rename", "#archive-run"):
        assert page.locator(control).count() == 0, control
    assert page.locator("#delete-run, .tag-remove").count() == 0
    expect(page.locator("#read-only-notice")).to_be_visible()
    expect(page.locator("#tags .tag")).to_have_text("sweep=lr")  # shown, not editable
    page.click("nav a[data-route='/trash']")
    expect(page.locator("#trash-table tbody tr")).to_have_count(1)
    assert page.locator("#trash-table button.restore").count() == 0
    status = page.evaluate(
        """([runId, token]) => fetch(`/api/runs/${runId}/annotations`, {
            method: "POST", headers: {"Content-Type": "application/json", "X-Pacha-Token": token},
            body: JSON.stringify({note: "x"})}).then((answer) => answer.status)""",
        [store.runs["sweep-0"], server.token],
    )
    assert status == 405
    assert pacha.load_run(store.runs["sweep-0"], **store.options).note is None
