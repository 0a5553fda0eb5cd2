"""The local OpenPipe API itself: status progression by clock, forced statuses, refusals, auth, faults."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import httpx
import pytest

from slackbot.sandbox.clock import ManualClock, ScaledClock, SystemClock
from slackbot.sandbox.openpipe_api import PROGRESSION, LocalOpenPipe, serve_forever
from slackbot.sandbox.openpipe_schema import check
from tests.openpipe.conftest import HTTP, KEY

CONFIG = {"provider": "openpipe", "baseModel": "meta-llama/Llama-3.2-1B-Instruct"}


def call(api: LocalOpenPipe, method: str, path: str, body: Any = None, key: str = KEY) -> httpx.Response:
    return HTTP.request(method, api.url + path, json=body, headers={"Authorization": f"Bearer {key}"})


def create(api: LocalOpenPipe, slug: str, dataset_id: str | None = None) -> httpx.Response:
    ds = dataset_id or api.add_dataset("d")
    return call(api, "POST", "/models", {"datasetId": ds, "slug": slug, "trainingConfig": CONFIG})


def status_of(api: LocalOpenPipe, slug: str) -> str:
    return str(call(api, "GET", f"/models/{slug}").json()["openpipe"]["status"])


def test_models_move_one_status_per_step(api: LocalOpenPipe, clock: ManualClock) -> None:
    assert create(api, "m1").json()["openpipe"]["status"] == "PENDING"
    seen = [status_of(api, "m1")]
    for _ in range(6):
        clock.advance(59.9)
        seen.append(status_of(api, "m1"))
        clock.advance(0.1)
    assert seen == ["PENDING", *PROGRESSION, "DEPLOYED"]
    created = api.model("m1")
    assert created["updated"] > created["created"]


def test_fail_model_and_set_status(api: LocalOpenPipe, clock: ManualClock) -> None:
    create(api, "m1")
    create(api, "m2")
    api.fail_model("m1", "CUDA out of memory")
    api.set_status("m2", "SOMETHING_NEW")
    clock.advance(1000)
    failed = call(api, "GET", "/models/m1").json()["openpipe"]
    assert failed["status"] == "ERROR" and failed["errorMessage"] == "CUDA out of memory"
    assert status_of(api, "m2") == "SOMETHING_NEW"
    assert api.model("m2")["openpipe"]["errorMessage"] is None


def test_refusals_like_the_2024_server(api: LocalOpenPipe) -> None:
    ds = api.add_dataset("d")
    assert create(api, "taken", ds).status_code == 200
    duplicate = create(api, "taken", ds)
    assert duplicate.status_code == 500
    assert duplicate.json() == {
        "message": "Fine tune IDs have to be globally unique. Please choose a different ID.",
        "code": "INTERNAL_SERVER_ERROR",
    }
    base = create(api, "google/gemma-3-1b-it", ds)
    assert base.status_code == 500 and "base model" in base.json()["message"]
    unknown = create(api, "fresh", "ds-nope")
    assert unknown.status_code == 500 and "Dataset not found" in unknown.json()["message"]
    api.remove_dataset(ds)
    assert create(api, "other", ds).status_code == 500
    assert [m["name"] for m in api.models()] == ["taken"]


@pytest.mark.parametrize(
    ("body", "issue"),
    [
        ({"slug": "s", "trainingConfig": CONFIG}, "body.datasetId: Required"),
        ({"datasetId": "d", "slug": "s", "trainingConfig": {**CONFIG, "hyperparameters": {"x": 1}}}, "x"),
        ({"datasetId": "d", "slug": "s", "trainingConfig": {**CONFIG, "epochs": 3}}, "'epochs'"),
        ({"datasetId": "d", "slug": "s", "trainingConfig": {"provider": "openai", "baseModel": "gpt-5"}}, "enum"),
        ({"datasetId": "d", "slug": 5, "trainingConfig": CONFIG}, "body.slug: Expected string"),
        (
            {
                "datasetId": "d",
                "slug": "s",
                "trainingConfig": {**CONFIG, "sft_hyperparameters": {"batch_size": "big"}},
            },
            "batch_size",
        ),
        (None, "body"),
    ],
)
def test_invalid_bodies_are_400_with_issues(api: LocalOpenPipe, body: Any, issue: str) -> None:
    response = call(api, "POST", "/models", body)
    assert response.status_code == 400
    payload = response.json()
    assert payload["message"] == "Input validation failed" and payload["code"] == "BAD_REQUEST"
    assert any(issue in i["message"] for i in payload["issues"]), payload["issues"]
    assert api.models() == []


def test_not_json_is_400(api: LocalOpenPipe) -> None:
    response = httpx.post(api.url + "/models", content=b"{nope", headers={"Authorization": f"Bearer {KEY}"}, timeout=5)
    assert response.status_code == 400


def test_auth_is_checked(api: LocalOpenPipe) -> None:
    for key in ("opk_other", KEY + "x", KEY[:-1]):
        response = call(api, "GET", "/models", key=key)
        assert response.status_code == 401 and response.json()["code"] == "UNAUTHORIZED"
    assert httpx.get(api.url + "/datasets", timeout=5).status_code == 401
    assert KEY not in repr(api.requests)  # the Authorization header is never recorded


def test_unknown_routes_and_delete(api: LocalOpenPipe) -> None:
    assert call(api, "GET", "/nothing").status_code == 404
    model_id = create(api, "m1").json()["id"]
    assert call(api, "DELETE", "/models/m1").json() == {"id": model_id, "object": "model", "deleted": True}
    assert call(api, "DELETE", "/models/m1").status_code == 404
    assert api.models() == []


def test_chat_needs_a_deployed_model(api: LocalOpenPipe, clock: ManualClock) -> None:
    create(api, "m1")
    body = {"model": "openpipe:m1", "messages": [{"role": "user", "content": "hello"}]}
    assert call(api, "POST", "/chat/completions", body).status_code == 404
    clock.advance(4 * 60)
    answer = call(api, "POST", "/chat/completions", body).json()
    assert answer["choices"][0]["message"]["role"] == "assistant" and answer["model"] == "openpipe:m1"
    assert call(api, "POST", "/chat/completions", {"model": "openpipe:m1"}).status_code == 400


def test_faults_match_endpoint_and_count(api: LocalOpenPipe) -> None:
    api.inject("GET /models/{slug}", "status", status=503, times=2)
    api.inject("GET /datasets", "status", status=429, retry_after=2.5)
    assert call(api, "GET", "/models").status_code == 200
    assert [call(api, "GET", "/models/x").status_code for _ in range(3)] == [503, 503, 404]
    limited = call(api, "GET", "/datasets")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2.5"
    assert call(api, "GET", "/datasets").status_code == 200
    api.inject("*", "html", status=502, times=None)
    page = call(api, "GET", "/models")
    assert page.status_code == 502 and page.headers["content-type"] == "text/html"
    api.clear_faults()
    assert call(api, "GET", "/models").status_code == 200
    assert [r.fault for r in api.requests[:3]] == [None, "status", "status"]
    with pytest.raises(ValueError, match="unknown fault"):
        api.inject("GET /models", "explode")


def test_body_faults(api: LocalOpenPipe) -> None:
    api.inject("GET /datasets", "malformed")
    with pytest.raises(ValueError):
        call(api, "GET", "/datasets").json()
    api.inject("GET /datasets", "missing_fields")
    assert "data" not in call(api, "GET", "/datasets").json()
    api.inject("GET /datasets", "latency", delay=0.2)
    started = time.monotonic()
    assert call(api, "GET", "/datasets").status_code == 200
    assert time.monotonic() - started >= 0.2
    api.inject("GET /datasets", "drip", delay=0.001)
    assert len(call(api, "GET", "/datasets").json()["data"]) == 3


def test_stop_releases_held_connections(clock: ManualClock) -> None:
    api = LocalOpenPipe(KEY, clock=clock).start()
    api.inject("GET /models", "timeout", delay=30)
    outcome: list[str] = []

    def hold() -> None:
        try:
            call(api, "GET", "/models")
            outcome.append("answered")
        except httpx.HTTPError as exc:
            outcome.append(type(exc).__name__)

    thread = threading.Thread(target=hold)
    thread.start()
    time.sleep(0.1)
    started = time.monotonic()
    api.stop()
    thread.join(5)
    assert time.monotonic() - started < 3 and outcome and outcome[0] != "answered"


def test_clocks() -> None:
    manual = ManualClock(10)
    assert manual.advance(5) == 15 == manual.now()
    with pytest.raises(ValueError):
        manual.advance(-1)
    scaled = ScaledClock(1000, start=0)
    time.sleep(0.01)
    assert scaled.now() >= 10
    assert abs(SystemClock().now() - time.time()) < 1


def test_check_handles_nullable_and_any_of() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "number", "nullable": True}}, "required": ["a"]}
    assert check(schema, {"a": None}) == []
    assert check(schema, {"a": True}) == ["body.a: Expected number, received boolean"]
    assert check({"anyOf": [{"type": "string"}, {"type": "number"}]}, 3) == []
    assert check({"anyOf": [{"type": "string"}, {"type": "number"}]}, []) == ["body: Invalid input"]


def test_serve_forever_logs_its_url_and_stops(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="slackbot.sandbox.openpipe")
    stop = threading.Event()
    runner = threading.Thread(target=serve_forever, args=(KEY, 0, 1.0), kwargs={"stop": stop})
    runner.start()
    try:
        deadline = time.monotonic() + 5
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.01)
        found = re.search(r"http://127\.0\.0\.1:\d+/api/v1", caplog.records[0].getMessage())
        assert found is not None
        assert call_url(found.group(0) + "/datasets").status_code == 200
    finally:
        stop.set()
        runner.join(5)
    assert not runner.is_alive()


def call_url(url: str) -> httpx.Response:
    return httpx.get(url, headers={"Authorization": f"Bearer {KEY}"}, timeout=5)
