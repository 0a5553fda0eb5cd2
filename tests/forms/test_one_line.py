"""Adding a field is one row in one backend's declaration: the row alone puts the input in the modal, reads and
checks it, keeps its value across a redraw that hides it, shows it on the card and places the service's refusals
that name it. Two proofs: a test-only backend declared here (no OpenPipe code at all), and OpenPipe's own table
with one made-up row added."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from slackbot import ids
from slackbot.backends.base import Dataset, FineTuneSpec, Method
from slackbot.backends.declaration import BackendDeclaration, BackendSettings, Capabilities
from slackbot.backends.openpipe import OPENPIPE
from slackbot.backends.openpipe.fields import OPENPIPE_FORM, Provider
from slackbot.backends.registry import registered
from slackbot.blocks.card import settings_summary
from slackbot.blocks.modal import check_view_limits, finetune_modal, rebuild_action_ids
from slackbot.domain.lifecycle import StatusTable
from slackbot.forms import (
    FormContext,
    FormDeclaration,
    FormErrors,
    FormField,
    Kind,
    ModalMetadata,
    check_number,
    form_state_from_view,
    parse_form,
)
from slackbot.forms.refusal import TOP, refusal_errors
from slackbot.listeners.actions.modal_actions import rebuild_input
from tests.forms.slack_shapes import selected, slack_state_values, text_value
from tests.notify.test_blocks import make_job

META = ModalMetadata(team_id="T1", user_id="U1", channel_id="C1")
DATASETS = {"ds_9": Dataset(id="ds_9", name="Toy data", entry_count=3)}
TOY_MODELS = ["toy-base-1", "toy-base-2"]


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as entered:
        yield entered


def _declare(form: FormDeclaration) -> BackendDeclaration:
    """A declaration around a test form: the card finds a job's form through the registry."""
    settings = BackendSettings(api_key="TOY_API_KEY", base_url="TOY_BASE_URL", timeout_seconds="TOY_TIMEOUT", hint="")
    return BackendDeclaration(
        name=form.backend,
        display_name="Toy",
        settings=settings,
        factory="tests.nowhere:none",
        statuses=StatusTable({}),
        form=form,
        capabilities=Capabilities(),
    )


def _warmup(raw: object, choice: object) -> float | None:
    return check_number(raw, "Warmup steps must be a whole number from 0 to 10000", low=0, high=10_000, whole=True)


# The made-up field: this one row is all that is written for it.
WARMUP = FormField(
    "warmup_steps",
    "Warmup steps",
    check=_warmup,
    shown_for=lambda option: option == "large",
    placeholder="0 to 10000 (blank = default)",
    keep=True,
    wire=(r"\bwarmup_steps\b",),
    card="warmup steps",
    card_method=Method.SFT,
    card_order=9,
)

TOY = FormDeclaration(
    backend="toy",
    service="Toy Tuner",
    option="size",
    option_label=lambda option: f"Toy {option}",
    fields=(
        FormField(
            "size", "Size", Kind.SELECT, head=True, required=True, options=(("small", "Small"), ("large", "Large"))
        ),
        WARMUP,
    ),
)


def _view(state: dict[str, Any] | None, option: str, **kw: Any) -> dict[str, Any]:
    view = finetune_modal(META, state, form=TOY, option=option, base_models=TOY_MODELS, **kw)
    assert check_view_limits(view) == []
    return view


def _block(view: dict[str, Any], block_id: str) -> dict[str, Any] | None:
    return next((b for b in view["blocks"] if b.get("block_id") == block_id), None)


def _ctx(form: FormDeclaration = TOY, models: list[str] = TOY_MODELS) -> FormContext:
    return FormContext(known_datasets=DATASETS, base_models=models, existing_slugs=set(), form=form)


def test_the_row_makes_the_input_and_it_shows_only_for_its_option() -> None:
    large = _view(None, "large")
    block = _block(large, "warmup_steps")
    assert block is not None
    assert block["label"]["text"] == "Warmup steps" and block["optional"] is True
    assert block["element"]["action_id"] == "warmup_steps_input"
    assert block["element"]["placeholder"]["text"] == "0 to 10000 (blank = default)"
    assert _block(_view(None, "small"), "warmup_steps") is None
    # The option field redraws the modal; the base model block is the option's own.
    assert rebuild_action_ids(TOY) == (ids.ACTION_DATASET, "size_select")
    assert _block(large, ids.block_base_model("large")) is not None


def _typed(view: dict[str, Any], warmup: str | None) -> dict[str, Any]:
    typed = {
        ids.BLOCK_DATASET: {
            "type": "external_select",
            "selected_option": {"text": {"text": "Toy data"}, "value": "ds_9"},
        },
        ids.block_base_model("large"): selected("toy-base-2"),
        ids.BLOCK_SLUG: text_value("warm-toy"),
    }
    if warmup is not None:
        typed["warmup_steps"] = text_value(warmup)
    return slack_state_values(view, typed)


def test_the_row_is_read_checked_and_reaches_the_spec() -> None:
    view = _view(None, "large")
    spec = parse_form(form_state_from_view(_typed(view, "100")), _ctx())
    assert spec == FineTuneSpec(
        backend="toy",
        dataset_id="ds_9",
        slug="warm-toy",
        base_model="toy-base-2",
        option="large",
        methods=(Method.SFT,),
        parameters={"warmup_steps": 100.0},
    )
    errors = parse_form(form_state_from_view(_typed(view, "ten")), _ctx())
    assert errors == FormErrors({"warmup_steps": "Warmup steps must be a whole number from 0 to 10000."})


def test_the_rows_value_is_kept_across_a_redraw_that_hides_it() -> None:
    view = _view(None, "large")
    values = slack_state_values(view, {"warmup_steps": text_value("250"), "size": selected("small")})
    metadata, state, option = rebuild_input({**view, "state": {"values": values}}, META, TOY)
    assert option == "small" and metadata.kept == {"warmup_steps": "250"}
    small = _view(state, "small") | {"private_metadata": metadata.encode()}
    assert _block(small, "warmup_steps") is None
    values = slack_state_values(small, {"size": selected("large")})
    metadata, state, option = rebuild_input({**small, "state": {"values": values}}, metadata, TOY)
    back = _block(_view(state, "large"), "warmup_steps")
    assert back is not None and back["element"]["initial_value"] == "250"
    assert metadata.kept == {}


def test_the_row_is_on_the_card(stack: ExitStack) -> None:
    stack.enter_context(registered(_declare(TOY)))
    spec = FineTuneSpec(
        backend="toy",
        dataset_id="ds_9",
        slug="warm-toy",
        base_model="toy-base-2",
        option="large",
        parameters={"warmup_steps": 100},
    )
    assert settings_summary(make_job(spec=spec, backend="toy", provider="large")) == "SFT: warmup steps 100"
    blank = spec.model_copy(update={"parameters": {}})
    assert settings_summary(make_job(spec=blank, backend="toy", provider="large")) == "SFT: warmup steps default"


def test_a_refusal_naming_the_row_goes_under_it() -> None:
    issue = "body.config.warmup_steps: Number must be at most 5000"
    errors = refusal_errors(TOY, "Input validation failed", [issue])
    assert errors == {
        "warmup_steps": issue,
        TOP: "Toy Tuner refused the last attempt: Input validation failed (and see below)",
    }
    view = _view({"size": "large", "warmup_steps": "9000"}, "large", errors=errors)
    blocks = [b.get("block_id") or b["type"] for b in view["blocks"]]
    at = blocks.index("warmup_steps")
    assert blocks[at + 1] == "context" and issue in view["blocks"][at + 1]["elements"][0]["text"]
    assert blocks[0] == ids.BLOCK_FORM_ERRORS


# --- the same, one row added to OpenPipe's own table ---------------------------------------------------------

OPENPIPE_PLUS = dataclasses.replace(
    OPENPIPE_FORM, fields=(*OPENPIPE_FORM.fields, dataclasses.replace(WARMUP, shown_for=lambda o: o == "openpipe"))
)


def test_one_row_added_to_openpipes_table_works_end_to_end(stack: ExitStack) -> None:
    view = finetune_modal(META, None, form=OPENPIPE_PLUS, option=Provider.OPENPIPE, base_models=["Qwen/Qwen3-8B"])
    assert _block(view, "warmup_steps") is not None
    typed = slack_state_values(
        view,
        {
            ids.BLOCK_DATASET: {"type": "external_select", "selected_option": {"text": {"text": "T"}, "value": "ds_9"}},
            ids.block_base_model("openpipe"): selected("Qwen/Qwen3-8B"),
            ids.BLOCK_SLUG: text_value("warm-pipe"),
            "warmup_steps": text_value("30"),
        },
    )
    spec = parse_form(form_state_from_view(typed), _ctx(OPENPIPE_PLUS, ["Qwen/Qwen3-8B"]))
    assert isinstance(spec, FineTuneSpec) and spec.parameters == {"warmup_steps": 30.0}
    # Kept when the provider changes to one that hides it.
    values = slack_state_values(view, {"warmup_steps": text_value("30"), ids.BLOCK_PROVIDER: selected("openai")})
    metadata, _, option = rebuild_input({**view, "state": {"values": values}}, META, OPENPIPE_PLUS)
    assert option == "openai" and metadata.kept == {"warmup_steps": "30"}
    stack.enter_context(registered(dataclasses.replace(OPENPIPE, form=OPENPIPE_PLUS)))
    card = settings_summary(make_job(spec=spec))
    sft = "SFT: epochs provider default, batch size provider default, LR multiplier provider default"
    assert card == f"{sft}, warmup steps 30.0\nDPO: off"
    errors = refusal_errors(OPENPIPE_PLUS, "Input validation failed", ["trainingConfig.warmup_steps: too many"])
    assert errors["warmup_steps"] == "trainingConfig.warmup_steps: too many"


def test_the_ids_tests_name_are_the_ones_openpipes_rows_make() -> None:
    # ids.py still names OpenPipe's blocks for the tests and the demo: they must be what the table makes.
    pairs = {
        name.removeprefix("BLOCK_"): (getattr(ids, name), getattr(ids, "ACTION_" + name.removeprefix("BLOCK_")))
        for name in dir(ids)
        if name.startswith("BLOCK_") and hasattr(ids, "ACTION_" + name.removeprefix("BLOCK_"))
    }
    rows = {row.id: row for row in OPENPIPE_FORM.fields}
    checked = 0
    for block_id, action_id in pairs.values():
        if block_id in rows:
            assert rows[block_id].action_id == action_id
            checked += 1
    assert checked == len(rows)
    assert set(rebuild_action_ids(OPENPIPE_FORM)) == set(ids.DISPATCH_ACTIONS)


def test_a_provider_this_version_does_not_know_is_shown_like_the_first_one() -> None:
    spec = FineTuneSpec(
        dataset_id="ds-1",
        slug="from-the-future",
        base_model="m",
        option="newProvider",
        methods=(Method.SFT, Method.DPO),
        parameters={"sft_epochs": 2.0, "dpo_beta": 0.2, "dpo_variant": "APO Zero"},
    )
    assert settings_summary(make_job(spec=spec)) == (
        "SFT: epochs 2.0, batch size provider default, LR multiplier provider default\n"
        "APO Zero: epochs provider default, beta 0.2, LR multiplier provider default, adapter weight provider default"
    )
    assert settings_summary(make_job(spec=spec.model_copy(update={"methods": (Method.SFT,)}))).endswith("DPO: off")
