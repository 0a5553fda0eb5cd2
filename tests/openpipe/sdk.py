"""The `openpipe==5.0.0` SDK's pydantic (v1) types as a second oracle for the wire shapes."""

from __future__ import annotations

from typing import Any

from openpipe.api_client import types as sdk
from pydantic.v1 import parse_obj_as

CREATE_MODEL_KEYS = {"datasetId", "slug", "trainingConfig", "pruningRuleIds", "defaultTemperature"}


def check_create_model_body(body: dict[str, Any]) -> None:
    """The SDK has no request class for POST /models (it takes keyword arguments): check the keys it
    builds, then the trainingConfig union. SDK models drop unknown keys: the round trip must be lossless."""
    assert set(body) <= CREATE_MODEL_KEYS, set(body) - CREATE_MODEL_KEYS
    assert {"datasetId", "slug", "trainingConfig"} <= set(body)
    config = parse_obj_as(sdk.CreateModelRequestTrainingConfig, body["trainingConfig"])
    assert config.dict() == body["trainingConfig"]
    if "pruningRuleIds" in body:
        assert parse_obj_as(list[str], body["pruningRuleIds"]) == body["pruningRuleIds"]


RESPONSES: dict[tuple[str, str], Any] = {
    ("POST", "/models"): sdk.CreateModelResponse,
    ("GET", "/models/{modelSlug}"): sdk.GetModelResponse,
    ("GET", "/models"): sdk.ListModelsResponse,
    ("DELETE", "/models/{modelSlug}"): sdk.DeleteModelResponse,
    ("GET", "/datasets"): sdk.ListDatasetsResponse,
    ("POST", "/chat/completions"): sdk.CreateChatCompletionResponseChoices,
}


def check_response(method: str, template: str, body: dict[str, Any]) -> None:
    """Parse with the SDK type; its dict (by alias, set fields only) must give back what was sent."""
    parsed = RESPONSES[(method, template)].parse_obj(body)
    assert _plain(parsed.dict()) == _plain(body)


def _plain(value: Any) -> Any:
    """Enums to their values, ints and floats compared as numbers, so equal JSON compares equal."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "value") and isinstance(value.value, str):
        return value.value
    return value


def check_chat_request(body: dict[str, Any]) -> None:
    """The chat request fields the bot sends, each through the SDK's type for it."""
    assert isinstance(body["model"], str)
    for message in body["messages"]:
        parsed = parse_obj_as(sdk.CreateChatCompletionRequestMessagesItem, message)
        assert parsed.dict() == message
