"""The `together==3.1.1` SDK's pydantic types as a second oracle for the wire shapes."""

from __future__ import annotations

from typing import Any

import pydantic
from together.lib.types.fine_tuning import FinetuneRequest
from together.types import (
    FileList,
    FileResponse,
    FinetuneResponse,
    FineTuningCancelResponse,
    FineTuningDeleteResponse,
    FineTuningEstimatePriceResponse,
    FineTuningListEventsResponse,
    FineTuningListMetricsResponse,
    FineTuningListResponse,
)
from together.types.chat import ChatCompletion, completion_create_params
from together.types.fine_tuning_model_limits_response import FineTuningModelLimitsResponse

RESPONSES: dict[tuple[str, str], Any] = {
    ("GET", "/files"): FileList,
    ("GET", "/files/{id}"): FileResponse,
    ("POST", "/files/{id}/preprocess"): FileResponse,
    ("POST", "/files/upload"): FileResponse,
    ("GET", "/fine-tunes/models/limits"): FineTuningModelLimitsResponse,
    ("POST", "/fine-tunes/estimate-price"): FineTuningEstimatePriceResponse,
    ("POST", "/fine-tunes"): FinetuneResponse,  # the SDK's create returns its full type
    ("GET", "/fine-tunes"): FineTuningListResponse,
    ("GET", "/fine-tunes/{id}"): FinetuneResponse,
    ("GET", "/fine-tunes/{id}/events"): FineTuningListEventsResponse,
    ("GET", "/fine-tunes/{id}/metrics"): FineTuningListMetricsResponse,
    ("POST", "/fine-tunes/{id}/cancel"): FineTuningCancelResponse,
    ("DELETE", "/fine-tunes/{id}"): FineTuningDeleteResponse,
    ("POST", "/chat/completions"): ChatCompletion,  # not in the fine-tuning spec: the SDK is the only oracle
}

# What the SDK always fills in when it builds a create request; the bot may leave them to the service.
_SDK_FILLS = {"n_epochs": 1, "learning_rate": 1e-5, "warmup_ratio": 0.0, "max_grad_norm": 1.0, "weight_decay": 0.0}


def check_response(method: str, template: str, body: Any) -> Any:
    """Validate (not construct: Stainless's constructor checks nothing) with the SDK's type for this answer."""
    if template == "/fine-tunes/models/supported":
        assert isinstance(body["models"], list) and all(isinstance(m, str) for m in body["models"])
        return body
    shape = RESPONSES[(method, template)]
    return pydantic.TypeAdapter(shape).validate_python(body)


def check_create_body(body: dict[str, Any]) -> FinetuneRequest:
    """Every key the bot sends is one the SDK's own request model has, and validates with it."""
    unknown = set(body) - set(FinetuneRequest.model_fields)
    assert not unknown, f"keys the SDK never sends: {unknown}"
    parsed = FinetuneRequest.model_validate({**_SDK_FILLS, **body})
    sent = parsed.model_dump(mode="json", include=set(body), exclude_none=True)
    for key in ("training_file", "model", "n_epochs", "batch_size", "suffix", "validation_file"):
        if key in body:
            assert sent[key] == body[key], key
    for key in ("training_type", "training_method"):
        if key in body:
            assert {k: v for k, v in sent[key].items() if k in body[key]} == body[key], key
    return parsed


_CHAT = completion_create_params.CompletionCreateParamsNonStreaming


def check_chat_body(body: dict[str, Any]) -> None:
    """A chat completion request the SDK's own parameters take, with no key it never sends."""
    unknown = set(body) - (_CHAT.__required_keys__ | _CHAT.__optional_keys__)
    assert not unknown, f"keys the SDK never sends: {unknown}"
    pydantic.TypeAdapter(_CHAT).validate_python(body)
