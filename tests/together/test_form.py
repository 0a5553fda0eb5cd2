"""Together's form table: what a user types becomes the create body; bounds come from the model's limits when the
catalog has them (never waited for), else from the widest bounds, and the message says which."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from slackbot.backends.base import Dataset, FineTuneSpec, Method
from slackbot.backends.together.backend import TogetherBackend
from slackbot.backends.together.fields import TOGETHER_FORM, to_create_request
from slackbot.backends.together.wire import ModelLimits
from slackbot.catalog import Catalog
from slackbot.forms import FormContext, FormErrors, parse_form
from slackbot.forms.refusal import refusal_errors
from slackbot.sandbox.together_api import SUPPORTED_MODELS, LocalTogether
from slackbot.sandbox.waiting import wait_until
from tests.together import sdk
from tests.together.conftest import KEY, Contract

SMALL, BIG = SUPPORTED_MODELS[0], SUPPORTED_MODELS[1]
DATASETS = {"file-1": Dataset(id="file-1", name="Support", entry_count=10)}


def _limits(api: LocalTogether, model: str) -> ModelLimits:
    backend = TogetherBackend(SecretStr(KEY), api.url, max_attempts=1)
    try:
        return backend.model_limits(model)
    finally:
        backend.close()


def _parse(state: dict[str, Any], limits: object = None) -> FineTuneSpec | FormErrors:
    base = {"dataset": "file-1", "base_model": SMALL, "slug": "support-v1", "training_type": "lora"}
    ctx = FormContext(
        known_datasets=DATASETS, base_models=list(SUPPORTED_MODELS), existing_slugs=set(), limits=limits,
        form=TOGETHER_FORM,
    )  # fmt: skip
    return parse_form({**base, **state}, ctx)


def test_a_typed_form_becomes_the_create_body_the_spec_and_sdk_take(contract: Contract) -> None:
    spec = _parse(
        {
            "n_epochs": "3",
            "learning_rate": "0.00002",
            "batch_size": "MAX",
            "lora_r": "16",
            "lora_modules": "q_proj, v_proj q_proj",
            "train_on_inputs": "false",
            "lr_scheduler": "linear",
            "warmup_ratio": "0.05",
            "wandb_project": "support",
        }
    )
    assert isinstance(spec, FineTuneSpec), spec
    assert spec.backend == "together" and spec.option == "lora" and spec.methods == (Method.SFT,)
    body = to_create_request(spec).to_wire()
    assert body["training_type"] == {
        "type": "Lora",
        "lora_r": 16,
        "lora_alpha": 32,
        "lora_trainable_modules": "q_proj,v_proj",
    }
    assert body["training_method"] == {"method": "sft", "train_on_inputs": False}
    assert body["batch_size"] == "max" and body["n_epochs"] == 3 and body["learning_rate"] == 2e-5
    assert body["suffix"] == "support-v1" and body["training_file"] == "file-1"
    contract.validate_request("POST", "/fine-tunes", body)
    sdk.check_create_body(body)
    dpo = _parse({"enable_sft": False, "enable_dpo": True, "dpo_beta": "0.3", "dpo_reference_free": "true"})
    assert isinstance(dpo, FineTuneSpec) and dpo.methods == (Method.DPO,)
    method = to_create_request(dpo).to_wire()["training_method"]
    assert method == {"method": "dpo", "dpo_beta": 0.3, "dpo_reference_free": True}


def test_bad_values_are_refused_with_what_is_allowed() -> None:
    errors = _parse({"n_epochs": "2.5", "batch_size": "huge", "lora_modules": "q-proj!", "learning_rate": "-1"})
    assert isinstance(errors, FormErrors)
    assert errors["n_epochs"] == "Epochs must be a whole number from 1 to 1000."
    assert errors["batch_size"] == 'Batch size must be "max" or a whole number from 1 to 1024.'
    assert errors["learning_rate"].startswith("The learning rate must be a number greater than 0")
    assert "is not a module name" in errors["lora_modules"]
    both = _parse({"enable_dpo": True})
    assert isinstance(both, FormErrors)
    assert both["enable_dpo"] == "Together trains with SFT or DPO, not both: switch SFT off to train with DPO."
    long = _parse({"slug": "a" * 41})
    assert isinstance(long, FormErrors) and "at most 40 characters" in long["slug"]


def test_the_models_limits_bound_the_form_and_without_them_the_widest_bounds_are_said(api: LocalTogether) -> None:
    small, big = _limits(api, SMALL), _limits(api, BIG)
    errors = _parse({"n_epochs": "25", "lora_r": "128", "batch_size": "256", "learning_rate": "1e-9"}, small)
    assert isinstance(errors, FormErrors)
    assert errors["n_epochs"] == f"Epochs must be a whole number from 1 to 20 for {SMALL}."
    assert errors["lora_r"] == f"LoRA rank must be from 1 to 64 for {SMALL}."
    assert errors["batch_size"] == f'Batch size must be "max" or from 8 to 128 for {SMALL}.'
    assert errors["learning_rate"] == f"The learning rate must be from 1e-08 to 1 for {SMALL}."
    dpo = _parse({"enable_sft": False, "enable_dpo": True, "batch_size": "100"}, small)
    assert isinstance(dpo, FormErrors) and dpo["batch_size"].endswith(f"to 64 for {SMALL} for DPO.")
    full = _parse({"training_type": "full", "base_model": BIG}, big)
    assert isinstance(full, FormErrors)
    assert full["training_type"] == f"Full training is not available for {BIG}: choose LoRA."
    assert isinstance(_parse({"training_type": "full", "n_epochs": "20"}, small), FineTuneSpec)
    # Not loaded yet: the widest bounds, and the message says so.
    unknown = _parse({"n_epochs": "25", "training_type": "full", "base_model": BIG})
    assert isinstance(unknown, FormErrors) and "training_type" not in unknown
    assert unknown["n_epochs"] == (
        "Epochs must be a whole number from 1 to 20 (Together's widest bounds: this model's own limits are not "
        "loaded yet)."
    )


def test_the_catalog_caches_base_models_and_limits_without_making_slack_wait(api: LocalTogether) -> None:
    backend = TogetherBackend(SecretStr(KEY), api.url, max_attempts=1)
    catalog = Catalog(backend)
    try:
        api.inject("GET /fine-tunes/models/limits", "latency", delay=2.0, times=None)
        assert catalog.limits(SMALL) is None  # not cached: answered at once, read in the background
        catalog.warm()
        assert wait_until(lambda: catalog.base_models("lora", wait=0.0), timeout=5) == list(SUPPORTED_MODELS)
        api.clear_faults()
        limits = wait_until(lambda: catalog.limits(SMALL), timeout=10)
        assert isinstance(limits, ModelLimits) and limits.model_name == SMALL
        # Every listed model's limits were read ahead, once each.
        wait_until(lambda: all(catalog.limits(m) is not None for m in SUPPORTED_MODELS), timeout=10)
        reads = [r for r in api.requests if r.path == "/fine-tunes/models/limits"]
        assert len(reads) == len(SUPPORTED_MODELS)
    finally:
        catalog.close()
        backend.close()


def test_together_refusals_land_under_their_fields() -> None:
    errors = refusal_errors(
        TOGETHER_FORM, "Together refused", ["batch_size: batch_size must be max or between 8 and 128"]
    )
    assert errors["batch_size"] == "batch_size: batch_size must be max or between 8 and 128"
    assert refusal_errors(TOGETHER_FORM, "x", ["n_epochs: too many"])["n_epochs"] == "n_epochs: too many"
    assert "training_type" in refusal_errors(TOGETHER_FORM, "x", ["training_type: Full training is not available"])
    assert "slug" in refusal_errors(TOGETHER_FORM, "x", ["suffix: too long"])
    assert "dataset" in refusal_errors(TOGETHER_FORM, "x", ["training_file: file-9 is not an uploaded file"])
    assert "validation_file" in refusal_errors(TOGETHER_FORM, "x", ["validation_file: file-9 was not found"])
    assert "lora_r" in refusal_errors(TOGETHER_FORM, "x", ["training_type.lora_r: must be 1 to 64"])


def test_the_cards_settings_show_what_every_method_trains_with() -> None:
    # Epochs, learning rate and batch size are Together's for SFT and DPO alike: a DPO card shows them too.
    from slackbot.backends.form import settings_line

    dpo = settings_line(
        TOGETHER_FORM, "lora", (Method.DPO,), {"dpo_beta": 0.2, "n_epochs": 2, "learning_rate": 2e-5, "lora_r": 16}
    )
    assert "beta 0.2" in dpo and "SFT" not in dpo.split("\n")[-1]
    training = dpo.split("\n")[-1]
    assert training.startswith("Training: ") and "epochs 2" in training and "learning rate 2e-05" in training
    assert "LoRA rank 16" in training and "batch size default" in training
    full = settings_line(TOGETHER_FORM, "full", (Method.SFT,), {"n_epochs": 1})
    assert "LoRA rank" not in full and "epochs 1" in full
