"""Shared fixtures: the OpenAPI contract (as JSON Schema), a local OpenPipe API, clients and backends."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import SecretStr

from slackbot.backends.openpipe import OpenPipeBackend
from slackbot.backends.openpipe.client import OpenPipeClient
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from tests.service_fixtures import HTTP as HTTP
from tests.service_fixtures import Sleeps as Sleeps
from tests.service_fixtures import SpecContract, stand_in_fixtures
from tests.service_fixtures import to_json_schema as to_json_schema

REPO = Path(__file__).resolve().parents[2]
PACKAGED_SPEC = REPO / "slackbot" / "sandbox" / "openpipe_openapi.json"
KEY = "opk_test_0123456789abcdef_SECRET"


def pytest_unconfigure(config: pytest.Config) -> None:
    HTTP.close()


def spec_path() -> Path:
    """OPENPIPE_OPENAPI_PATH, else ../shared/openpipe/openapi.json, else the verbatim subset we ship."""
    env = os.environ.get("OPENPIPE_OPENAPI_PATH")
    if env:
        return Path(env)
    shared = Path(__file__).resolve().parents[3] / "shared" / "openpipe" / "openapi.json"
    return shared if shared.exists() else PACKAGED_SPEC


class Contract(SpecContract):
    """OpenPipe's spec is OpenAPI 3.0: its schemas are JSON Schema draft 7 (with `nullable`)."""

    validator = jsonschema.Draft7Validator


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


clock, api, sleeps, make_client, client = stand_in_fixtures(LocalOpenPipe, OpenPipeClient, KEY)


@pytest.fixture
def backend(api: LocalOpenPipe, sleeps: Sleeps) -> Iterator[OpenPipeBackend]:
    b = OpenPipeBackend(SecretStr(KEY), api.url, timeout=2.0, sleep=sleeps)
    yield b
    b.close()
