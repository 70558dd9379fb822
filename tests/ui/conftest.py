"""Fixtures for ``pacha ui``: a populated store, the real server on 127.0.0.1, headless Chromium.

Test modules that use the ``store`` fixture (SeaweedFS) declare
``pytest_plugins = ["tests.servers"]`` themselves: pytest takes plugins only
from the top-level conftest. The server is the one ``pacha ui`` runs
(:class:`pacha_sdk.ui.UiServer`), in a thread of the test process; the
browser is Debian's chromium driven by Playwright through
``executable_path`` (no browser download).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

import pacha_sdk as pacha
from pacha_sdk.ui import StoreReader, UiServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Dialog, Page

    from tests.servers import ObjectStore

HTML_NAME = "<img src=x onerror=alert(1)>"
ERROR = "ValueError: loss exploded at step 3"
ARTIFACT = b"weights \x00\x01\x02 of the best model" * 1000
LEARNING_RATES = (0.1, 0.01, 0.001)
STEPS = 200
CONSOLE_LINE = "epoch 1: <b>not bold</b>"


@dataclass
class Store:
    """A store as the UI sees it, and the runs put in it."""

    uri: str
    storage_options: dict[str, Any] | None
    runs: dict[str, str] = field(default_factory=dict)
    """Run name -> run id."""

    @property
    def options(self) -> dict[str, Any]:
        return {"uri": self.uri, "storage_options": self.storage_options}


def populate(store: Store) -> Store:
    """Three completed runs of a sweep, one failed run, one named with HTML, one artifact."""
    for index, lr in enumerate(LEARNING_RATES):
        name = f"sweep-{index}"
        hparams = {"learning_rate": lr, "optimizer": "adam" if index else "sgd"}
        capture = index == 0
        with pacha.run(
            hparams, name=name, tags={"sweep": "lr"}, capture_output=capture, **store.options
        ) as run:
            if capture:
                print(CONSOLE_LINE)
            for step in range(STEPS):
                run.log_metrics(
                    {"loss": 1.0 / (1 + step * lr * 10), "acc": step / STEPS}, step=step
                )
            if index == 0:
                run.log_artifact(ARTIFACT, name="model.bin")
        store.runs[name] = run.run_id
    with pacha.run({"learning_rate": 0.05}, name=HTML_NAME, **store.options) as run:
        run.log_metric("loss", 0.5, step=0)
    store.runs[HTML_NAME] = run.run_id
    failing = pacha.run({"learning_rate": 1.0}, name="diverged", **store.options)
    with pytest.raises(ValueError, match="exploded"):
        _diverge(failing)
    store.runs["diverged"] = failing.run_id
    return store


def _diverge(run: pacha.Run) -> None:
    with run:
        for step in range(4):
            run.log_metric("loss", 10.0**step, step=step)
        raise ValueError("loss exploded at step 3")


@pytest.fixture(params=["local", pytest.param("seaweedfs", marks=pytest.mark.servers)])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Store:
    """A populated store: a local folder, or a fresh prefix on SeaweedFS."""
    if request.param == "local":
        return populate(Store(str(tmp_path / "store"), None))
    server: ObjectStore = request.getfixturevalue("seaweedfs_store")
    return populate(Store(server.uri, dict(server.storage_options)))


@pytest.fixture
def local_store(tmp_path: Any) -> Store:
    """A populated local store (for the API tests, which do not depend on the backend)."""
    return populate(Store(str(tmp_path / "store"), None))


def start_server(store: Store, *, read_only: bool = False) -> UiServer:
    server = UiServer(StoreReader(store.uri, store.storage_options), read_only=read_only)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    ).start()
    return server


@pytest.fixture
def server(store: Store) -> Iterator[UiServer]:
    """The UI's server over :func:`store`, on 127.0.0.1 and a free port."""
    ui = start_server(store)
    yield ui
    ui.shutdown()
    ui.server_close()


@pytest.fixture
def local_server(local_store: Store) -> Iterator[UiServer]:
    """The UI's server over :func:`local_store`."""
    ui = start_server(local_store)
    yield ui
    ui.shutdown()
    ui.server_close()


def chromium_path() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: apt-get install -y chromium")
        pytest.skip("chromium is not installed")
    return binary


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Chromium (Debian's), shared by the session's tests."""
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = chromium_path()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@dataclass
class PageProblems:
    """What went wrong on a page: script errors, CSP violations, alerts, failed requests.

    Chromium logs every HTTP error answer as a console error; a test that
    provokes one on purpose (a refused edit is a 400) says so with
    :meth:`expect_status`, and the others still fail the test.
    """

    seen: list[str] = field(default_factory=list)
    expected: set[int] = field(default_factory=set)

    def expect_status(self, *statuses: int) -> None:
        """Let answers with these HTTP statuses pass (they are what the test provokes)."""
        self.expected.update(statuses)

    def unexpected(self) -> list[str]:
        """Every problem but the expected failed requests."""
        marks = [f"the server responded with a status of {status} " for status in self.expected]
        return [seen for seen in self.seen if not any(mark in seen for mark in marks)]


@pytest.fixture
def page_problems() -> PageProblems:
    """The problems of the test's :func:`page` (empty at the end, or the test fails)."""
    return PageProblems()


def open_page(browser: Browser, url: str, problems: PageProblems) -> tuple[BrowserContext, Page]:
    """A fresh browser context on *url*, its problems recorded in *problems*."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    tab = context.new_page()

    def on_dialog(dialog: Dialog) -> None:
        problems.seen.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.seen.append(f"console: {message.text}")

    tab.on("pageerror", lambda error: problems.seen.append(f"page error: {error}"))
    tab.on("dialog", on_dialog)
    tab.on("console", on_console)
    tab.goto(url)
    return context, tab


@pytest.fixture
def page(browser: Browser, server: UiServer, page_problems: PageProblems) -> Iterator[Page]:
    """A fresh browser context on the UI, signed in through the printed URL.

    Any script error, CSP violation or alert on the page fails the test, and
    so does any failed request the test did not expect (:class:`PageProblems`).
    """
    context, tab = open_page(browser, server.url, page_problems)
    yield tab
    context.close()
    assert page_problems.unexpected() == []
