"""The run record: pacha-shaped JSON in and out, strictly, and the small model types."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings

import pacha_sdk as pacha
from tests.strategies import experiment_runs

RUN_ID = "6f9619ff-8b86-d011-b42d-00c04fc964ff"

# As pacha 0.2.5's serde_json writes an ExperimentRun: chrono timestamps with
# nanoseconds and Z, unset options left out, HyperparamValue untagged.
PACHA_RUN_JSON = """
{
  "run_id": "6f9619ff-8b86-d011-b42d-00c04fc964ff",
  "recipe": {"name": "bert-finetune", "version": {"major": 1, "minor": 2, "patch": 0}},
  "hyperparameters": {
    "learning_rate": 0.0003,
    "batch_size": 64,
    "epochs": 3,
    "weight_decay": 0.01,
    "max_grad_norm": 1.0,
    "warmup_steps": 500,
    "custom": {
      "dropout": 0.1,
      "scale": 3.0,
      "layers": 12,
      "fp16": true,
      "optimizer": "adamw",
      "betas": [0.9, 0.999],
      "mixed": [1, 2.5, "x", false, [3]]
    }
  },
  "started_at": "2026-03-01T12:00:00.123456789Z",
  "finished_at": "2026-03-01T13:30:05.5Z",
  "status": "completed",
  "hardware": {"cpu_model": "AMD EPYC 7763", "cpu_cores": 64, "gpu_count": 8},
  "metrics": [
    {"name": "loss", "value": 0.5, "step": 100, "timestamp": "2026-03-01T12:01:00.000000001Z"},
    {"name": "loss", "value": 0.25, "step": 200, "timestamp": "2026-03-01T12:02:00Z"},
    {"name": "accuracy", "value": 0.8, "step": 200, "timestamp": "2026-03-01T12:02:00Z"}
  ],
  "artifacts": [
    {
      "artifact_type": "model",
      "name": "model.safetensors",
      "content_hash": "d74981efa70a0c880b8d8c1985d075dbcbf679b99a5f9914e5aaf96b831a9e24"
    }
  ],
  "log_uri": "s3://bucket/logs/run.log",
  "git_commit": "0123456789abcdef0123456789abcdef01234567",
  "git_dirty": true,
  "extra": {
    "name": "bert-ft",
    "tags": {"team": "nlp"},
    "summary": {"loss": 0.25, "accuracy": 0.8, "grad_norm": null},
    "nested": {"a": [1, 2.5, null, {"b": "c"}], "deep": {"x": {"y": true}}}
  }
}
"""

# A running run: no recipe, no finished_at, no metrics key (serde default), no
# optional strings, an empty hardware block.
PACHA_RUNNING_JSON = """
{
  "run_id": "6F9619FF-8B86-D011-B42D-00C04FC964FF",
  "hyperparameters": {
    "learning_rate": 0.001, "batch_size": 32, "epochs": 10, "weight_decay": 0.0, "custom": {}
  },
  "started_at": "2026-03-01T12:00:00Z",
  "status": "running",
  "hardware": {}
}
"""

_Z_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _strict_loads(text: str) -> Any:
    """json.loads that refuses NaN / Infinity tokens, as serde_json does."""

    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_pacha_json_loads_with_python_values_and_types() -> None:
    run = pacha.ExperimentRun.model_validate_json(PACHA_RUN_JSON)

    assert run.run_id == RUN_ID
    assert isinstance(run.run_id, pacha.RunId)
    assert run.recipe == pacha.RecipeReference("bert-finetune", "1.2.0")
    assert run.recipe is not None
    assert (run.recipe.version.major, run.recipe.version.minor, run.recipe.version.patch) == (
        1,
        2,
        0,
    )
    assert run.status is pacha.RunStatus.COMPLETED
    assert run.is_finished

    hp = run.hyperparameters
    assert hp.learning_rate == 0.0003
    assert hp.batch_size == 64
    assert hp.epochs == 3
    assert hp.weight_decay == 0.01
    assert hp.max_grad_norm == 1.0
    assert hp.warmup_steps == 500
    custom = hp.custom
    assert custom == {
        "dropout": 0.1,
        "scale": 3.0,
        "layers": 12,
        "fp16": True,
        "optimizer": "adamw",
        "betas": [0.9, 0.999],
        "mixed": [1, 2.5, "x", False, [3]],
    }
    # The untagged union keeps each JSON kind: 3.0 stays float, 12 stays int, true stays bool.
    assert type(custom["scale"]) is float
    assert type(custom["layers"]) is int
    assert type(custom["fp16"]) is bool
    assert type(custom["optimizer"]) is str
    mixed = custom["mixed"]
    assert isinstance(mixed, list)
    assert [type(item) for item in mixed] == [int, float, str, bool, list]

    # chrono writes nanoseconds; Python keeps microseconds, in UTC.
    assert run.started_at == datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
    assert run.started_at.utcoffset() is not None
    assert run.finished_at == datetime(2026, 3, 1, 13, 30, 5, 500000, tzinfo=timezone.utc)
    assert run.duration_secs == 5405

    assert run.hardware == pacha.HardwareInfo(cpu_model="AMD EPYC 7763", cpu_cores=64, gpu_count=8)
    assert run.hardware.ram_gb is None
    assert run.hardware.gpu_model is None

    assert [(m.name, m.value, m.step) for m in run.metrics] == [
        ("loss", 0.5, 100),
        ("loss", 0.25, 200),
        ("accuracy", 0.8, 200),
    ]
    assert run.metrics[0].timestamp == datetime(2026, 3, 1, 12, 1, tzinfo=timezone.utc)
    assert run.get_metric("loss") == 0.25
    assert run.get_metric("accuracy") == 0.8
    assert run.get_metric("nonexistent") is None

    assert run.artifacts == [
        pacha.ArtifactReference(
            artifact_type="model",
            name="model.safetensors",
            content_hash="d74981efa70a0c880b8d8c1985d075dbcbf679b99a5f9914e5aaf96b831a9e24",
        )
    ]
    assert run.log_uri == "s3://bucket/logs/run.log"
    assert run.git_commit == "0123456789abcdef0123456789abcdef01234567"
    assert run.git_dirty is True
    assert run.error_message is None

    assert run.name == "bert-ft"
    assert run.tags == {"team": "nlp"}
    assert run.summary == {"loss": 0.25, "accuracy": 0.8, "grad_norm": None}
    assert run.extra["nested"] == {"a": [1, 2.5, None, {"b": "c"}], "deep": {"x": {"y": True}}}


def test_pacha_json_round_trips_to_an_equal_model() -> None:
    run = pacha.ExperimentRun.model_validate_json(PACHA_RUN_JSON)
    dumped = run.model_dump_json()
    again = pacha.ExperimentRun.model_validate_json(dumped)
    assert again == run
    assert again.model_dump_json() == dumped

    data = _strict_loads(dumped)
    assert data["status"] == "completed"
    assert data["recipe"] == {
        "name": "bert-finetune",
        "version": {"major": 1, "minor": 2, "patch": 0},
    }
    assert data["hyperparameters"]["custom"]["scale"] == 3.0
    assert isinstance(data["hyperparameters"]["custom"]["scale"], float)
    assert isinstance(data["hyperparameters"]["custom"]["layers"], int)
    assert data["hardware"] == {"cpu_model": "AMD EPYC 7763", "cpu_cores": 64, "gpu_count": 8}
    assert data["started_at"] == "2026-03-01T12:00:00.123456Z"
    assert data["finished_at"] == "2026-03-01T13:30:05.500000Z"
    for record in data["metrics"]:
        assert _Z_TIMESTAMP.match(record["timestamp"])
    assert data["extra"]["summary"]["grad_norm"] is None


def test_variant_without_metrics_and_optionals_loads_and_dumps_without_them() -> None:
    run = pacha.ExperimentRun.model_validate_json(PACHA_RUNNING_JSON)
    assert run.run_id == RUN_ID  # normalised to lowercase
    assert run.status is pacha.RunStatus.RUNNING
    assert not run.is_finished
    assert run.duration_secs is None
    assert run.metrics == []
    assert run.artifacts == []
    assert run.extra == {}
    assert run.git_dirty is False
    assert run.recipe is None
    assert run.hyperparameters == pacha.Hyperparameters()

    dumped = run.model_dump_json()
    data = _strict_loads(dumped)
    for absent in ("finished_at", "recipe", "error_message", "git_commit", "log_uri"):
        assert absent not in data
    assert data["hardware"] == {}
    assert "max_grad_norm" not in data["hyperparameters"]
    assert "warmup_steps" not in data["hyperparameters"]
    assert data["metrics"] == []
    assert data["status"] == "running"
    assert data["run_id"] == RUN_ID
    assert data["started_at"] == "2026-03-01T12:00:00.000000Z"
    assert pacha.ExperimentRun.model_validate_json(dumped) == run


def test_dumped_json_is_strict_even_with_non_finite_values_in_extra() -> None:
    run = pacha.ExperimentRun(
        run_id=pacha.RunId(RUN_ID),
        extra={"summary": {"loss": float("nan"), "grad": float("inf")}},
        hardware=pacha.HardwareInfo(cpu_cores=4),
    )
    dumped = run.model_dump_json()
    data = _strict_loads(dumped)  # raises on NaN / Infinity tokens
    assert data["extra"]["summary"] == {"loss": None, "grad": None}
    assert data["hardware"] == {"cpu_cores": 4}
    assert data["status"] == "pending"
    assert _Z_TIMESTAMP.match(data["started_at"])


def test_lifecycle_sets_status_and_finish_time() -> None:
    run = pacha.ExperimentRun(hyperparameters=pacha.Hyperparameters())
    assert run.status.value == "pending"
    run.start()
    assert run.status.value == "running"
    run.log_metric("loss", 0.5, 100)
    run.log_metric("loss", 0.3, 200)
    run.fail("Out of memory")
    assert run.status is pacha.RunStatus.FAILED
    assert run.error_message == "Out of memory"
    assert run.finished_at is not None
    assert run.duration_secs == 0
    assert run.get_metric("loss") == 0.3
    data = _strict_loads(run.model_dump_json())
    assert data["status"] == "failed"
    assert data["error_message"] == "Out of memory"
    assert _Z_TIMESTAMP.match(data["finished_at"])


def test_recipe_version_accepts_text_and_dumps_an_object() -> None:
    version = pacha.RecipeVersion.model_validate("1.2.0")
    assert (version.major, version.minor, version.patch) == (1, 2, 0)
    assert str(version) == "1.2.0"
    assert version == pacha.RecipeVersion(major=1, minor=2, patch=0)
    assert json.loads(version.model_dump_json()) == {"major": 1, "minor": 2, "patch": 0}
    with pytest.raises(ValueError, match=r"1\.x"):
        pacha.RecipeVersion.model_validate("1.x")


def test_recipe_reference_is_positional() -> None:
    recipe = pacha.RecipeReference("bert-finetune", "1.2.0")
    assert recipe.name == "bert-finetune"
    assert recipe.version == pacha.RecipeVersion(major=1, minor=2, patch=0)
    assert str(recipe) == "bert-finetune@1.2.0"
    assert json.loads(recipe.model_dump_json()) == {
        "name": "bert-finetune",
        "version": {"major": 1, "minor": 2, "patch": 0},
    }
    assert pacha.RecipeReference("bert-finetune", {"major": 1, "minor": 2, "patch": 0}) == recipe


def test_run_id_validates_and_normalises() -> None:
    upper = RUN_ID.upper()
    run_id = pacha.RunId(upper)
    assert run_id == RUN_ID
    assert isinstance(run_id, str)
    assert run_id.as_uuid() == uuid.UUID(RUN_ID)
    assert pacha.RunId(uuid.UUID(RUN_ID)) == RUN_ID
    fresh = pacha.RunId.new()
    assert fresh != pacha.RunId.new()
    assert fresh.as_uuid().version == 4

    with pytest.raises(pacha.InvalidRunIdError, match="not-a-uuid") as caught:
        pacha.RunId("not-a-uuid")
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, pacha.PachaError)

    bad = PACHA_RUNNING_JSON.replace("6F9619FF-8B86-D011-B42D-00C04FC964FF", "not-a-uuid")
    with pytest.raises(ValueError, match="run_id"):
        pacha.ExperimentRun.model_validate_json(bad)


def test_run_status_values() -> None:
    assert [status.value for status in pacha.RunStatus] == [
        "pending",
        "running",
        "completed",
        "failed",
        "cancelled",
    ]
    assert str(pacha.RunStatus.RUNNING) == "running"
    assert pacha.RunStatus("completed") is pacha.RunStatus.COMPLETED
    assert [s.is_finished for s in pacha.RunStatus] == [False, False, True, True, True]
    with pytest.raises(ValueError, match="Completed"):
        pacha.RunStatus("Completed")


@settings(max_examples=150, deadline=None)
@given(run=experiment_runs)
def test_any_run_round_trips_through_json(run: pacha.ExperimentRun) -> None:
    dumped = run.model_dump_json()
    again = pacha.ExperimentRun.model_validate_json(dumped)
    assert again == run
    data = _strict_loads(dumped)
    for key in ("finished_at", "recipe", "error_message", "git_commit", "log_uri"):
        assert (key in data) == (getattr(run, key) is not None)
    assert data["status"] == run.status.value
    assert _Z_TIMESTAMP.match(data["started_at"])
