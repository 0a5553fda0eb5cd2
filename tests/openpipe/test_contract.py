"""Contract tests: what the client sends and what the local API answers both conform to the OpenAPI spec
(jsonschema) and to the `openpipe==5.0.0` SDK's types."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from slackbot.backends.base import FineTuneSpec
from slackbot.backends.openpipe import OpenPipeBackend
from slackbot.backends.openpipe.client import OpenPipeClient
from slackbot.backends.openpipe.wire import ChatCompletionRequest, ChatMessage, to_create_request
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from tests.openpipe import sdk
from tests.openpipe.conftest import HTTP, KEY, Contract, template_of
from tests.openpipe.test_wire import VALID


def _specs_for(dataset_id: str) -> list[FineTuneSpec]:
    return [
        s.model_copy(update={"dataset_id": dataset_id, "slug": name.replace("openpipe-", "op-")})
        for name, s in sorted(VALID.items())
    ]


def test_every_request_the_backend_sends_conforms(
    api: LocalOpenPipe, backend: OpenPipeBackend, clock: ManualClock, contract: Contract
) -> None:
    dataset = backend.list_datasets()[0].id
    specs = _specs_for(dataset)
    for spec in specs:
        backend.create(spec)
    clock.advance(600)
    for provider in {s.option for s in specs}:
        backend.list_base_models(provider)
    backend.refresh([s.slug for s in specs] + ["gone"])
    backend.get(specs[0].slug)
    backend.client.chat_completion(
        ChatCompletionRequest(
            model=f"openpipe:{specs[0].slug}",
            messages=[ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content="Hi")],
            temperature=0.1,
            max_tokens=20,
        )
    )
    assert backend.delete(specs[0].slug) is True
    posts = [r for r in api.requests if r.method == "POST"]
    assert len(posts) == len(specs) + 1
    for request in posts:
        contract.validate_request("POST", template_of(request.path), request.json)
        if request.path == "/models":
            sdk.check_create_model_body(request.json)
        else:
            sdk.check_chat_request(request.json)
    assert {r.method for r in api.requests} == {"GET", "POST", "DELETE"}
    assert all(r.json is None for r in api.requests if r.method != "POST")


def test_bytes_on_the_wire(contract: Contract) -> None:
    """What httpx actually sends: URL, headers and body bytes, checked without a server in between."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content) if request.content else {"slug": "a b/c", "datasetId": "ds-1"}
        return httpx.Response(
            200,
            json={
                "id": "m-1",
                "name": body["slug"],
                "object": "model",
                "openpipe": {"baseModel": "b", "status": "PENDING", "datasetId": body["datasetId"]},
            },
        )

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = OpenPipeClient(SecretStr(KEY), "https://example.test/api/v1/", client=http)
    request = to_create_request(VALID["openpipe-sft-dpo"].model_copy(update={"slug": "a b/c"}))
    client.create_model(request)
    client.get_model("a b/c")
    sent = seen[0]
    assert sent.method == "POST" and str(sent.url) == "https://example.test/api/v1/models"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.content) == request.to_wire()
    contract.validate_request("POST", "/models", json.loads(sent.content))
    assert seen[1].url.raw_path == b"/api/v1/models/a%20b%2Fc"  # a slug is one path segment, always
    client.close()
    assert not http.is_closed, "a client passed in belongs to the caller"
    http.close()


def _raw(api: LocalOpenPipe, method: str, path: str, body: Any = None, key: str = KEY) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    return HTTP.request(method, api.url + path, json=body, headers=headers)


def test_every_answer_of_the_local_api_conforms(
    api: LocalOpenPipe, backend: OpenPipeBackend, clock: ManualClock, contract: Contract
) -> None:
    dataset = backend.list_datasets()[0].id
    for spec in _specs_for(dataset):
        backend.create(spec)
        clock.advance(45)  # spread the models over every status
    api.fail_model("reward-all", "Training diverged at step 120")
    checked: list[tuple[str, str, int]] = []

    def check(method: str, path: str, body: Any = None, key: str = KEY) -> dict[str, Any]:
        response = _raw(api, method, path, body, key)
        payload: dict[str, Any] = response.json()
        contract.validate_response(method, template_of(path), response.status_code, payload)
        if response.status_code == 200:
            sdk.check_response(method, template_of(path), payload)
        checked.append((method, template_of(path), response.status_code))
        return payload

    listed = check("GET", "/models")
    assert {m["openpipe"]["status"] for m in listed["data"]} >= {"PENDING", "TRAINING", "DEPLOYED", "ERROR"}
    for model in listed["data"]:
        check("GET", f"/models/{model['name']}")
    check("GET", "/datasets")
    deployed = next(m["name"] for m in listed["data"] if m["openpipe"]["status"] == "DEPLOYED")
    check(
        "POST", "/chat/completions", {"model": f"openpipe:{deployed}", "messages": [{"role": "user", "content": "hi"}]}
    )
    good = to_create_request(_specs_for(dataset)[0].model_copy(update={"slug": "fresh"})).to_wire()
    check("POST", "/models", good)
    check("DELETE", "/models/fresh")
    # Error answers follow the spec's error schema too.
    check("GET", "/models", key="opk_nope")
    check("GET", "/models/fresh")
    check("POST", "/models", {**good, "trainingConfig": {"provider": "gemini"}})
    check("POST", "/models", good | {"slug": "reward-all"})
    statuses = {status for _, _, status in checked}
    assert statuses == {200, 400, 401, 404, 500}


@pytest.mark.parametrize("seed", [True, False])
def test_seeded_datasets(seed: bool, contract: Contract) -> None:
    with LocalOpenPipe(KEY, seed=seed) as api:
        payload = _raw(api, "GET", "/datasets").json()
    contract.validate_response("GET", "/datasets", 200, payload)
    assert (len(payload["data"]) >= 3) is seed
    assert all(d["dataset_entry_count"] > 0 for d in payload["data"])


def test_packaged_spec_is_a_verbatim_subset(openapi: dict[str, Any]) -> None:
    from tests.openpipe.conftest import PACKAGED_SPEC

    packaged = json.loads(PACKAGED_SPEC.read_text("utf-8"))
    for path, operations in packaged["paths"].items():
        for method, operation in operations.items():
            assert operation == openapi["paths"][path][method], f"{method} {path} differs from the spec"
    assert packaged["components"] == openapi["components"]
