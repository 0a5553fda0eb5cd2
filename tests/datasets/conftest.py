"""Shared helpers for the dataset tests: lines as the services document them, files written from them, and the
OpenPipe spec's entry schema as an oracle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.openpipe.conftest import api, backend, clock, contract, openapi, sleeps, spec_path, to_json_schema

# The local OpenPipe, a backend on it and the spec's validators, as the OpenPipe tests have them: pytest finds
# fixtures by their name in this module.
__all__ = ["api", "backend", "clock", "contract", "openapi", "sleeps"]


def chat(*turns: tuple[str, Any], **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": role, "content": content} for role, content in turns], **extra}


GOOD_CHAT = chat(("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello."))


def jsonl(*lines: Any) -> bytes:
    """Lines as a JSONL file: dicts and lists are dumped, bytes and str written as they are."""
    out = []
    for line in lines:
        if isinstance(line, bytes):
            out.append(line)
        elif isinstance(line, str):
            out.append(line.encode())
        else:
            out.append(json.dumps(line).encode())
    return b"\n".join(out) + b"\n"


def write(tmp_path: Path, data: bytes, name: str = "data.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture(scope="session")
def entry_validator() -> jsonschema.Draft7Validator:
    """The spec's schema of one entry of `POST /datasets/{datasetId}/entries`."""
    spec = json.loads(spec_path().read_text("utf-8"))
    body = spec["paths"]["/datasets/{datasetId}/entries"]["post"]["requestBody"]["content"]["application/json"]
    return jsonschema.Draft7Validator(to_json_schema(body["schema"]["properties"]["entries"]["items"]))
