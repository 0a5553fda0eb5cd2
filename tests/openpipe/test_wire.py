"""Wire models: every body `to_create_request` builds is valid for the spec and the SDK; bad specs fail."""

from __future__ import annotations

from typing import Any

import jsonschema
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slackbot.backends.base import FineTuneSpec
from slackbot.backends.openpipe.catalog import BASE_MODELS
from slackbot.backends.openpipe.fields import PreferenceParams, Provider, SftParams, openpipe_spec
from slackbot.backends.openpipe.wire import (
    CreateModelRequest,
    Model,
    ModelList,
    OpenAISftHyperparameters,
    to_create_request,
)
from tests.openpipe.conftest import Contract
from tests.openpipe.sdk import check_create_model_body

P = Provider


def spec(provider: Provider, base_model: str, **kw: Any) -> FineTuneSpec:
    return openpipe_spec(dataset_id="ds-1", slug="my-model", provider=provider, base_model=base_model, **kw)


LLAMA = "meta-llama/Meta-Llama-3.1-8B-Instruct"
GPT = "gpt-4o-mini-2024-07-18"
GEMINI = "models/gemini-1.5-flash-001-tuning"

VALID: dict[str, FineTuneSpec] = {
    "openpipe-sft-defaults": spec(P.OPENPIPE, LLAMA),
    "openpipe-sft-auto": spec(P.OPENPIPE, LLAMA, sft=SftParams(batch_size="auto", epochs=3)),
    "openpipe-sft-all": spec(P.OPENPIPE, LLAMA, sft=SftParams(batch_size=8, learning_rate_multiplier=0.5, epochs=2.5)),
    "openpipe-sft-dpo": spec(
        P.OPENPIPE,
        "Qwen/Qwen3-8B",
        enable_preference=True,
        sft=SftParams(epochs=1),
        preference=PreferenceParams(
            variant="DPO", learning_rate_multiplier=0.3, epochs=1, beta=0.1, adapter_weight=0.5
        ),
    ),
    "openpipe-apo-zero": spec(
        P.OPENPIPE, LLAMA, enable_preference=True, preference=PreferenceParams(variant="APO Zero")
    ),
    "openpipe-dpo-only": spec(
        P.OPENPIPE, LLAMA, enable_sft=False, enable_preference=True, preference=PreferenceParams(beta=0.2)
    ),
    "openpipe-from-own-slug": spec(P.OPENPIPE, "support-bot-v3"),
    "openpipe-pruning-temperature": spec(P.OPENPIPE, LLAMA, pruning_rule_ids=("pr-1", "pr-2"), default_temperature=0.2),
    "reward-defaults": spec(P.OPENPIPE_REWARD, "Qwen/Qwen2.5-0.5B-Instruct"),
    "reward-auto": spec(P.OPENPIPE_REWARD, "Qwen/Qwen3-8B", sft=SftParams(batch_size="auto", epochs=2)),
    "reward-all": spec(P.OPENPIPE_REWARD, LLAMA, sft=SftParams(batch_size=4, learning_rate_multiplier=1.5, epochs=3)),
    "openai-sft-defaults": spec(P.OPENAI, GPT),
    "openai-sft-all": spec(P.OPENAI, GPT, sft=SftParams(batch_size=16, learning_rate_multiplier=2, epochs=4)),
    "openai-sft-dpo": spec(
        P.OPENAI,
        "gpt-4.1-2025-04-14",
        enable_preference=True,
        preference=PreferenceParams(beta=0.1, batch_size=8, learning_rate_multiplier=0.5, epochs=2),
    ),
    "openai-dpo-only": spec(P.OPENAI, GPT, enable_sft=False, enable_preference=True),
    "gemini-defaults": spec(P.GEMINI, GEMINI),
    "gemini-all": spec(
        P.GEMINI,
        "models/gemini-1.0-pro-001",
        sft=SftParams(epochs=5, batch_size=4, learning_rate=0.001, learning_rate_multiplier=1.0),
    ),
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_every_body_validates_against_spec_and_sdk(name: str, contract: Contract) -> None:
    body = to_create_request(VALID[name]).to_wire()
    contract.validate_request("POST", "/models", body)
    check_create_model_body(body)
    if body["trainingConfig"]["provider"] != "openpipeReward":
        assert "hyperparameters" not in body["trainingConfig"], "the deprecated flat object must never be sent"
    assert None not in _values(body)


def _values(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [v for value in node.values() for v in _values(value)] + list(node.values())
    return []


def test_openpipe_sft_and_dpo_body_is_exact() -> None:
    assert to_create_request(VALID["openpipe-sft-dpo"]).to_wire() == {
        "datasetId": "ds-1",
        "slug": "my-model",
        "trainingConfig": {
            "provider": "openpipe",
            "baseModel": "Qwen/Qwen3-8B",
            "enable_sft": True,
            "enable_preference_tuning": True,
            "sft_hyperparameters": {"num_epochs": 1},
            "preference_hyperparameters": {
                "variant": "DPO",
                "learning_rate_multiplier": 0.3,
                "num_epochs": 1,
                "training_beta": 0.1,
                "adapter_weight": 0.5,
            },
        },
    }


def test_each_provider_gets_its_own_key_names() -> None:
    openai = to_create_request(VALID["openai-sft-dpo"]).to_wire()["trainingConfig"]
    assert openai["preference_hyperparameters"] == {
        "beta": 0.1,
        "batch_size": 8,
        "learning_rate_multiplier": 0.5,
        "n_epochs": 2,
    }
    reward = to_create_request(VALID["reward-all"]).to_wire()["trainingConfig"]
    assert reward["hyperparameters"] == {"batch_size": 4, "learning_rate_multiplier": 1.5, "num_epochs": 3}
    gemini = to_create_request(VALID["gemini-all"]).to_wire()["trainingConfig"]
    assert gemini == {
        "provider": "gemini",
        "baseModel": "models/gemini-1.0-pro-001",
        "sft_hyperparameters": {
            "epochs": 5,
            "batch_size": 4,
            "learning_rate": 0.001,
            "learning_rate_multiplier": 1,
        },
    }
    temp = to_create_request(VALID["openpipe-pruning-temperature"]).to_wire()
    assert temp["pruningRuleIds"] == ["pr-1", "pr-2"] and temp["defaultTemperature"] == 0.2


REJECTED: list[tuple[FineTuneSpec, str]] = [
    (spec(P.GEMINI, GEMINI, enable_preference=True), "enable_preference"),
    (spec(P.OPENPIPE_REWARD, LLAMA, enable_preference=True), "enable_preference"),
    (spec(P.OPENPIPE_REWARD, LLAMA, preference=PreferenceParams(beta=0.1)), "preference.beta"),
    (spec(P.GEMINI, GEMINI, enable_sft=False, enable_preference=True), "enable_preference"),
    (spec(P.GEMINI, GEMINI, enable_sft=False), "enable_sft"),
    (spec(P.OPENPIPE, LLAMA, enable_sft=False), "at least one"),
    (spec(P.OPENPIPE, LLAMA, sft=SftParams(learning_rate=0.01)), "sft.learning_rate"),
    (spec(P.OPENPIPE_REWARD, LLAMA, sft=SftParams(learning_rate=0.01)), "sft.learning_rate"),
    (spec(P.OPENAI, GPT, sft=SftParams(learning_rate=0.01)), "sft.learning_rate"),
    (
        spec(P.OPENPIPE, LLAMA, enable_preference=True, preference=PreferenceParams(batch_size=4)),
        "preference.batch_size",
    ),
    (
        spec(P.OPENAI, GPT, enable_preference=True, preference=PreferenceParams(variant="DPO")),
        "preference.variant",
    ),
    (
        spec(P.OPENAI, GPT, enable_preference=True, preference=PreferenceParams(adapter_weight=1)),
        "preference.adapter_weight",
    ),
    (spec(P.OPENAI, GPT, sft=SftParams(batch_size="auto")), "sft.batch_size"),
    (spec(P.GEMINI, GEMINI, sft=SftParams(batch_size="auto")), "sft.batch_size"),
    (spec(P.OPENAI, LLAMA), "base_model"),
    (spec(P.GEMINI, GPT), "base_model"),
    (
        spec(P.OPENPIPE, LLAMA, enable_sft=False, enable_preference=True, sft=SftParams(epochs=2)),
        "sft.epochs",
    ),
    (spec(P.OPENAI, GPT, preference=PreferenceParams(epochs=2)), "preference.epochs"),
    (spec(P.OPENPIPE, ""), "base_model"),
]


@pytest.mark.parametrize(("bad", "field"), REJECTED, ids=[f for _, f in REJECTED])
def test_fields_a_provider_does_not_take_are_refused_by_name(bad: FineTuneSpec, field: str) -> None:
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        to_create_request(bad)


def test_request_models_forbid_unknown_keys() -> None:
    with pytest.raises(pydantic.ValidationError):
        OpenAISftHyperparameters.model_validate({"num_epochs": 3})
    with pytest.raises(pydantic.ValidationError):
        CreateModelRequest.model_validate(
            {
                "datasetId": "d",
                "slug": "s",
                "trainingConfig": {"provider": "gemini", "baseModel": GEMINI},
                "x": 1,
            }
        )
    with pytest.raises(pydantic.ValidationError):  # the deprecated flat object has no field to land in
        CreateModelRequest.model_validate(
            {
                "datasetId": "d",
                "slug": "s",
                "trainingConfig": {"provider": "openpipe", "baseModel": LLAMA, "hyperparameters": {}},
            }
        )


def test_responses_tolerate_new_fields_statuses_and_missing_optionals() -> None:
    raw = {
        "id": "m1",
        "name": "my-model",
        "object": "model",
        "created": "2026-01-01T00:00:00Z",
        "updated": "2026-01-01T00:10:00Z",
        "openpipe": {
            "baseModel": LLAMA,
            "hyperparameters": None,
            "status": "WARMING_UP",
            "datasetId": "ds-1",
            "errorMessage": None,
            "trainer": "v9",
        },
        "brandNewField": {"nested": [1, 2]},
    }
    state = ModelList.model_validate({"object": "list", "data": [raw], "has_more": False}).data[0].to_state()
    assert state.status == "WARMING_UP" and not state.is_terminal
    assert state.slug == "my-model" and state.dataset_id == "ds-1"
    broken = dict(raw)
    del broken["openpipe"]
    with pytest.raises(pydantic.ValidationError):
        Model.model_validate(broken)


def test_the_model_list_is_read_for_statuses_and_a_stray_field_does_not_stop_tracking() -> None:
    """GET /models is parsed every tick for every followed job: only what the tracker reads is checked."""
    fine = {"id": "m1", "name": "a", "openpipe": {"baseModel": LLAMA, "status": "TRAINING", "datasetId": "d"}}
    info = {"baseModel": LLAMA, "status": "ERROR", "datasetId": "d", "errorMessage": "out of memory"}
    odd = {
        "id": "m2",
        "name": "b",
        "updated": "2026-01-01T00:10:00Z",
        "pricing": "ask sales",  # wrong type, in a field the tracker never reads
        "capabilities": None,
        "openpipe": info,
    }
    states = [m.to_state() for m in ModelList.model_validate({"data": [fine, odd]}).data]
    assert [(s.slug, s.status, s.error_message) for s in states] == [
        ("a", "TRAINING", None),
        ("b", "ERROR", "out of memory"),
    ]
    assert states[1].updated == "2026-01-01T00:10:00Z"
    with pytest.raises(pydantic.ValidationError):  # a field it does read, broken, is still a contract error
        ModelList.model_validate({"data": [fine, {**odd, "openpipe": {**info, "status": None}}]})
    with pytest.raises(pydantic.ValidationError):  # and the full shape is still checked for a single model
        Model.model_validate(odd)


_numbers = st.none() | st.floats(min_value=0.01, max_value=100, allow_nan=False)
_batch = st.none() | st.just("auto") | st.integers(min_value=1, max_value=256)


@settings(max_examples=150, deadline=None)
@given(
    provider=st.sampled_from(list(Provider)),
    base_index=st.integers(min_value=0, max_value=30),
    enable_sft=st.booleans(),
    enable_preference=st.booleans(),
    sft=st.builds(
        SftParams,
        batch_size=_batch,
        learning_rate_multiplier=_numbers,
        epochs=_numbers,
        learning_rate=_numbers,
    ),
    pref=st.builds(
        PreferenceParams,
        variant=st.none() | st.sampled_from(["DPO", "APO Zero"]),
        learning_rate_multiplier=_numbers,
        epochs=_numbers,
        beta=_numbers,
        adapter_weight=_numbers,
        batch_size=st.none() | st.integers(min_value=1, max_value=64),
    ),
)
def test_any_spec_is_either_refused_or_valid_on_the_wire(
    contract: Contract,
    provider: Provider,
    base_index: int,
    enable_sft: bool,
    enable_preference: bool,
    sft: SftParams,
    pref: PreferenceParams,
) -> None:
    models = BASE_MODELS[provider]
    candidate = spec(
        provider,
        models[base_index % len(models)],
        enable_sft=enable_sft,
        enable_preference=enable_preference,
        sft=sft,
        preference=pref,
    )
    try:
        body = to_create_request(candidate).to_wire()
    except ValueError:
        return
    jsonschema.Draft7Validator(contract.request_schema("POST", "/models")).validate(body)
    check_create_model_body(body)


_ALLOWED: dict[Provider, tuple[set[str], set[str]]] = {
    P.OPENPIPE: (
        {"batch_size", "learning_rate_multiplier", "epochs"},
        {"variant", "learning_rate_multiplier", "epochs", "beta", "adapter_weight"},
    ),
    P.OPENPIPE_REWARD: ({"batch_size", "learning_rate_multiplier", "epochs"}, set()),
    P.OPENAI: (
        {"batch_size", "learning_rate_multiplier", "epochs"},
        {"beta", "batch_size", "learning_rate_multiplier", "epochs"},
    ),
    P.GEMINI: ({"epochs", "batch_size", "learning_rate", "learning_rate_multiplier"}, set()),
}


@settings(max_examples=150, deadline=None)
@given(data=st.data(), provider=st.sampled_from(list(Provider)))
def test_any_spec_within_a_providers_fields_is_accepted_and_valid(
    contract: Contract, data: st.DataObject, provider: Provider
) -> None:
    sft_fields, pref_fields = _ALLOWED[provider]
    switches = [(True, False), (True, True), (False, True)] if provider.supports_preference else [(True, False)]
    enable_sft, enable_pref = data.draw(st.sampled_from(switches))
    batch = _batch if provider in (P.OPENPIPE, P.OPENPIPE_REWARD) else st.none() | st.integers(1, 256)
    sft_strategies = {"batch_size": batch, "learning_rate_multiplier": _numbers, "epochs": _numbers}
    sft_strategies["learning_rate"] = _numbers
    pref_strategies = {
        "variant": st.none() | st.sampled_from(["DPO", "APO Zero"]),
        "learning_rate_multiplier": _numbers,
        "epochs": _numbers,
        "beta": _numbers,
        "adapter_weight": _numbers,
        "batch_size": st.none() | st.integers(1, 64),
    }
    sft = SftParams(**{f: data.draw(sft_strategies[f]) for f in sft_fields if enable_sft})
    pref = PreferenceParams(**{f: data.draw(pref_strategies[f]) for f in pref_fields if enable_pref})
    base = data.draw(st.sampled_from(BASE_MODELS[provider]))
    candidate = spec(provider, base, enable_sft=enable_sft, enable_preference=enable_pref, sft=sft, preference=pref)
    body = to_create_request(candidate).to_wire()
    contract.validate_request("POST", "/models", body)
    check_create_model_body(body)
    sent = body["trainingConfig"]
    assert sent["provider"] == provider.value and sent["baseModel"] == base
