"""Lineage: which runs produced and used an artifact, walked across a chain of runs."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

import pacha_sdk as pacha


def test_a_chain_of_three_runs(store: str) -> None:
    with pacha.run(uri=store, name="prepare", system_metrics=False) as prepare:
        data = prepare.log_artifact(b"x,y\n1,2\n", name="train.csv", artifact_type="dataset")
    recipe = pacha.RecipeReference("bert-finetune", "1.2.0")
    with pacha.run(uri=store, name="train", recipe=recipe, system_metrics=False) as train:
        train.use_artifact(data)
        model = train.log_artifact(b"weights-v1", name="model.pt")
    with pacha.run(uri=store, name="finetune", system_metrics=False) as finetune:
        finetune.use_artifact(model)
        tuned = finetune.log_artifact(b"weights-v2", name="model-ft.pt")

    assert pacha.lineage(data, uri=store) == pacha.Lineage(
        content_hash=data.content_hash, produced_by=[prepare.run_id], used_by=[train.run_id]
    )
    model_lineage = pacha.lineage(model.content_hash, uri=store)
    assert model_lineage.produced_by == [train.run_id]
    assert model_lineage.used_by == [finetune.run_id]
    assert model_lineage.inputs == [data.content_hash]
    assert pacha.load_run(model_lineage.produced_by[0], uri=store).recipe == recipe

    chain = [tuned.content_hash]
    step = pacha.lineage(tuned, uri=store)
    assert step.used_by == []
    while step.inputs:
        chain.append(step.inputs[0])
        step = pacha.lineage(step.inputs[0], uri=store)
    assert chain == [tuned.content_hash, model.content_hash, data.content_hash]


def test_inputs_are_recorded_once_in_the_run(store: str) -> None:
    with pacha.run(uri=store, system_metrics=False) as producer:
        data = producer.log_artifact(b"rows", name="data/train.csv", artifact_type="dataset")
    with pacha.run(uri=store, system_metrics=False) as consumer:
        consumer.use_artifact(data)
        consumer.use_artifact(data.content_hash)
    record = pacha.load_run(consumer.run_id, uri=store)
    assert record.extra["inputs"] == [
        {"content_hash": data.content_hash, "name": "data/train.csv", "artifact_type": "dataset"}
    ]


def test_a_bare_hash_records_only_the_hash(store: str) -> None:
    digest = "d74981efa70a0c880b8d8c1985d075dbcbf679b99a5f9914e5aaf96b831a9e24"
    with pacha.run(uri=store, system_metrics=False) as run:
        run.use_artifact(digest.upper())
    assert pacha.load_run(run.run_id, uri=store).extra["inputs"] == [{"content_hash": digest}]
    assert pacha.lineage(digest, uri=store).used_by == [run.run_id]


def test_lineage_is_visible_while_the_run_is_going(store: str) -> None:
    with pacha.run(uri=store, system_metrics=False) as run:
        ref = run.log_artifact(b"checkpoint", name="step-100.pt", artifact_type="checkpoint")
        run.use_artifact(ref)
        seen = pacha.lineage(ref, uri=store)
    assert seen.produced_by == [run.run_id]
    assert seen.used_by == [run.run_id]


def test_an_artifact_no_run_mentions(store: str) -> None:
    with pacha.run(uri=store, system_metrics=False):
        pass
    digest = "0" * 64
    assert pacha.lineage(digest, uri=store) == pacha.Lineage(content_hash=digest)


def test_lineage_is_frozen(store: str) -> None:
    Path(store).mkdir()
    found = pacha.lineage("0" * 64, uri=store)
    with pytest.raises(pydantic.ValidationError):
        found.produced_by = ["x"]  # type: ignore[misc]


def test_bad_references(store: str) -> None:
    with pytest.raises(ValueError, match="BLAKE3"):
        pacha.lineage("not-a-hash", uri=store)
    with pacha.run(uri=store, system_metrics=False) as run:
        with pytest.raises(ValueError, match="BLAKE3"):
            run.use_artifact("../../etc/passwd")
        with pytest.raises(TypeError, match="ArtifactReference"):
            run.use_artifact(42)  # type: ignore[arg-type]
    with pytest.raises(pacha.RunStateError, match="not running"):
        run.use_artifact("0" * 64)
    assert "inputs" not in pacha.load_run(run.run_id, uri=store).extra
