"""A data argument is not a hyperparameter, and long values never flood a table.

``@pacha.track`` leaves out lists and tuples of more than 64 values (a data
set passed as an argument); ``pacha.run`` still stores what it is given.
``pacha runs list`` and the HTML report shorten long values to
:data:`~pacha_sdk.views.display.CELL_CHARS` characters; ``runs show`` and
``--json`` keep them whole.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pacha_sdk as pacha
from pacha_sdk.views.display import CELL_CHARS, format_value

if TYPE_CHECKING:
    from tests.cli.conftest import Cli

DATA = [i / 7 for i in range(200)]


def test_the_decorator_leaves_out_long_sequences(store: str) -> None:
    @pacha.track(uri=store, system_metrics=False)
    def train(data: Any, shape: Any = (), lr: float = 0.1) -> str:
        run = pacha.active_run()
        assert run is not None
        return run.run_id

    custom = {}
    for data in (DATA, tuple(DATA), [[1.0] * 10] * 10, [DATA]):
        run_id = train(data, shape=(224, 224, 3))
        custom = pacha.load_run(run_id, uri=store).hyperparameters.custom
        assert custom == {"shape": [224, 224, 3], "lr": 0.1}, data

    run_id = train(list(range(64)))  # 64 values: still a setting
    assert pacha.load_run(run_id, uri=store).hyperparameters.custom["data"] == list(range(64))


def test_run_stores_a_long_list_it_is_given(store: str) -> None:
    with pacha.run({"data": DATA}, uri=store, system_metrics=False) as run:
        pass
    assert pacha.load_run(run.run_id, uri=store).hyperparameters.custom["data"] == DATA


def test_format_value_shortens_only_when_asked() -> None:
    long = format_value(DATA)
    assert long.startswith("[0, 0.142857")
    assert long.endswith("28.4286]")
    short = format_value(DATA, max_chars=CELL_CHARS)
    assert len(short) == CELL_CHARS
    assert short.endswith("…")
    assert short[:-1] == long[: CELL_CHARS - 1]
    assert format_value("x" * CELL_CHARS, max_chars=CELL_CHARS) == "x" * CELL_CHARS
    assert format_value(0.5, max_chars=CELL_CHARS) == "0.5"


def _store_with_long_values(uri: str) -> str:
    with pacha.run({"data": DATA, "note": "n" * 300}, uri=uri, system_metrics=False) as run:
        run.log_metric("loss", 0.5, 0)
    with pacha.run({"data": [1.0], "note": "short"}, uri=uri, system_metrics=False):
        pass
    return run.run_id


def test_runs_list_shortens_long_values(cli: Cli, store: str) -> None:
    long_run = _store_with_long_values(store)
    listed = cli.ok("runs", "list", "--uri", store, "--hparam", "data", "--hparam", "note")
    for line in listed.out.splitlines():
        assert len(line) < 200, line
    assert "n" * (CELL_CHARS - 1) + "…" in listed.out
    assert "0.142857" in listed.out
    assert "28.4286" not in listed.out

    shown = cli.ok("runs", "show", "--uri", store, long_run[:8])
    assert "28.4286" in shown.out  # the detail view keeps the whole value

    as_json = cli.ok("runs", "list", "--uri", store, "--json").json()
    assert DATA in [run["hyperparameters"]["data"] for run in as_json]


def test_the_report_shortens_long_values_and_keeps_them_in_a_tooltip(
    cli: Cli, store: str, tmp_path: Path
) -> None:
    _store_with_long_values(store)
    output = tmp_path / "report.html"
    cli.ok("report", "--uri", store, "--output", str(output))
    page = output.read_text()
    cells = re.findall(r'<td class="num"(?: title="([^"]*)")?>([^<]*)</td>', page)
    texts = [html.unescape(text) for _, text in cells]
    assert all(len(text) <= CELL_CHARS for text in texts), texts
    titles = [html.unescape(title) for title, _ in cells if title]
    assert format_value(DATA) in titles
    assert "n" * 300 in titles
