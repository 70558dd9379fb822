"""``pacha runs tag | untag | note | rename | archive | unarchive | delete | restore``.

Each command takes any unique id prefix, changes exactly what it says, and
answers bad input with one line and exit status 1, having written nothing.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

import pacha_sdk as pacha
from pacha_sdk.backends import get_backend
from tests.cli.conftest import Cli, Result, Store, make_stale


def _keys(uri: str) -> list[str]:
    return get_backend(uri).list()


def _done(cli: Cli, *argv: str) -> Result:
    """Run a command that reports what it did on stderr; insist on success."""
    result = cli(*argv)
    assert result.code == 0, result.err
    assert "pacha: " not in result.err, result.err  # no error, no warning
    return result


class _Terminal(io.StringIO):
    """A stdin that says it is a terminal, with the user's answers in it."""

    def isatty(self) -> bool:
        return True


def test_tag_untag_note_rename_round_trip(cli: Cli, fresh_store: Store) -> None:
    uri, run_id = fresh_store.uri, fresh_store.runs["bert-0"]
    short = run_id[:6]
    tagged = _done(cli, "runs", "tag", short, "good", "lr=0.001", "--uri", uri, "--json").json()
    assert tagged[0]["tags"] == {"good": "", "lr": "0.001"}
    result = cli("runs", "untag", short, "good", "never-set", "--uri", uri)
    assert result.code == 0
    assert "has no tag 'never-set'" in result.err
    assert "untagged bert-0" in result.err
    _done(cli, "runs", "note", short, "lr too high\nsee the loss", "--uri", uri)
    _done(cli, "runs", "rename", short, "bert-baseline", "--uri", uri)

    stored = pacha.load_run(run_id, uri=uri)
    assert stored.tags == {"lr": "0.001"}
    assert stored.note == "lr too high\nsee the loss"
    assert stored.name == "bert-baseline"
    shown = cli.ok("runs", "show", short, "--uri", uri).out
    assert "bert-baseline" in shown
    assert "lr too high" in shown
    assert "lr=0.001" in shown
    listed = cli.ok("runs", "list", "--uri", uri, "--json").json()
    assert {run["name"] for run in listed} == {"prepare", "bert-baseline", "bert-1", "diverged"}


def test_note_from_stdin_and_cleared(
    cli: Cli, fresh_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri, run_id = fresh_store.uri, fresh_store.runs["diverged"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("NaN at step 0\nlr 0.1 is too high\n"))
    _done(cli, "runs", "note", run_id[:8], "-", "--uri", uri)
    assert pacha.load_run(run_id, uri=uri).note == "NaN at step 0\nlr 0.1 is too high\n"
    _done(cli, "runs", "note", run_id[:8], "", "--uri", uri)
    assert pacha.load_run(run_id, uri=uri).note is None


def test_archive_hides_from_list_until_unarchived(cli: Cli, fresh_store: Store) -> None:
    uri, runs = fresh_store.uri, fresh_store.runs
    _done(cli, "runs", "archive", runs["diverged"][:8], runs["prepare"][:8], "--uri", uri)

    def names(*flags: str) -> set[str]:
        return {
            run["name"] for run in cli.ok("runs", "list", "--uri", uri, "--json", *flags).json()
        }

    assert names() == {"bert-0", "bert-1"}
    assert names("--archived") == {"diverged", "prepare"}
    assert names("--all") == {"diverged", "prepare", "bert-0", "bert-1"}
    assert "diverged" not in cli.ok("runs", "list", "--uri", uri).out
    assert cli.ok("runs", "show", runs["diverged"][:8], "--uri", uri, "--json").json()["extra"][
        "archived"
    ]
    _done(cli, "runs", "unarchive", runs["diverged"][:8], "--uri", uri)
    assert names() == {"bert-0", "bert-1", "diverged"}


def test_delete_list_deleted_restore_and_gc(cli: Cli, fresh_store: Store) -> None:
    uri, run_id = fresh_store.uri, fresh_store.runs["bert-1"]
    result = _done(cli, "runs", "delete", run_id[:8], "--yes", "--uri", uri)
    assert result.out == ""
    assert "moved bert-1" in result.err
    assert f"pacha runs restore {run_id[:8]}" in result.err
    listed = cli.ok("runs", "list", "--uri", uri, "--all", "--json").json()
    assert run_id not in {run["run_id"] for run in listed}
    trash = cli.ok("runs", "list", "--deleted", "--uri", uri, "--json").json()
    assert [(d["run_id"], d["name"], d["state"]) for d in trash] == [(run_id, "bert-1", "deleted")]
    assert "bert-1" in cli.ok("runs", "list", "--deleted", "--uri", uri).out

    kept = cli.ok("gc", "--uri", uri, "--trash-older-than", "7d", "--yes", "--json").json()
    assert kept["trash"] == []
    _done(cli, "runs", "restore", run_id[:8], "--uri", uri)
    assert pacha.load_run(run_id, uri=uri).name == "bert-1"
    assert cli.ok("runs", "list", "--deleted", "--uri", uri, "--json").json() == []

    _done(cli, "runs", "delete", run_id[:8], "-y", "--uri", uri)
    dry = _done(cli, "gc", "--uri", uri, "--trash-older-than", "0")
    assert f"trash/{run_id}" in dry.out
    assert "1 run(s) from the trash (dry run" in dry.err
    emptied = cli.ok("gc", "--uri", uri, "--trash-older-than", "0", "--yes", "--json").json()
    assert emptied["trash"] == [run_id]
    gone = cli("runs", "restore", run_id[:8], "--uri", uri)
    assert gone.code == 1
    assert "(in the trash)" in gone.err


def test_delete_asks_on_a_terminal(
    cli: Cli, fresh_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri, run_id = fresh_store.uri, fresh_store.runs["bert-0"]
    before = _keys(uri)
    monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))
    refused = cli("runs", "delete", run_id[:8], "--uri", uri)
    assert refused.code == 1
    assert "move 1 run(s) to the trash" in refused.err
    assert "nothing deleted" in refused.err
    assert _keys(uri) == before
    monkeypatch.setattr(sys, "stdin", _Terminal("y\n"))
    assert cli("runs", "delete", run_id[:8], "--uri", uri).code == 0
    with pytest.raises(pacha.RunNotFoundError):
        pacha.load_run(run_id, uri=uri)


def test_delete_without_a_terminal_needs_yes(
    cli: Cli, fresh_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = fresh_store.uri
    before = _keys(uri)
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # piped: not a terminal
    result = cli("runs", "delete", fresh_store.runs["bert-0"][:8], "--uri", uri)
    assert result.code == 1
    assert result.err.count("\n") == 1
    assert "without confirmation: pass --yes" in result.err
    assert _keys(uri) == before


def test_delete_refuses_a_running_run_unless_forced(cli: Cli, fresh_store: Store) -> None:
    uri, runs = fresh_store.uri, fresh_store.runs
    make_stale(uri, runs["bert-0"], age=1)  # running, heartbeat fresh: alive
    before = _keys(uri)
    result = cli("runs", "delete", runs["bert-1"][:8], runs["bert-0"][:8], "--yes", "--uri", uri)
    assert result.code == 1
    assert "is running" in result.err
    assert _keys(uri) == before  # bert-1, listed first, was not deleted either
    _done(cli, "runs", "delete", runs["bert-0"][:8], "--yes", "--force", "--uri", uri)
    make_stale(uri, runs["bert-1"], age=3600)  # a dead process: no --force needed
    _done(cli, "runs", "delete", runs["bert-1"][:8], "--yes", "--uri", uri)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tag", "ffff", "good"], "no run ffff"),
        (["tag", "RUN", ""], "tag name '': must not be empty"),
        (["tag", "RUN", "x" * 200], "the limit is 128"),
        (["tag", "RUN", "k=" + "v" * 2000], "the limit is 1,024"),
        (["note", "RUN", "n" * 70_000], "the limit is 65,536"),
        (["rename", "RUN", "../up"], "'..'"),
        (["archive", "RUN", "ffff"], "no run ffff"),
        (["delete", "ffff", "--yes"], "no run ffff"),
        (["restore", "RUN"], "(in the trash)"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    cli: Cli, fresh_store: Store, argv: list[str], message: str
) -> None:
    uri = fresh_store.uri
    run = fresh_store.runs["bert-0"][:8]
    before = _keys(uri)
    result = cli("runs", *[run if arg == "RUN" else arg for arg in argv], "--uri", uri)
    assert result.code == 1
    assert result.err.startswith("pacha: error: ")
    assert result.err.count("\n") == 1
    assert message in result.err
    assert _keys(uri) == before


def test_ambiguous_prefix_is_refused(cli: Cli, fresh_store: Store) -> None:
    uri = fresh_store.uri
    for suffix in ("1", "2"):
        with pacha.run(run_id=f"abcdef00-0000-4000-8000-00000000000{suffix}", uri=uri) as run:
            run.log_metric("loss", 1.0, 0)
    before = _keys(uri)
    result = cli("runs", "archive", "abcdef", "--uri", uri)
    assert result.code == 1
    assert "matches 2 runs" in result.err
    assert _keys(uri) == before


def test_gc_duration_must_parse(
    cli: Cli, fresh_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli("gc", "--uri", fresh_store.uri, "--trash-older-than", "a week")
    assert exited.value.code == 2
    assert "expected a duration such as 7d, 12h, 30m or 90s" in capsys.readouterr().err


@pytest.mark.subprocess
def test_a_real_process_prints_one_line_and_no_traceback(fresh_store: Store) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    done = subprocess.run(
        [sys.executable, "-m", "pacha_sdk", "runs", "delete", "ffff", "--uri", fresh_store.uri],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("pacha: error: no run ffff")
    assert "Traceback" not in done.stderr
