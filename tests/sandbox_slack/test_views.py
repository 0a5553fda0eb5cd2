"""views.* rules: trigger_id lifetime, hashes, stacks and the validation Slack applies to modals."""

from __future__ import annotations

import json
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.slack_api import LocalSlack


def modal(**overrides: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": "form",
        "title": {"type": "plain_text", "text": "Fine-tune"},
        "submit": {"type": "plain_text", "text": "Start"},
        "blocks": [
            {
                "type": "input",
                "block_id": "name",
                "label": {"type": "plain_text", "text": "Name"},
                "element": {"type": "plain_text_input", "action_id": "name_in"},
            }
        ],
    }
    view.update(overrides)
    return view


def _error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as excinfo:
        call()
    return excinfo.value


def test_trigger_works_once_within_three_seconds(client: WebClient, slack: LocalSlack, clock: ManualClock) -> None:
    trigger = slack.issue_trigger_id()
    clock.advance(3.0)
    opened = client.views_open(trigger_id=trigger, view=modal())
    assert opened["view"]["id"].startswith("V") and opened["view"]["hash"]
    assert _error(lambda: client.views_open(trigger_id=trigger, view=modal())).response["error"] == (
        "exchanged_trigger_id"
    )


def test_trigger_expires_after_three_seconds(client: WebClient, slack: LocalSlack, clock: ManualClock) -> None:
    trigger = slack.issue_trigger_id()
    clock.advance(3.01)
    err = _error(lambda: client.views_open(trigger_id=trigger, view=modal()))
    assert err.response["error"] == "expired_trigger_id"
    assert _error(lambda: client.views_open(trigger_id="1.2.abc", view=modal())).response["error"] == (
        "invalid_trigger_id"
    )


def test_invalid_view_does_not_use_up_the_trigger(client: WebClient, slack: LocalSlack) -> None:
    trigger = slack.issue_trigger_id()
    bad = modal(title={"type": "plain_text", "text": "x" * 25})
    err = _error(lambda: client.views_open(trigger_id=trigger, view=bad))
    assert err.response["error"] == "invalid_arguments"
    assert err.response["response_metadata"]["messages"] == [
        "[ERROR] must be less than 25 characters [json-pointer:/view/title/text]"
    ]
    assert client.views_open(trigger_id=trigger, view=modal())["ok"]


@pytest.mark.parametrize(
    ("overrides", "pointer"),
    [
        ({"title": {"type": "plain_text", "text": "t" * 25}}, "/view/title/text"),
        ({"submit": {"type": "plain_text", "text": "s" * 25}}, "/view/submit/text"),
        ({"close": {"type": "plain_text", "text": "c" * 25}}, "/view/close/text"),
        ({"private_metadata": "m" * 3001}, "/view/private_metadata"),
        ({"callback_id": "c" * 256}, "/view/callback_id"),
        ({"blocks": [{"type": "divider"}] * 101}, "/view/blocks"),
        ({"submit": None}, "/view/blocks/0"),
        (
            {"blocks": [{"type": "divider", "block_id": "d"}, {"type": "divider", "block_id": "d"}]},
            "/view/blocks/1/block_id",
        ),
        (
            {
                "blocks": [
                    {
                        "type": "input",
                        "block_id": "cb",
                        "label": {"type": "plain_text", "text": "Flags"},
                        "element": {
                            "type": "checkboxes",
                            "action_id": "cb",
                            "options": [
                                {"text": {"type": "plain_text", "text": str(i)}, "value": str(i)} for i in range(11)
                            ],
                        },
                    }
                ]
            },
            "/view/blocks/0/options",
        ),
    ],
)
def test_view_limits(client: WebClient, slack: LocalSlack, overrides: dict[str, Any], pointer: str) -> None:
    view = {k: v for k, v in modal(**overrides).items() if v is not None}
    err = _error(lambda: client.views_open(trigger_id=slack.issue_trigger_id(), view=view))
    assert err.response["error"] == "invalid_arguments"
    assert err.response["response_metadata"]["messages"][0].endswith(f"[json-pointer:{pointer}]")


def test_limits_are_inclusive(client: WebClient, slack: LocalSlack) -> None:
    view = modal(
        title={"type": "plain_text", "text": "t" * 24},
        private_metadata="m" * 3000,
        blocks=[{"type": "divider"}] * 100,
    )
    assert client.views_open(trigger_id=slack.issue_trigger_id(), view=view)["ok"]


def test_view_too_large(client: WebClient, slack: LocalSlack) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 2900}}] * 90
    err = _error(lambda: client.views_open(trigger_id=slack.issue_trigger_id(), view=modal(blocks=blocks)))
    assert err.response["error"] == "view_too_large"


def test_update_with_stale_hash_conflicts(client: WebClient, slack: LocalSlack, clock: ManualClock) -> None:
    view = client.views_open(trigger_id=slack.issue_trigger_id(), view=modal())["view"]
    clock.advance(0.5)
    first = client.views_update(view_id=view["id"], hash=view["hash"], view=modal(callback_id="v2"))["view"]
    assert first["hash"] != view["hash"] and slack.views[view["id"]]["callback_id"] == "v2"
    err = _error(lambda: client.views_update(view_id=view["id"], hash=view["hash"], view=modal(callback_id="v3")))
    assert err.response["error"] == "hash_conflict"
    assert slack.views[view["id"]]["callback_id"] == "v2"
    # Without a hash the last write wins, as in Slack.
    assert client.views_update(view_id=view["id"], view=modal(callback_id="v4"))["ok"]
    assert _error(lambda: client.views_update(view_id="V0NOPE", view=modal())).response["error"] == "not_found"


def test_update_by_external_id(client: WebClient, slack: LocalSlack) -> None:
    view = client.views_open(trigger_id=slack.issue_trigger_id(), view=modal(external_id="job-42"))["view"]
    updated = client.views_update(external_id="job-42", view=modal(callback_id="v2", external_id="job-42"))
    assert updated["view"]["id"] == view["id"]


def test_typed_input_survives_update_only_with_same_ids(client: WebClient, slack: LocalSlack) -> None:
    view = client.views_open(trigger_id=slack.issue_trigger_id(), view=modal())["view"]
    slack.type_into(view["id"], {"name": {"name_in": {"type": "plain_text_input", "value": "typed"}}})
    kept = client.views_update(view_id=view["id"], view=modal(callback_id="v2"))["view"]
    assert kept["state"]["values"] == {"name": {"name_in": {"type": "plain_text_input", "value": "typed"}}}
    renamed = modal(callback_id="v3")
    renamed["blocks"][0]["element"]["action_id"] = "other"
    assert client.views_update(view_id=view["id"], view=renamed)["view"]["state"]["values"] == {}


def test_push_stacks_up_to_three(client: WebClient, slack: LocalSlack) -> None:
    root = client.views_open(trigger_id=slack.issue_trigger_id(), view=modal())["view"]
    second = client.views_push(trigger_id=slack.issue_trigger_id(view_id=root["id"]), view=modal())["view"]
    assert second["root_view_id"] == root["id"] and second["previous_view_id"] == root["id"]
    third = client.views_push(trigger_id=slack.issue_trigger_id(view_id=second["id"]), view=modal())["view"]
    err = _error(lambda: client.views_push(trigger_id=slack.issue_trigger_id(view_id=third["id"]), view=modal()))
    assert err.response["error"] == "push_limit_reached"


def test_view_as_json_string_in_form_body(client: WebClient, slack: LocalSlack) -> None:
    trigger = slack.issue_trigger_id()
    response = client.api_call("views.open", data={"trigger_id": trigger, "view": json.dumps(modal())})
    assert response["ok"]
    [call] = slack.calls_to("views.open")
    assert call.args["view"]["callback_id"] == "form"  # decoded, not a string


def test_missing_ids_are_filled_in_like_slack(client: WebClient, slack: LocalSlack) -> None:
    view = modal()
    del view["blocks"][0]["block_id"]
    del view["blocks"][0]["element"]["action_id"]
    opened = client.views_open(trigger_id=slack.issue_trigger_id(), view=view)["view"]
    block = opened["blocks"][0]
    assert block["block_id"] and block["element"]["action_id"]
