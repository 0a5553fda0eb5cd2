"""Whatever arrives in view.state.values or a stored FormState, nothing in the form path raises."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slackbot import ids
from slackbot.backends.base import FineTuneSpec
from slackbot.backends.openpipe.fields import Provider
from slackbot.blocks.modal import check_view_limits, finetune_modal
from slackbot.forms import (
    FormErrors,
    ModalMetadata,
    check_slug,
    form_state_from_view,
    parse_form,
    state_option,
    suggest_slug,
)
from tests.forms.slack_shapes import FORM, KNOWN_BASE_MODELS, MODELS, context

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
META = ModalMetadata(team_id="T1", user_id="U1", channel_id="C1")

FIELDS = [
    "dataset",
    "dataset_label",
    "provider",
    "base_model",
    "slug",
    "enable_sft",
    "enable_dpo",
    "sft_batch_size",
    "sft_lr_multiplier",
    "sft_epochs",
    "sft_learning_rate",
    "dpo_variant",
    "dpo_beta",
    "dpo_lr_multiplier",
    "dpo_epochs",
    "dpo_adapter_weight",
    "dpo_batch_size",
    "pruning_rule_ids",
    "default_temperature",
]
BLOCK_IDS = [
    ids.BLOCK_DATASET,
    ids.BLOCK_PROVIDER,
    ids.BLOCK_SLUG,
    ids.BLOCK_ENABLE_SFT,
    ids.BLOCK_ENABLE_DPO,
    ids.BLOCK_SFT_BATCH_SIZE,
    ids.BLOCK_DPO_VARIANT,
    ids.BLOCK_TEMPERATURE,
    ids.BLOCK_PRUNING_RULES,
    *(ids.block_base_model(p) for p in Provider),
]
ACTION_IDS = [
    ids.ACTION_DATASET,
    ids.ACTION_PROVIDER,
    ids.ACTION_SLUG,
    ids.ACTION_ENABLE_SFT,
    ids.ACTION_ENABLE_DPO,
    ids.ACTION_SFT_BATCH_SIZE,
    ids.ACTION_DPO_VARIANT,
    ids.ACTION_TEMPERATURE,
    ids.ACTION_PRUNING_RULES,
    ids.ACTION_BASE_MODEL,
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=50),
    st.sampled_from(["auto", "1", "0.5", "DPO", "APO Zero", "on", "\x00", "ds_1", "openai", "gemini"]),
    st.text(min_size=3001, max_size=4000),
)
json_like = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(st.text(max_size=10), st.sampled_from(["value", "selected_option", "text", "selected_options"])),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=20,
)
# Slack-shaped at the top (known block and action ids), garbage below: reaches the deep branches.
element_state = st.one_of(
    json_like,
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.text(max_size=5),
            "value": json_like,
            "selected_option": st.one_of(
                json_like,
                st.fixed_dictionaries(
                    {"value": scalars, "text": st.one_of(json_like, st.fixed_dictionaries({"text": scalars}))}
                ),
            ),
            "selected_options": st.lists(st.one_of(json_like, st.fixed_dictionaries({"value": scalars})), max_size=3),
        },
    ),
)
slack_shaped = st.dictionaries(
    st.sampled_from(BLOCK_IDS), st.dictionaries(st.sampled_from(ACTION_IDS), element_state, max_size=2), max_size=8
)


@FUZZ
@given(st.one_of(json_like, slack_shaped))
def test_form_state_from_view_never_raises(values: Any) -> None:
    state = form_state_from_view(values)
    assert isinstance(state, dict)
    for key, value in state.items():
        assert key in FIELDS
        assert isinstance(value, bool | str)
        if isinstance(value, str):
            assert len(value) <= 3000 and "\x00" not in value


form_states = st.dictionaries(
    st.sampled_from(FIELDS),
    st.one_of(scalars, st.sampled_from([p.value for p in Provider]), st.sampled_from(MODELS[Provider.OPENAI])),
    max_size=len(FIELDS),
)


@FUZZ
@given(form_states, st.sampled_from(list(Provider)), st.booleans())
def test_any_stored_state_parses_and_rebuilds_without_raising(
    state: dict[str, Any], provider: Provider, use_state_provider: bool
) -> None:
    # A stored FormState (the DB's JSON) may hold anything: the modal must still open and be valid ...
    view = finetune_modal(META, state, form=FORM, option=provider, base_models=MODELS[provider])
    assert check_view_limits(view) == []
    # ... and parsing gives a spec or errors, the errors only on blocks the matching modal shows (a garbage
    # provider included: its errors must land on blocks every variant of the modal has).
    if not use_state_provider:
        state = {**state, "provider": provider.value}
    provider = Provider(state_option(FORM, state) or Provider.OPENPIPE)
    result = parse_form(state, context(provider))
    assert isinstance(result, FineTuneSpec | FormErrors)
    if isinstance(result, FormErrors):
        view = finetune_modal(META, state, form=FORM, option=provider, base_models=MODELS[provider])
        shown = {b["block_id"] for b in view["blocks"] if "block_id" in b}
        assert set(result) <= shown, (set(result) - shown, result)
        assert all(isinstance(m, str) and 0 < len(m) < 400 for m in result.values())


@FUZZ
@given(st.text(max_size=200))
def test_suggested_slugs_are_always_valid(name: str) -> None:
    slug = suggest_slug(name, reserved=KNOWN_BASE_MODELS)
    assert check_slug(slug, KNOWN_BASE_MODELS, ()) == slug
