"""Editing runs after the fact: tags, notes, names, archiving (``pacha.annotate``).

Every edit is its own create-only file beside ``run.json``, folded over it
when read, so these tests check what readers see (``load_run``,
``list_runs``, ``best_run``) and that ``run.json`` itself is never touched:
a run edited while a child process still logs and flushes it keeps both
the edit and everything the run wrote later.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pacha_sdk as pacha
from pacha_sdk.models import RunAnnotation, RunId
from pacha_sdk.storage.layout import annotations_prefix, run_record_key
from tests.curation_stores import Where, where

if TYPE_CHECKING:
    from pathlib import Path

pytest_plugins = ["tests.servers"]
__all__ = ["where"]  # the fixture, imported for pytest

WAIT = 60.0
"""Seconds a child may take before the test fails instead of hanging."""


def _run(place: Where, name: str = "bert", acc: float = 0.5, **keywords: Any) -> str:
    with pacha.run(
        {"learning_rate": 1e-3}, name=name, system_metrics=False, **place.options, **keywords
    ) as run:
        run.log_metrics({"acc": acc, "loss": 1 - acc}, step=0)
    return str(run.run_id)


def _raw(place: Where, run_id: str) -> bytes:
    return place.backend().read_bytes(run_record_key(RunId(run_id)))


def test_each_edit_round_trips_and_run_json_is_untouched(where: Where) -> None:
    run_id = _run(where, tags={"team": "nlp", "draft": ""})
    written = _raw(where, run_id)

    tagged = pacha.annotate(run_id, add_tags=["good", "baseline"], **where.options)
    assert tagged.tags == {"team": "nlp", "draft": "", "good": "", "baseline": ""}
    valued = pacha.annotate(run_id, add_tags={"lr": 0.001, "team": "vision"}, **where.options)
    assert valued.tags["lr"] == "0.001"
    assert valued.tags["team"] == "vision"  # a later edit wins
    untagged = pacha.annotate(run_id, remove_tags=["draft", "never-set"], **where.options)
    assert "draft" not in untagged.tags
    noted = pacha.annotate(run_id, note="diverged at step 5\n\tlr too high", **where.options)
    assert noted.note == "diverged at step 5\n\tlr too high"
    renamed = pacha.annotate(run_id, name="bert-baseline", **where.options)
    assert renamed.name == "bert-baseline"
    archived = pacha.annotate(run_id, archived=True, **where.options)
    assert archived.archived

    stored = pacha.load_run(run_id, **where.options)
    assert stored.tags == {"team": "vision", "good": "", "baseline": "", "lr": "0.001"}
    assert (stored.note, stored.name, stored.archived) == (
        "diverged at step 5\n\tlr too high",
        "bert-baseline",
        True,
    )
    assert stored.extra["edited_by"]
    assert stored.summary == {"acc": 0.5, "loss": 0.5}  # what the run wrote is all there
    assert _raw(where, run_id) == written  # edits never go into run.json
    edits = where.backend().list(annotations_prefix(RunId(run_id)))
    assert len(edits) == 6

    cleared = pacha.annotate(run_id, note="", archived=False, **where.options)
    assert cleared.note is None
    assert not cleared.archived
    assert [r.run_id for r in pacha.list_runs(**where.options)] == [run_id]


def test_archived_runs_are_left_out_unless_asked(where: Where) -> None:
    kept = _run(where, "kept", acc=0.6)
    hidden = _run(where, "hidden", acc=0.9)
    pacha.annotate(hidden, archived=True, **where.options)

    assert [r.name for r in pacha.list_runs(**where.options)] == ["kept"]
    assert [r.name for r in pacha.list_runs(archived=True, **where.options)] == ["hidden"]
    assert {r.name for r in pacha.list_runs(archived=None, **where.options)} == {"kept", "hidden"}
    assert pacha.load_run(hidden, **where.options).archived  # still loads
    best = pacha.best_run("acc", **where.options)
    assert best is not None
    assert best.run_id == kept
    best_of_all = pacha.best_run("acc", archived=None, **where.options)
    assert best_of_all is not None
    assert best_of_all.run_id == hidden

    pacha.annotate(hidden, archived=False, **where.options)
    assert {r.name for r in pacha.list_runs(**where.options)} == {"kept", "hidden"}


def test_two_concurrent_annotators_both_land(where: Where) -> None:
    run_id = _run(where)
    people = 8
    start = threading.Barrier(people)
    errors: list[BaseException] = []

    def annotator(index: int) -> None:
        try:
            start.wait()
            pacha.annotate(run_id, add_tags={f"by-{index}": str(index)}, **where.options)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=annotator, args=(i,)) for i in range(people)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert errors == []
    stored = pacha.load_run(run_id, **where.options)
    assert stored.tags == {f"by-{i}": str(i) for i in range(people)}


LIVE_CHILD = textwrap.dedent(
    """
    import json, sys, time
    import pacha_sdk as pacha

    uri, options = sys.argv[1], json.loads(sys.argv[2])
    with pacha.run({"learning_rate": 0.1}, uri=uri, storage_options=options, name="live",
                   tags={"team": "nlp"}, flush_interval=0.2, system_metrics=False) as run:
        for step in range(100):
            run.log_metric("loss", 1.0 / (step + 1), step)
        run.flush()
        print(run.run_id, flush=True)
        sys.stdin.readline()  # the test edits the run now
        for step in range(100, 200):
            run.log_metric("loss", 1.0 / (step + 1), step)
            if step % 20 == 0:
                run.flush()  # each flush rewrites run.json (heartbeat, summary)
                time.sleep(0.05)
    """
)


@pytest.mark.subprocess
def test_edit_of_a_live_run_survives_its_later_flushes(where: Where) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", LIVE_CHILD, where.uri, json.dumps(where.storage_options)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            run_id = child.stdout.readline().strip()
            assert run_id, child.stderr.read() if child.stderr else ""
            edited = pacha.annotate(
                run_id, add_tags=["good"], note="still running", name="live-edited", **where.options
            )
            assert edited.status is pacha.RunStatus.RUNNING
            edited_at = edited.extra["edited_at"]
            _, err = child.communicate("go\n", timeout=WAIT)
        finally:
            if child.poll() is None:
                child.kill()
    assert child.returncode == 0, err

    stored = pacha.load_run(run_id, **where.options)
    assert stored.status is pacha.RunStatus.COMPLETED
    assert stored.tags == {"team": "nlp", "good": ""}
    assert (stored.note, stored.name) == ("still running", "live-edited")
    assert stored.summary["loss"] == pytest.approx(1 / 200)  # the run's later summary
    assert stored.heartbeat_at is not None
    assert stored.extra["edited_at"] == edited_at
    assert stored.heartbeat_at.isoformat() > edited.heartbeat_at.isoformat()  # type: ignore[union-attr]
    assert pacha.read_metrics(run_id, **where.options).num_rows == 200
    assert b"still running" not in _raw(where, run_id)


def test_later_edits_win_in_key_order() -> None:
    record = pacha.ExperimentRun(extra={"name": "first", "tags": {"a": "1"}})
    edits = [
        RunAnnotation(run_id=record.run_id, name="second", add_tags={"b": ""}),
        RunAnnotation(run_id=record.run_id, name="third", remove_tags=["a"], note="n"),
        RunAnnotation(run_id=record.run_id, add_tags={"a": "2"}, archived=True),
    ]
    for edit in edits:
        edit.apply_to(record)
    assert (record.name, record.tags, record.note, record.archived) == (
        "third",
        {"b": "", "a": "2"},
        "n",
        True,
    )
    once = record.model_dump()
    for edit in edits:
        edit.apply_to(record)
    assert record.model_dump() == once  # folding is idempotent


def test_an_unreadable_edit_is_skipped_with_a_warning(tmp_path: Path) -> None:
    place = Where("local", str(tmp_path / "store"))
    run_id = _run(place)
    pacha.annotate(run_id, note="kept", **place.options)
    bad = f"{annotations_prefix(RunId(run_id))}/20990101T000000000000Z-{'0' * 32}.json"
    place.backend().write_new(bad, b"{not json")
    with pytest.warns(UserWarning, match="skipping an edit"):
        stored = pacha.load_run(run_id, **place.options)
    assert stored.note == "kept"


# Bad input: a clear error, and nothing written.


@pytest.mark.parametrize(
    ("edit", "error", "message"),
    [
        ({"add_tags": [""]}, pacha.InvalidAnnotationError, "must not be empty"),
        ({"add_tags": ["   "]}, pacha.InvalidAnnotationError, "must not be empty"),
        ({"add_tags": ["x" * 129]}, pacha.InvalidAnnotationError, "the limit is 128"),
        ({"add_tags": {"k": "v" * 1025}}, pacha.InvalidAnnotationError, "the limit is 1,024"),
        ({"add_tags": ["a\x1bb"]}, pacha.InvalidAnnotationError, "control characters"),
        ({"remove_tags": [""]}, pacha.InvalidAnnotationError, "must not be empty"),
        ({"add_tags": ["a"], "remove_tags": ["a"]}, pacha.InvalidAnnotationError, "both"),
        ({"note": "n" * 65_537}, pacha.InvalidAnnotationError, "the limit is 65,536"),
        ({"note": "bell\x07"}, pacha.InvalidAnnotationError, "control characters"),
        ({"name": "n" * 257}, pacha.InvalidAnnotationError, "the limit is 256"),
        ({"name": "../escape"}, pacha.UnsafeNameError, "'..'"),
        ({"name": ""}, pacha.UnsafeNameError, "must not be empty"),
        ({"add_tags": "good"}, TypeError, "the string 'good'"),
        ({"archived": "yes"}, TypeError, "archived must be"),
        ({}, ValueError, "needs something to change"),
    ],
)
def test_bad_edit_is_refused_before_anything_is_written(
    tmp_path: Path, edit: dict[str, object], error: type[Exception], message: str
) -> None:
    place = Where("local", str(tmp_path / "store"))
    run_id = _run(place)
    before = sorted(place.backend().list())
    with pytest.raises(error, match=message):
        pacha.annotate(run_id, **edit, **place.options)  # type: ignore[arg-type]
    assert sorted(place.backend().list()) == before


@pytest.mark.parametrize(
    ("edit", "argument"),
    [
        ({"add_tags": ["x" * 129]}, "add_tags"),
        ({"add_tags": {"k": "v" * 1025}}, "add_tags"),
        ({"remove_tags": [""]}, "remove_tags"),
        ({"add_tags": ["a"], "remove_tags": ["a"]}, "remove_tags"),
        ({"note": "n" * 65_537}, "note"),
        ({"name": "n" * 257}, "name"),
        ({"name": "../escape"}, "name"),
    ],
)
def test_a_refused_edit_names_the_argument_at_fault(
    tmp_path: Path, edit: dict[str, object], argument: str
) -> None:
    with pytest.raises((pacha.InvalidAnnotationError, pacha.UnsafeNameError)) as caught:
        pacha.annotate(str(uuid.uuid4()), uri=str(tmp_path), **edit)  # type: ignore[arg-type]
    assert isinstance(caught.value, (pacha.InvalidAnnotationError, pacha.UnsafeNameError))
    assert caught.value.argument == argument


def test_unknown_or_deleted_run_is_not_found_and_nothing_is_written(tmp_path: Path) -> None:
    place = Where("local", str(tmp_path / "store"))
    run_id = _run(place)
    before = sorted(place.backend().list())
    with pytest.raises(pacha.RunNotFoundError, match="no run"):
        pacha.annotate(str(uuid.uuid4()), note="x", **place.options)
    with pytest.raises(pacha.InvalidRunIdError):
        pacha.annotate("not-a-uuid", note="x", **place.options)
    assert sorted(place.backend().list()) == before
    pacha.delete_run(run_id, **place.options)
    with pytest.raises(pacha.RunDeletedError, match="in the trash: restore it first"):
        pacha.annotate(run_id, note="x", **place.options)


@settings(max_examples=60, deadline=None)
@given(name=st.text(max_size=140), value=st.text(max_size=40))
def test_any_tag_is_stored_as_given_or_refused(name: str, value: str) -> None:
    place = Where("memory", f"memory://curation-{uuid.uuid4().hex}")
    with pacha.run(system_metrics=False, **place.options) as run:
        pass
    refused: pacha.InvalidAnnotationError | None = None
    try:
        stored = pacha.annotate(str(run.run_id), add_tags={name: value}, **place.options)
    except pacha.InvalidAnnotationError as error:
        refused = error
    if refused is None:
        assert stored.tags == {name: value}
        assert pacha.load_run(str(run.run_id), **place.options).tags == {name: value}
    else:
        assert repr(name)[:20] in str(refused) or repr(value)[:20] in str(refused)
        assert place.backend().list(annotations_prefix(run.run_id)) == []
