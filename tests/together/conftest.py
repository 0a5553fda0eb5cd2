"""Shared fixtures: Together's OpenAPI contract (as JSON Schema), a local Together API, clients."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from pydantic import SecretStr

from slackbot.backends.together.client import TogetherClient
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.together_api import LocalTogether

HERE = Path(__file__).resolve().parent
# A verbatim copy of shared/together/finetuning-openapi.yaml (MIT, see its PROVENANCE.md), so the contract tests
# run wherever the repository is checked out; test_contract checks it against the shared one when present.
PACKAGED_SPEC = HERE / "finetuning-openapi.yaml"
KEY = "tgp_test_0123456789abcdef_SECRET"

HTTP = httpx.Client(timeout=5.0)


def pytest_unconfigure(config: pytest.Config) -> None:
    HTTP.close()


def shared_spec_path() -> Path | None:
    """TOGETHER_OPENAPI_PATH, else shared/together/ beside the repository (a checkout or a worktree)."""
    env = os.environ.get("TOGETHER_OPENAPI_PATH")
    if env:
        return Path(env)
    repo = HERE.parents[1]
    for root in (repo.parent, repo.parent.parent):
        candidate = root / "shared" / "together" / "finetuning-openapi.yaml"
        if candidate.exists():
            return candidate
    return None


def to_json_schema(node: Any) -> Any:
    """OpenAPI 3.x schema -> JSON Schema: `nullable: true` becomes an anyOf with null; examples dropped."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("nullable", "example", "x-codeSamples"):
            continue
        if key == "properties":
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        else:
            out[key] = to_json_schema(value)
    return {"anyOf": [out, {"type": "null"}]} if node.get("nullable") else out


def _overlapping_scheduler_args(error: jsonschema.ValidationError) -> bool:
    # The spec's oneOf for lr_scheduler_args overlaps (linear's args are a subset of cosine's): the SDK's own
    # cosine request is "valid under each of" them. That one error class is ignored (shared/together/NOTES.md).
    return (
        error.validator == "oneOf"
        and "lr_scheduler_args" in error.absolute_path
        and "valid under each" in error.message
    )


class Contract:
    """Validators for the spec's request and response bodies, by method and path template."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self._components = to_json_schema(spec["components"])

    def _operation(self, method: str, template: str) -> dict[str, Any]:
        op: dict[str, Any] = self.spec["paths"][template][method.lower()]
        return op

    def _validate(self, schema: dict[str, Any], body: Any) -> None:
        root = {**to_json_schema(schema), "components": self._components}
        validator = jsonschema.Draft202012Validator(root)
        errors = [e for e in validator.iter_errors(body) if not _overlapping_scheduler_args(e)]
        if errors:
            raise errors[0]

    def request_schema(self, method: str, template: str, media: str = "application/json") -> dict[str, Any]:
        schema: dict[str, Any] = self._operation(method, template)["requestBody"]["content"][media]["schema"]
        return schema

    def response_schema(self, method: str, template: str, status: int) -> dict[str, Any]:
        answer = self._operation(method, template)["responses"][str(status)]
        schema: dict[str, Any] = answer["content"]["application/json"]["schema"]
        return schema

    def documents(self, method: str, template: str, status: int) -> bool:
        """Whether the spec gives this answer a body schema (some errors are listed with a description only)."""
        answer = self._operation(method, template)["responses"].get(str(status), {})
        return "application/json" in answer.get("content", {})

    def validate_request(self, method: str, template: str, body: Any, media: str = "application/json") -> None:
        self._validate(self.request_schema(method, template, media), body)

    def validate_response(self, method: str, template: str, status: int, body: Any) -> None:
        self._validate(self.response_schema(method, template, status), body)

    def validate_error(self, body: Any) -> None:
        self._validate({"$ref": "#/components/schemas/ErrorData"}, body)


@pytest.fixture(scope="session")
def openapi() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(PACKAGED_SPEC.read_text("utf-8"))
    return data


@pytest.fixture(scope="session")
def contract(openapi: dict[str, Any]) -> Contract:
    return Contract(openapi)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1_764_000_000.0)


@pytest.fixture
def api(clock: ManualClock) -> Iterator[LocalTogether]:
    with LocalTogether(KEY, clock=clock, step_seconds=60.0) as server:
        yield server


class Sleeps(list[float]):
    """Records the delays the client asked for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_client(api: LocalTogether, sleeps: Sleeps) -> Iterator[Callable[..., TogetherClient]]:
    made: list[TogetherClient] = []

    def make(**kw: Any) -> TogetherClient:
        kw.setdefault("timeout", 2.0)
        kw.setdefault("sleep", sleeps)
        client = TogetherClient(SecretStr(kw.pop("key", KEY)), kw.pop("base_url", api.url), **kw)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., TogetherClient]) -> TogetherClient:
    return make_client()


def template_of(path: str) -> str:
    """A recorded path (relative to /v1) as the spec's path template."""
    from slackbot.sandbox.together_api import _template

    return _template(path)


def check_sent(api: LocalTogether, contract: Contract) -> int:
    """Every request the local Together received, checked against the spec (path, body) and the SDK's own request
    types; the number of requests checked. A body the bot sends that either oracle refuses fails the test."""
    from tests.together import sdk

    for request in api.requests:
        template = template_of(request.path)
        if template == "/chat/completions":
            assert request.method == "POST" and isinstance(request.json, dict)
            sdk.check_chat_body(request.json)
            continue
        assert template in contract.spec["paths"], f"{request.method} {request.path} is not in Together's spec"
        assert request.method.lower() in contract.spec["paths"][template], f"{request.method} {template}"
        if (request.method, template) == ("POST", "/fine-tunes"):
            contract.validate_request("POST", template, request.json)
            sdk.check_create_body(request.json)
        elif (request.method, template) == ("POST", "/fine-tunes/estimate-price"):
            contract.validate_request("POST", template, request.json)
        elif request.method in ("GET", "DELETE") or template.endswith("/cancel"):
            assert request.json is None, f"{request.method} {template} carried a body"
    return len(api.requests)
