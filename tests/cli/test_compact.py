"""``pacha compact``: merges runs' part files; bad input gets one line and exit status 1."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tests.cli.conftest import Cli, make_stale
from tests.curation_stores import Where
from tests.test_compaction import log_run, part_keys

if TYPE_CHECKING:
    from pathlib import Path


def test_compact_every_run_then_one(cli: Cli, store: str) -> None:
    place = Where("local", store)
    first, second = log_run(place, flushes=12), log_run(place, flushes=5)

    done = cli("compact", "--uri", store)

    assert done.code == 0
    assert done.err == "2 run(s): 17 -> 2 part file(s)\n"
    assert f"{first}: 12 -> 1 part(s)" in done.out
    assert f"{second}: 5 -> 1 part(s)" in done.out
    assert len(part_keys(place, first)) == len(part_keys(place, second)) == 1
    again = cli.ok("compact", first[:8], "--uri", store, "--json").json()
    [run] = again["runs"]
    assert (run["run_id"], run["parts_before"], run["parts_after"]) == (first, 1, 1)


def test_a_running_run_named_is_refused(cli: Cli, store: str) -> None:
    place = Where("local", store)
    run_id = log_run(place, flushes=4)
    make_stale(store, run_id, age=0)  # running, heartbeat fresh: alive

    result = cli("compact", run_id, "--uri", store)

    assert result.code == 1
    assert "skipped, running" in result.out
    assert len(part_keys(place, run_id)) == 4
    make_stale(store, run_id, age=3600)  # its process died an hour ago
    assert "4 -> 1" in cli("compact", run_id, "--uri", store).out


def test_an_unknown_run_or_store_is_one_line(cli: Cli, store: str, tmp_path: Path) -> None:
    log_run(Where("local", store), flushes=2)

    unknown = cli("compact", "0123abcd", "--uri", store)
    assert unknown.code == 1
    assert unknown.out == ""
    assert len(unknown.err.strip().splitlines()) == 1
    assert "0123abcd" in unknown.err

    missing = cli("compact", "--uri", str(tmp_path / "no-such-store"))
    assert missing.code == 1
    assert len(missing.err.strip().splitlines()) == 1


def test_an_unreadable_part_is_named_and_fails_the_command(cli: Cli, store: str) -> None:
    place = Where("local", store)
    run_id = log_run(place, flushes=6)
    bad = part_keys(place, run_id)[2]
    with open(f"{store}/{bad}", "wb") as file:
        file.write(b"garbage")

    result = cli("compact", "--uri", store, "--json")

    assert result.code == 1
    [run] = json.loads(result.out)["runs"]
    assert bad in run["unreadable"][0]
    assert run["parts_after"] == 3  # 0-1, the bad one, 3-5
