"""The run keywords: one list for ``pacha.run``, ``pacha.Run`` and ``@pacha.track``.

Each keyword must mean the same on all three, be documented once (on
``pacha.run``) and be visible by name to ``inspect.signature``; type
checkers see them through ``Unpack[RunOptions]`` (the ``type: ignore``
comments below are checked by ``mypy --strict``, which reports an unused
one, so a misspelt keyword is shown to fail type checking too).
"""

from __future__ import annotations

import inspect
import logging
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pacha_sdk as pacha
from pacha_sdk.tracking._options import RunOptions

PUBLIC_KEYWORDS = [
    "uri",
    "storage_options",
    "name",
    "recipe",
    "tags",
    "run_id",
    "flush_interval",
    "flush_rows",
    "close_timeout",
    "rank",
    "spool_dir",
    "system_metrics",
    "capture_output",
    "env_vars",
    "handle_sigterm",
    "compact_parts",
    "parent",
]

ENTRY_POINTS: dict[str, Callable[..., Any]] = {
    "run": pacha.run,
    "Run": pacha.Run,
    "track": pacha.track,
}


def keyword_parameters(function: Callable[..., Any]) -> dict[str, tuple[object, object]]:
    """Each run keyword of *function*'s signature with its default and annotation."""
    return {
        parameter.name: (parameter.default, parameter.annotation)
        for parameter in inspect.signature(function).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.name != "hparams"
    }


def test_run_the_class_and_track_take_exactly_the_same_keywords() -> None:
    keywords = keyword_parameters(pacha.run)
    assert list(keywords) == PUBLIC_KEYWORDS == list(RunOptions.__annotations__)
    assert keyword_parameters(pacha.Run) == keywords
    assert keyword_parameters(pacha.track) == keywords
    assert keywords["flush_interval"] == (5.0, "float")
    assert keywords["flush_rows"] == (100_000, "int")
    assert keywords["close_timeout"] == (30.0, "float")
    assert keywords["system_metrics"] == (True, "bool | float")
    assert keywords["capture_output"] == (False, "bool")
    assert keywords["handle_sigterm"] == (True, "bool")
    assert all(
        keywords[name][0] is None for name in ("uri", "run_id", "rank", "spool_dir", "parent")
    )


def test_the_keywords_are_declared_once_and_documented_once() -> None:
    for function in (pacha.run, pacha.Run.__init__, pacha.track):
        assert function.__annotations__["options"] == "Unpack[RunOptions]"
    doc = inspect.getdoc(pacha.run)
    assert doc is not None
    for name in PUBLIC_KEYWORDS:
        assert f"\n    {name}: " in doc, f"pacha.run's docstring does not document {name}"


def every_keyword(store: str, tmp_path: Path, label: str, parent: pacha.Run) -> RunOptions:
    """A value other than the default for every run keyword."""
    options: RunOptions = {
        "uri": store,
        "storage_options": {},
        "name": f"all-keywords-{label}",
        "recipe": pacha.RecipeReference("bert-finetune", "1.2.0"),
        "tags": iter(["nightly", label]),
        "run_id": str(uuid.uuid4()),
        "flush_interval": 0.5,
        "flush_rows": 50,
        "close_timeout": 5.0,
        "rank": 0,
        "spool_dir": tmp_path / f"spool-{label}",
        "system_metrics": False,
        "capture_output": True,
        "env_vars": iter(["PACHA_TEST_SEED"]),
        "handle_sigterm": False,
        "compact_parts": False,
        "parent": parent,
    }
    assert list(options) == PUBLIC_KEYWORDS  # a new keyword must be added here too
    return options


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_every_keyword_has_the_same_effect_through_each_entry_point(
    entry_point: str, store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PACHA_TEST_SEED", "7")
    sigterm = signal.getsignal(signal.SIGTERM)
    parent = pacha.run(uri=store, system_metrics=False, handle_sigterm=False)
    options = every_keyword(store, tmp_path, entry_point, parent)
    run_id = options["run_id"]

    def body() -> None:
        pacha.log_metric("loss", 0.5)
        assert signal.getsignal(signal.SIGTERM) is sigterm  # handle_sigterm=False

    if entry_point == "run":
        with pacha.run({"lr": 0.1}, **options):
            body()
    elif entry_point == "Run":
        with pacha.Run({"lr": 0.1}, **options):
            body()
    else:

        @pacha.track(**options)
        def train(lr: float = 0.1) -> None:
            body()

        train()
    parent.complete()

    record = pacha.load_run(str(run_id), uri=store)
    assert record.status is pacha.RunStatus.COMPLETED
    assert record.name == f"all-keywords-{entry_point}"
    assert record.recipe == pacha.RecipeReference("bert-finetune", "1.2.0")
    assert record.tags == {"nightly": "", entry_point: ""}
    assert record.hyperparameters.custom == {"lr": 0.1}
    assert record.extra["flush_interval"] == 0.5
    assert record.extra["environment"]["env"] == {"PACHA_TEST_SEED": "7"}  # type: ignore[index,call-overload]
    assert record.log_uri == f"{store}/runs/{run_id}/output.log"
    assert record.parent_run_id == str(parent.run_id)
    assert pacha.read_metrics(str(run_id), uri=store)["rank"].to_pylist() == [0]


def test_a_misspelt_keyword_is_refused_naming_the_entry_point_and_the_right_one(
    store: str,
) -> None:
    hint = (
        r"got an unexpected keyword argument 'flush_intervall' \(did you mean 'flush_interval'\?\)"
    )
    with pytest.raises(TypeError, match=rf"^run\(\) {hint}$"):
        pacha.run(uri=store, flush_intervall=1.0)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=rf"^Run\(\) {hint}$"):
        pacha.Run(uri=store, flush_intervall=1.0)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=rf"^track\(\) {hint}$"):
        pacha.track(uri=store, flush_intervall=1.0)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"^run\(\) got an unexpected keyword argument 'zzz'$"):
        pacha.run(uri=store, zzz=1)  # type: ignore[call-arg]
    assert not Path(store).exists()  # nothing written


def test_lenient_hyperparameters_are_the_decorators_own(store: str) -> None:
    with pytest.raises(TypeError, match="lenient_hparams"):
        pacha.Run(uri=store, lenient_hparams=True)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="lenient_hparams"):
        pacha.track(uri=store, lenient_hparams=True)  # type: ignore[call-overload]


def test_track_checks_its_keywords_when_it_decorates(store: str) -> None:
    with pytest.raises(ValueError, match="flush_interval"):
        pacha.track(uri=store, flush_interval=0)
    with pytest.raises(TypeError, match="spool_dir"):
        pacha.track(uri=store, spool_dir=42)  # type: ignore[call-overload]


def test_track_reads_iterators_once_for_every_call(store: str) -> None:
    @pacha.track(uri=store, tags=iter(["nightly"]), system_metrics=False)
    def train() -> None:
        pass

    train()
    train()
    records = pacha.list_runs(uri=store)
    assert len(records) == 2
    assert all(record.tags == {"nightly": ""} for record in records)


def test_track_with_a_run_id_attaches_every_call_to_that_run(store: str) -> None:
    run_id = str(uuid.uuid4())

    @pacha.track(uri=store, run_id=run_id, system_metrics=False)
    def epoch(step: int) -> None:
        pacha.log_metric("loss", 1.0 / (step + 1), step=step)

    epoch(0)
    epoch(1)
    (record,) = pacha.list_runs(uri=store)
    assert str(record.run_id) == run_id
    assert record.status is pacha.RunStatus.COMPLETED
    assert sorted(pacha.read_metrics(run_id, uri=store)["step"].to_pylist()) == [0, 1]
    assert record.summary == {"loss": 0.5}


def broken_metrics_store(tmp_path: Path) -> str:
    """A local store that takes run.json but no part file (a file is where metrics/ goes)."""
    root = tmp_path / "store"
    root.mkdir()
    (root / "metrics").write_text("in the way")
    return str(root)


@pytest.mark.parametrize("entry_point", ["run", "track"])
def test_spool_dir_is_where_unstored_points_wait(
    entry_point: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = broken_metrics_store(tmp_path)
    mine = tmp_path / "my-spool"
    options: RunOptions = {"uri": store, "spool_dir": mine, "close_timeout": 0.3}
    with caplog.at_level(logging.ERROR, logger="pacha_sdk"):
        if entry_point == "run":
            with pacha.run(**options) as run:
                run.log_metric("loss", 0.5)
        else:
            pacha.track(**options)(lambda: pacha.log_metric("loss", 0.5))()
    assert str(mine) in caplog.text
    assert any(path.suffix == ".parquet" for path in mine.rglob("*"))
    assert not (tmp_path / "spool").exists()  # $PACHA_SPOOL_DIR (conftest) is left alone
    (Path(store) / "metrics").unlink()  # the store takes points again
    report = pacha.sync(str(mine))
    assert report.records == 0  # run.json was written; only the points waited
    (run_id,) = report.runs
    assert pacha.read_metrics(run_id, uri=store)["value"].to_pylist() == [0.5]


@pytest.mark.parametrize("bad", [42, b"/tmp/spool", ["spool"]])
def test_spool_dir_must_be_a_path(store: str, bad: object) -> None:
    with pytest.raises(TypeError, match="spool_dir must be a folder path"):
        pacha.run(uri=store, spool_dir=bad)  # type: ignore[arg-type]
    assert not Path(store).exists()  # nothing written


def test_a_secret_looking_env_var_is_reported_at_the_users_line(store: str) -> None:
    calls: dict[str, Callable[[], object]] = {
        "run": lambda: pacha.run(uri=store, env_vars=["API_TOKEN"]).complete(),
        "Run": lambda: pacha.Run(uri=store, env_vars=["API_TOKEN"]),
        "track": lambda: pacha.track(uri=store, env_vars=["API_TOKEN"]),
    }
    for entry_point, call in calls.items():
        with pytest.warns(UserWarning, match="API_TOKEN") as caught:
            call()
        assert len(caught) == 1, entry_point
        where = (caught[0].filename, caught[0].lineno)
        assert where == (__file__, call.__code__.co_firstlineno), entry_point
