"""The local OpenPipe's copy of the spec (`openpipe_openapi.json`) and a small validator for the OpenAPI 3.0
subset it uses: the stand-in refuses what the real service would, without a dependency on jsonschema."""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Any


@functools.cache
def spec() -> dict[str, Any]:
    text = resources.files("slackbot.sandbox").joinpath("openpipe_openapi.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def body_schema(spec: dict[str, Any], path: str) -> dict[str, Any]:
    schema: dict[str, Any] = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return schema


_TYPES: dict[str, Any] = {
    "string": str,
    "boolean": bool,
    "object": dict,
    "array": list,
    "number": (int, float),
    "integer": int,
}


def check(schema: dict[str, Any], value: Any, where: str = "body") -> list[str]:
    """Problems with `value` under the OpenAPI 3.0 subset the spec uses; [] when it conforms."""
    if value is None and "anyOf" not in schema:  # a nullable branch of an anyOf may take the null
        return [] if schema.get("nullable") or schema == {} else [f"{where}: Expected a value, received null"]
    if "anyOf" in schema:
        branches = schema["anyOf"]
        if any(not check(b, value, where) for b in branches):
            return []
        # Report against the branch a discriminator points at, like zod's discriminated unions do.
        for b in branches:
            for key, prop in b.get("properties", {}).items():
                if isinstance(value, dict) and prop.get("enum") == [value.get(key)]:
                    return check(b, value, where)
        return [f"{where}: Invalid input"]
    expected = schema.get("type")
    if expected:
        kind = _TYPES[expected]
        if isinstance(value, bool) and expected in ("number", "integer"):
            return [f"{where}: Expected {expected}, received boolean"]
        if not isinstance(value, kind):
            return [f"{where}: Expected {expected}, received {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: Invalid enum value. Expected {' | '.join(map(repr, schema['enum']))}"]
    problems: list[str] = []
    if isinstance(value, dict):
        props = schema.get("properties", {})
        problems += [f"{where}.{key}: Required" for key in schema.get("required", []) if key not in value]
        extra = [key for key in value if key not in props]
        if extra and schema.get("additionalProperties") is False:
            problems.append(f"{where}: Unrecognized key(s) in object: {', '.join(map(repr, extra))}")
        if isinstance(schema.get("additionalProperties"), dict):  # e.g. metadata: string values only
            for key in extra:
                problems += check(schema["additionalProperties"], value[key], f"{where}.{key}")
        for key, sub in props.items():
            if key in value:
                problems += check(sub, value[key], f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            problems += check(schema["items"], item, f"{where}[{i}]")
    return problems


def base_model_names(spec: dict[str, Any]) -> set[str]:
    """Every base model the spec names (enums, and the backtick lists in descriptions)."""
    names: set[str] = set()
    for branch in body_schema(spec, "/models")["properties"]["trainingConfig"]["anyOf"]:
        prop = branch["properties"]["baseModel"]
        names.update(prop.get("enum", []))
        names.update(re.findall(r"`([^`]+)`", prop.get("description", "")))
    return names
