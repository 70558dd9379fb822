"""The record layer: one store-error mapping, records that name where they are, listings."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import pacha_sdk as pacha
from pacha_sdk.backends import Backend, get_backend
from pacha_sdk.exceptions import StorePermissionError
from pacha_sdk.models import ExperimentRun, RankRecord, RunId, RunStatus
from pacha_sdk.storage import annotated, records
from pacha_sdk.storage.layout import rank_record_key, run_record_key

if TYPE_CHECKING:
    from tests.servers import ObjectStore

pytest_plugins = ["tests.servers"]

RUN_ID = RunId("6f9619ff-8b86-d011-b42d-00c04fc964ff")


def stored_run(backend: Backend, name: str, status: RunStatus = RunStatus.COMPLETED) -> RunId:
    record = ExperimentRun(status=status, extra={"name": name})
    records.write_run(backend, record)
    return record.run_id


def test_a_written_run_reads_back_as_it_was(store: str) -> None:
    backend = get_backend(store)
    record = ExperimentRun(run_id=RUN_ID, status=RunStatus.RUNNING, extra={"name": "bert-0"})
    records.write_run(backend, record)
    assert records.read_run(backend, RUN_ID) == record
    assert annotated.load_run(backend, RUN_ID) == record
    assert records.has_run(backend, RUN_ID)
    assert pacha.load_run(RUN_ID, uri=store) == record  # the public read sees the same bytes
    assert backend.read_bytes(run_record_key(RUN_ID)) == records.record_bytes(record)


def test_a_missing_run_is_none_or_run_not_found_naming_the_store(store: str) -> None:
    backend = get_backend(store)
    assert records.read_run(backend, RUN_ID) is None
    assert not records.has_run(backend, RUN_ID)
    with pytest.raises(pacha.RunNotFoundError, match=f"no run {RUN_ID} under {backend.uri}"):
        annotated.load_run(backend, RUN_ID)


def test_a_store_error_on_write_names_the_action_the_key_and_the_store(store: str) -> None:
    backend = get_backend(store)
    kept = stored_run(backend, "kept")
    (Path(store) / "runs" / str(RUN_ID)).write_bytes(b"a file where the folder should be")
    record = ExperimentRun(run_id=RUN_ID)
    with pytest.raises(pacha.StoreError) as raised:
        records.write_run(backend, record)
    key = run_record_key(RUN_ID)
    assert str(raised.value).startswith(f"could not write {key} in {backend.uri}: ")
    assert isinstance(raised.value.__cause__, OSError)
    assert not isinstance(raised.value.__cause__, pacha.StoreError)
    assert annotated.load_run(backend, kept).name == "kept"  # nothing stored is lost


def test_a_store_error_on_read_is_a_store_error_not_a_missing_run(store: str) -> None:
    backend = get_backend(store)
    (Path(store) / "runs").mkdir(parents=True)
    (Path(store) / "runs" / str(RUN_ID)).write_bytes(b"a file where the folder should be")
    key = run_record_key(RUN_ID)
    with pytest.raises(pacha.StoreError, match=f"^could not read {key} in {backend.uri}: "):
        records.read_run(backend, RUN_ID)
    with pytest.raises(pacha.StoreError, match=f"could not read {key}"):
        pacha.load_run(RUN_ID, uri=store)


def test_only_the_errors_asked_for_pass_through(store: str) -> None:
    backend = get_backend(store)
    absent = records.store_errors(backend, "read", "x", passing=(FileNotFoundError,))
    with pytest.raises(FileNotFoundError), absent:
        backend.read_bytes("x")
    mapped = records.store_errors(backend, "delete", "x")
    with (
        pytest.raises(pacha.StoreError, match=r"could not delete x in .*: FileNotFoundError"),
        mapped,
    ):
        backend.delete("x")
    with (
        pytest.raises(ValueError, match="not a store error"),
        records.store_errors(backend, "read", "x"),
    ):
        raise ValueError("not a store error")


def test_a_record_that_cannot_be_parsed_names_its_location_and_field(store: str) -> None:
    backend = get_backend(store)
    key = run_record_key(RUN_ID)
    backend.write_new(key, b'{"run_id": "6f9619ff-8b86-d011-b42d-00c04fc964ff", "status": "odd"}')
    with pytest.raises(pacha.InvalidRecordError) as raised:
        records.read_run(backend, RUN_ID)
    assert raised.value.location == f"{backend.uri}/{key}"
    assert str(raised.value).startswith(f"{backend.uri}/{key} is not a valid run record: status:")
    with pytest.raises(pacha.InvalidRecordError, match="document: Invalid JSON"):
        records.parse_run(b"{", "somewhere")
    with pytest.raises(pacha.InvalidRecordError, match=r"^elsewhere .*: rank: "):
        records.parse_rank_record(
            b'{"run_id": "6f9619ff-8b86-d011-b42d-00c04fc964ff"}', "elsewhere"
        )


def test_a_listing_skips_a_bad_record_with_a_warning_and_keeps_the_rest(store: str) -> None:
    backend = get_backend(store)
    good = {stored_run(backend, f"run-{i}") for i in range(40)}  # more than READ_THREADS
    backend.write_new(run_record_key(RUN_ID), b"not json")
    with pytest.warns(UserWarning, match=f"pacha: skipping run {RUN_ID}: .*{RUN_ID}/run.json"):
        listed = annotated.list_run_records(backend)
    assert {record.run_id for record in listed} == good
    assert [r.run_id for r in listed] == sorted(good)  # in listing order, though read in parallel
    with pytest.raises(pacha.InvalidRecordError, match=str(RUN_ID)):
        annotated.list_run_records(backend, skip_invalid=False)


def test_read_runs_leaves_out_a_run_without_a_record(store: str) -> None:
    backend = get_backend(store)
    kept = stored_run(backend, "kept")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a run removed since the listing is no warning
        assert records.read_runs(backend, [RUN_ID, kept], skip_invalid=True) == [
            annotated.load_run(backend, kept)
        ]


def test_rank_records_are_listed_by_rank_and_odd_ones_skipped(store: str) -> None:
    backend = get_backend(store)
    stored_run(backend, "rank-0")
    for rank in (10, 2, 3):
        records.write_record(
            backend,
            rank_record_key(RUN_ID, rank),
            records.record_bytes(RankRecord(run_id=RUN_ID, rank=rank)),
        )
    backend.replace(
        rank_record_key(RUN_ID, 3), records.record_bytes(RankRecord(run_id=RUN_ID, rank=4))
    )
    backend.write_new(rank_record_key(RUN_ID, 5), b"{}")
    with pytest.warns(UserWarning, match="pacha: skipping") as caught:
        ranks = records.list_rank_records(backend, RUN_ID)
    assert [record.rank for record in ranks] == [2, 10]
    messages = sorted(str(warning.message) for warning in caught)
    assert (
        messages[0] == f"pacha: skipping {backend.uri}/{rank_record_key(RUN_ID, 3)}: it says rank 4"
    )
    assert messages[1].startswith(
        f"pacha: skipping rank 5: {backend.uri}/runs/{RUN_ID}/ranks/5.json"
    )
    assert records.read_rank_record(backend, RUN_ID, 2) == ranks[0]
    assert records.read_rank_record(backend, RUN_ID, 7) is None


def test_rank_records_of_an_unknown_run_are_run_not_found(store: str) -> None:
    backend = get_backend(store)
    with pytest.raises(pacha.RunNotFoundError, match=str(RUN_ID)):
        records.list_rank_records(backend, RUN_ID)
    stored = stored_run(backend, "single process")
    assert records.list_rank_records(backend, stored) == []


def _fast_failing(store: ObjectStore) -> Backend:
    options = {**store.storage_options, "config_kwargs": {"retries": {"max_attempts": 1}}}
    return get_backend(store.uri, storage_options=options)


@pytest.mark.servers
def test_a_store_that_stops_answering_names_the_listing_and_the_store(
    faulty_s3: ObjectStore,
) -> None:
    backend = _fast_failing(faulty_s3)
    assert faulty_s3.proxy is not None
    faulty_s3.proxy.refuse()
    with pytest.raises(pacha.StoreError, match=f"^could not read runs in {faulty_s3.uri}: "):
        annotated.list_run_records(backend)


@pytest.mark.servers
def test_a_store_error_from_the_backend_passes_unchanged(faulty_s3: ObjectStore) -> None:
    backend = _fast_failing(faulty_s3)
    assert faulty_s3.proxy is not None
    faulty_s3.proxy.http_error(403)
    with pytest.raises(StorePermissionError) as raised:
        records.read_run(backend, RUN_ID)
    assert not str(raised.value).startswith("could not")  # the backend's own words, kept
