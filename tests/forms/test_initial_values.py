"""A value put back in the form (by "Edit and retry" or a redraw) and left untouched is read from the view's
initial values when `view.state` has no entry for its input; an entry that is there, even empty, wins."""

from __future__ import annotations

from typing import Any

from slackbot import ids
from slackbot.backends.openpipe.fields import Provider
from slackbot.blocks.modal import finetune_modal
from slackbot.forms import ModalMetadata, form_state_from_view
from tests.forms.slack_shapes import FORM, MODELS, slack_state_values

META = ModalMetadata(team_id="T1", user_id="U1", channel_id="C1")
TYPED: dict[str, Any] = {
    "slug": "put-back",
    "sft_epochs": "7",
    "enable_sft": True,
    "enable_dpo": True,
    "dpo_variant": "APO Zero",
    "base_model": MODELS[Provider.OPENPIPE][0],
}


def _restored_view() -> dict[str, Any]:
    return finetune_modal(META, TYPED, form=FORM, option=Provider.OPENPIPE, base_models=MODELS[Provider.OPENPIPE])


def test_inputs_missing_from_the_state_count_as_their_initial_values() -> None:
    view = _restored_view()
    complete = form_state_from_view(slack_state_values(view), view["blocks"])
    for name, value in TYPED.items():
        assert complete.get(name) == value, name
    # Slack reports nothing for the untouched inputs: the same state, from the blocks alone.
    assert form_state_from_view({}, view["blocks"]) == complete
    assert form_state_from_view(None, view["blocks"]) == complete
    # Without the blocks (as before), the values would be gone.
    assert "slug" not in form_state_from_view({})


def test_an_input_the_user_emptied_stays_empty() -> None:
    view = _restored_view()
    values = slack_state_values(view)
    values[ids.BLOCK_SLUG] = {ids.ACTION_SLUG: {"type": "plain_text_input", "value": None}}
    values[ids.BLOCK_ENABLE_DPO] = {ids.ACTION_ENABLE_DPO: {"type": "checkboxes", "selected_options": []}}
    state = form_state_from_view(values, view["blocks"])
    assert "slug" not in state
    assert state["enable_dpo"] is False
    assert state["sft_epochs"] == "7"


def test_odd_blocks_are_skipped_without_raising() -> None:
    blocks: list[Any] = [
        None,
        "text",
        {"type": "input"},
        {"type": "input", "block_id": ids.BLOCK_SLUG, "element": "x"},
        {"type": "input", "block_id": ids.BLOCK_SLUG, "element": {"type": "plain_text_input"}},  # no action_id
        {"type": "input", "block_id": 7, "element": {"type": "plain_text_input", "action_id": "a"}},
        {"type": "input", "block_id": "b", "element": {"type": "datepicker", "action_id": "d", "initial_date": "x"}},
        {
            "type": "input",
            "block_id": ids.BLOCK_SLUG,
            "element": {"type": "plain_text_input", "action_id": ids.ACTION_SLUG, "initial_value": 5},
        },
    ]
    assert form_state_from_view({}, blocks) == {}
