"""Secrets given on the command line or in storage_options never reach run.json.

A training script is often started as ``train.py --hf-token=... --lr 3e-4``
and hands ``vars(args)`` to ``pacha.run``. The run records its command line
(``extra.environment.argv``) and its hyperparameters in a file meant to be
shared, so every value that looks like a credential is stored as ``***``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import pacha_sdk as pacha
from pacha_sdk.tracking._redact import REDACTED, Secrets, looks_like_secret_flag

STORAGE_KEY = "AKIAIOSFODNN7EXAMPLE"
STORAGE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def run_json(store: str) -> str:
    (record,) = (Path(store) / "runs").glob("*/run.json")
    return record.read_text()


def recorded_argv(store: str) -> list[str]:
    argv = json.loads(run_json(store))["extra"]["environment"]["argv"]
    assert isinstance(argv, list)
    return argv


def start_and_finish(store: str, argv: list[str], **options: Any) -> None:
    """One run of a script started with *argv*, as ``sys.argv`` says."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", argv)
        with pacha.run(uri=store, system_metrics=False, **options):
            pass


def test_secret_flags_keep_their_name_and_lose_their_value(store: str) -> None:
    argv = [
        "train.py",
        "--hf-token=hf_live_abcdef123456",
        "--api_key=sk-proj-0123456789",
        "--db-password=hunter2hunter2",
        "--client-secret=c1i3nt-s3cr3t",
        "-aws-access-key=AKIA0000000000000000",
        "--token",
        "tok-two-tokens-987",
        "--lr",
        "3e-4",
        "--batch-size=64",
        "data/train.csv",
    ]
    start_and_finish(store, argv)

    assert recorded_argv(store) == [
        "train.py",
        "--hf-token=***",
        "--api_key=***",
        "--db-password=***",
        "--client-secret=***",
        "-aws-access-key=***",
        "--token",
        "***",
        "--lr",
        "3e-4",
        "--batch-size=64",
        "data/train.csv",
    ]
    text = run_json(store)
    for secret in (
        "hf_live_abcdef123456",
        "sk-proj-0123456789",
        "hunter2hunter2",
        "tok-two-tokens-987",
    ):
        assert secret not in text


def test_flags_that_only_resemble_secret_words_are_kept(store: str) -> None:
    argv = [
        "train.py",
        "--tokenizer=bert-base-uncased",
        "--max-tokens=512",
        "--max_new_tokens",
        "128",
        "--keyword=cats",
        "--use-key-frames",
        "--out=run1",
    ]
    start_and_finish(store, argv)
    # --use-key-frames has no value of its own: the next entry is a flag, kept as is.
    assert recorded_argv(store) == argv


def test_values_given_in_storage_options_are_redacted_wherever_they_appear(store: str) -> None:
    argv = [
        "train.py",
        STORAGE_KEY,
        f"--aws={STORAGE_KEY}",
        "--creds",
        f"{STORAGE_KEY}:{STORAGE_SECRET}",
        "--region=eu-west-1",
    ]
    options = {"key": STORAGE_KEY, "client_kwargs": {"aws_secret_access_key": STORAGE_SECRET}}
    start_and_finish(store, argv, storage_options=options)

    assert recorded_argv(store) == [
        "train.py",
        "***",
        "--aws=***",
        "--creds",
        "***:***",
        "--region=eu-west-1",
    ]
    assert STORAGE_KEY not in run_json(store)
    assert STORAGE_SECRET not in run_json(store)


def test_credentials_inside_urls_are_redacted(store: str) -> None:
    argv = ["train.py", "--data", "https://alice:pa55w0rd-x@data.example.com/set.tar"]
    start_and_finish(store, argv)
    assert recorded_argv(store) == ["train.py", "--data", "https://***@data.example.com/set.tar"]


def test_hyperparameters_parsed_from_the_command_line_do_not_keep_the_secret(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["train.py", "--hf-token", "hf_live_abcdef123456", "--lr=0.1"])
    args = {"hf_token": "hf_live_abcdef123456", "lr": 0.1, "note": "uses hf_live_abcdef123456"}

    with (
        pytest.warns(UserWarning, match="holds a secret") as caught,
        pacha.run(args, uri=store, system_metrics=False) as run,
    ):
        pass

    assert ["'hf_token'" in str(w.message) for w in caught] == [True, False]  # one per key
    assert "'note'" in str(caught[1].message)
    custom = pacha.load_run(run.run_id, uri=store).hyperparameters.custom
    assert custom == {"hf_token": REDACTED, "lr": 0.1, "note": f"uses {REDACTED}"}
    assert "hf_live_abcdef123456" not in run_json(store)


def test_a_storage_options_secret_passed_as_a_hyperparameter_is_redacted(store: str) -> None:
    hparams = pacha.Hyperparameters(custom={"aws": [STORAGE_KEY, "x"]})
    with (
        pytest.warns(UserWarning, match="'aws'"),
        pacha.run(hparams, uri=store, storage_options={"key": STORAGE_KEY}),
    ):
        pass
    assert STORAGE_KEY not in run_json(store)
    assert hparams.custom == {"aws": [STORAGE_KEY, "x"]}  # the caller's object is left alone


def test_the_error_of_a_failed_run_does_not_keep_the_secret(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["train.py", "--api-key=sk-live-0123456789"])
    with (
        pytest.raises(PermissionError, match="sk-live-0123456789"),  # the user's error, intact
        pacha.run(uri=store, system_metrics=False) as run,
    ):
        raise PermissionError("key sk-live-0123456789 was refused")

    record = pacha.load_run(run.run_id, uri=store)
    assert record.error_message == f"PermissionError: key {REDACTED} was refused"
    assert "sk-live-0123456789" not in run_json(store)


def test_the_decorator_redacts_too(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["train.py", "--wandb-api-key", "0123456789abcdef"])

    @pacha.track(uri=store, system_metrics=False)
    def train(wandb_api_key: str = "0123456789abcdef", lr: float = 0.1) -> None:
        pass

    with pytest.warns(UserWarning, match="wandb_api_key"):
        train()
    assert "0123456789abcdef" not in run_json(store)
    assert recorded_argv(store) == ["train.py", "--wandb-api-key", "***"]


def test_hyperparameters_logged_after_the_start_are_redacted(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["train.py", "--hf-token=hf_live_abcdef123456"])
    with pacha.run(uri=store, system_metrics=False) as run:
        with pytest.warns(UserWarning, match="'token'"):
            run.log_hyperparams({"token": "hf_live_abcdef123456", "lr": 0.1})
        with pytest.warns(UserWarning, match="'config.token'"):
            run.log_hyperparams({"config": {"token": "hf_live_abcdef123456"}}, lenient=True)
    custom = pacha.load_run(run.run_id, uri=store).hyperparameters.custom
    assert custom == {"token": REDACTED, "lr": 0.1, "config.token": REDACTED}
    assert "hf_live_abcdef123456" not in run_json(store)


@pytest.mark.parametrize(
    ("flag", "secret"),
    [
        ("--key", True),
        ("--api-key", True),
        ("--API_KEY", True),
        ("--hf.token", True),
        ("--passwd", True),
        ("--gcp-credentials", True),
        ("--secret", True),
        ("--accesskey", True),
        ("--tokenizer", False),
        ("--max-tokens", False),
        ("--keywords", False),
        ("--lr", False),
        ("-k", False),
        ("data.csv", False),
        ("--", False),
    ],
)
def test_which_flags_look_secret(flag: str, *, secret: bool) -> None:
    assert looks_like_secret_flag(flag) is secret


_SECRET_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=6
).filter(lambda s: s.strip() == s and not s.startswith("-") and "*" not in s)


@given(
    secret=_SECRET_TEXT,
    flag=st.sampled_from(["--token", "--api-key", "--password", "--my_secret", "--key"]),
    joined=st.booleans(),
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_no_secret_survives_redaction(secret: str, flag: str, *, joined: bool) -> None:
    assume(secret not in flag)
    argv = ["train.py", f"{flag}={secret}"] if joined else ["train.py", flag, secret]
    secrets = Secrets(argv, storage_options=None)
    redacted = secrets.argv()
    assert all(secret not in entry for entry in redacted)
    scrubbed = secrets.scrub(f"failed with {secret}!")
    assert secret not in scrubbed
    assert REDACTED in scrubbed
