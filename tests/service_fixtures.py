"""What the OpenPipe and Together tests share: a service's OpenAPI spec as JSON Schema validators (`SpecContract`),
a pooled HTTP client, and the fixtures that run a service's local stand-in and make clients for it
(`stand_in_fixtures`, called by tests/openpipe/conftest.py and tests/together/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar, NamedTuple, Protocol, TypeVar

import httpx
import jsonschema
import jsonschema.protocols
import pytest
from pydantic import SecretStr

from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.stand_in import StandIn

# One pooled client for raw calls in tests: a fresh httpx.Client per call loads the CA bundle every time.
HTTP = httpx.Client(timeout=5.0)


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


class SpecContract:
    """Validators for a spec's request and response bodies, by method and path template. A service's subclass
    names the JSON Schema draft its OpenAPI version speaks."""

    validator: ClassVar[type[jsonschema.protocols.Validator]]

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self._components = to_json_schema(spec.get("components", {}))

    def _operation(self, method: str, template: str) -> dict[str, Any]:
        op: dict[str, Any] = self.spec["paths"][template][method.lower()]
        return op

    def _ignored(self, error: jsonschema.ValidationError) -> bool:
        """An error the service's spec is known to raise for a valid body (none unless a subclass says)."""
        return False

    def _validate(self, schema: dict[str, Any], body: Any) -> None:
        root = {**schema, "components": self._components}  # so the schema's $refs resolve
        errors = [e for e in self.validator(root).iter_errors(body) if not self._ignored(e)]
        if errors:
            raise errors[0]

    def request_schema(self, method: str, template: str, media: str = "application/json") -> dict[str, Any]:
        schema: dict[str, Any] = to_json_schema(
            self._operation(method, template)["requestBody"]["content"][media]["schema"]
        )
        return schema

    def response_schema(self, method: str, template: str, status: int) -> dict[str, Any]:
        responses = self._operation(method, template)["responses"]
        answer = responses.get(str(status)) or responses["default"]
        if "$ref" in answer:
            answer = self.spec["components"]["responses"][answer["$ref"].rsplit("/", 1)[-1]]
        schema: dict[str, Any] = to_json_schema(answer["content"]["application/json"]["schema"])
        return schema

    def documents(self, method: str, template: str, status: int) -> bool:
        """Whether the spec gives this answer a body schema (some errors are listed with a description only)."""
        answer = self._operation(method, template)["responses"].get(str(status), {})
        return "application/json" in answer.get("content", {})

    def validate_request(self, method: str, template: str, body: Any, media: str = "application/json") -> None:
        self._validate(self.request_schema(method, template, media), body)

    def validate_response(self, method: str, template: str, status: int, body: Any) -> None:
        self._validate(self.response_schema(method, template, status), body)


class Sleeps(list[float]):
    """Records the delays the client asked for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class _Client(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=_Client)


class StandInFixtures(NamedTuple):
    clock: Any
    api: Any
    sleeps: Any
    make_client: Any
    client: Any


def stand_in_fixtures(stand_in: Callable[..., StandIn], client_class: Callable[..., C], key: str) -> StandInFixtures:
    """The fixtures a service's conftest binds to its names: `clock` (a ManualClock), `api` (the stand-in
    accepting `key`, one status step a minute), `sleeps`, `make_client(**kw)` (clients of `client_class` on the
    stand-in, closed afterwards) and `client`."""

    @pytest.fixture
    def clock() -> ManualClock:
        return ManualClock(start=1_764_000_000.0)

    @pytest.fixture
    def api(clock: ManualClock) -> Iterator[StandIn]:
        with stand_in(key, clock=clock, step_seconds=60.0) as server:
            yield server

    @pytest.fixture
    def sleeps() -> Sleeps:
        return Sleeps()

    @pytest.fixture
    def make_client(api: StandIn, sleeps: Sleeps) -> Iterator[Callable[..., C]]:
        made: list[C] = []

        def make(**kw: Any) -> C:
            kw.setdefault("timeout", 2.0)
            kw.setdefault("sleep", sleeps)
            client = client_class(SecretStr(kw.pop("key", key)), kw.pop("base_url", api.url), **kw)
            made.append(client)
            return client

        yield make
        for client in made:
            client.close()

    @pytest.fixture
    def client(make_client: Callable[..., C]) -> C:
        return make_client()

    return StandInFixtures(clock, api, sleeps, make_client, client)
