"""``pacha runs list | show | compare``, and run ids given by prefix."""

from __future__ import annotations

import pacha_sdk as pacha
from tests.cli.conftest import Cli, Store, make_stale


def test_list_json_is_every_run_newest_first(cli: Cli, shared_store: Store) -> None:
    runs = cli.ok("runs", "list", "--uri", shared_store.uri, "--json").json()
    assert [run["name"] for run in runs] == ["diverged", "bert-1", "bert-0", "prepare"]
    bert = runs[1]
    assert bert["run_id"] == shared_store.runs["bert-1"]
    assert bert["status"] == "completed"
    assert bert["stale"] is False
    assert bert["recipe"] == "bert-finetune@1.2.0"
    assert bert["hyperparameters"]["learning_rate"] == 3e-4
    assert bert["hyperparameters"]["layers"] == 12
    assert set(bert["metrics"]) == {"loss", "acc"}
    assert runs[0]["metrics"] == {"loss": None}  # NaN is null in strict JSON


def test_list_filters_and_limit(cli: Cli, shared_store: Store) -> None:
    uri = shared_store.uri
    failed = cli.ok("runs", "list", "--uri", uri, "--status", "failed", "--json").json()
    assert [run["name"] for run in failed] == ["diverged"]
    recipe = cli.ok("runs", "list", "--uri", uri, "--recipe", "bert-finetune", "--json").json()
    assert {run["name"] for run in recipe} == {"bert-0", "bert-1"}
    limited = cli.ok("runs", "list", "--uri", uri, "--limit", "2", "--json").json()
    assert [run["name"] for run in limited] == ["diverged", "bert-1"]


def test_list_table_shows_short_ids_hparams_and_latest_metrics(
    cli: Cli, shared_store: Store
) -> None:
    out = cli.ok("runs", "list", "--uri", shared_store.uri).out
    header, _, *rows = out.splitlines()
    assert header.split()[:5] == ["id", "name", "status", "started", "duration"]
    assert "learning_rate" in header
    assert "loss" in header
    assert "acc" in header
    bert = next(row for row in rows if "bert-1" in row)
    assert bert.startswith(shared_store.runs["bert-1"][:8])
    assert "completed" in bert
    assert "0.0003" in bert
    assert "\x1b[" not in out  # no colour when stdout is not a terminal
    assert all(line == line.rstrip() for line in out.splitlines())


def test_list_marks_stale_runs(cli: Cli, fresh_store: Store) -> None:
    make_stale(fresh_store.uri, fresh_store.runs["bert-0"])
    table = cli.ok("runs", "list", "--uri", fresh_store.uri).out
    row = next(line for line in table.splitlines() if "bert-0" in line)
    assert "running (stale)" in row
    stale = cli.ok("runs", "list", "--uri", fresh_store.uri, "--status", "stale", "--json").json()
    assert [(run["name"], run["stale"]) for run in stale] == [("bert-0", True)]


def test_list_of_an_empty_store(cli: Cli, tmp_path: object) -> None:
    assert cli.ok("runs", "list", "--uri", "memory://empty-store", "--json").json() == []
    result = cli("runs", "list", "--uri", "memory://empty-store")
    assert (result.code, result.out) == (0, "")


def test_show_json_is_the_stored_record(cli: Cli, shared_store: Store) -> None:
    run_id = shared_store.runs["bert-0"]
    shown = cli.ok("runs", "show", run_id[:6], "--uri", shared_store.uri, "--json").json()
    assert pacha.ExperimentRun.model_validate(shown) == pacha.load_run(run_id, uri=shared_store.uri)


def test_show_prints_every_section(cli: Cli, shared_store: Store) -> None:
    out = cli.ok("runs", "show", shared_store.runs["bert-1"][:8], "--uri", shared_store.uri).out
    for heading in ["Run", "Hyperparameters", "Metrics (latest)", "Artifacts", "Inputs"]:
        assert f"\n{heading}\n" in f"\n{out}"
    for heading in ["Hardware", "Environment"]:
        assert heading in out
    assert "bert-finetune@1.2.0" in out
    assert shared_store.model_hash in out
    assert shared_store.data_hash in out
    assert "layers" in out


def test_show_failed_run_has_error_and_traceback(cli: Cli, shared_store: Store) -> None:
    out = cli.ok("runs", "show", shared_store.runs["diverged"], "--uri", shared_store.uri).out
    assert "Error: RuntimeError: loss is NaN" in out
    assert "Traceback (most recent call last)" in out


def test_compare_marks_differences(cli: Cli, shared_store: Store) -> None:
    ids = [shared_store.runs["bert-0"], shared_store.runs["bert-1"]]
    result = cli.ok("runs", "compare", *(i[:8] for i in ids), "--uri", shared_store.uri, "--json")
    data = result.json()
    assert [run["run_id"] for run in data["runs"]] == ids
    rows = {(row["kind"], row["name"]): row for row in data["rows"]}
    assert rows["hyperparameter", "learning_rate"]["values"] == [1e-3, 3e-4]
    assert rows["hyperparameter", "learning_rate"]["differs"] is True
    assert rows["hyperparameter", "batch_size"]["differs"] is False
    assert rows["metric", "loss"]["differs"] is True
    diff = cli.ok("runs", "compare", *ids, "--uri", shared_store.uri, "--diff-only", "--json")
    assert all(row["differs"] for row in diff.json()["rows"])
    table = cli.ok("runs", "compare", *ids, "--uri", shared_store.uri).out
    assert any(line.startswith("≠") and "learning_rate" in line for line in table.splitlines())
    assert not any(line.startswith("≠") and "batch_size" in line for line in table.splitlines())


def test_compare_needs_two_runs(cli: Cli, shared_store: Store) -> None:
    run_id = shared_store.runs["bert-0"]
    result = cli("runs", "compare", run_id, run_id[:8], "--uri", shared_store.uri)
    assert result.code == 2
    assert "two or more" in result.err


def test_prefix_resolution(shared_store: Store) -> None:
    run_id = shared_store.runs["bert-0"]
    assert pacha.resolve_run_id(run_id[:5].upper(), uri=shared_store.uri) == run_id
    assert pacha.resolve_run_id(run_id.replace("-", "")[:12], uri=shared_store.uri) == run_id
    assert pacha.resolve_run_id(run_id, uri="memory://nothing-here") == run_id  # no read


def test_ambiguous_prefix_is_one_line_error(cli: Cli) -> None:
    uri = "memory://ambiguous"
    for run_id in ["abcd0000-0000-4000-8000-000000000000", "abcd1111-0000-4000-8000-000000000000"]:
        with pacha.run(uri=uri, run_id=run_id):
            pass
    result = cli("runs", "show", "abcd", "--uri", uri)
    assert result.code == 1
    assert result.out == ""
    assert result.err.count("\n") == 1
    assert result.err.startswith("pacha: error: run id prefix 'abcd' matches 2 runs")
    assert "give more characters" in result.err
    assert (
        cli.ok("runs", "show", "abcd1", "--uri", uri, "--json").json()["run_id"].startswith("abcd1")
    )


def test_unknown_run_is_one_line_error(cli: Cli, shared_store: Store) -> None:
    for bad in ["ffffffff", "00000000-0000-4000-8000-000000000000", "not-hex!"]:
        result = cli("runs", "show", bad, "--uri", shared_store.uri)
        assert result.code == 1
        assert result.err.startswith("pacha: error: no run ")
        assert result.err.count("\n") == 1
