"""Shared fixtures: Together's OpenAPI contract (as JSON Schema), a local Together API, clients."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from slackbot.backends.together.client import TogetherClient
from slackbot.sandbox.together_api import LocalTogether
from tests.service_fixtures import HTTP as HTTP
from tests.service_fixtures import Sleeps as Sleeps
from tests.service_fixtures import SpecContract, stand_in_fixtures

HERE = Path(__file__).resolve().parent
# A verbatim copy of shared/together/finetuning-openapi.yaml (MIT, see its PROVENANCE.md), so the contract tests
# run wherever the repository is checked out; test_contract checks it against the shared one when present.
PACKAGED_SPEC = HERE / "finetuning-openapi.yaml"
KEY = "tgp_test_0123456789abcdef_SECRET"


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


def _overlapping_scheduler_args(error: jsonschema.ValidationError) -> bool:
    # The spec's oneOf for lr_scheduler_args overlaps (linear's args are a subset of cosine's): the SDK's own
    # cosine request is "valid under each of" them. That one error class is ignored (shared/together/NOTES.md).
    return (
        error.validator == "oneOf"
        and "lr_scheduler_args" in error.absolute_path
        and "valid under each" in error.message
    )


class Contract(SpecContract):
    """Together's spec is OpenAPI 3.1: JSON Schema 2020-12, less the one overlap its oneOf has."""

    validator = jsonschema.Draft202012Validator

    def _ignored(self, error: jsonschema.ValidationError) -> bool:
        return _overlapping_scheduler_args(error)

    def validate_error(self, body: Any) -> None:
        self._validate({"$ref": "#/components/schemas/ErrorData"}, body)


@pytest.fixture(scope="session")
def openapi() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(PACKAGED_SPEC.read_text("utf-8"))
    return data


@pytest.fixture(scope="session")
def contract(openapi: dict[str, Any]) -> Contract:
    return Contract(openapi)


clock, api, sleeps, make_client, client = stand_in_fixtures(LocalTogether, TogetherClient, KEY)


def template_of(path: str) -> str:
    """A recorded path (relative to /v1) as the spec's path template."""
    return LocalTogether.template(path)


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
