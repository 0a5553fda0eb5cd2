"""The driver's payloads against a real Bolt app: Bolt verifies, parses and routes every kind."""

from __future__ import annotations

from typing import Any

import pytest
from slack_bolt import Ack, App, BoltRequest, Respond
from slack_sdk import WebClient

from slackbot.sandbox.driver import SlackDriver
from slackbot.sandbox.slack_api import LocalSlack
from tests.sandbox_slack.conftest import BoltApp


def _opt(value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": value.title()}, "value": value}


def _input(block_id: str, element: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": block_id},
        "element": element,
        **extra,
    }


FORM: dict[str, Any] = {
    "type": "modal",
    "callback_id": "finetune_form",
    "title": {"type": "plain_text", "text": "Fine-tune"},
    "submit": {"type": "plain_text", "text": "Start"},
    "private_metadata": '{"channel": "C0GENERAL"}',
    "blocks": [
        _input("name", {"type": "plain_text_input", "action_id": "name_in", "initial_value": "run-1"}),
        _input(
            "epochs",
            {
                "type": "number_input",
                "action_id": "epochs_in",
                "is_decimal_allowed": False,
                "initial_value": "3",
            },
        ),
        _input(
            "provider",
            {
                "type": "static_select",
                "action_id": "provider_sel",
                "options": [_opt("openpipe"), _opt("openai")],
                "initial_option": _opt("openpipe"),
            },
            dispatch_action=True,
        ),
        _input("dataset", {"type": "external_select", "action_id": "dataset_sel", "min_query_length": 0}),
        _input("flags", {"type": "checkboxes", "action_id": "flags_cb", "options": [_opt("dpo"), _opt("sft")]}),
        _input("mode", {"type": "radio_buttons", "action_id": "mode_rb", "options": [_opt("fast"), _opt("slow")]}),
        _input(
            "models",
            {
                "type": "multi_static_select",
                "action_id": "models_ms",
                "options": [_opt("a"), _opt("b"), _opt("c")],
            },
            optional=True,
        ),
        _input("owner", {"type": "users_select", "action_id": "owner_us"}, optional=True),
        {
            "type": "actions",
            "block_id": "tools",
            "elements": [{"type": "button", "action_id": "refresh", "text": {"type": "plain_text", "text": "Refresh"}}],
        },
    ],
}


def _wire(bolt: BoltApp) -> App:
    app = bolt.app

    @app.command("/finetune")
    def command(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        bolt.seen.append(("command", body))
        client.views_open(trigger_id=body["trigger_id"], view=FORM)

    @app.options("dataset_sel")
    def options(ack: Ack, body: dict[str, Any]) -> None:
        bolt.seen.append(("options", body))
        ack(options=[_opt(f"ds-{body['value']}")])

    @app.action("provider_sel")
    def provider(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        bolt.seen.append(("action", body))
        view = body["view"]
        updated = {**FORM, "title": {"type": "plain_text", "text": "Fine-tune (changed)"}}
        client.views_update(view_id=view["id"], hash=view["hash"], view=updated)

    @app.action("refresh")
    def refresh(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        bolt.seen.append(("button", body))

    @app.action("cancel_job")
    def cancel(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        bolt.seen.append(("message_button", body))

    @app.view("finetune_form")
    def submit(ack: Ack, body: dict[str, Any]) -> None:
        bolt.seen.append(("submission", body))
        name = body["view"]["state"]["values"]["name"]["name_in"]["value"]
        if name == "bad":
            ack(response_action="errors", errors={"name": "Pick another name"})
        else:
            ack()

    @app.shortcut("finetune_thread")
    def shortcut(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        bolt.seen.append(("shortcut", body))

    return app


def _open_form(driver: SlackDriver, bolt: BoltApp) -> dict[str, Any]:
    _wire(bolt)
    response = driver.slash_command("/finetune", "hello")
    assert response.status_code == 200
    return driver.wait_for_view()


def test_slash_command_reaches_bolt_and_opens_the_modal(driver: SlackDriver, bolt: BoltApp, slack: LocalSlack) -> None:
    view = _open_form(driver, bolt)
    [body] = bolt.bodies("command")
    assert body["command"] == "/finetune" and body["text"] == "hello"
    assert body["user_id"] == "U0ALICE" and body["channel_id"] == "C0GENERAL" and body["team_id"] == "T0LOCAL"
    assert body["response_url"].startswith("http://127.0.0.1")
    assert view["callback_id"] == "finetune_form"
    [call] = slack.calls_to("views.open")
    assert call.response is not None and call.response["ok"] is True


def test_view_submission_state_has_slack_shapes_for_every_element(
    driver: SlackDriver, bolt: BoltApp, slack: LocalSlack
) -> None:
    view = _open_form(driver, bolt)
    response = driver.view_submission(
        view["id"],
        {
            "epochs": 5,
            "dataset": "ds-1",
            "flags": ["dpo", "sft"],
            "mode": "slow",
            "models": ["a", "c"],
            "owner": "U0BOB",
        },
    )
    assert response.status_code == 200
    [body] = bolt.bodies("submission")
    assert body["type"] == "view_submission"
    assert body["user"]["id"] == "U0ALICE" and body["team"]["id"] == "T0LOCAL"
    assert body["view"]["private_metadata"] == '{"channel": "C0GENERAL"}'
    assert body["view"]["state"]["values"] == {
        "name": {"name_in": {"type": "plain_text_input", "value": "run-1"}},
        "epochs": {"epochs_in": {"type": "number_input", "value": "5"}},
        "provider": {"provider_sel": {"type": "static_select", "selected_option": _opt("openpipe")}},
        "dataset": {
            "dataset_sel": {
                "type": "external_select",
                "selected_option": {
                    "text": {"type": "plain_text", "text": "ds-1", "emoji": True},
                    "value": "ds-1",
                },
            }
        },
        "flags": {"flags_cb": {"type": "checkboxes", "selected_options": [_opt("dpo"), _opt("sft")]}},
        "mode": {"mode_rb": {"type": "radio_buttons", "selected_option": _opt("slow")}},
        "models": {"models_ms": {"type": "multi_static_select", "selected_options": [_opt("a"), _opt("c")]}},
        "owner": {"owner_us": {"type": "users_select", "selected_user": "U0BOB"}},
    }
    # An empty 200 closes the modal, as in Slack.
    assert view["id"] not in slack.views


def test_untouched_inputs_are_null_or_empty(driver: SlackDriver, bolt: BoltApp) -> None:
    view = _open_form(driver, bolt)
    driver.view_submission(view["id"], {})
    values = bolt.bodies("submission")[0]["view"]["state"]["values"]
    assert values["dataset"] == {"dataset_sel": {"type": "external_select", "selected_option": None}}
    assert values["flags"] == {"flags_cb": {"type": "checkboxes", "selected_options": []}}
    assert values["owner"] == {"owner_us": {"type": "users_select", "selected_user": None}}
    assert "tools" not in values  # buttons hold no state


def test_unknown_option_is_refused_by_the_driver(driver: SlackDriver, bolt: BoltApp) -> None:
    view = _open_form(driver, bolt)
    with pytest.raises(ValueError, match="no option"):
        driver.view_submission(view["id"], {"mode": "medium"})


def test_raw_state_is_sent_verbatim(driver: SlackDriver, bolt: BoltApp) -> None:
    view = _open_form(driver, bolt)
    raw = {"name": {"name_in": {"type": "plain_text_input", "value": "x" * 5000}}}
    driver.view_submission(view["id"], raw_state=raw)
    assert bolt.bodies("submission")[0]["view"]["state"]["values"] == raw


def test_errors_answer_keeps_the_modal_open(driver: SlackDriver, bolt: BoltApp, slack: LocalSlack) -> None:
    view = _open_form(driver, bolt)
    response = driver.view_submission(view["id"], {"name": "bad"})
    assert response.json() == {"response_action": "errors", "errors": {"name": "Pick another name"}}
    assert view["id"] in slack.views


def test_block_suggestion_is_answered_with_options(driver: SlackDriver, bolt: BoltApp) -> None:
    view = _open_form(driver, bolt)
    response = driver.block_suggestion(view["id"], "dataset_sel", "dataset", "abc")
    assert response.status_code == 200
    assert response.json() == {"options": [_opt("ds-abc")]}
    [body] = bolt.bodies("options")
    assert body["type"] == "block_suggestion" and body["value"] == "abc"
    assert body["view"]["id"] == view["id"]


def test_block_action_in_modal_updates_the_view_with_its_hash_and_keeps_typed_input(
    driver: SlackDriver, bolt: BoltApp, slack: LocalSlack
) -> None:
    view = _open_form(driver, bolt)
    response = driver.block_action(view["id"], "provider", "provider_sel", value="openai")
    assert response.status_code == 200
    [body] = bolt.bodies("action")
    [action] = body["actions"]
    assert action["type"] == "static_select" and action["selected_option"] == _opt("openai")
    assert action["block_id"] == "provider" and action["action_ts"]
    assert body["container"] == {"type": "view", "view_id": view["id"]}
    assert body["view"]["state"]["values"]["provider"]["provider_sel"]["selected_option"] == _opt("openai")
    [update] = slack.calls_to("views.update")
    assert update.response is not None and update.response["ok"] is True
    current = slack.views[view["id"]]
    assert current["title"]["text"] == "Fine-tune (changed)"
    assert current["hash"] != view["hash"]
    # Same block_id and action_id: the choice survives the update, and is submitted.
    driver.view_submission(view["id"], {})
    values = bolt.bodies("submission")[0]["view"]["state"]["values"]
    assert values["provider"]["provider_sel"]["selected_option"] == _opt("openai")


def test_button_in_modal(driver: SlackDriver, bolt: BoltApp) -> None:
    view = _open_form(driver, bolt)
    driver.block_action(view["id"], "tools", "refresh")
    [body] = bolt.bodies("button")
    [action] = body["actions"]
    assert action["type"] == "button" and action["text"]["text"] == "Refresh"


def test_message_shortcut_carries_the_message_and_thread(driver: SlackDriver, bolt: BoltApp) -> None:
    _wire(bolt)
    response = driver.message_shortcut("finetune_thread", message_ts="1700000000.000200", thread_ts="1700000000.000100")
    assert response.status_code == 200
    [body] = bolt.bodies("shortcut")
    assert body["type"] == "message_action"
    assert body["message"]["ts"] == "1700000000.000200"
    assert body["message"]["thread_ts"] == "1700000000.000100"
    assert body["channel"] == {"id": "C0GENERAL", "name": "general"}
    assert body["trigger_id"]


def test_message_button(driver: SlackDriver, bolt: BoltApp, slack: LocalSlack, client: WebClient) -> None:
    _wire(bolt)
    posted = client.chat_postMessage(
        channel="C0GENERAL",
        text="job card",
        blocks=[
            {
                "type": "actions",
                "block_id": "card",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "cancel_job",
                        "value": "job-1",
                        "text": {"type": "plain_text", "text": "Cancel"},
                    }
                ],
            }
        ],
    )
    driver.message_block_action("C0GENERAL", posted["ts"], "cancel_job", "job-1")
    [body] = bolt.bodies("message_button")
    assert body["container"]["type"] == "message" and body["container"]["message_ts"] == posted["ts"]
    assert body["message"]["ts"] == posted["ts"] and body["channel"]["id"] == "C0GENERAL"
    assert body["actions"][0]["value"] == "job-1" and body["actions"][0]["block_id"] == "card"


def test_message_shortcut_on_a_stored_reply(driver: SlackDriver, bolt: BoltApp, slack: LocalSlack) -> None:
    _wire(bolt)
    parent = slack.add_message("C0GENERAL", "our eval thread", user_id="U0BOB")
    reply = slack.add_message("C0GENERAL", "use dataset X", user_id="U0BOB", thread_ts=parent)
    driver.message_shortcut("finetune_thread", message_ts=reply)
    [body] = bolt.bodies("shortcut")
    assert body["message"]["text"] == "use dataset X" and body["message"]["user"] == "U0BOB"
    assert body["message"]["thread_ts"] == parent


@pytest.mark.parametrize("answer", ["update", "push", "clear"])
def test_submission_answers_are_applied_like_slack(
    driver: SlackDriver, bolt: BoltApp, slack: LocalSlack, answer: str
) -> None:
    app = bolt.app
    second = {**FORM, "callback_id": "second", "title": {"type": "plain_text", "text": "Step 2"}}

    @app.command("/finetune")
    def command(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=FORM)

    @app.view("finetune_form")
    def submit(ack: Ack) -> None:
        if answer == "clear":
            ack(response_action="clear")
        else:
            ack(response_action=answer, view=second)

    driver.slash_command()
    view = driver.wait_for_view()
    assert driver.view_submission(view["id"], {}).status_code == 200
    views = slack.views
    if answer == "update":
        assert list(views) == [view["id"]] and views[view["id"]]["callback_id"] == "second"
    elif answer == "push":
        assert len(views) == 2 and views[list(views)[-1]]["previous_view_id"] == view["id"]
    else:
        assert views == {}


def test_view_closed_and_global_shortcut(driver: SlackDriver, bolt: BoltApp, slack: LocalSlack) -> None:
    app = bolt.app

    @app.shortcut("new_finetune")
    def shortcut(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        bolt.seen.append(("global", body))
        client.views_open(trigger_id=body["trigger_id"], view={**FORM, "notify_on_close": True})

    @app.view_closed("finetune_form")
    def closed(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        bolt.seen.append(("closed", body))

    assert driver.global_shortcut("new_finetune").status_code == 200
    view = driver.wait_for_view()
    assert driver.view_closed(view["id"]).status_code == 200
    [closed_body] = bolt.bodies("closed")
    assert closed_body["type"] == "view_closed" and closed_body["view"]["id"] == view["id"]
    assert slack.views == {}


def test_respond_goes_to_the_recorded_response_url(driver: SlackDriver, bolt: BoltApp, slack: LocalSlack) -> None:
    @bolt.app.command("/finetune")
    def command(ack: Ack, respond: Respond) -> None:
        ack()
        respond(text="only you can see this")

    driver.slash_command()
    [call] = slack.wait_for("response_url")
    assert call.args["text"] == "only you can see this"


def test_values_entered_before_an_errors_answer_are_kept(driver: SlackDriver, bolt: BoltApp) -> None:
    view = _open_form(driver, bolt)
    driver.view_submission(view["id"], {"name": "bad", "mode": "fast"})
    driver.view_submission(view["id"], {"name": "good"})
    second = bolt.bodies("submission")[1]["view"]["state"]["values"]
    assert second["name"]["name_in"]["value"] == "good"
    assert second["mode"]["mode_rb"]["selected_option"] == _opt("fast")


def test_events_and_retries_reach_bolt(driver: SlackDriver, bolt: BoltApp) -> None:
    retries: list[list[str]] = []

    @bolt.app.event("app_home_opened")
    def home(body: dict[str, Any], request: BoltRequest) -> None:
        bolt.seen.append(("home", body))
        retries.append(list(request.headers.get("x-slack-retry-num", [])))

    assert driver.event({"type": "app_home_opened", "user": "U0ALICE", "tab": "home"}).status_code == 200
    [body] = bolt.bodies("home")
    assert body["type"] == "event_callback" and body["event"]["user"] == "U0ALICE"
    retried = driver.event({"type": "app_home_opened", "user": "U0BOB", "tab": "home"}, retry_num=1)
    assert retried.status_code == 200
    assert retries == [[], ["1"]]
