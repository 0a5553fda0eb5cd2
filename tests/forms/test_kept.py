"""Values typed into inputs a rebuild hides are kept in the metadata, bounded, put back, and never submitted."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from pydantic import ValidationError

from slackbot import ids
from slackbot.backends.base import FineTuneSpec, Method
from slackbot.backends.form import KEPT_TEXT_MAX, MAX_KEPT, keepable, kept_fields
from slackbot.backends.openpipe.fields import PreferenceParams, Provider, SftParams, openpipe_settings
from slackbot.blocks.modal import check_view_limits, finetune_modal
from slackbot.forms import (
    PRIVATE_METADATA_LIMIT,
    Choice,
    FormState,
    Kind,
    MetadataError,
    ModalMetadata,
    parse_form,
    visible_fields,
)
from slackbot.forms.state import hidden_values, with_kept
from slackbot.listeners.actions.modal_actions import rebuild_input
from tests.forms.slack_shapes import FORM, MODELS, context, selected, slack_state_values, text_value, ticked

P = Provider
META = ModalMetadata(team_id="T1", user_id="U1", channel_id="C1")
KEPT_FIELDS = kept_fields(FORM)
TOGGLE_FIELDS = [row.id for row in FORM.fields if row.kind is Kind.TOGGLE]
TEXT_FIELDS = [row.id for row in FORM.fields if row.kind in (Kind.TEXT, Kind.LONG_TEXT, Kind.NUMBER)]
TEXT_KEPT = [name for name in KEPT_FIELDS if name not in TOGGLE_FIELDS]


# --- the metadata field -------------------------------------------------------------------------------------


def test_kept_round_trips_and_nothing_kept_encodes_as_before() -> None:
    meta = META.with_kept({"sft_epochs": "7", "enable_dpo": True, "dpo_variant": "APO Zero", "enable_sft": False}, FORM)
    assert ModalMetadata.decode(meta.encode()) == meta
    assert meta.kept == {"sft_epochs": "7", "enable_dpo": True, "dpo_variant": "APO Zero", "enable_sft": False}
    # Nothing kept: the exact text older versions wrote, and their metadata (without `kept`) still reads.
    assert json.loads(META.encode()) == {"team_id": "T1", "user_id": "U1", "channel_id": "C1", "origin": "command"}
    old = '{"team_id":"T1","user_id":"U1","channel_id":"C1","origin":"retry","retry_of":3}'
    assert ModalMetadata.decode(old).kept == {}


def test_worst_case_metadata_fits_private_metadata() -> None:
    # Every field at its bound, every kept text the longest allowed, of the character JSON escapes the most.
    assert set(KEPT_FIELDS) <= set(TEXT_FIELDS) | set(TOGGLE_FIELDS) | {"dpo_variant"}
    kept: dict[Any, object] = {name: '"' * KEPT_TEXT_MAX for name in TEXT_KEPT}
    kept |= {name: False for name in TOGGLE_FIELDS}
    meta = ModalMetadata(
        team_id="T" * 64,
        user_id="U" * 64,
        channel_id="C" * 64,
        thread_ts="1" * 20 + "." + "2" * 11,
        origin="shortcut",
        retry_of=2**63 - 1,
    ).with_kept(kept, FORM)
    assert meta.kept == kept  # nothing was dropped: this really is the largest metadata
    text = meta.encode()
    assert len(text) <= PRIVATE_METADATA_LIMIT
    assert len(text.encode("utf-8")) == len(text) == len(text.encode("utf-16-le")) // 2  # ASCII only
    assert ModalMetadata.decode(text) == meta
    # Every allowed character, too.
    printable = "".join(chr(c) for c in range(0x20, 0x7F))
    every = {name: (printable * 2)[i : i + KEPT_TEXT_MAX] for i, name in enumerate(TEXT_KEPT)}
    assert len(META.with_kept(every, FORM).encode()) < len(text)


def test_worst_case_metadata_of_any_form_fits_private_metadata() -> None:
    # Any form: as many kept values as the metadata takes, each with the longest field id and the worst text.
    kept = {f"{'k' * 29}_{i:02d}": '"' * KEPT_TEXT_MAX for i in range(MAX_KEPT)}
    meta = ModalMetadata(
        team_id="T" * 64,
        user_id="U" * 64,
        channel_id="C" * 64,
        thread_ts="1" * 20 + "." + "2" * 11,
        origin="shortcut",
        retry_of=2**63 - 1,
        kept=kept,
    )
    assert len(meta.encode()) <= PRIVATE_METADATA_LIMIT
    with pytest.raises(ValidationError):
        ModalMetadata(team_id="T1", user_id="U1", channel_id="C1", kept=kept | {"one_more": "1"})


@pytest.mark.parametrize(
    "kept",
    [
        {"sft_epochs": "7" * (KEPT_TEXT_MAX + 1)},  # too long
        {"sft_epochs": "\uff17"},  # not ASCII (a fullwidth 7)
        {"sft_epochs": "7\t"},  # a control character
        {"sft_epochs": ""},  # blank is the default: nothing to keep
        {"Not-A-Field": "1"},  # not a field id
    ],
)
def test_kept_values_are_bounded_at_construction_and_dropped_by_with_kept(kept: dict[Any, Any]) -> None:
    with pytest.raises(ValidationError):
        ModalMetadata(team_id="T1", user_id="U1", channel_id="C1", kept=kept)
    assert META.with_kept(kept, FORM).kept == {}
    (name, value) = next(iter(kept.items()))
    assert not keepable(FORM, name, value)


@pytest.mark.parametrize(
    "kept",
    [
        {"sft_epochs": True},  # a text field holds text
        {"enable_sft": "yes"},  # a switch holds a bool
        {"slug": "always-shown"},  # not a field the form can hide
        {"base_model": "Qwen/Qwen3-8B"},
        {"pruning_rule_ids": "pr_1"},  # a row the form never hides
    ],
)
def test_values_the_form_does_not_keep_are_dropped(kept: dict[Any, Any]) -> None:
    # Which field keeps what is the form's to say: the metadata alone only bounds the size (see above).
    assert META.with_kept(kept, FORM).kept == {}
    (name, value) = next(iter(kept.items()))
    assert not keepable(FORM, name, value)
    assert with_kept(FORM, {}, kept) == {}


def test_retry_of_is_bounded_like_a_job_id() -> None:
    with pytest.raises(ValidationError):
        ModalMetadata(team_id="T1", user_id="U1", channel_id="C1", retry_of=2**63)


@pytest.mark.parametrize(
    "kept",
    [
        {"<script>" * 30: "1"},
        {"sft_epochs": "<script>" * 30},
        {"sft_epochs": ["1"]},
        "not a dict",
    ],
)
def test_tampered_kept_is_refused_without_echo(kept: object) -> None:
    text = json.dumps({"team_id": "T1", "user_id": "U1", "channel_id": "C1", "kept": kept})
    with pytest.raises(MetadataError, match="kept") as caught:
        ModalMetadata.decode(text)
    assert "<script>" not in str(caught.value)
    assert len(str(caught.value)) < 300


def test_an_unknown_field_is_not_echoed() -> None:
    text = json.dumps({"team_id": "T1", "user_id": "U1", "channel_id": "C1", "<script>": 1})
    with pytest.raises(MetadataError, match="unknown field") as caught:
        ModalMetadata.decode(text)
    assert "<script>" not in str(caught.value)


# --- which values are kept, and merging them back -----------------------------------------------------------


def _choice(provider: Provider, sft: bool, dpo: bool) -> Choice:
    methods = frozenset(m for m, on in ((Method.SFT, sft or not provider.supports_sft_switch), (Method.DPO, dpo)) if on)
    return Choice(option=provider.value, methods=methods & frozenset(_offered(provider)))


def _offered(provider: Provider) -> tuple[Method, ...]:
    return (Method.SFT, Method.DPO) if provider.supports_preference else (Method.SFT,)


def test_every_field_the_form_can_hide_can_be_kept() -> None:
    shown_sets: list[set[str]] = [
        set(visible_fields(FORM, _choice(p, sft, dpo)))
        for p in Provider
        for sft, dpo in itertools.product([True, False], repeat=2)
    ]
    hideable = set[str]().union(*shown_sets) - shown_sets[0].intersection(*shown_sets[1:])
    # A base model belongs to its provider's list (another block per provider): it is not carried across.
    assert hideable - {"base_model"} == set(KEPT_FIELDS)


def test_hidden_values_keeps_only_what_the_new_view_hides() -> None:
    state: FormState = {
        "provider": "openpipe",
        "slug": "my-model",
        "enable_sft": False,
        "enable_dpo": True,
        "sft_epochs": "7",
        "sft_batch_size": "auto",
        "dpo_beta": "0.3",
        "dpo_adapter_weight": "x" * (KEPT_TEXT_MAX + 1),  # too long to keep: dropped
        "pruning_rule_ids": "pr_1",
    }
    assert hidden_values(FORM, state, P.OPENPIPE) == {"sft_epochs": "7", "sft_batch_size": "auto"}
    # Gemini shows SFT always and has neither switch nor DPO.
    assert hidden_values(FORM, state, P.GEMINI) == {"enable_sft": False, "enable_dpo": True, "dpo_beta": "0.3"}
    # OpenAI shows DPO beta, but not OpenPipe's adapter weight (dropped here only because it is too long).
    assert hidden_values(FORM, state | {"dpo_adapter_weight": "0.5"}, P.OPENAI) == {
        "sft_epochs": "7",
        "sft_batch_size": "auto",
        "dpo_adapter_weight": "0.5",
    }


def test_the_screen_wins_over_kept_values() -> None:
    kept: dict[Any, Any] = {"sft_epochs": "7", "dpo_beta": "0.3", "enable_dpo": True}
    merged = with_kept(FORM, {"provider": "openpipe", "sft_epochs": "2", "enable_dpo": False}, kept)
    assert merged == {"provider": "openpipe", "sft_epochs": "2", "enable_dpo": False, "dpo_beta": "0.3"}
    # An input that was on screen and is blank now stays blank.
    assert with_kept(FORM, {"provider": "openpipe"}, kept, on_screen={ids.BLOCK_SFT_EPOCHS}) == {
        "provider": "openpipe",
        "dpo_beta": "0.3",
        "enable_dpo": True,
    }
    # Anything that could not have been kept (a field never hidden, a value too long) is ignored.
    unkeepable: dict[Any, Any] = {"slug": "x", "sft_epochs": "y" * 100}
    assert with_kept(FORM, {}, unkeepable) == {}


# --- rebuilds, as the listener does them ---------------------------------------------------------------------


def _rebuild(view: dict[str, Any], typed: dict[str, Any]) -> dict[str, Any]:
    """The user changes `typed` in `view`; the listener rebuilds the modal from Slack's payload."""
    payload_view = {**view, "state": {"values": slack_state_values(view, typed)}}
    metadata, state, option = rebuild_input(payload_view, ModalMetadata.decode(view["private_metadata"]), FORM)
    assert option is not None
    provider = Provider(option)
    new_view = finetune_modal(metadata, state, form=FORM, option=provider, base_models=MODELS[provider])
    assert check_view_limits(new_view) == []
    return new_view


def _element(view: dict[str, Any], block_id: str) -> dict[str, Any] | None:
    return next((b["element"] for b in view["blocks"] if b.get("block_id") == block_id), None)


def test_sft_off_and_on_again_keeps_the_sft_values() -> None:
    view = finetune_modal(META, None, form=FORM, option=P.OPENPIPE, base_models=MODELS[P.OPENPIPE])
    typed = {ids.BLOCK_SFT_EPOCHS: text_value("7"), ids.BLOCK_SFT_LR_MULTIPLIER: text_value("1.5")}
    off = _rebuild(view, typed | {ids.BLOCK_ENABLE_SFT: ticked(False)})
    assert _element(off, ids.BLOCK_SFT_EPOCHS) is None
    assert ModalMetadata.decode(off["private_metadata"]).kept == {"sft_epochs": "7", "sft_lr_multiplier": "1.5"}
    on = _rebuild(off, {ids.BLOCK_ENABLE_SFT: ticked(True, ids.CHECKED)})
    assert (_element(on, ids.BLOCK_SFT_EPOCHS) or {})["initial_value"] == "7"
    assert (_element(on, ids.BLOCK_SFT_LR_MULTIPLIER) or {})["initial_value"] == "1.5"
    assert ModalMetadata.decode(on["private_metadata"]).kept == {}


def test_provider_round_trip_keeps_dpo_switch_and_values() -> None:
    view = finetune_modal(META, {"enable_dpo": True}, form=FORM, option=P.OPENPIPE, base_models=MODELS[P.OPENPIPE])
    typed = {
        ids.BLOCK_DPO_BETA: text_value("0.3"),
        ids.BLOCK_DPO_ADAPTER_WEIGHT: text_value("0.5"),
        ids.BLOCK_DPO_VARIANT: selected("APO Zero"),
        ids.BLOCK_SLUG: text_value("kept-on-screen"),
    }
    gemini = _rebuild(view, typed | {ids.BLOCK_PROVIDER: selected(P.GEMINI.value)})
    assert _element(gemini, ids.BLOCK_ENABLE_DPO) is None and _element(gemini, ids.BLOCK_DPO_BETA) is None
    # Another rebuild while hidden (a dataset pick, say) carries them on.
    gemini = _rebuild(gemini, {ids.BLOCK_SFT_LEARNING_RATE: text_value("0.0002")})
    back = _rebuild(gemini, {ids.BLOCK_PROVIDER: selected(P.OPENPIPE.value)})
    assert (_element(back, ids.BLOCK_ENABLE_DPO) or {})["initial_options"][0]["value"] == ids.CHECKED
    assert (_element(back, ids.BLOCK_DPO_BETA) or {})["initial_value"] == "0.3"
    assert (_element(back, ids.BLOCK_DPO_ADAPTER_WEIGHT) or {})["initial_value"] == "0.5"
    assert (_element(back, ids.BLOCK_DPO_VARIANT) or {})["initial_option"]["value"] == "APO Zero"
    assert (_element(back, ids.BLOCK_SLUG) or {})["initial_value"] == "kept-on-screen"
    assert ModalMetadata.decode(back["private_metadata"]).kept == {"sft_learning_rate": "0.0002"}


def test_an_input_cleared_on_screen_is_not_refilled() -> None:
    view = finetune_modal(META, None, form=FORM, option=P.OPENPIPE, base_models=MODELS[P.OPENPIPE])
    off = _rebuild(view, {ids.BLOCK_SFT_EPOCHS: text_value("7"), ids.BLOCK_ENABLE_SFT: ticked(False)})
    on = _rebuild(off, {ids.BLOCK_ENABLE_SFT: ticked(True, ids.CHECKED)})
    cleared = _rebuild(on, {ids.BLOCK_SFT_EPOCHS: text_value(None), ids.BLOCK_PROVIDER: selected(P.OPENAI.value)})
    assert (_element(cleared, ids.BLOCK_SFT_EPOCHS) or {}).get("initial_value") is None


# --- kept values are never submitted ------------------------------------------------------------------------


def test_a_kept_dpo_value_never_reaches_the_spec() -> None:
    on_screen: FormState = {
        "provider": "openpipe",
        "dataset": "ds_1",
        "slug": "tickets-ft",
        "base_model": "Qwen/Qwen3-8B",
        "enable_sft": True,
        "enable_dpo": False,
        "sft_epochs": "3",
    }
    kept: dict[Any, Any] = {"dpo_beta": "0.3", "dpo_variant": "APO Zero", "dpo_epochs": "2"}
    for state in (on_screen, with_kept(FORM, on_screen, kept)):
        spec = parse_form(state, context(P.OPENPIPE))
        assert isinstance(spec, FineTuneSpec), spec
        s = openpipe_settings(spec)
        assert s.enable_preference is False and s.preference == PreferenceParams()
        assert s.sft == SftParams(epochs=3)
        assert spec.methods == (Method.SFT,) and spec.parameters == {"sft_epochs": 3}
