"""Shared fixtures: the OpenAPI contract (as JSON Schema), a local OpenPipe API, clients and backends."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from pydantic import SecretStr

from slackbot.backends.openpipe import OpenPipeBackend
from slackbot.backends.openpipe.client import OpenPipeClient
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.openpipe_api import LocalOpenPipe

REPO = Path(__file__).resolve().parents[2]
PACKAGED_SPEC = REPO / "slackbot" / "sandbox" / "openpipe_openapi.json"
KEY = "opk_test_0123456789abcdef_SECRET"

# One pooled client for raw calls in tests: a fresh httpx.Client per call loads the CA bundle every time.
HTTP = httpx.Client(timeout=5.0)


def pytest_unconfigure(config: pytest.Config) -> None:
    HTTP.close()


def spec_path() -> Path:
    """OPENPIPE_OPENAPI_PATH, else ../shared/openpipe/openapi.json, else the verbatim subset we ship."""
    env = os.environ.get("OPENPIPE_OPENAPI_PATH")
    if env:
        return Path(env)
    shared = Path(__file__).resolve().parents[3] / "shared" / "openpipe" / "openapi.json"
    return shared if shared.exists() else PACKAGED_SPEC


def to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema: `nullable: true` becomes an anyOf with null."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "nullable":
            continue
        if key == "properties":
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        else:
            out[key] = to_json_schema(value)
    return {"anyOf": [out, {"type": "null"}]} if node.get("nullable") else out


class Contract:
    """Validators for the spec's request and response bodies, by method and path template."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    def _operation(self, method: str, template: str) -> dict[str, Any]:
        op: dict[str, Any] = self.spec["paths"][template][method.lower()]
        return op

    def request_schema(self, method: str, template: str) -> dict[str, Any]:
        op = self._operation(method, template)
        schema: dict[str, Any] = to_json_schema(op["requestBody"]["content"]["application/json"]["schema"])
        return schema

    def response_schema(self, method: str, template: str, status: int) -> dict[str, Any]:
        responses = self._operation(method, template)["responses"]
        answer = responses.get(str(status)) or responses["default"]
        if "$ref" in answer:
            answer = self.spec["components"]["responses"][answer["$ref"].rsplit("/", 1)[-1]]
        schema: dict[str, Any] = to_json_schema(answer["content"]["application/json"]["schema"])
        return schema

    def validate_request(self, method: str, template: str, body: Any) -> None:
        jsonschema.Draft7Validator(self.request_schema(method, template)).validate(body)

    def validate_response(self, method: str, template: str, status: int, body: Any) -> None:
        jsonschema.Draft7Validator(self.response_schema(method, template, status)).validate(body)


@pytest.fixture(scope="session")
def openapi() -> dict[str, Any]:
    path = spec_path()
    assert path.exists(), f"OpenAPI spec not found at {path}; set OPENPIPE_OPENAPI_PATH"
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


@pytest.fixture(scope="session")
def contract(openapi: dict[str, Any]) -> Contract:
    return Contract(openapi)


def template_of(path: str) -> str:
    return "/models/{modelSlug}" if path.startswith("/models/") else path


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1_764_000_000.0)


@pytest.fixture
def api(clock: ManualClock) -> Iterator[LocalOpenPipe]:
    with LocalOpenPipe(KEY, clock=clock, step_seconds=60.0) as server:
        yield server


class Sleeps(list[float]):
    """Records the delays the client asked for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_client(api: LocalOpenPipe, sleeps: Sleeps) -> Iterator[Callable[..., OpenPipeClient]]:
    made: list[OpenPipeClient] = []

    def make(**kw: Any) -> OpenPipeClient:
        kw.setdefault("timeout", 2.0)
        kw.setdefault("sleep", sleeps)
        client = OpenPipeClient(SecretStr(kw.pop("key", KEY)), kw.pop("base_url", api.url), **kw)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., OpenPipeClient]) -> OpenPipeClient:
    return make_client()


@pytest.fixture
def backend(api: LocalOpenPipe, sleeps: Sleeps) -> Iterator[OpenPipeBackend]:
    b = OpenPipeBackend(SecretStr(KEY), api.url, timeout=2.0, sleep=sleeps)
    yield b
    b.close()
