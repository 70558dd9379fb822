"""The JSON API of ``pacha ui`` over HTTP, as a script would use it."""

from __future__ import annotations

import http.client
import json
import math
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import pacha_sdk as pacha
from pacha_sdk.storage.layout import artifact_key
from tests.ui.conftest import ARTIFACT, CONSOLE_LINE, ERROR, HTML_NAME, STEPS, Store, start_server

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pacha_sdk.ui import UiServer


def base(server: UiServer) -> str:
    return server.url.split("?")[0].rstrip("/")


def request(
    server: UiServer,
    path: str,
    *,
    token: bool = True,
    method: str = "GET",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    all_headers = {"Authorization": f"Bearer {server.token}"} if token else {}
    all_headers.update(headers or {})
    req = urllib.request.Request(base(server) + path, headers=all_headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def get_json(server: UiServer, path: str) -> Any:
    status, _, body = request(server, path)
    assert status == 200, body
    return json.loads(body)


def error_of(server: UiServer, path: str, expected: int) -> dict[str, Any]:
    status, headers, body = request(server, path)
    assert status == expected, body
    assert headers["Content-Type"] == "application/json"
    answer: dict[str, Any] = json.loads(body)
    return answer


def test_runs_lists_every_run_with_the_documented_fields(
    local_server: UiServer, local_store: Store
) -> None:
    runs = get_json(local_server, "/api/runs")
    assert sorted(run["name"] for run in runs) == sorted(local_store.runs)
    for run in runs:
        assert {"run_id", "name", "status", "is_stale", "started_at", "finished_at", "tags",
                "hyperparameters", "summary"} <= run.keys()  # fmt: skip
    failed = next(run for run in runs if run["name"] == "diverged")
    assert failed["status"] == "failed"
    assert failed["error_message"] == ERROR
    assert failed["summary"] == {"loss": 1000.0}
    sweep = next(run for run in runs if run["name"] == "sweep-1")
    assert sweep["hyperparameters"]["learning_rate"] == 0.01
    assert sweep["hyperparameters"]["optimizer"] == "adam"
    assert sweep["tags"] == {"sweep": "lr"}
    assert [r["started_at"] for r in runs] == sorted((r["started_at"] for r in runs), reverse=True)


def test_one_run_is_its_record_plus_rank_records(
    local_server: UiServer, local_store: Store
) -> None:
    run_id = local_store.runs["diverged"]
    record = get_json(local_server, f"/api/runs/{run_id}")
    stored = pacha.load_run(run_id, **local_store.options)
    assert record["run_id"] == run_id
    assert record["error_message"] == ERROR
    assert record["extra"]["traceback"] == stored.extra["traceback"]
    assert record["hyperparameters"] == stored.hyperparameters.model_dump(mode="json")
    assert record["ranks"] == []
    assert record["name"] == "diverged"


def test_without_the_token_every_route_is_401(local_server: UiServer, local_store: Store) -> None:
    run_id = local_store.runs["sweep-0"]
    for path in ["/", "/static/app.js", "/api/runs", f"/api/runs/{run_id}", "/nothing"]:
        status, _, body = request(local_server, path, token=False)
        assert status == 401, path
        assert "token" in json.loads(body)["error"]
    status, _, _ = request(
        local_server, "/api/runs", token=False, headers={"Authorization": "Bearer wrong"}
    )
    assert status == 401
    status, _, _ = request(local_server, "/api/runs?token=wrong", token=False)
    assert status == 401


def test_the_token_in_the_url_becomes_a_strict_cookie(local_server: UiServer) -> None:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(local_server.url, timeout=10) as page:  # follows the 303 to /
        assert page.url == base(local_server) + "/"
        assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert b"/static/app.js" in page.read()
    with opener.open(base(local_server) + "/api/runs", timeout=10) as runs:
        assert runs.status == 200
    conn = http.client.HTTPConnection("127.0.0.1", local_server.port, timeout=10)
    conn.request("GET", f"/?token={local_server.token}")
    answer = conn.getresponse()
    cookie = answer.getheader("Set-Cookie") or ""
    conn.close()
    assert answer.status == 303
    assert f"pacha_ui_{local_server.port}={local_server.token}" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie


def test_unknown_run_and_metric_are_404(local_server: UiServer, local_store: Store) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    assert missing in error_of(local_server, f"/api/runs/{missing}", 404)["error"]
    error_of(local_server, f"/api/runs/{missing}/metrics?name=loss", 404)
    error_of(local_server, "/api/runs/not-a-uuid", 404)
    run_id = local_store.runs["sweep-0"]
    answer = error_of(local_server, f"/api/runs/{run_id}/metrics?name=nope", 404)
    assert "nope" in answer["error"]
    assert "loss" in answer["error"]
    error_of(local_server, "/api/nothing", 404)
    error_of(local_server, "/static/missing.js", 404)


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("", "name"),
        ("name=loss&max_points=many", "max_points"),
        ("name=loss&max_points=2", "max_points"),
        ("name=loss&max_points=99999999", "max_points"),
        ("name=loss&after_step=soon", "after_step"),
        ("name=loss&after_step=-5", "after_step"),
        ("name=loss&rank=-1", "rank"),
        ("name=loss&min_step=x", "min_step"),
        ("name=loss&min_step=10&max_step=5", "max_step"),
        ("name=loss&colour=red", "colour"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(
    local_server: UiServer, local_store: Store, query: str, parameter: str
) -> None:
    run_id = local_store.runs["sweep-0"]
    answer = error_of(local_server, f"/api/runs/{run_id}/metrics?{query}", 400)
    assert answer["parameter"] == parameter
    assert parameter in answer["error"]


def test_a_bad_artifact_hash_is_400_and_an_unknown_one_404(local_server: UiServer) -> None:
    assert (
        error_of(local_server, "/api/artifacts/..%2F..%2Frun.json", 400)["parameter"]
        == "content_hash"
    )
    assert error_of(local_server, "/api/artifacts/abc", 400)["parameter"] == "content_hash"
    error_of(local_server, "/api/artifacts/" + "0" * 64, 404)


@pytest.mark.parametrize(
    "path",
    ["/static/../_server.py", "/static/%2e%2e/_server.py", "/../pyproject.toml", "//etc/passwd"],
)
def test_no_path_reaches_files_outside_the_fixed_map(local_server: UiServer, path: str) -> None:
    status, _, body = request(local_server, path)
    assert status == 404, body


def test_only_the_curation_routes_take_post(local_server: UiServer) -> None:
    for method in ("POST", "PUT", "DELETE"):
        status, headers, body = request(local_server, "/api/runs", method=method)
        assert status == 405
        assert "GET, HEAD" in json.loads(body)["error"]
    assert headers.get("Allow") is None  # PUT and DELETE are no method of any route
    status, headers, _ = request(local_server, "/api/runs", method="POST")
    assert headers["Allow"] == "GET, HEAD"


def test_metrics_returns_every_point_when_few(local_server: UiServer, local_store: Store) -> None:
    run_id = local_store.runs["sweep-1"]
    series = get_json(local_server, f"/api/runs/{run_id}/metrics?name=loss")
    assert series["name"] == "loss"
    assert series["step"] == list(range(STEPS))
    assert series["value"] == pytest.approx([1.0 / (1 + s * 0.1) for s in range(STEPS)])
    assert len(series["timestamp"]) == STEPS
    assert series["downsampled"] is False
    assert series["timestamp"] == sorted(series["timestamp"])


def test_after_step_returns_only_newer_points(local_server: UiServer, local_store: Store) -> None:
    run_id = local_store.runs["sweep-1"]
    newer = get_json(local_server, f"/api/runs/{run_id}/metrics?name=loss&after_step=194")
    assert newer["step"] == [195, 196, 197, 198, 199]
    assert newer["last_step"] == 199
    both = get_json(
        local_server, f"/api/runs/{run_id}/metrics?name=loss&after_step=194&max_step=196"
    )
    assert both["step"] == [195, 196]
    nothing = get_json(local_server, f"/api/runs/{run_id}/metrics?name=loss&after_step=199")
    assert nothing["step"] == nothing["value"] == nothing["timestamp"] == []


@pytest.fixture
def spiky_server(tmp_path: Path) -> Iterator[tuple[UiServer, str]]:
    """A run of 50,000 points in several part files, with one spike, one dip and a NaN."""
    uri = str(tmp_path / "spiky")
    with pacha.run(uri=uri, name="spiky", flush_rows=8000) as run:
        for step in range(50_000):
            value = math.sin(step / 500)
            if step == 31_337:
                value = 40.0
            elif step == 12_345:
                value = -25.0
            elif step == 44_000:
                value = math.nan
            run.log_metric("loss", value, step=step)
            run.log_metric("lr", 1e-3, step=step)
    server = start_server(Store(uri, None))
    yield server, run.run_id
    server.shutdown()
    server.server_close()


def test_downsampling_keeps_spikes_and_ends_within_max_points(
    spiky_server: tuple[UiServer, str],
) -> None:
    server, run_id = spiky_server
    series = get_json(server, f"/api/runs/{run_id}/metrics?name=loss&max_points=400")
    assert series["downsampled"] is True
    assert series["total"] == 50_000
    assert 100 < len(series["step"]) <= 400  # 100 buckets, 2 to 4 points each
    assert series["step"] == sorted(series["step"])
    assert series["step"][0] == 0
    assert series["step"][-1] == 49_999
    finite = [v for v in series["value"] if v is not None]
    assert max(finite) == 40.0
    assert series["step"][series["value"].index(40.0)] == 31_337
    assert min(finite) == -25.0
    assert series["step"][series["value"].index(-25.0)] == 12_345
    live = get_json(server, f"/api/runs/{run_id}/metrics?name=loss&max_points=400&after_step=40000")
    assert live["total"] == 9_999
    assert len(live["step"]) <= 400
    assert live["step"][0] > 40_000
    window = get_json(server, f"/api/runs/{run_id}/metrics?name=loss&min_step=31000&max_step=32000")
    assert window["total"] == 1001
    assert window["step"] == list(range(31_000, 32_001))  # zoomed in: every point again
    assert max(window["value"]) == 40.0
    exact = get_json(server, f"/api/runs/{run_id}/metrics?name=loss&max_points=50000")
    assert exact["step"] == list(range(50_000))
    assert exact["value"][44_000] is None  # NaN: a gap, strict JSON


def test_an_artifact_streams_verified(local_server: UiServer, local_store: Store) -> None:
    record = pacha.load_run(local_store.runs["sweep-0"], **local_store.options)
    digest = record.artifacts[0].content_hash
    status, headers, body = request(local_server, f"/api/artifacts/{digest}?name=model.bin")
    assert status == 200
    assert body == ARTIFACT
    assert 'filename="model.bin"' in headers["Content-Disposition"]


def test_a_corrupted_artifact_never_downloads_complete(
    local_server: UiServer, local_store: Store
) -> None:
    record = pacha.load_run(local_store.runs["sweep-0"], **local_store.options)
    digest = record.artifacts[0].content_hash
    blob = Path(local_store.uri) / artifact_key(digest)
    blob.write_bytes(ARTIFACT[:-1] + b"!")
    with pytest.raises(Exception, match=r"IncompleteRead|chunk|Connection|closed"):
        request(local_server, f"/api/artifacts/{digest}")


def test_lineage_and_console(local_server: UiServer, local_store: Store) -> None:
    run_id = local_store.runs["sweep-0"]
    lineage = get_json(local_server, f"/api/runs/{run_id}/lineage")
    assert [a["name"] for a in lineage["produced"]] == ["model.bin"]
    assert lineage["produced"][0]["used_by"] == []
    assert CONSOLE_LINE in get_json(local_server, f"/api/runs/{run_id}/console")["text"]
    other = local_store.runs["sweep-1"]
    assert get_json(local_server, f"/api/runs/{other}/console") == {"text": None}


def test_html_in_a_name_is_only_json_data(local_server: UiServer) -> None:
    status, headers, body = request(local_server, "/api/runs")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert HTML_NAME in [run["name"] for run in json.loads(body)]
    assert headers["X-Content-Type-Options"] == "nosniff"
