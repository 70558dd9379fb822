"""Curating runs through ``pacha ui``'s JSON API: edits, archive, delete, restore, trash.

The server writes only through the curation API (annotation files and
trash moves, never ``run.json``), only with the token in a header and a
JSON body (so no other site can write through a user's browser), and not at
all when started read-only. These tests talk HTTP to the real server, as a
script would, on a local store and on SeaweedFS.
"""

from __future__ import annotations

import http.client
import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest

import pacha_sdk as pacha
from pacha_sdk.storage.layout import run_record_key
from tests.curation_stores import Where, files_of, trashed_files_of
from tests.ui.conftest import Store, start_server

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pacha_sdk.ui import UiServer
    from tests.servers import ObjectStore

pytest_plugins = ["tests.servers"]


def call(
    server: UiServer,
    method: str,
    path: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One request as a script sends it: the token in X-Pacha-Token, a JSON body.

    *headers* replace the defaults (pass ``{}`` for a bare request); *raw*
    replaces the JSON body.
    """
    sent = (
        {"X-Pacha-Token": server.token, "Content-Type": "application/json"}
        if headers is None
        else headers
    )
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request(method, path, body=data, headers=sent)
        answer = conn.getresponse()
        text = answer.read()
        return answer.status, dict(answer.headers), json.loads(text) if text else None
    finally:
        conn.close()


def place_of(store: Store) -> Where:
    return Where("ui", store.uri, store.storage_options)


def annotations_of(store: Store, run_id: str) -> list[str]:
    backend = place_of(store).backend()
    return [key for key in backend.list(f"runs/{run_id}/") if "/annotations/" in key]


def test_an_edit_lands_as_an_annotation_and_every_reader_sees_it(
    server: UiServer, store: Store
) -> None:
    run_id = store.runs["sweep-1"]
    backend = place_of(store).backend()
    record_before = backend.read_bytes(run_record_key(pacha.RunId(run_id)))
    edit = {"add_tags": ["good"], "note": "best lr of the sweep\nkeep it", "name": "sweep-best"}
    status, _, record = call(server, "POST", f"/api/runs/{run_id}/annotations", edit)
    assert status == 200, record
    assert record["run_id"] == run_id
    assert record["tags"] == {"sweep": "lr", "good": ""}
    assert record["note"] == "best lr of the sweep\nkeep it"
    assert record["name"] == "sweep-best"
    assert record["archived"] is False
    assert record["extra"]["edited_by"]  # as load_run folds it
    stored = pacha.load_run(run_id, **store.options)
    assert stored.tags == {"sweep": "lr", "good": ""}
    assert stored.note == "best lr of the sweep\nkeep it"
    assert stored.name == "sweep-best"
    assert backend.read_bytes(run_record_key(pacha.RunId(run_id))) == record_before
    assert len(annotations_of(store, run_id)) == 1
    status, _, record = call(
        server, "POST", f"/api/runs/{run_id}/annotations", {"remove_tags": ["sweep"]}
    )
    assert status == 200
    assert record["tags"] == {"good": ""}
    status, _, runs = call(server, "GET", "/api/runs")
    entry = next(run for run in runs if run["run_id"] == run_id)
    assert (entry["name"], entry["tags"], entry["note"]) == (
        "sweep-best",
        {"good": ""},
        "best lr of the sweep\nkeep it",
    )


def test_archived_runs_leave_the_list_unless_asked(server: UiServer, store: Store) -> None:
    run_id = store.runs["diverged"]
    status, _, record = call(server, "POST", f"/api/runs/{run_id}/annotations", {"archived": True})
    assert status == 200
    assert record["archived"] is True
    queries = {"live": "", "only": "?archived=true", "all": "?archived=all"}
    ids = {
        name: [run["run_id"] for run in call(server, "GET", f"/api/runs{query}")[2]]
        for name, query in queries.items()
    }
    assert run_id not in ids["live"]
    assert ids["only"] == [run_id]
    assert set(ids["all"]) == set(store.runs.values())
    assert [r.run_id for r in pacha.list_runs(archived=True, **store.options)] == [run_id]
    status, _, record = call(server, "POST", f"/api/runs/{run_id}/annotations", {"archived": False})
    assert record["archived"] is False
    assert run_id in [run["run_id"] for run in call(server, "GET", "/api/runs")[2]]
    status, _, answer = call(server, "GET", "/api/runs?archived=maybe")
    assert (status, answer["parameter"]) == (400, "archived")


def test_delete_moves_the_run_to_the_trash_and_restore_brings_it_back(
    server: UiServer, store: Store
) -> None:
    run_id = store.runs["sweep-2"]
    before = files_of(place_of(store), run_id)
    status, _, deleted = call(server, "POST", f"/api/runs/{run_id}/delete", {})
    assert status == 200, deleted
    assert deleted["run_id"] == run_id
    assert deleted["state"] == "deleted"
    assert deleted["files"] == len(before)
    assert deleted["record"]["name"] == "sweep-2"
    assert trashed_files_of(place_of(store), run_id) == before
    status, _, missing = call(server, "GET", f"/api/runs/{run_id}")
    assert status == 404
    assert missing["deleted"] is True
    assert "trash" in missing["error"]
    with pytest.raises(pacha.RunDeletedError):
        pacha.load_run(run_id, **store.options)
    status, _, trash = call(server, "GET", "/api/trash")
    assert status == 200
    assert [(entry["run_id"], entry["record"]["name"]) for entry in trash] == [(run_id, "sweep-2")]
    status, _, restored = call(server, "POST", f"/api/runs/{run_id}/restore")
    assert status == 200, restored
    assert restored["name"] == "sweep-2"
    assert files_of(place_of(store), run_id) == before
    assert call(server, "GET", "/api/trash")[2] == []
    assert pacha.load_run(run_id, **store.options).name == "sweep-2"


def test_a_live_run_is_deleted_only_when_forced(local_server: UiServer, local_store: Store) -> None:
    with pacha.run(name="training", **local_store.options) as run:
        run.log_metric("loss", 1.0, step=0)
        run.flush()
        path = f"/api/runs/{run.run_id}/delete"
        status, _, refused = call(local_server, "POST", path, {})
        assert status == 409
        assert "running" in refused["error"]
        assert pacha.load_run(run.run_id, **local_store.options).name == "training"
        status, _, deleted = call(local_server, "POST", path, {"force": True})
        assert status == 200
        assert deleted["record"]["status"] == "running"


def test_a_write_without_the_token_is_401_and_writes_nothing(
    local_server: UiServer, local_store: Store
) -> None:
    run_id = local_store.runs["sweep-0"]
    for headers in ({"Content-Type": "application/json"}, {"X-Pacha-Token": "wrong"}):
        status, _, answer = call(
            local_server, "POST", f"/api/runs/{run_id}/annotations", {"note": "x"}, headers=headers
        )
        assert status == 401
        assert "token" in answer["error"]
    status, _, _ = call(local_server, "POST", f"/api/runs/{run_id}/delete", {}, headers={})
    assert status == 401
    assert annotations_of(local_store, run_id) == []
    assert pacha.load_run(run_id, **local_store.options).name == "sweep-0"


def cookie(server: UiServer) -> str:
    return f"{server.cookie_name}={server.token}"


@pytest.mark.parametrize(
    ("headers", "path_suffix", "status", "says"),
    [
        # A form on another site: the browser sends the cookie (were it not
        # SameSite=Strict) and a form content type, never a custom header.
        ({"Content-Type": "application/x-www-form-urlencoded"}, "", 403, "header"),
        ({"Content-Type": "text/plain"}, "", 403, "header"),
        ({"Content-Type": "application/json"}, "", 403, "header"),
        ({"Content-Type": "application/json"}, "?token={token}", 403, "header"),
        # The header, but not a JSON body: no simple request can be both.
        ({"X-Pacha-Token": "{token}", "Content-Type": "text/plain"}, "", 415, "application/json"),
        ({"X-Pacha-Token": "{token}"}, "", 415, "application/json"),
        # Everything, from a page on another origin.
        (
            {
                "X-Pacha-Token": "{token}",
                "Content-Type": "application/json",
                "Origin": "http://evil.example",
            },
            "",
            403,
            "cross-origin",
        ),
    ],
)
def test_a_cross_site_write_is_refused(
    local_server: UiServer,
    local_store: Store,
    headers: dict[str, str],
    path_suffix: str,
    status: int,
    says: str,
) -> None:
    run_id = local_store.runs["sweep-0"]
    sent = {"Cookie": cookie(local_server)}
    sent.update({key: value.format(token=local_server.token) for key, value in headers.items()})
    path = f"/api/runs/{run_id}/delete" + path_suffix.format(token=local_server.token)
    answer_status, _, answer = call(local_server, "POST", path, raw=b"{}", headers=sent)
    assert answer_status == status, answer
    assert says in answer["error"]
    assert pacha.load_run(run_id, **local_store.options).name == "sweep-0"


def test_bearer_and_same_origin_writes_pass(local_server: UiServer, local_store: Store) -> None:
    run_id = local_store.runs["sweep-0"]
    origin = f"http://127.0.0.1:{local_server.port}"
    headers = {
        "Authorization": f"Bearer {local_server.token}",
        "Content-Type": "application/json; charset=utf-8",
        "Origin": origin,
    }
    status, _, record = call(
        local_server, "POST", f"/api/runs/{run_id}/annotations", {"note": "ok"}, headers=headers
    )
    assert status == 200, record
    assert record["note"] == "ok"


@pytest.fixture
def read_only_server(local_store: Store) -> Iterator[UiServer]:
    ui = start_server(local_store, read_only=True)
    yield ui
    ui.shutdown()
    ui.server_close()


def test_a_read_only_server_refuses_every_write(
    read_only_server: UiServer, local_store: Store
) -> None:
    run_id = local_store.runs["sweep-0"]
    before = files_of(place_of(local_store), run_id)
    writes = {"annotations": {"note": "x"}, "delete": {"force": True}, "restore": {}}
    for action, body in writes.items():
        status, _, answer = call(read_only_server, "POST", f"/api/runs/{run_id}/{action}", body)
        assert status == 405, action
        assert "read-only" in answer["error"]
    assert call(read_only_server, "GET", "/api/session")[2] == {
        "read_only": True,
        "write_token": None,
    }
    assert call(read_only_server, "GET", "/api/trash")[:1] == (200,)
    assert files_of(place_of(local_store), run_id) == before


def test_the_session_gives_the_page_its_write_token(local_server: UiServer) -> None:
    signed_in = {"Cookie": cookie(local_server)}
    status, _, session = call(local_server, "GET", "/api/session", headers=signed_in)
    assert status == 200
    assert session == {"read_only": False, "write_token": local_server.token}
    status, _, _ = call(local_server, "GET", "/api/session", headers={})
    assert status == 401


@pytest.mark.parametrize(
    ("action", "body", "field", "says"),
    [
        ("annotations", {"add_tags": ["x" * 129]}, "add_tags", "the limit is 128"),
        ("annotations", {"add_tags": {"k": "v" * 1025}}, "add_tags", "the limit is 1,024"),
        ("annotations", {"add_tags": [""]}, "add_tags", "must not be empty"),
        ("annotations", {"add_tags": {"k": 3}}, "add_tags", "must be strings"),
        ("annotations", {"add_tags": "good"}, "add_tags", "list of strings"),
        ("annotations", {"remove_tags": [1]}, "remove_tags", "list of strings"),
        ("annotations", {"add_tags": ["a"], "remove_tags": ["a"]}, "remove_tags", "both"),
        ("annotations", {"note": "n" * 65_537}, "note", "the limit is 65,536"),
        ("annotations", {"note": 5}, "note", "a string"),
        ("annotations", {"name": ""}, "name", "must not be empty"),
        ("annotations", {"name": "n" * 257}, "name", "the limit is 256"),
        ("annotations", {"archived": "yes"}, "archived", "true, false"),
        ("annotations", {"colour": "red"}, "colour", "unknown field"),
        ("annotations", {}, "body", "nothing to change"),
        ("annotations", [1, 2], "body", "JSON object"),
        ("delete", {"force": "yes"}, "force", "true or false"),
        ("restore", {"force": True}, "force", "unknown field"),
    ],
)
def test_a_bad_field_is_400_naming_it_and_writes_nothing(
    local_server: UiServer, local_store: Store, action: str, body: Any, field: str, says: str
) -> None:
    run_id = local_store.runs["sweep-0"]
    before = files_of(place_of(local_store), run_id)
    status, _, answer = call(local_server, "POST", f"/api/runs/{run_id}/{action}", body)
    assert status == 400, answer
    assert answer["parameter"] == field
    assert says in answer["error"]
    assert files_of(place_of(local_store), run_id) == before


def test_a_body_that_is_not_json_or_too_big_is_refused(
    local_server: UiServer, local_store: Store
) -> None:
    path = f"/api/runs/{local_store.runs['sweep-0']}/annotations"
    status, _, answer = call(local_server, "POST", path, raw=b"note=hello")
    assert (status, answer["parameter"]) == (400, "body")
    conn = http.client.HTTPConnection("127.0.0.1", local_server.port, timeout=60)
    try:  # the length alone is refused: the server reads none of the body
        conn.putrequest("POST", path)
        for name, value in [
            ("X-Pacha-Token", local_server.token),
            ("Content-Type", "application/json"),
            ("Content-Length", str(2_000_000)),
        ]:
            conn.putheader(name, value)
        conn.endheaders()
        answer_413 = conn.getresponse()
        assert answer_413.status == 413
        assert "at most 1,048,576 bytes" in json.loads(answer_413.read())["error"]
    finally:
        conn.close()


def test_unknown_runs_and_wrong_methods(local_server: UiServer, local_store: Store) -> None:
    missing = str(uuid.uuid4())
    for action, body in [("annotations", {"note": "x"}), ("delete", {}), ("restore", {})]:
        status, _, answer = call(local_server, "POST", f"/api/runs/{missing}/{action}", body)
        assert status == 404, action
        assert missing in answer["error"]
    status, _, _ = call(local_server, "POST", "/api/runs/not-a-uuid/annotations", {"note": "x"})
    assert status == 404
    run_id = local_store.runs["sweep-0"]
    status, headers, _ = call(local_server, "GET", f"/api/runs/{run_id}/delete")
    assert (status, headers["Allow"]) == (405, "POST")
    status, headers, _ = call(local_server, "POST", "/api/trash", {})
    assert (status, headers["Allow"]) == (405, "GET, HEAD")
    status, _, _ = call(local_server, "POST", "/api/nothing", {})
    assert status == 404


@pytest.mark.servers
def test_a_store_that_cannot_be_written_is_502(faulty_s3: ObjectStore) -> None:
    store = Store(faulty_s3.uri, dict(faulty_s3.storage_options))
    with pacha.run(name="kept", **store.options) as run:
        run.log_metric("loss", 0.5, step=0)
    server = start_server(store)
    assert faulty_s3.proxy is not None
    try:
        faulty_s3.proxy.http_error(403)
        for action, body in [("annotations", {"note": "lost?"}), ("delete", {})]:
            status, _, answer = call(server, "POST", f"/api/runs/{run.run_id}/{action}", body)
            assert status == 502, answer
            assert answer["error"]
    finally:
        faulty_s3.proxy.heal()
        server.shutdown()
        server.server_close()
    record = pacha.load_run(run.run_id, **store.options)
    assert (record.name, record.note) == ("kept", None)
